"""TIES's trim as the paper and its reference code take it: each task vector keeps the top ρ of its
entries by magnitude over the *whole* vector (Yadav et al., 2023, §3, "Trim"; the code's
`topk_values_mask` over the flattened task vector), not ρ of every tensor on its own.

A merge streams the model tensor by tensor, so the whole vector is never in memory. The k-th largest
magnitude is found exactly in two passes over the tensors with a radix selection on the IEEE-754 bits:
non-negative float32 values order as their bit patterns do, so a histogram of the top 16 bits finds the
bucket that holds the k-th value, and a histogram of the low 16 bits within that bucket finds the value
itself — 65,536 counters, whatever the model's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

HIGH, LOW = 1 << 15, 1 << 16  # |x| has sign bit 0: the top 16 bits take 2^15 values, the low 16 bits 2^16


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.abs().float().contiguous().view(torch.int32).long()


def kth_largest(chunks: Callable[[], Iterable[torch.Tensor]], fractions: list[float]) -> list[float]:
    """For each ρ of `fractions`, the k-th largest of the magnitudes in `chunks()` with k = round(ρ · their
    count) (`chunks` is called twice: one pass per histogram); +inf where k is 0."""
    high = torch.zeros(HIGH, dtype=torch.long)
    for c in chunks():
        high += torch.bincount(_bits(c) >> 16, minlength=HIGH)
    total = int(high.sum())
    ks = [int(round(total * rho)) for rho in fractions]
    above = torch.cumsum(high.flip(0), 0).flip(0)  # above[b] = count with high bits >= b
    plan = {}
    for k in ks:
        if 0 < k <= total:
            b = int((above >= k).nonzero().max())  # the highest bucket whose tail reaches k
            plan[k] = (b, k - (int(above[b + 1]) if b + 1 < HIGH else 0))  # rank within bucket b
    lows = {b: torch.zeros(LOW, dtype=torch.long) for b, _ in plan.values()}
    if lows:
        for c in chunks():
            bits = _bits(c)
            hb = bits >> 16
            for b, hist in lows.items():
                sel = bits[hb == b]
                if sel.numel():
                    hist += torch.bincount(sel & 0xFFFF, minlength=LOW)
    out = []
    for k in ks:
        if k <= 0:
            out.append(float("inf"))
        elif k > total:
            out.append(0.0)
        else:
            b, r = plan[k]
            tail = torch.cumsum(lows[b].flip(0), 0).flip(0)
            low = int((tail >= r).nonzero().max())
            value = torch.tensor([(b << 16) | low], dtype=torch.int32).view(torch.float32)
            out.append(float(value))
    return out


def whole_vector_cuts(keys: list[str], delta_of: Callable[[str, int], torch.Tensor], n_models: int,
                      budgets: list[float]) -> dict[float, list[float]]:
    """Per budget ρ, each model's magnitude cut: its task vector keeps |Δ| ≥ cut, the top
    round(ρ · changed entries) of the whole vector over `keys` (ties at the cut kept, as the code's
    `>=` keeps them)."""
    cuts: dict[float, list[float]] = {rho: [] for rho in budgets}
    for i in range(n_models):
        def chunks(i=i):
            for key in keys:
                d = delta_of(key, i)
                yield d[d != 0]
        for rho, cut in zip(budgets, kth_largest(chunks, budgets)):
            cuts[rho].append(cut)
    return cuts
