"""The OBS compensation's sign and quality, proven against brute force on random layers."""

import pytest
import torch

from mfcli.merge.obs import HessianAccumulator, compensate, damped_inverse, output_error, sensitivity, tailor_linear


def layer(rows, cols, tokens, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(tokens, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.3  # correlated inputs
    delta = torch.randn(rows, cols, generator=g) * 0.1
    acc = HessianAccumulator(cols)
    for chunk in X.split(37):
        acc.add(chunk)
    return delta, acc.H, X


def best_for_mask(delta, keep, H):
    """Exact least squares per row: min (Δ−z)ᵀH(Δ−z) with z = 0 outside the kept entries."""
    out = torch.zeros_like(delta, dtype=torch.float64)
    H = H.double()
    for r in range(delta.shape[0]):
        K, U = keep[r], ~keep[r]
        d = delta[r].double()
        z = torch.zeros_like(d)
        if K.any():
            z[K] = d[K] + torch.linalg.solve(H[K][:, K], H[K][:, U] @ d[U])
        out[r] = z
    return out


def test_hessian_accumulator_is_2xxt_over_n():
    delta, H, X = layer(3, 8, 100, 0)
    assert torch.allclose(H, 2 * X.T @ X / 100, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("keep_frac", [0.1, 0.5, 0.9])
def test_compensation_never_worse_than_masking_and_near_optimal(seed, keep_frac):
    rows, cols = 6, 24
    delta, H, _ = layer(rows, cols, 400, seed)
    keep = torch.rand(rows, cols, generator=torch.Generator().manual_seed(100 + seed)) < keep_frac
    res = tailor_linear(delta, keep, H, damp=1e-4, block_size=8, refine_steps=50)
    assert torch.all(res.delta[~keep] == 0)  # the patch lives on the mask only
    e_mask = output_error(delta - torch.where(keep, delta, torch.zeros_like(delta)), H)
    e_best = output_error(delta.double() - best_for_mask(delta, keep, H), H.double())
    assert res.error_fused <= e_mask * (1 + 1e-5) and abs(res.error_masked - e_mask) <= 1e-6 * (1 + e_mask)
    assert res.error_fused <= e_best * 1.05 + 1e-7  # within 5 % of the exact optimum for this mask


@pytest.mark.parametrize("seed", range(6))
def test_obs_sign(seed):
    # Thm 4.5 subtracts: with SparseGPT's `-=` a single reverted entry is compensated exactly
    # (the optimum), with the authors' `+=` the error grows above plain reverting.
    delta, H, _ = layer(1, 12, 300, seed)
    inv = damped_inverse(H, damp=1e-6)
    keep = torch.ones(1, 12, dtype=torch.bool)
    keep[0, 0] = False  # the first column: the forward-only update reaches every other entry
    masked = torch.where(keep, delta, torch.zeros_like(delta))
    good = output_error(delta - compensate(delta, keep, inv, 4), H)
    bad = output_error(delta - compensate(delta, keep, inv, 4, sign=+1.0), H)
    best = output_error(delta.double() - best_for_mask(delta, keep, H), H.double())
    assert good <= output_error(delta - masked, H) < bad
    assert good <= best * 1.01 + 1e-9  # fp32 vs the fp64 optimum


def test_blocksize_does_not_change_result():
    delta, H, _ = layer(5, 40, 300, 3)
    keep = torch.rand(5, 40, generator=torch.Generator().manual_seed(1)) < 0.3
    inv = damped_inverse(H)
    a, b = compensate(delta, keep, inv, 128), compensate(delta, keep, inv, 7)
    assert torch.allclose(a, b, atol=1e-5)


def test_dead_columns_and_damping_retry():
    delta, H, _ = layer(4, 10, 200, 5)
    H[:, 3] = 0
    H[3, :] = 0  # input 3 always zero
    inv = damped_inverse(H)
    assert inv.dead[3] and not inv.dead[0]
    comp = compensate(delta, torch.ones_like(delta, dtype=torch.bool), inv)
    assert torch.all(comp[:, 3] == 0)
    singular = torch.ones(6, 6) * -1.0  # indefinite: Cholesky fails until the damping dominates
    singular.fill_diagonal_(0.5)
    got = damped_inverse(singular, damp=0.01)
    assert got.retries > 0 and got.damp > 0.01


def test_sensitivity_is_eq9():
    delta, H, _ = layer(3, 5, 100, 7)
    inv = damped_inverse(H, damp=1e-6)
    Hinv = torch.linalg.inv(H + 1e-6 * torch.mean(torch.diag(H)) * torch.eye(5))
    assert torch.allclose(sensitivity(delta, inv), delta ** 2 / (2 * torch.diag(Hinv)), rtol=1e-3)
