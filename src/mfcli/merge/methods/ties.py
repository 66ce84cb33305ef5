"""TIES-Merging (Yadav et al., 2023) at density ρ, scaled by λ (peft's `ties`)."""

from __future__ import annotations

import torch

from mfcli.merge.methods import TensorInputs, register


@register("ties", summary="trim to density rho, elect signs, disjoint mean, times lambda")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    from peft.utils import merge_utils

    p = merge_utils.ties(t.deltas, torch.full((len(t.deltas),), opts.lam), opts.sparsity)
    rep.kept = int((p != 0).sum())
    return p
