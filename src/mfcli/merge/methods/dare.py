"""DARE (Yu et al., 2024): keep each change with probability ρ and rescale by 1/ρ (peft's `dare_linear`)."""

from __future__ import annotations

import torch

from mfcli.merge.masks import tensor_seed
from mfcli.merge.methods import TensorInputs, register


@register("dare", summary="keep each change with probability rho, rescale 1/rho")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    from peft.utils import merge_utils

    weights = torch.full((len(t.deltas),), 1.0 / len(t.deltas))
    # peft's random_pruning draws from the global RNG: a seed of this tensor's own (one seed reset per
    # tensor drew the same mask for every tensor of a shape), forked so the caller's RNG is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tensor_seed(opts.seed, t.name))
        p = merge_utils.dare_linear(t.deltas, weights, opts.sparsity)
    rep.kept = int((p != 0).sum())
    return p
