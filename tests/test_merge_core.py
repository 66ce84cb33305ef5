"""merge_state, the masks and the OBS helpers, pinned where the mutation run found them loose
(docs/testing.md lists the mutants each test kills)."""

import time

import pytest
import torch

from mfcli.errors import MfcliError
from mfcli.merge import methods
from mfcli.merge.fuse import merge_state
from mfcli.merge.masks import normalise, tensor_seed, top_mask, union_patch
from mfcli.merge.obs import HessianAccumulator, compensate, damped_inverse, output_error, refine, tailor_linear
from mfcli.merge.methods import tailor_options


def _pair(delta):
    pre = torch.zeros_like(delta)
    return pre, pre + delta


# ---- merge_state: routing, dtypes, the report ----

def test_a_change_in_any_sft_counts_and_only_nonzero_changes_count():
    pre = {"w": torch.zeros(4, 5)}
    first = {"w": torch.zeros(4, 5)}
    first["w"][0, :3] = torch.tensor([1.0, 2.0, 3.0])  # changed only in SFT #1
    second = {"w": torch.zeros(4, 5)}  # SFT #2 leaves it untouched
    out, report = merge_state(pre, [first, second], tailor_options(method="task-arithmetic", sparsity=1.0))
    rep = report.tensors[0]
    assert rep.changed == 3  # the entries that differ from PRE in some SFT, not those equal to 1
    assert torch.equal(out["w"], (first["w"] + second["w"]) / 2)


def test_routes_pre_sft_and_merge_and_every_tensor_is_written_in_order():
    g = torch.Generator().manual_seed(0)
    pre = {n: torch.randn(3, 4, generator=g).to(torch.bfloat16) for n in ["same", "a", "b", "c", "d"]}
    sft = {n: (w.float() + (0 if n == "same" else 0.5)).to(torch.bfloat16) for n, w in pre.items()}
    where = {"a": "pre", "b": "sft", "c": "sft", "d": "merge", "same": "merge"}
    out, report = merge_state(pre, [sft], tailor_options(method="task-arithmetic", sparsity=1.0), route=where.get)
    assert list(out) == list(pre)  # an unchanged or reverted tensor never ends the walk
    assert all(out[n].dtype == torch.bfloat16 for n in out)  # PRE's dtype, whatever the route
    assert torch.equal(out["same"], pre["same"]) and torch.equal(out["a"], pre["a"])
    assert torch.equal(out["b"], sft["b"]) and torch.equal(out["c"], sft["c"]) and torch.equal(out["d"], sft["d"])
    assert report.outside_scope == 24  # b and c, 12 changed entries each
    assert [t.name for t in report.tensors] == ["d"]


def test_without_a_route_every_changed_tensor_is_merged():
    pre, sft = _pair(torch.ones(2, 3))
    out, report = merge_state({"w": pre}, [{"w": sft}], tailor_options(method="task-arithmetic", sparsity=1.0))
    assert [t.name for t in report.tensors] == ["w"] and report.outside_scope == 0


def test_non_finite_inputs_and_outputs_are_one_clear_line():
    pre = {"w": torch.zeros(2, 2)}
    good, bad = {"w": torch.ones(2, 2)}, {"w": torch.full((2, 2), float("nan"))}
    with pytest.raises(MfcliError) as e:
        merge_state(pre, [good, bad], tailor_options(method="task-arithmetic"))
    assert str(e.value) == ("tensor 'w' holds NaN or inf (in PRE or SFT #2). "
                            "Check that checkpoint; mfcli will not merge non-finite weights.")
    huge = {"w": torch.full((2, 2), 3e38)}
    with pytest.raises(MfcliError) as e:  # finite inputs, an overflowing merge (λ·Δ past fp32's range)
        merge_state(pre, [huge], tailor_options(method="task-arithmetic", sparsity=1.0, lam=2.0))
    assert str(e.value) == "tensor 'w' became NaN/inf while merging. Raise --damp, or check the inputs."


