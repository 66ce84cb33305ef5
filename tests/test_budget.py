"""Equal budgets (issue 26): every budgeted merge method keeps exactly round(ρ · changed entries) of a
tensor's fine-tuned changes — of the *changed* entries, not of all of them (peft's `prune(density)`
counts every entry, so on a partly changed tensor TIES and task arithmetic kept three times more)."""

import pytest
import torch

from mfcli.merge import methods
from mfcli.merge.fuse import merge_state
from mfcli.merge.obs import HessianAccumulator
from mfcli.merge.methods import tailor_options

BUDGETED = [n for n, m in methods.REGISTRY.items() if m.budgeted]


def partly_changed(seed=0, changed=0.3, rows=20, cols=30):
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn(rows, cols, generator=g)
    where = torch.rand(rows, cols, generator=g) < changed
    sft = pre + torch.where(where, torch.randn(rows, cols, generator=g) * 0.1, torch.zeros(rows, cols))
    acc = HessianAccumulator(cols)
    acc.add(torch.randn(300, cols, generator=g))
    grad = torch.randn(rows, cols, generator=g)
    return pre, sft, acc, grad, int(where.sum())


def test_every_merge_method_declares_whether_it_is_budgeted():
    assert set(BUDGETED) == {"tailor", "dare", "grafting", "task-arithmetic", "ties", "fisher-budget", "nps"}


@pytest.mark.parametrize("method", BUDGETED)
@pytest.mark.parametrize("variant", ["paper", "refined"])
def test_budgeted_methods_keep_exactly_rho_of_the_changed_entries(method, variant):
    if variant == "refined" and method != "tailor":
        pytest.skip("the variant is tailor's")
    pre, sft, acc, grad, changed = partly_changed()
    assert 0.25 < changed / pre.numel() < 0.35  # about 30 % of the entries changed
    fused, report = merge_state({"lin.weight": pre}, [{"lin.weight": sft}],
                                tailor_options(method=method, sparsity=0.1,
                                               **({"variant": variant} if method == "tailor" else {})),
                                hessians=[{"lin": acc}], grads=[{"lin.weight": grad}], linear_of={"lin.weight": "lin"},
                                fishers=[{"lin.weight": grad ** 2}], pre_fisher={"lin.weight": grad.abs()})
    want = round(0.1 * changed)
    assert report.tensors[0].changed == changed and report.tensors[0].kept == want
    assert int((fused["lin.weight"] != pre).sum()) <= want  # the patch touches nothing else


@pytest.mark.parametrize("method", ["ties", "task-arithmetic"])
def test_ties_and_task_arithmetic_trim_the_largest_changes(method):
    pre, sft, _, _, changed = partly_changed(seed=1)
    fused, _ = merge_state({"w": pre}, [{"w": sft}], tailor_options(method=method, sparsity=0.1, lam=1.0))
    d = sft - pre
    kept = fused["w"] != pre
    assert torch.allclose(fused["w"][kept], sft[kept])  # kept entries carry the fine-tuned value (λ = 1)
    assert d[kept].abs().min() >= d[~kept].abs().max()  # and they are the largest changes


def test_dare_keeps_exactly_rho_at_random_and_rescales_by_one_over_rho():
    pre, sft, _, _, changed = partly_changed(seed=2)
    fused, rep = merge_state({"w": pre}, [{"w": sft}], tailor_options(method="dare", sparsity=0.1, seed=3))
    d = sft - pre
    kept = fused["w"] != pre
    assert rep.tensors[0].kept == round(0.1 * changed) == int(kept.sum())
    assert torch.allclose((fused["w"] - pre)[kept], d[kept] / 0.1, rtol=1e-4)
    assert not (d[kept].abs().min() >= d[(d != 0) & ~kept].abs().max())  # random, not the largest


@pytest.mark.parametrize("method", BUDGETED)
def test_fusion_keeps_rho_of_each_sft_and_reports_the_union(method):
    pre, sft_a, acc, grad, ca = partly_changed(seed=4)
    sft_b = pre + (sft_a - pre).roll(7, 1)  # a second fine-tune whose changes sit mostly elsewhere
    fused, rep = merge_state({"lin.weight": pre}, [{"lin.weight": sft_a}, {"lin.weight": sft_b}],
                             tailor_options(method=method, sparsity=0.05), hessians=[{"lin": acc}, {"lin": acc}],
                             grads=[{"lin.weight": grad}, {"lin.weight": grad}], linear_of={"lin.weight": "lin"})
    per_sft = round(0.05 * ca)
    assert per_sft < rep.tensors[0].kept <= 2 * per_sft  # the union of two 5 % patches


# ---- --mask-scope row keeps the tensor's budget exactly (issue 38) --------------------------------

def test_row_quota_is_exact_and_spreads_by_largest_remainder():
    from mfcli.merge.masks import row_quota

    # 74 changed entries over 37 rows of 2: per-row rounding of 0.2 keeps none; the tensor's budget is 7
    per_row = torch.full((37,), 2)
    assert int(row_quota(per_row, 0.1).sum()) == 7 == round(0.1 * 74)
    assert row_quota(torch.tensor([10, 5, 5]), 0.1).tolist() == [1, 1, 0]  # 1 + (0.5, 0.5: the lower row)
    assert row_quota(torch.tensor([0, 30, 9]), 0.1).tolist() == [0, 3, 1]  # floors 0, 3, 0; the 0.9 remainder


