"""Task arithmetic (Ilharco et al., 2023) at the same kept budget: each Δ magnitude-pruned to ρ, then λ·mean."""

from __future__ import annotations

import torch

from mfcli.merge.methods import TensorInputs, register


@register("task-arithmetic", summary="magnitude-pruned to rho, then lambda times the mean delta")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    from peft.utils import merge_utils

    weights = torch.full((len(t.deltas),), opts.lam / len(t.deltas))
    p = merge_utils.task_arithmetic([merge_utils.prune(d, opts.sparsity, "magnitude") for d in t.deltas], weights)
    rep.kept = int((p != 0).sum())
    return p