def test_seconds_is_the_tensor_s_own_time_rounded():
    pre, sft = _pair(torch.randn(16, 16))
    t0 = time.perf_counter()
    _, report = merge_state({"w": pre}, [{"w": sft}], tailor_options(method="dare"))
    wall = time.perf_counter() - t0
    s = report.tensors[0].seconds
    assert isinstance(s, float) and 0.0 <= s <= wall and s == round(s, 4)


def test_gradients_reach_the_method_by_tensor_name():
    delta = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    grad = torch.tensor([[8.0, 1.0, 1.0, 1.0]])  # |Δ⊙g| = 8, 2, 3, 4: the smallest change wins
    pre, sft = _pair(delta)
    out, _ = merge_state({"w": pre}, [{"w": sft}], tailor_options(method="grafting", sparsity=0.25),
                         grads=[{"w": grad}])
    assert torch.equal(out["w"], torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def test_unknown_method_names_itself():
    with pytest.raises(MfcliError, match="unknown merge method 'tailr'. Did you mean 'tailor'"):
        methods.get("tailr")


# ---- masks ----

def test_normalise_minmax_and_zscore():
    x = torch.tensor([1.0, 2.0, 3.0, 5.0])
    assert torch.allclose(normalise(x, "minmax"), torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=1e-6)
    z = normalise(x, "zscore")
    assert torch.allclose(z, (x - 2.75) / x.std(), atol=1e-6)


@pytest.mark.parametrize("how", ["minmax", "zscore"])
def test_normalise_keeps_the_order_of_near_constant_scores(how):
    """A range (or spread) far below the epsilon: the order must survive (an epsilon of the wrong sign
    makes the denominator negative and reverses the ranking the mask is drawn from)."""
    x = torch.tensor([0.0, 1e-14, 3e-14, 2e-14])
    assert torch.equal(torch.argsort(normalise(x, how)), torch.argsort(x))


def test_tensor_scope_ranks_the_whole_matrix_and_row_scope_keeps_the_tensors_budget():
    score = torch.tensor([[9.0, 8.0, 7.0, 6.0], [1.0, 2.0, 3.0, 4.0]])
    changed = torch.ones_like(score, dtype=torch.bool)
    assert top_mask(score, changed, 0.25, "tensor").nonzero().tolist() == [[0, 0], [0, 1]]
    assert top_mask(score, changed, 0.5, "row").nonzero().tolist() == [[0, 0], [0, 1], [1, 2], [1, 3]]
    # 8 × 0.2 = 1.6 → 2 for the tensor: each row's 0.8 rounds up by largest remainder (per-row rounding of
    # 4 × 0.1 = 0.4 would keep nothing); at 0.1, 0.8 → 1 entry, to the first row (equal remainders)
    assert top_mask(score, changed, 0.2, "row").nonzero().tolist() == [[0, 0], [1, 3]]
    assert top_mask(score, changed, 0.1, "row").nonzero().tolist() == [[0, 0]]
    # 10 changed × 0.1 = 1 entry kept
    one = top_mask(torch.arange(10.0), torch.ones(10, dtype=torch.bool), 0.1, "tensor")
    assert one.nonzero().flatten().tolist() == [9]


def test_union_patch_averages_the_compensation():
    deltas = [torch.tensor([1.0, 1.0]), torch.tensor([3.0, 1.0])]
    masks = [torch.tensor([True, False]), torch.tensor([True, False])]
    fused = [torch.tensor([2.0, 0.0]), torch.tensor([5.0, 0.0])]  # compensation +1 and +2 on entry 0
    patch, union = union_patch(deltas, masks, fused)
    assert torch.equal(patch, torch.tensor([2.0 + 1.5, 0.0])) and union.tolist() == [True, False]


def test_tensor_seed_is_stable_across_releases():
    # DARE's masks are documented reproducible for a seed: the per-tensor seed must never change
    assert tensor_seed(0, "model.layers.0.mlp.down_proj.weight") == 8065082689008605515
    assert tensor_seed(1, "w") == 5447457767089122420
    assert all(0 <= tensor_seed(s, "x") < 2 ** 63 for s in range(50))


# ---- OBS helpers ----

def test_hessian_accumulator_takes_any_dtype_and_shape_and_single_tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, generator=g).to(torch.bfloat16)  # (batch, tokens, cols)
    acc = HessianAccumulator(3)
    acc.add(x)
    acc.add(x[0, :1])  # a single token still counts
    flat = torch.cat([x.reshape(-1, 3), x[0, :1]]).float()
    assert acc.n == 11 and acc.H.dtype == torch.float32
    assert torch.allclose(acc.H, 2 * flat.T @ flat / 11, atol=1e-5)


