"""Grafting, one-shot: keep the top ρ of the changes by the first-order loss increase of reverting them,
|Δ ⊙ ∇L| with ∇L the target-task loss gradient at the SFT weights — a stand-in for Grafting's
learned mask (Panigrahi et al., 2023)."""

from __future__ import annotations

import torch

from mfcli.merge.masks import top_mask, union_patch
from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import MaskScopeOptions


@register("grafting", needs="gradient", budgeted=True, options=MaskScopeOptions, summary="top rho by |delta * grad L| (first-order loss of reverting)")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    masks, kept = [], []
    for d, g in zip(t.deltas, t.grads or [None] * len(t.deltas)):
        m = top_mask((d * g).abs() if g is not None else d.abs(), d != 0, opts.sparsity, opts.mask_scope)
        masks.append(m)
        kept.append(torch.where(m, d, torch.zeros_like(d)))
    p, union = union_patch(t.deltas, masks, kept)
    rep.kept = int(union.sum())
    return p