@pytest.mark.parametrize("method", ["tailor", "grafting", "fisher-budget"])
def test_row_scope_keeps_round_rho_changed_per_tensor(method):
    """At ρ 0.1 with two changed entries per row, rounding each row keeps nothing; the row scope must
    keep exactly round(ρ·changed) of the tensor — at most a row's share plus one in any row."""
    g = torch.Generator().manual_seed(5)
    pre = torch.randn(37, 16, generator=g)
    d = torch.zeros(37, 16)
    for r in range(37):
        d[r, torch.randperm(16, generator=g)[:2]] = torch.randn(2, generator=g) * 0.1
    sft = pre + d
    acc = HessianAccumulator(16)
    acc.add(torch.randn(200, 16, generator=g))
    fused, report = merge_state({"lin.weight": pre}, [{"lin.weight": sft}],
                                tailor_options(method=method, sparsity=0.1, mask_scope="row"),
                                hessians=[{"lin": acc}], grads=[{"lin.weight": torch.randn(37, 16, generator=g)}],
                                linear_of={"lin.weight": "lin"}, fishers=[{"lin.weight": torch.rand(37, 16, generator=g)}],
                                pre_fisher={"lin.weight": torch.rand(37, 16, generator=g)})
    assert report.tensors[0].changed == 74 and report.tensors[0].kept == 7
    assert int(((fused["lin.weight"] != pre) & (d == 0)).sum()) == 0 or method == "tailor"  # OBS moves others


# ---- TIES and task arithmetic as their references (issue 38) --------------------------------------

def test_ties_global_trim_keeps_the_top_k_of_the_whole_task_vector():
    """Two tensors of 8 changed entries each, one with large changes: at ρ 0.25 the paper keeps the 4
    largest of all 16 — all in the loud tensor; the per-tensor trim keeps 2 in each."""
    pre = {"loud": torch.zeros(8), "quiet": torch.zeros(8)}
    loud = torch.tensor([5.0, -4.0, 3.0, 2.5, -2.0, 1.5, 1.2, 1.1])
    quiet = torch.tensor([0.5, -0.4, 0.3, 0.2, -0.1, 0.05, 0.04, 0.03])
    sft = {"loud": loud, "quiet": quiet}
    fused, rep = merge_state(pre, [sft], tailor_options(method="ties", sparsity=0.25, ties_trim="global"))
    assert torch.equal(fused["loud"], torch.tensor([5.0, -4.0, 3.0, 2.5, 0, 0, 0, 0]))
    assert torch.equal(fused["quiet"], torch.zeros(8))
    assert sum(t.kept for t in rep.tensors) == 4
    per_tensor, _ = merge_state(pre, [sft], tailor_options(method="ties", sparsity=0.25))
    assert int((per_tensor["loud"] != 0).sum()) == 2 and int((per_tensor["quiet"] != 0).sum()) == 2
    # two task vectors: each is trimmed at its own cut, then signs are elected and agreeing entries averaged
    other = {"loud": -0.1 * loud, "quiet": torch.tensor([0, 0, 0, 0, 0, 0, 9.0, 0])}
    fused, _ = merge_state(pre, [sft, other], tailor_options(method="ties", sparsity=0.25, ties_trim="global"))
    assert fused["quiet"][6] == 9.0 and torch.equal(fused["loud"][:4], loud[:4])


def test_the_whole_vector_cut_is_the_exact_kth_largest_magnitude():
    from mfcli.merge.global_trim import kth_largest

    x = torch.randn(50_000, generator=torch.Generator().manual_seed(0)) * torch.rand(50_000) * 1e-3
    for rho in (0.001, 0.1, 0.9):
        k = round(x.numel() * rho)
        want = float(x.abs().topk(k).values.min())
        assert kth_largest(lambda: [x[:20_000], x[20_000:]], [rho]) == [want]
    assert kth_largest(lambda: [x], [0.0]) == [float("inf")]


def test_task_arithmetic_sums_as_the_paper_or_averages_as_mfcli():
    g = torch.Generator().manual_seed(9)
    pre, d1, d2 = (torch.randn(5, 4, generator=g) for _ in range(3))
    sfts = [{"w": pre + d1}, {"w": pre + d2}]
    summed, _ = merge_state({"w": pre}, sfts, tailor_options(method="task-arithmetic", sparsity=1.0, lam=0.3,
                                                              ta_combine="sum"))
    mean, _ = merge_state({"w": pre}, sfts, tailor_options(method="task-arithmetic", sparsity=1.0, lam=0.3))
    assert torch.allclose(summed["w"], pre + 0.3 * (d1 + d2), atol=1e-6)
    assert torch.allclose(mean["w"], pre + 0.3 * (d1 + d2) / 2, atol=1e-6)
