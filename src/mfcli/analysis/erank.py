"""Effective rank (Roy & Vetterli 2007; MDGD Eq. 4; METHODS.md §4).

For a representation matrix Z (tokens × dims) with singular values σ_k:

    p_k = σ_k / Σ_j σ_j,        erank(Z) = exp(−Σ_k p_k log p_k)

σ, not σ²; no centring; 0·log 0 = 0. An n-dimensional isotropic matrix has erank n, a rank-1
matrix 1. Everything here runs in float64.
"""

from __future__ import annotations

import torch


def singular_values(Z: torch.Tensor) -> torch.Tensor:
    """σ of Z (descending, float64) from the smaller Gram matrix: Z has many more tokens than dims (or
    the reverse), so the eigenvalues of the min(n, d)² Gram matrix cost a fraction of a full SVD."""
    Z = Z.detach().to(torch.float64)
    return sigma_from_gram(Z.T @ Z if Z.shape[0] >= Z.shape[1] else Z @ Z.T)


def sigma_from_gram(G: torch.Tensor) -> torch.Tensor:
    """σ (descending) from G = ZᵀZ or ZZᵀ: the square roots of its eigenvalues."""
    return torch.linalg.eigvalsh(G).clamp_min(0.0).flip(0).sqrt()  # tiny negative round-off is zero


def effective_rank_from_sigma(sigma: torch.Tensor) -> float:
    sigma = sigma.to(torch.float64)
    total = sigma.sum()
    if total <= 0:
        return 0.0  # the zero matrix: no direction at all
    p = sigma / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def effective_rank(Z: torch.Tensor) -> float:
    return effective_rank_from_sigma(singular_values(Z))