def test_output_error_is_squared_output_change_per_token():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(40, 6, generator=g)
    acc = HessianAccumulator(6)
    acc.add(X)
    E = torch.randn(3, 6, generator=g)
    assert output_error(E, acc.H) == pytest.approx(float(((E @ X.T) ** 2).sum() / 40), rel=1e-4)
    assert output_error(E.double(), acc.H) == pytest.approx(output_error(E, acc.H), rel=1e-5)


def test_damped_inverse_defaults_dead_columns_and_retries():
    H = torch.diag(torch.tensor([2.0, 0.0, 4.0]))  # column 1 never saw a non-zero input
    inv = damped_inverse(H)
    mean_diag = (2 + 1 + 4) / 3  # SparseGPT: a dead column's H_mm is set to 1
    assert inv.damp == 0.01 and inv.retries == 0 and inv.dead.tolist() == [False, True, False]
    assert torch.allclose(inv.diag, 1 / (torch.tensor([2.0, 1.0, 4.0]) + 0.01 * mean_diag))
    # eigenvalue −999 (mean diag 1): damping 0.01·10^k first exceeds it at k = 5
    inv = damped_inverse(torch.tensor([[1.0, 1000.0], [1000.0, 1.0]]))
    assert inv.retries == 5 and inv.damp == pytest.approx(1000.0)
    inv = damped_inverse(torch.tensor([[1.0, 1e4], [1e4, 1.0]]))  # needs the last of 7 tries
    assert inv.retries == 6
    with pytest.raises(torch.linalg.LinAlgError, match="even with damping 10000"):
        damped_inverse(torch.tensor([[1.0, 1e5], [1e5, 1.0]]))


def test_compensate_and_refine_work_in_the_factor_s_precision():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(50, 6, generator=g)
    H = 2 * X.T @ X / 50
    delta = torch.randn(4, 6, generator=g)
    keep = torch.rand(4, 6, generator=g) > 0.5
    inv32 = damped_inverse(H)
    inv64 = damped_inverse(H.double())
    inv64.upper = inv64.upper.double()
    out = compensate(delta, keep, inv64)
    assert out.dtype == torch.float64
    assert torch.allclose(out.float(), compensate(delta, keep, inv32), atol=1e-4)
    z = refine(delta, out, keep, H, 5)  # fp32 H and Δ against a fp64 start: computed in fp64
    assert z.dtype == torch.float64
    # without a gradient, CG's first residual is computed as (Δ − start)·H: the same steps as when given
    given = refine(delta, out, keep, H, 5, gradient=(delta.double() - out * keep) @ H.double())
    assert torch.allclose(z, given, atol=1e-10) and not torch.allclose(z, out)


def test_tailor_linear_defaults_and_reported_fields():
    import inspect

    params = inspect.signature(tailor_linear).parameters
    opts = tailor_options(variant="refined").method_options
    assert params["damp"].default == opts.damp and params["refine_steps"].default == opts.refine_steps
    assert params["block_size"].default == opts.block_size
    g = torch.Generator().manual_seed(3)
    X = torch.randn(200, 40, generator=g) @ torch.randn(40, 40, generator=g)  # correlated: CG needs > 11 steps
    H = 2 * X.T @ X / 200
    delta = torch.randn(5, 40, generator=g)
    keep = torch.rand(5, 40, generator=g) > 0.6
    plain = tailor_linear(delta, keep, H, damp=0.05, compensate_=False)
    reverted = torch.where(keep, torch.zeros_like(delta), delta)
    assert plain.error_masked == pytest.approx(output_error(reverted, H)) == pytest.approx(plain.error_fused)
    assert (plain.damp, plain.retries) == (0.05, 0)
    res = tailor_linear(delta, keep, H, damp=0.05)
    assert (res.damp, res.retries) == (0.05, 0)
    # called without them, the function uses the product's defaults (mutmut cannot see a signature)
    assert tailor_linear(delta, keep, H).damp == opts.damp
    by_default = tailor_linear(delta, keep, H, damp=opts.damp, comp_penalty=0.0).delta
    assert torch.equal(by_default, tailor_linear(delta, keep, H, damp=opts.damp, comp_penalty=0.0,
                                                 refine_steps=opts.refine_steps).delta)
    assert not torch.equal(by_default, tailor_linear(delta, keep, H, damp=opts.damp, comp_penalty=0.0,
                                                     refine_steps=opts.refine_steps + 1).delta)


