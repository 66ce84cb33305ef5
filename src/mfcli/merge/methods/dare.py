"""DARE (Yu et al., 2024): drop the changes at random, keep a fraction ρ, rescale the survivors by 1/ρ.

The paper drops each change independently with probability p = 1 − ρ, so it keeps ρ of them *in
expectation*; mfcli draws exactly round(ρ · changed) of each tensor's changed entries, uniformly
without replacement, so DARE sits at the same budget as every other method to the entry. Each
tensor (and each SFT) draws from a seed of its own, derived from --seed and its name. Several SFTs:
DARE + linear, the mean of the rescaled patches (peft's `dare_linear` with equal weights).
"""

from __future__ import annotations

import torch

from mfcli.merge.masks import tensor_seed
from mfcli.merge.contract import TensorInputs, register


def random_mask(changed: torch.Tensor, rho: float, seed: int) -> torch.Tensor:
    """Exactly round(ρ · changed) of the changed entries, drawn uniformly without replacement."""
    where = torch.nonzero(changed.flatten()).squeeze(1)
    k = int(round(len(where) * rho))
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(changed.numel(), dtype=torch.bool)
    mask[where[torch.randperm(len(where), generator=g)[:k]]] = True
    return mask.view(changed.shape)


@register("dare", budgeted=True, summary="a random rho of the changes, rescaled 1/rho")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    union = torch.zeros_like(t.deltas[0], dtype=torch.bool)
    total = torch.zeros_like(t.deltas[0])
    for i, d in enumerate(t.deltas):
        m = random_mask(d != 0, opts.sparsity, tensor_seed(opts.seed, t.name if i == 0 else f"{t.name}#{i}"))
        total += torch.where(m, d / opts.sparsity, torch.zeros_like(d))  # rescale the survivors by 1/(1 − p)
        union |= m
    rep.kept = int(union.sum())
    return total / len(t.deltas)
