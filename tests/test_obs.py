"""The OBS compensation's sign and quality, proven against brute force on random layers."""

import pytest
import torch

from mfcli.merge.obs import (HessianAccumulator, compensate, damped_inverse, output_error, row_errors, sensitivity,
                            tailor_linear)


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


def thm45_one_column_at_a_time(delta, keep, H, damp):
    """Model Tailor Thm 4.5 / OBS written out naively in float64, no Cholesky, no blocks: visit the
    columns in order; revert each dropped entry m to zero, move −(Δ_m/[H⁻¹]_mm)·H⁻¹[m, later] onto the
    later entries of its row, then eliminate m from H⁻¹ (it is fixed from now on)."""
    H = H.double()
    Hinv = torch.linalg.inv(H + damp * torch.mean(torch.diag(H)) * torch.eye(H.shape[0], dtype=H.dtype))
    W = delta.double().clone()
    for m in range(W.shape[1]):
        d = Hinv[m, m]
        err = torch.where(keep[:, m], torch.zeros_like(W[:, m]), W[:, m]) / d
        W[:, m:] -= err.unsqueeze(1) * Hinv[m, m:].unsqueeze(0)
        Hinv = Hinv - torch.outer(Hinv[:, m], Hinv[m, :]) / d
    return W


@pytest.mark.parametrize("seed", range(4))
def test_obs_alone_is_thm45_column_by_column(seed):
    rows, cols = 5, 16
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(300, cols, generator=g) @ (torch.eye(cols) + 0.3 * torch.randn(cols, cols, generator=g))
    delta = torch.randn(rows, cols, generator=g) * 0.1
    acc = HessianAccumulator(cols)
    acc.add(X)
    keep = torch.rand(rows, cols, generator=g) < 0.5
    want = thm45_one_column_at_a_time(delta, keep, acc.H, 0.01)
    masked = torch.where(keep, delta, torch.zeros_like(delta)).double()
    # per row, the start is the better of OBS and the plain mask (forward-only OBS can lose on a row)
    obs_wins = row_errors(delta.double() - want, acc.H.double()) <= row_errors(delta.double() - masked, acc.H.double())
    assert obs_wins.any()
    res = tailor_linear(delta, keep, acc.H, damp=0.01, block_size=5, refine_steps=0)
    assert torch.allclose(res.delta.double(), torch.where(obs_wins.unsqueeze(1), want, masked), atol=1e-5)
    assert torch.all(res.delta[~keep] == 0)


@pytest.mark.parametrize("seed", range(6))
def test_refinement_obeys_the_cg_bound_at_product_defaults(seed):
    """At the product's defaults (1 % damping, 10 CG steps, keep 90 %) the refinement is not the exact
    optimum; what CG guarantees is its convergence bound on the damped objective f (per row):
        f(z_k) − f* ≤ 4·((√κ − 1)/(√κ + 1))^(2k) · (f(z_0) − f*)
    with κ the condition number of H restricted to the row's kept entries, z_0 the better of OBS and
    the plain mask. A refinement that is skipped or starts from the wrong point breaks it."""
    rows, cols = 6, 24
    delta, H, _ = layer(rows, cols, 400, seed)
    keep = torch.rand(rows, cols, generator=torch.Generator().manual_seed(100 + seed)) < 0.9
    from mfcli.merge.methods import tailor_options

    product = tailor_options(variant="refined").method_options  # what `mfcli tailor --variant refined` runs with
    assert (product.damp, product.refine_steps) == (0.01, 10)
    res = tailor_linear(delta, keep, H, block_size=8, damp=product.damp, refine_steps=product.refine_steps,
                        comp_penalty=product.comp_penalty)
    eye = torch.mean(torch.diag(H.double())) * torch.eye(cols, dtype=torch.float64)
    Hp = H.double() + product.comp_penalty * eye  # the objective with Eq. 5's closeness penalty
    Hd = Hp + product.damp * eye  # and the numerical damping
    best = best_for_mask(delta, keep, Hd)
    obs = compensate(delta, keep, damped_inverse(H, 0.01), 8).double()
    masked = torch.where(keep, delta, torch.zeros_like(delta)).double()
    f = lambda z: row_errors(delta.double() - z, Hd)  # noqa: E731
    pick_obs = row_errors(delta.double() - obs, Hp) <= row_errors(delta.double() - masked, Hp)
    start = torch.where(pick_obs, f(obs), f(masked))
    for r in range(rows):
        ev = torch.linalg.eigvalsh(Hd[keep[r]][:, keep[r]])
        kappa = float(ev[-1] / ev[0])
        rate = ((kappa ** 0.5 - 1) / (kappa ** 0.5 + 1)) ** (2 * 10)
        excess = float(f(res.delta.double())[r] - f(best)[r])
        assert excess <= 4 * rate * float(start[r] - f(best)[r]) + 1e-6 * float(start[r]), (r, kappa)