def test_merge_state_hands_each_method_the_statistics_of_its_own_tensor(monkeypatch):
    """The driver's side of the method contract: per tensor, each SFT's Hessian and its token count, each
    SFT's Fisher, PRE's Hessian, tokens and Fisher (RegMean, Fisher merging), and one cache that
    survives between budgets; a tensor without a linear layer gets no Hessian and zero tokens."""
    from types import SimpleNamespace

    from mfcli.merge import contract

    seen = []

    def probe(t, opts, rep):  # a method that only looks
        seen.append(t)
        return torch.zeros_like(t.deltas[0])

    monkeypatch.setitem(contract.REGISTRY, "probe", contract.Method("probe", probe, None, "records its inputs"))
    pre = {"lin.weight": torch.zeros(2, 3), "norm": torch.zeros(3)}
    sfts = [{"lin.weight": torch.ones(2, 3), "norm": torch.ones(3)},
            {"lin.weight": 3 * torch.ones(2, 3), "norm": torch.zeros(3)}]
    acc = lambda scale, n: SimpleNamespace(H=scale * torch.eye(3), n=n)  # noqa: E731  (H and token count)
    hessians = [{"lin": acc(1.0, 5)}, {"lin": acc(2.0, 7)}]
    pre_hessians = {"lin": acc(4.0, 11)}
    fishers = [{"lin.weight": torch.full((2, 3), 0.5), "norm": torch.full((3,), 0.25)}, {"lin.weight": torch.ones(2, 3)}]
    pre_fisher = {"lin.weight": torch.full((2, 3), 2.0)}
    caches: dict = {}
    _, report = merge_state(pre, sfts, tailor_options(method="probe"), hessians=hessians, linear_of={"lin.weight": "lin"},
                            pre_hessians=pre_hessians, fishers=fishers, pre_fisher=pre_fisher, caches=caches)
    lin, norm = seen
    assert lin.name == "lin.weight" and [h is hh["lin"].H for h, hh in zip(lin.hessians, hessians)] == [True, True]
    assert lin.tokens == [5, 7] and lin.pre_hessian is pre_hessians["lin"].H and lin.pre_tokens == 11
    assert lin.fishers[0] is fishers[0]["lin.weight"] and lin.fishers[1] is fishers[1]["lin.weight"]
    assert lin.pre_fisher is pre_fisher["lin.weight"]
    assert norm.hessians == [None, None] and norm.tokens == [0, 0] and norm.pre_hessian is None and norm.pre_tokens == 0
    assert norm.fishers[0] is fishers[0]["norm"] and norm.fishers[1] is None and norm.pre_fisher is None
    assert caches == {"lin.weight": lin.cache, "norm": norm.cache} and lin.cache is not norm.cache
    lin.cache["kept"] = 1
    merge_state(pre, sfts, tailor_options(method="probe", sparsity=0.2), hessians=hessians,
                linear_of={"lin.weight": "lin"}, caches=caches)
    assert seen[2].cache is lin.cache and seen[2].cache == {"kept": 1}  # the next budget sees what was kept
    assert [(t.name, t.changed, t.kept, t.path) for t in report.tensors] == [("lin.weight", 6, 0, "salience"),
                                                                            ("norm", 3, 0, "salience")]
