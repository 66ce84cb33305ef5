"""Masks over a tensor's fine-tuned changes, shared by the merge methods."""

from __future__ import annotations

import hashlib

import torch


def normalise(x: torch.Tensor, how: str) -> torch.Tensor:
    """Eq. 11's norm(·): min-max to [0, 1] (the paper) or a z-score (the authors' code)."""
    if how == "zscore":
        return (x - x.mean()) / (x.std() + 1e-12)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo + 1e-12)


def row_quota(per_row: torch.Tensor, rho: float) -> torch.Tensor:
    """How many of each row's changed entries to keep so that the tensor keeps exactly round(ρ·changed):
    ⌊ρ·c_r⌋ per row, and the rest one each to the rows with the largest remainders (Hamilton's method;
    ties to the lower row). Rounding per row instead would keep 0 of a tensor whose rows each changed
    fewer than 1/(2ρ) entries."""
    exact = per_row.double() * rho
    quota = exact.floor().long()
    left = int(round(int(per_row.sum()) * rho)) - int(quota.sum())
    if left > 0:
        rem = exact - quota.double()
        order = sorted(range(len(rem)), key=lambda r: (-float(rem[r]), r))[:left]
        quota[order] += 1
    return quota


def top_mask(score: torch.Tensor, changed: torch.Tensor, rho: float, scope: str) -> torch.Tensor:
    """Keep the fraction ρ of the *changed* entries with the highest score: the tensor's top
    round(ρ·changed) ("layer"), or per row with the same total, split by largest remainder ("row")."""
    score = torch.where(changed, score.float(), torch.full_like(score, float("-inf"), dtype=torch.float32))
    if scope == "row" and score.dim() == 2:
        k = row_quota(changed.sum(1), rho)
        order = torch.argsort(score, dim=1, descending=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(score.shape[1]).expand_as(order))
        return (ranks < k.unsqueeze(1)) & changed
    n = int(round(int(changed.sum()) * rho))
    mask = torch.zeros(score.numel(), dtype=torch.bool)
    if n > 0:
        mask[torch.topk(score.flatten(), n, sorted=False).indices] = True  # the set, not its order
    return mask.view(score.shape) & changed


def union_patch(deltas: list[torch.Tensor], masks: list[torch.Tensor],
                fused: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch and its mask. Several SFTs (Model Tailor Appendix B.2): M_agg ⊙ (mean Δ_i + mean C_i), M_agg = ∪ M_i and
    C_i = fused_i − Δ_i on M_i (the compensation each SFT's own patch added)."""
    union = torch.zeros_like(masks[0])
    for m in masks:
        union |= m
    mean_delta = sum(deltas) / len(deltas)
    mean_comp = sum(torch.where(m, f - d, torch.zeros_like(d)) for m, f, d in zip(masks, fused, deltas)) / len(deltas)
    return torch.where(union, mean_delta + mean_comp, torch.zeros_like(mean_delta)), union


def tensor_seed(seed: int, name: str) -> int:
    """A reproducible seed per (run seed, tensor name)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2 ** 63 - 1)
