"""RegMean and Fisher merging (issue 30): the closed forms by hand, the limits that define them, and the
multi-budget pass that must equal single-budget runs bit for bit."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from conftest import run_cli
from mfcli.merge.calibration import fisher_diagonal
from mfcli.merge.contract import TensorInputs
from mfcli.merge.methods.fisher import fisher_delta
from mfcli.merge.methods.regmean import reduce_off_diagonal, regmean_delta

torch.manual_seed(0)


def gram(rows=50, cols=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    return x.T @ x, x


# ---- RegMean ------------------------------------------------------------------------------------

def test_regmean_with_identical_grams_is_the_plain_average():
    pre, sft1, sft2 = (torch.randn(3, 4, dtype=torch.float64) for _ in range(3))
    g, _ = gram()
    merged = pre + regmean_delta([sft1 - pre, sft2 - pre], [g, g], g, alpha=0.7)
    assert torch.allclose(merged, (pre + sft1 + sft2) / 3, atol=1e-10)


def test_regmean_with_one_gram_zero_returns_the_other_model():
    pre, sft = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    g, _ = gram()
    zero = torch.zeros_like(g)
    assert torch.allclose(pre + regmean_delta([sft - pre], [g], zero, alpha=1.0), sft, atol=1e-10)
    assert torch.allclose(pre + regmean_delta([sft - pre], [zero], g, alpha=1.0), pre, atol=1e-10)


def test_regmean_equals_the_closed_form_on_a_hand_made_layer():
    # y = W x with W (1 × 2): W* = (W1 G1 + W2 G2)(G1 + G2)⁻¹, worked by hand
    w1, w2 = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    g1 = torch.tensor([[2.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    g2 = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    # W1 G1 = [2, 1], W2 G2 = [0, 6]; G1 + G2 = [[3, 1], [1, 4]], inverse [[4, −1], [−1, 3]] / 11
    want = torch.tensor([[2 * 4 - 7, -2 + 7 * 3]], dtype=torch.float64) / 11  # [2, 7] @ inverse
    got = w1 + regmean_delta([w2 - w1], [g2], g1, alpha=1.0)  # model 1 plays PRE
    assert torch.allclose(got, want, atol=1e-12)


def test_regmean_minimises_the_summed_output_error():
    """The gradient of Σ_i ‖X_i (W − W_i)ᵀ‖² vanishes at W*, and any other W does worse (α = 1)."""
    pre, sft1, sft2 = (torch.randn(5, 4, dtype=torch.float64) for _ in range(3))
    (g0, x0), (g1, x1), (g2, x2) = gram(seed=1), gram(seed=2), gram(seed=3)
    w = pre + regmean_delta([sft1 - pre, sft2 - pre], [g1, g2], g0, alpha=1.0)
    grad = sum((w - wi) @ gi for wi, gi in ((pre, g0), (sft1, g1), (sft2, g2)))
    assert grad.abs().max() < 1e-9

    def loss(v):
        return sum(((x @ (v - wi).T) ** 2).sum() for x, wi in ((x0, pre), (x1, sft1), (x2, sft2)))
    assert all(loss(w) < loss(w + 1e-3 * torch.randn_like(w)) for _ in range(5))
    assert loss(w) < loss((pre + sft1 + sft2) / 3)  # better than the plain average on these inputs


def test_regmean_columns_no_model_fed_and_a_singular_system():
    """An input column with zero Gram diagonal in every model keeps the plain average of PRE and the
    SFTs (the paper's rule for what has no inputs); a singular Σ G̃ on the fed columns is solved by least
    squares, still a stationary point: W*·ΣG̃ = Σ W_i·G̃_i."""
    g = torch.Generator().manual_seed(5)
    x1, x2, x0 = torch.randn(30, 4, generator=g), torch.randn(30, 4, generator=g), torch.randn(30, 4, generator=g)
    for x in (x1, x2, x0):
        x[:, 3] = 0  # input 3 is never fed
    grams = [x1.T @ x1 * 0.01, x2.T @ x2 * 0.01]  # small entries: "fed" means a non-zero diagonal, not > 1
    deltas = [torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)]
    got = regmean_delta(deltas, grams, x0.T @ x0 * 0.01, alpha=1.0)
    assert torch.allclose(got[:, 3], (deltas[0][:, 3] + deltas[1][:, 3]).double() / 3)
    total = (grams[0] + grams[1] + x0.T @ x0 * 0.01).double()[:3, :3]
    rhs = sum(d.double()[:, :3] @ gr.double()[:3, :3] for d, gr in zip(deltas, grams))
    assert torch.allclose(got[:, :3] @ total, rhs, atol=1e-9)
    # rank one everywhere (each model saw one direction): singular, yet the normal equations hold
    v = torch.tensor([1.0, 2.0, -1.0, 0.5])
    same = [torch.outer(v, v), 2 * torch.outer(v, v)]
    got = regmean_delta(deltas, same, torch.outer(v, v), alpha=1.0)
    rhs = sum(d.double() @ gr.double() for d, gr in zip(deltas, same))
    assert torch.isfinite(got).all() and torch.allclose(got @ (4 * torch.outer(v, v)).double(), rhs, atol=1e-8)


def test_regmean_alpha_shrinks_only_the_off_diagonal():
    g, _ = gram()
    r = reduce_off_diagonal(g, 0.25)
    assert torch.allclose(torch.diagonal(r), torch.diagonal(g))
    off = ~torch.eye(4, dtype=torch.bool)
    assert torch.allclose(r[off], 0.25 * g[off])
    # α = 0: each input column weighs each model by its energy alone, entry by entry
    pre, sft = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    g2, _ = gram(seed=5)
    d0, d1 = torch.diagonal(g), torch.diagonal(g2)
    want = (pre * d0 + sft * d1) / (d0 + d1)
    assert torch.allclose(pre + regmean_delta([sft - pre], [g2], g, alpha=0.0), want, atol=1e-10)


# ---- Fisher merging -------------------------------------------------------------------------------

def test_fisher_merge_limits():
    pre, sft = torch.randn(3, 4), torch.randn(3, 4)
    f = torch.rand(3, 4) + 0.1
    assert torch.allclose(pre + fisher_delta([sft - pre], [f], f), (pre + sft) / 2, atol=1e-6)  # equal Fishers
    zero = torch.zeros_like(f)
    assert torch.allclose(pre + fisher_delta([sft - pre], [f], zero), sft, atol=1e-6)  # PRE's Fisher zero
    assert torch.allclose(pre + fisher_delta([sft - pre], [zero], f), pre, atol=1e-6)  # the SFT's zero
    assert torch.allclose(pre + fisher_delta([sft - pre], [zero], zero), (pre + sft) / 2, atol=1e-6)  # the floor
    w = pre + fisher_delta([sft - pre], [3 * f], f)
    assert torch.allclose(w, (pre * f + sft * 3 * f) / (4 * f), atol=1e-6)
    # through the registry: a missing Fisher (a tensor the pass did not reach) counts as zero weight,
    # every changed entry moves, fisher-budget keeps the top ρ by F·Δ²
    from mfcli.merge.contract import TensorReport
    from mfcli.merge.contract import DeclaredOptions
    from mfcli.merge.methods import get, tailor_options

    t = TensorInputs("w", [sft - pre, 2 * (sft - pre)], fishers=[f, None], pre_fisher=None)
    rep = TensorReport("w", 12, 0, "")
    got = get("fisher").patch(t, DeclaredOptions(tailor_options(method="fisher", pre_data=("x",)), get("fisher")), rep)
    assert torch.allclose(got, sft - pre, atol=1e-6) and (rep.path, rep.kept) == ("fisher", 12)
    rep = TensorReport("w", 12, 0, "")
    got = get("fisher-budget").patch(TensorInputs("w", [sft - pre], fishers=[f], pre_fisher=f), DeclaredOptions(
        tailor_options(method="fisher-budget", sparsity=0.25, pre_data=("x",)), get("fisher-budget")), rep)
    top = (f * (sft - pre) ** 2).flatten().topk(3).indices
    assert rep.kept == 3 and set(got.flatten().nonzero().flatten().tolist()) == set(top.tolist())


class Bigram(torch.nn.Module):
    """logits[t] = W[input_ids[t]]: log p(b | a) = W[a, b] − logsumexp(W[a])."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())

    def forward(self, input_ids, **kw):
        return type("Out", (), {"logits": self.w[input_ids]})()


def test_fisher_of_a_hand_made_model_is_the_mean_of_squared_per_example_gradients():
    w = torch.tensor([[0.0, 1.0, -1.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    model = Bigram(w)
    # two examples "0 → 1" and "0 → 2": the answer is the second token
    batches = [{"input_ids": torch.tensor([[0, b]]), "labels": torch.tensor([[-100, b]])} for b in (1, 2)]
    got = fisher_diagonal(model, batches, {"w"})["w"]
    p = torch.softmax(w[0], 0)
    g1, g2 = torch.nn.functional.one_hot(torch.tensor(1), 3) - p, torch.nn.functional.one_hot(torch.tensor(2), 3) - p
    want = torch.zeros_like(w)
    want[0] = (g1 ** 2 + g2 ** 2) / 2  # the mean of squares; the square of the mean would differ
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got[0], ((g1 + g2) / 2) ** 2, atol=1e-3)
    # one example: its squared gradient itself; only answer tokens count (a -100 inside the sequence is
    # skipped: "0 → 1 → 2" with only the last token an answer is the example "1 → 2")
    one = fisher_diagonal(Bigram(w), [{"input_ids": torch.tensor([[0, 1, 2]]),
                                       "labels": torch.tensor([[-100, -100, 2]])}], {"w"})["w"]
    g = torch.nn.functional.one_hot(torch.tensor(2), 3) - torch.softmax(w[1], 0)
    want = torch.zeros_like(w)
    want[1] = g ** 2
    assert torch.allclose(one, want, atol=1e-6)
    assert model.w.grad is None  # gradients cleared after the pass
    # two answer tokens: log p is their sum ("0 → 1", "1 → 2"), not their mean
    two = fisher_diagonal(Bigram(w), [{"input_ids": torch.tensor([[0, 1, 2]]),
                                       "labels": torch.tensor([[-100, 1, 2]])}], {"w"})["w"]
    want[0] = (torch.nn.functional.one_hot(torch.tensor(1), 3) - torch.softmax(w[0], 0)) ** 2
    assert torch.allclose(two, want, atol=1e-6)
    with pytest.raises(ValueError, match="one example per batch"):
        fisher_diagonal(Bigram(w), [{"input_ids": torch.tensor([[0, 1], [0, 2]]),
                                     "labels": torch.tensor([[-100, 1], [-100, 2]])}], {"w"})


# ---- on the built-in model: both methods, the multi-budget pass, bad input --------------------------

@pytest.fixture(scope="module")
def runs(pico, tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.train.loop import run_finetune
    from mfcli.train.options import TrainOptions

    root = tmp_path_factory.mktemp("data-aware")
    prepare("counting", root / "counting", PrepareOptions(limit=40))
    prepare("shapes", root / "shapes", PrepareOptions(limit=40))
    run_finetune("tiny", [str(root / "counting")], root / "full", TrainOptions(method="full", lr=1e-3, max_steps=4,
                                                                              batch_size=4), progress=False)
    return root


def tensors(d):
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            out.update({k: h.get_tensor(k) for k in h.keys()})
    return out


@pytest.mark.parametrize("method", ["tailor", "fisher-budget"])
def test_every_budget_of_one_pass_equals_its_own_run_bit_for_bit(runs, tmp_path, method):
    common = ["tiny", runs / "full" / "step-4", "--method", method, "--nsamples", "8",
              *(["--pre-data", runs / "shapes"] if method == "fisher-budget" else [])]
    r = run_cli("tailor", *common, "--sparsity", "0.05,0.1,0.2", "--out", tmp_path / "sweep")
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "sweep" / "budgets.json").read_text())
    assert list(index["budgets"]) == ["sparsity-0.05", "sparsity-0.1", "sparsity-0.2"]
    kept = []
    for rho in ("0.05", "0.1", "0.2"):
        r = run_cli("tailor", *common, "--sparsity", rho, "--out", tmp_path / rho)
        assert r.returncode == 0, r.stderr
        a, b = tensors(tmp_path / "sweep" / f"sparsity-{rho}"), tensors(tmp_path / rho)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), rho
        m = json.loads((tmp_path / rho / "mfcli.json").read_text())
        s = json.loads((tmp_path / "sweep" / f"sparsity-{rho}" / "mfcli.json").read_text())
        assert m["options"] == s["options"] and m["data"] == s["data"] and m["parents"] == s["parents"]
        assert [(t["name"], t["kept"]) for t in m["metrics"]["tensors"]] == \
            [(t["name"], t["kept"]) for t in s["metrics"]["tensors"]]
        kept.append(m["metrics"]["kept_fraction"])
    assert kept[0] < kept[1] < kept[2]  # the budgets differ: the sweep did not write one checkpoint thrice


def test_regmean_and_fisher_record_the_pre_side_data(runs, tmp_path):
    for method in ("regmean", "fisher"):
        r = run_cli("tailor", "tiny", runs / "full" / "step-4", "--method", method, "--nsamples", "8",
                    "--pre-data", runs / "shapes", "--out", tmp_path / method)
        assert r.returncode == 0, r.stderr
        m = json.loads((tmp_path / method / "mfcli.json").read_text())
        paths = [d["path"] for d in m["data"]]
        assert any(p.endswith("shapes/train.jsonl") for p in paths) and any(p.endswith("counting/train.jsonl")
                                                                              for p in paths)
        assert m["options"]["pre_data"] == [str(runs / "shapes")]


@pytest.mark.parametrize("args, code, says", [
    (["--method", "regmean"], 2, "no --pre-data"),  # usage errors exit 2, as click's own
    (["--method", "fisher"], 2, "no --pre-data"),
    (["--method", "regmean", "--sparsity", "0.05,0.1", "--pre-data", "x"], 2, "has no budget"),
    (["--sparsity", "0.1,0.1"], 2, "twice"),
    (["--sparsity", "0.1,1.5"], 2, "(0, 1)"),
    (["--sparsity", "0.1,x"], 2, "comma-separated"),
    (["--method", "regmean", "--regmean-alpha", "2", "--pre-data", "x"], 2, "[0, 1]"),
])
def test_bad_input_writes_nothing(runs, tmp_path, args, code, says):
    out = tmp_path / "out"
    r = run_cli("tailor", "tiny", runs / "full" / "step-4", "--nsamples", "8", *args, "--out", out)
    assert r.returncode == code and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


# ---- the trade-off front in the report -------------------------------------------------------------

def test_pareto_by_hand():
    from mfcli.report.stats import pareto

    pts = {"a": (90, 10), "b": (80, 30), "c": (70, 20), "d": (90, 5), "e": (60, 30)}
    # c is beaten by b on both; d by a (same kept, less gain); e by b (same gain, less kept)
    assert pareto(pts) == {"a", "b"}
    # an equal point beats neither: two seeds' identical results are both on the front
    assert pareto({"a": (90, 10), "a2": (90, 10), "c": (70, 5)}) == {"a", "a2"}


def test_report_draws_each_method_over_its_budgets_and_marks_the_front(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.render import as_json, tables, write
    from mfcli.report.table import ModelInfo, Results, Row

    res = Results(roles={"digits": "pretrained", "counting": "target"})
    scores = {"tiny": (90, 10), "tailor@0.05": (88, 40), "tailor@0.1": (85, 55), "dare@0.05": (89, 30),
              "dare@0.1": (80, 50), "regmean": (86, 45)}
    for m, (pre, tgt) in scores.items():
        method, _, rho = m.partition("@")
        res.models[m] = ModelInfo(m, method="pre-trained" if m == "tiny" else method,
                                  budget=float(rho) if rho else None)
        res.rows += [Row(m, "digits", pre), Row(m, "counting", tgt)]
    for r in res.rows:
        r.role = res.roles[r.task]
    rep = build(res, base="tiny")
    front = {p.model: p for p in rep.front}
    assert set(front) == set(scores) - {"tiny"}
    assert front["tailor@0.1"].kept == pytest.approx(100 * 85 / 90) and front["tailor@0.1"].gain == 45
    # dare@0.1 (88.9 %, +40) is beaten by tailor@0.1 (94.4 %, +45); regmean (95.6 %, +35) by none
    assert {m for m, p in front.items() if p.pareto} == {"tailor@0.05", "tailor@0.1", "dare@0.05", "regmean"}
    assert [p.budget for p in rep.front if p.method == "tailor"] == [0.05, 0.1]  # a curve in budget order
    table = next(v for k, v in tables(rep).items() if k.startswith("Trade-off front"))
    assert sum(row[-1] == "✓" for row in table[1]) == 4
    assert len(as_json(rep)["front"]) == 5
    write(rep, str(tmp_path / "r.md"))
    assert (tmp_path / "r_files" / "front.png").is_file() and "front.png" in (tmp_path / "r.md").read_text()


# ---- RegMean as its references (issue 38) ----------------------------------------------------------

def _acc(x):
    from mfcli.merge.obs import HessianAccumulator

    acc = HessianAccumulator(x.shape[1])
    acc.add(x)
    return acc


def _regmean(pre, sfts, accs, pre_acc, **kw):
    from mfcli.merge.fuse import merge_state
    from mfcli.merge.methods import tailor_options

    fused, rep = merge_state({"lin.weight": pre}, [{"lin.weight": s} for s in sfts],
                             tailor_options(method="regmean", pre_data=("x",), **kw),
                             hessians=[{"lin": a} for a in accs], linear_of={"lin.weight": "lin"},
                             pre_hessians={"lin": pre_acc})
    return fused["lin.weight"], rep


def test_regmean_weighs_every_model_equally_whatever_its_token_count():
    """The references average each model's XᵀX over its tokens: feeding one model's inputs three times
    (3× the tokens, the same mean) leaves the merge as it was; --regmean-gram sum moves it."""
    g = torch.Generator().manual_seed(3)
    pre, sft = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    x_pre, x_sft = torch.randn(40, 5, generator=g), torch.randn(40, 5, generator=g) * 2
    once, rep = _regmean(pre, [sft], [_acc(x_sft)], _acc(x_pre))
    thrice, _ = _regmean(pre, [sft], [_acc(torch.cat([x_sft] * 3))], _acc(x_pre))
    assert rep.tensors[0].path == "hessian"
    assert torch.allclose(once, thrice, atol=1e-5)
    want = pre + regmean_delta([sft - pre], [x_sft.T @ x_sft / 40], x_pre.T @ x_pre / 40, alpha=0.6)
    assert torch.allclose(once, want.float(), atol=1e-4)  # per-model mean Grams, α 0.6
    s1, _ = _regmean(pre, [sft], [_acc(x_sft)], _acc(x_pre), regmean_gram="sum")
    s3, _ = _regmean(pre, [sft], [_acc(torch.cat([x_sft] * 3))], _acc(x_pre), regmean_gram="sum")
    assert (s1 - s3).abs().max() > 1e-3  # Eq. 1 as written: the model with more tokens weighs more


def test_a_fine_tune_that_left_a_linear_unchanged_takes_part_with_delta_zero():
    g = torch.Generator().manual_seed(4)
    pre, sft1 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    x0, x1, x2 = (torch.randn(30, 5, generator=g) for _ in range(3))
    got, rep = _regmean(pre, [sft1, pre.clone()], [_acc(x1), _acc(x2)], _acc(x0), regmean_alpha=1.0)
    want = pre + regmean_delta([sft1 - pre, torch.zeros(6, 5)], [x1.T @ x1 / 30, x2.T @ x2 / 30], x0.T @ x0 / 30,
                               alpha=1.0)
    assert rep.tensors[0].path == "hessian"
    assert torch.allclose(got, want.float(), atol=1e-4)
    assert not torch.allclose(got, (2 * pre + sft1) / 3, atol=1e-3)  # not the plain mean of the three


def test_the_driver_captures_the_inputs_of_a_fine_tune_that_left_a_linear_unchanged(runs, tmp_path):
    """Two SFTs: a full fine-tune and one that changed only the projector. Every decoder linear must
    still be merged in closed form (its `hessian` path), with the second SFT's inputs and Δ = 0."""
    from mfcli.train.loop import run_finetune
    from mfcli.train.options import TrainOptions

    proj = run_finetune("tiny", [str(runs / "counting")], tmp_path / "proj",
                        TrainOptions(method="linear", lr=1e-3, max_steps=2, batch_size=4), progress=False)
    r = run_cli("tailor", "tiny", runs / "full" / "step-4", proj / "step-2", "--method", "regmean",
                "--nsamples", "8", "--pre-data", runs / "shapes", "--out", tmp_path / "merged")
    assert r.returncode == 0, r.stderr
    reports = json.loads((tmp_path / "merged" / "mfcli.json").read_text())["metrics"]["tensors"]
    decoder = [t for t in reports if ".layers." in t["name"] and "proj.weight" in t["name"]]
    assert decoder and all(t["path"] == "hessian" for t in decoder), [(t["name"], t["path"]) for t in decoder]


# ---- Fisher merging as its references (issue 38) ---------------------------------------------------

def test_fishers_differing_only_by_a_scale_merge_as_the_references_do():
    """PRE's Fisher F and the SFT's 100·F: the references normalise each by its norm, so the two weigh
    alike and the merge is the plain mean; the raw Eq. 2 lets the larger one win everywhere."""
    from mfcli.merge.calibration import normalise_fishers

    g = torch.Generator().manual_seed(7)
    pre, sft = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    f = torch.rand(4, 3, generator=g) + 0.1
    extra = torch.rand(5, generator=g)  # another parameter of the same models: the norm is over the model
    f_pre, f_sft = normalise_fishers({"w": f, "b": extra}), normalise_fishers({"w": 100 * f, "b": 100 * extra})
    merged = pre + fisher_delta([sft - pre], [f_sft["w"]], f_pre["w"])
    assert torch.allclose(merged, (pre + sft) / 2, atol=1e-5)
    raw = pre + fisher_delta([sft - pre], [100 * f], f)
    assert torch.allclose(raw, (pre + 100 * sft) / 101, atol=1e-5)
    norm = torch.sqrt((f ** 2).sum() + (extra ** 2).sum())
    assert torch.allclose(f_pre["w"], f / norm, atol=1e-6)


def test_the_references_floor_raises_every_fisher():
    pre, sft = torch.zeros(3), torch.ones(3)
    zero = torch.zeros(3)
    assert torch.allclose(pre + fisher_delta([sft - pre], [zero], zero, floor=1e-6), torch.full((3,), 0.5))
    small = torch.tensor([0.0, 1e-7, 3e-6])
    got = pre + fisher_delta([sft - pre], [small], torch.full((3,), 1e-6), floor=1e-6)
    assert torch.allclose(got, torch.tensor([0.5, 0.5, 0.75]), atol=1e-6)
    # without a floor, a zero Fisher is a zero weight: PRE's 1e-6 wins where the SFT's is 0
    assert torch.allclose(pre + fisher_delta([sft - pre], [small], torch.full((3,), 1e-6)),
                          torch.tensor([0.0, 1 / 11, 0.75]), atol=1e-6)


def test_the_sampled_fisher_estimates_the_expectation_under_the_model():
    """One answer position after token 0, p = softmax(W[0]): the true Fisher of row 0 is
    Σ_y p(y)(e_y − p)², whatever the data's answer; the empirical one is (e_answer − p)²."""
    w = torch.tensor([[0.0, 1.0, -1.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    batches = [{"input_ids": torch.tensor([[0, 1]]), "labels": torch.tensor([[-100, 1]])}] * 3000
    got = fisher_diagonal(Bigram(w), batches, {"w"}, estimate="sampled", seed=0)["w"]
    p = torch.softmax(w[0], 0)
    eye = torch.eye(3)
    want = sum(p[y] * (eye[y] - p) ** 2 for y in range(3))
    assert torch.allclose(got[0], want, atol=0.02)  # Monte Carlo: about 0.004 per entry at 3,000 draws
    empirical = fisher_diagonal(Bigram(w), batches[:1], {"w"})["w"]
    assert torch.allclose(empirical[0], (eye[1] - p) ** 2, atol=1e-6)
    assert not torch.allclose(empirical[0], want, atol=0.02)
    again = fisher_diagonal(Bigram(w), batches[:50], {"w"}, estimate="sampled", seed=0)["w"]
    assert torch.equal(again, fisher_diagonal(Bigram(w), batches[:50], {"w"}, estimate="sampled", seed=0)["w"])


def test_the_streaming_driver_trims_ties_over_the_whole_model(runs, tmp_path):
    """--ties-trim global through `mfcli tailor`: the streamed merge keeps round(ρ·changed) of the whole
    task vector (not of each tensor), and equals the in-memory merge of the whole state dict."""
    from mfcli.merge.fuse import merge_state
    from mfcli.merge.methods import tailor_options

    sft = runs / "full" / "step-4"
    r = run_cli("tailor", "tiny", sft, "--method", "ties", "--ties-trim", "global", "--sparsity", "0.1",
                "--out", tmp_path / "global")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "global" / "mfcli.json").read_text())["metrics"]
    assert abs(m["kept_params"] - round(0.1 * m["changed_params"])) <= 2  # ties at the cut are kept
    fractions = [t["kept"] / t["changed"] for t in m["tensors"] if t["changed"] > 100]
    assert max(fractions) - min(fractions) > 0.05  # the tensors' shares differ: one cut for the vector
    from mfcli.models.load import resolve_model_path

    pre, post = tensors(Path(resolve_model_path("tiny"))), tensors(sft)
    fused, _ = merge_state(pre, [post], tailor_options(method="ties", sparsity=0.1, ties_trim="global"))
    streamed = tensors(tmp_path / "global")
    assert all(torch.equal(streamed[k], fused[k]) for k in fused)
