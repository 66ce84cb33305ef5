"""RegMean (Jin et al., ICLR 2023): merge each linear layer so that it answers every model's own inputs
as that model did, in closed form.

For a linear layer y = W x and models i, each with the Gram matrix of the inputs it sees on its own
data, G_i = X_iᵀ X_i, RegMean minimises Σ_i ‖X_i Wᵀ − X_i W_iᵀ‖² (the paper's Eq. 1):

    W* = (Σ_i W_i G̃_i) (Σ_i G̃_i)⁻¹,   G̃_i = α·G_i + (1 − α)·diag(G_i)            (the paper's Eq. 2, §3.2)

written here in torch's (out, in) layout. α < 1 shrinks the off-diagonal entries (the paper's remedy for
ill-conditioned sums); α = 0 weighs each input column by its energy alone. As a patch on PRE (Δ_PRE = 0):
W* − W_PRE = (Σ_SFT Δ_i G̃_i)(Σ_i G̃_i)⁻¹.

Where mfcli follows the references and where it departs (docs/methods.md, "RegMean"):
- **Each model's Gram is its mean over its own tokens** (`--regmean-gram mean`, the default), as the
  RegMean authors' code and FusionBench compute it: every model weighs equally whatever the size of its
  calibration sample. `--regmean-gram sum` takes the plain X_iᵀX_i of Eq. 1, so a model with three
  times the tokens weighs three times as much.
- **PRE is a member** (its Gram from `--pre-data`, the pre-trained tasks' data): mfcli's extension — the
  paper merges fine-tunes only, which with one fine-tune returns that fine-tune. It is what makes
  RegMean a forgetting remedy here: the merge answers PRE's inputs as PRE did.
- Every model's Gram is captured for every linear any fine-tune changed, so a fine-tune that left a
  linear unchanged takes part with Δ = 0 (its inputs still pull the merge towards PRE's answer).
- Every linear layer with captured inputs is merged in closed form, the vision tower's included; the
  rest — norms, biases, embeddings, lm_head unless its inputs were captured — take the plain average
  of all models, PRE included, as the paper does for every non-linear weight. An input column no model
  ever fed (a zero row of Σ G̃) keeps the plain average too. Not budgeted: every changed entry moves.
- α: 0.6 by default, chosen on validation data (studies/regmean_alpha.py: the highest mean H of kept
  over counting and animals, 3 seeds each, of 0.1–0.95; 0.3 to 0.95 lie within the seeds' spread) —
  not a reference default (FusionBench's is 0.95 for CLIP; RegMean's own configurations mostly 0.1).
"""

from __future__ import annotations

import torch

from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import RegMeanOptions


def reduce_off_diagonal(gram: torch.Tensor, alpha: float) -> torch.Tensor:
    """G̃ = α·G + (1 − α)·diag(G)."""
    return alpha * gram + (1 - alpha) * torch.diag(torch.diagonal(gram))


def regmean_delta(deltas: list[torch.Tensor], grams: list[torch.Tensor], pre_gram: torch.Tensor,
                  alpha: float) -> torch.Tensor:
    """W* − W_PRE for one linear weight (out, in), in float64, from the SFTs' Δ_i and Gram matrices."""
    g = [reduce_off_diagonal(x.double(), alpha) for x in grams]
    total = reduce_off_diagonal(pre_gram.double(), alpha) + sum(g)
    rhs = sum(d.double() @ gi for d, gi in zip(deltas, g))
    live = torch.diagonal(total) > 0  # input columns some model fed
    out = torch.zeros_like(rhs)
    if live.any():
        idx = live.nonzero().flatten()
        a = total[idx][:, idx]
        # X A = B with A symmetric: solve Aᵀ Xᵀ = Bᵀ; lstsq where A is singular on the live block
        try:
            out[:, idx] = torch.linalg.solve(a, rhs[:, idx].T).T
        except RuntimeError:
            out[:, idx] = torch.linalg.lstsq(a, rhs[:, idx].T).solution.T
    mean = sum(d.double() for d in deltas) / (len(deltas) + 1)
    return torch.where(live.expand_as(out), out, mean)


@register("regmean", needs="hessian", pre_side=True, options=RegMeanOptions,
          summary="closed-form least squares on every model's own layer inputs (needs --pre-data); others averaged")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    have = t.pre_hessian is not None and t.hessians and all(h is not None for h in t.hessians)
    if have and t.deltas[0].dim() == 2:
        rep.path = "hessian"
        # H = (2/n) Σ x xᵀ: the per-token mean Gram is H/2, the summed one n·H/2
        gram = (lambda h, n: h / 2.0) if opts.regmean_gram == "mean" else (lambda h, n: h * (n / 2.0))
        grams = [gram(h, n) for h, n in zip(t.hessians, t.tokens)]
        out = regmean_delta(t.deltas, grams, gram(t.pre_hessian, t.pre_tokens), opts.regmean_alpha).float()
    else:
        rep.path = "average"
        out = sum(t.deltas) / (len(t.deltas) + 1)  # the plain mean of PRE (Δ = 0) and the SFTs
    changed = torch.zeros_like(t.deltas[0], dtype=torch.bool)
    for d in t.deltas:
        changed |= d != 0
    rep.kept = int(changed.sum())
    return torch.where(changed, out, torch.zeros_like(out))
