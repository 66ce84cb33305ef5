"""Task arithmetic (Ilharco et al., 2023) at the same kept budget: each Δ trimmed to the top ρ of its
changed entries by magnitude, then λ times the mean."""

from __future__ import annotations

import torch

from mfcli.merge.masks import top_mask, union_patch
from mfcli.merge.contract import TensorInputs, register


@register("task-arithmetic", budgeted=True, parameters=("lam",), summary="magnitude-trimmed to rho of the changes, then lambda times the mean")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    masks = [top_mask(d.abs(), d != 0, opts.sparsity, "layer") for d in t.deltas]
    p, union = union_patch(t.deltas, masks, [torch.where(m, d, torch.zeros_like(d)) for m, d in zip(masks, t.deltas)])
    rep.kept = int(union.sum())
    return opts.lam * p
