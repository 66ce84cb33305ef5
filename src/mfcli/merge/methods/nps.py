"""NPS-style merging (after Du, Fang, Li, …, Zhang, "Neural Parameter Search", ACL 2025; its code,
github.com/duguodong7/NPS-Pruning, could not be read, so this is labelled "NPS-style"): each tensor's
changes Δ split into `--nps-bands` magnitude bands of equal count (band 1 the largest |Δ|), each band's
magnitudes re-weighted by its weight w_b, and the top ρ of the changed entries by re-weighted magnitude
kept — at the same exact per-tensor budget as every budgeted method:

    score_d = w_{b(d)} · |Δ_d|,   m = top round(ρ · changed) of score,   patch = m ⊙ Δ  (or m ⊙ w ⊙ Δ)

The weights come from `--nps-weights`, or from the CMA-ES search in mfcli/search.py (`--nps-search`),
which scores each candidate on labelled validation records. Choices the paper leaves open, stated:
bands by equal counts per tensor (not a global sort), `--nps-apply mask` (the note's m ⊙ τ) by default,
several SFTs each masked at ρ and their patches averaged over the union (as Model Tailor's Appendix B.2
does for masks). With every weight 1 it is magnitude pruning at ρ.
"""

from __future__ import annotations

import torch

from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import NpsOptions
from mfcli.merge.masks import top_mask, union_patch


def band_of(magnitude: torch.Tensor, changed: torch.Tensor, bands: int) -> torch.Tensor:
    """Each entry's band: 0 for the largest |Δ| among the changed entries, bands − 1 for the smallest,
    equal counts (ties by position); unchanged entries get the last band (they are never kept)."""
    out = torch.full(magnitude.shape, bands - 1, dtype=torch.long)
    idx = torch.nonzero(changed.flatten()).flatten()
    if idx.numel():
        order = torch.sort(magnitude.flatten()[idx], descending=True, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel())
        out.view(-1)[idx] = (rank * bands) // idx.numel()
    return out


def weights_of(opts) -> list[float]:
    return [float(w) for w in opts.nps_weights.split(",")] if opts.nps_weights else [1.0] * opts.nps_bands


def nps_patch(delta: torch.Tensor, rho: float, weights: list[float], apply: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One Δ's patch and mask: the top ρ of its changed entries by band-weighted magnitude."""
    changed = delta != 0
    band = band_of(delta.abs(), changed, len(weights))
    w = torch.tensor(weights, dtype=torch.float32)[band]
    mask = top_mask(w * delta.abs().float(), changed, rho, "layer")
    kept = w * delta if apply == "reweighted" else delta
    return torch.where(mask, kept, torch.zeros_like(delta)), mask


@register("nps", budgeted=True, options=NpsOptions,
          summary="NPS-style: magnitude bands re-weighted (CMA-ES on validation records), top rho kept")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    weights = weights_of(opts)
    patches, masks = zip(*(nps_patch(d, opts.sparsity, weights, opts.nps_apply) for d in t.deltas))
    p, union = union_patch(list(t.deltas), list(masks), list(patches)) if opts.nps_apply == "reweighted" else \
        union_patch(list(t.deltas), list(masks), [torch.where(m, d, torch.zeros_like(d)) for m, d in zip(masks, t.deltas)])
    rep.kept = int(union.sum())
    return p