def test_compensation_penalty_is_eq5_closeness():
    """comp_penalty μ adds μ·mean(diag H)·||C||² to the fit (C = z − M⊙Δ, the compensation): at μ = 0
    the unconstrained fit (its compensation larger than the kept changes themselves); as μ grows the
    patch shrinks monotonically toward the plain mask, and at each μ it is the penalised optimum."""
    rows, cols = 6, 24
    delta, H, _ = layer(rows, cols, 400, 0)
    keep = torch.rand(rows, cols, generator=torch.Generator().manual_seed(7)) < 0.1
    masked = torch.where(keep, delta, torch.zeros_like(delta))
    eye = torch.mean(torch.diag(H.double())) * torch.eye(cols, dtype=torch.float64)
    sizes = []
    for mu in (0.0, 0.1, 1.0, 10.0, 1e4):
        res = tailor_linear(delta, keep, H, damp=1e-6, refine_steps=60, comp_penalty=mu)
        comp = (res.delta - masked).double()
        sizes.append(float(comp.norm()))
        want = best_for_mask(delta, keep, H.double() + mu * eye)  # least squares with the penalty
        assert torch.allclose(res.delta.double(), want, atol=1e-4 * float(delta.abs().max()) + 1e-6)
        assert torch.all(res.delta[~keep] == 0)
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    assert sizes[0] > float(masked.norm()) and sizes[-1] < 1e-3 * float(masked.norm())


@pytest.mark.parametrize("seed", [0, 1, 9, 14])
def test_paper_variant_is_thm45_column_by_column_on_every_row(seed):
    """`--variant paper` is Thm 4.5 in SparseGPT's column order and nothing else: on layers where the
    forward-only compensation loses to the plain mask on some rows, it still compensates every row (a
    per-row fallback, a CG step or a penalty would change those rows)."""
    from mfcli.merge.obs import paper_linear

    rows, cols = 16, 24
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(400, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.3  # correlated inputs
    delta = torch.randn(rows, cols, generator=g) * 0.1
    acc = HessianAccumulator(cols)
    acc.add(X)
    keep = torch.rand(rows, cols, generator=g) < 0.9
    want = thm45_one_column_at_a_time(delta, keep, acc.H, 0.01)
    masked = torch.where(keep, delta, torch.zeros_like(delta)).double()
    obs_loses = row_errors(delta.double() - want, acc.H.double()) > row_errors(delta.double() - masked, acc.H.double())
    assert obs_loses.any() and not obs_loses.all()  # the case a fallback would change
    res = paper_linear(delta, keep, acc.H, damp=0.01, block_size=5)
    scale = float(want.abs().max())
    assert torch.allclose(res.delta.double(), want, atol=1e-4 * scale, rtol=0)
    assert torch.all(res.delta[~keep] == 0)
    assert res.error_fused == pytest.approx(output_error(delta.double() - want, acc.H.double()), rel=1e-3)
    assert res.error_masked == pytest.approx(output_error(delta.double() - masked, acc.H.double()), rel=1e-4)
    assert (res.damp, res.retries) == (0.01, 0)
    assert paper_linear(delta, keep, acc.H).damp == 0.01  # the product's default when not given


def test_refined_start_is_the_better_of_obs_and_the_mask_under_the_penalised_fit():
    """Before any CG step (refine_steps 0) the refined decorator is, per row, whichever of Thm 4.5's
    result and the plain mask fits better under H + μ·mean(diag H)·I — the penalty counted, so at some
    μ a row that OBS wins without it goes to the mask; the error figures are the plain ||E X||²/n."""
    rows, cols = 40, 16
    delta, H, _ = layer(rows, cols, 300, 3)
    keep = torch.rand(rows, cols, generator=torch.Generator().manual_seed(7)) < 0.5
    obs = compensate(delta, keep, damped_inverse(H, 0.01), 8)
    masked = torch.where(keep, delta, torch.zeros_like(delta))
    eye = torch.mean(torch.diag(H)) * torch.eye(cols)
    picks = {}
    for mu in (0.0, 0.3, 3.0, 30.0):
        Hp = H + mu * eye
        pick_obs = row_errors(delta - obs, Hp) <= row_errors(delta - masked, Hp)
        res = tailor_linear(delta, keep, H, block_size=8, refine_steps=0, comp_penalty=mu)
        want = torch.where(pick_obs.unsqueeze(1), obs, masked)
        assert torch.allclose(res.delta, want, atol=1e-6), mu
        assert res.error_masked == pytest.approx(output_error(delta - masked, H), rel=1e-5)
        assert res.error_fused == pytest.approx(output_error(delta - want, H), rel=1e-5)
        assert (res.damp, res.retries) == (0.01, 0)
        picks[mu] = pick_obs
    assert picks[0.0].any() and all((picks[0.0] != picks[mu]).any() for mu in (0.3, 3.0, 30.0))  # μ decides rows
