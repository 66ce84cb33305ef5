"""Fisher merging (Matena & Raffel, NeurIPS 2022): a per-parameter weighted average of the models, each
weighted by its diagonal Fisher information on its own data,

    θ* = Σ_i F_i θ_i / Σ_i F_i                                                   (the paper's Eq. 2)

with F_i the diagonal Fisher, the mean over examples of the squared gradient of the example's
log-likelihood (here of its answer tokens), computed for PRE on the pre-trained tasks' data
(`--pre-data`) and for each SFT on its target's (merge/calibration.py, `fisher_diagonal`).

Where mfcli follows the references and where it departs (docs/methods.md, "Fisher merging"):
- Each model's Fisher is divided by its L2 norm over the whole model (`--fisher-normalise`, the
  default), as both reference codes do by default (Matena & Raffel's, FusionBench's);
  `--no-fisher-normalise` takes the raw Fishers of the paper's Eq. 2.
- The Fisher is the empirical one by default (the data's answer tokens); `--fisher-estimate sampled`
  is the paper's and its code's true Fisher, the expectation under the model's own predictions,
  estimated with one sampled token per answer position.
- The floor: `--fisher-floor 0` (the default) takes the plain average where every F_i is 0 (a parameter
  no example moves) and the Fisher-weighted one elsewhere; a positive floor is the references' rule,
  max(F_i, floor) for every model (Matena & Raffel's 1e-6; their code floors only the first model
  unless `favor_target_model` is off).
- PRE is a member (mfcli's, as for RegMean): the merge weighs PRE's own Fisher on its own tasks.

`fisher-budget` (mfcli's, budgeted): the same merge, then only the fraction ρ of each SFT's changed
entries with the highest Fisher-weighted importance F_i·Δ_i² kept (their union with several SFTs) —
Fisher merging at Model Tailor's budget.
"""

from __future__ import annotations

import torch

from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import FisherBudgetOptions, FisherOptions
from mfcli.merge.masks import top_mask


def fisher_delta(deltas: list[torch.Tensor], fishers: list[torch.Tensor], pre_fisher: torch.Tensor,
                 floor: float = 0.0) -> torch.Tensor:
    """θ* − θ_PRE = Σ_SFT F_i Δ_i / (F_PRE + Σ_SFT F_i) (Δ_PRE = 0), every F raised to `floor` first;
    the plain mean where all F are 0."""
    if floor > 0:
        fishers, pre_fisher = [f.clamp_min(floor) for f in fishers], pre_fisher.clamp_min(floor)
    total = pre_fisher.double() + sum(f.double() for f in fishers)
    weighted = sum(f.double() * d.double() for f, d in zip(fishers, deltas))
    mean = sum(d.double() for d in deltas) / (len(deltas) + 1)
    return torch.where(total > 0, weighted / torch.where(total > 0, total, torch.ones_like(total)), mean).float()


def _fishers(t: TensorInputs) -> tuple[list[torch.Tensor], torch.Tensor]:
    zero = torch.zeros_like(t.deltas[0])
    fishers = [f if f is not None else zero for f in (t.fishers or [None] * len(t.deltas))]
    return fishers, t.pre_fisher if t.pre_fisher is not None else zero


@register("fisher", needs="fisher", pre_side=True, options=FisherOptions,
          summary="Fisher-weighted average of PRE and the SFTs (needs --pre-data)")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    fishers, pre = _fishers(t)
    out = fisher_delta(t.deltas, fishers, pre, opts.fisher_floor)
    changed = torch.zeros_like(t.deltas[0], dtype=torch.bool)
    for d in t.deltas:
        changed |= d != 0
    rep.path, rep.kept = "fisher", int(changed.sum())
    return torch.where(changed, out, torch.zeros_like(out))


@register("fisher-budget", needs="fisher", pre_side=True, budgeted=True,
          options=FisherBudgetOptions,
          summary="fisher, keeping the top rho of each SFT's changes by F*delta^2 (mfcli's)")
def patch_budget(t: TensorInputs, opts, rep) -> torch.Tensor:
    fishers, pre = _fishers(t)
    out = fisher_delta(t.deltas, fishers, pre, opts.fisher_floor)
    union = torch.zeros_like(t.deltas[0], dtype=torch.bool)
    for d, f in zip(t.deltas, fishers):
        union |= top_mask(f * d * d, d != 0, opts.sparsity, opts.mask_scope)
    rep.path, rep.kept = "fisher", int(union.sum())
    return torch.where(union, out, torch.zeros_like(out))
