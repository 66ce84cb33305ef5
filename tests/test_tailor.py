import json

import pytest
import torch

from conftest import run_cli
from mfcli.errors import MfcliError, UsageError
from mfcli.merge.obs import HessianAccumulator
from mfcli.merge.fuse import merge_state
from mfcli.merge.masks import top_mask
from mfcli.merge.methods import tailor_options


def toy(n_sft=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    pre = {"lin.weight": torch.randn(8, 16, generator=g), "norm.weight": torch.ones(16), "frozen": torch.zeros(3)}
    sfts = []
    for i in range(n_sft):
        s = {k: v.clone() for k, v in pre.items()}
        s["lin.weight"] += torch.randn(8, 16, generator=g) * 0.1
        s["norm.weight"] += torch.randn(16, generator=g) * 0.01
        sfts.append(s)
    acc = HessianAccumulator(16)
    acc.add(torch.randn(200, 16, generator=g))
    return pre, sfts, [{"lin": acc} for _ in range(n_sft)]


@pytest.mark.parametrize("method", ["tailor", "dare", "task-arithmetic", "ties", "grafting"])
def test_same_kept_budget_and_coverage(method):
    pre, sfts, hs = toy()
    fused, report = merge_state(pre, sfts, tailor_options(method=method, sparsity=0.25), hessians=hs,
                                linear_of={"lin.weight": "lin"})
    assert fused.keys() == pre.keys() and all(fused[k].shape == pre[k].shape for k in pre)
    assert torch.equal(fused["frozen"], pre["frozen"])  # unchanged tensors stay PRE
    lin = next(t for t in report.tensors if t.name == "lin.weight")
    tol = 12 if method == "dare" else 1  # DARE keeps each change with probability ρ: the budget in expectation
    assert lin.changed == 128 and abs(lin.kept - 32) <= tol  # 25 % of the changes
    assert int((fused["lin.weight"] != pre["lin.weight"]).sum()) <= 32 + tol
    if method == "tailor":
        assert lin.path == "hessian" and lin.error_fused <= lin.error_masked
        assert next(t for t in report.tensors if t.name == "norm.weight").path == "salience"


def test_no_compensate_is_plain_masking_of_the_top_scores():
    pre, sfts, hs = toy()
    opts = tailor_options(sparsity=0.25, compensate=False, omega=1.0)  # salience only
    fused, _ = merge_state(pre, sfts, opts, hessians=hs, linear_of={"lin.weight": "lin"})
    d = sfts[0]["lin.weight"] - pre["lin.weight"]
    m = top_mask(d.abs(), d != 0, 0.25, "layer")
    assert torch.allclose(fused["lin.weight"], pre["lin.weight"] + d * m)


def test_multi_task_union_and_mean():
    pre, sfts, hs = toy(n_sft=2)
    fused, report = merge_state(pre, sfts, tailor_options(sparsity=0.25, compensate=False, omega=1.0), hessians=hs,
                                linear_of={"lin.weight": "lin"})
    d = [s["lin.weight"] - pre["lin.weight"] for s in sfts]
    union = top_mask(d[0].abs(), d[0] != 0, 0.25, "layer") | top_mask(d[1].abs(), d[1] != 0, 0.25, "layer")
    assert torch.allclose(fused["lin.weight"], pre["lin.weight"] + union * (d[0] + d[1]) / 2, atol=1e-6)


def test_row_scope_keeps_rho_per_row():
    score = torch.rand(4, 10)
    m = top_mask(score, torch.ones(4, 10, dtype=torch.bool), 0.3, "row")
    assert m.sum(1).tolist() == [3, 3, 3, 3]


def test_nan_is_named():
    pre, sfts, hs = toy()
    sfts[0]["norm.weight"][0] = float("nan")
    with pytest.raises(MfcliError, match="'norm.weight' holds NaN"):
        merge_state(pre, sfts, tailor_options(), hessians=hs, linear_of={"lin.weight": "lin"})


def test_options():
    for bad in (0.0, 1.5):
        with pytest.raises(UsageError, match="fraction of changes kept"):
            tailor_options(sparsity=bad)
    with pytest.raises(MfcliError, match="Did you mean 'ties'"):
        tailor_options(method="tie")


@pytest.fixture(scope="module")
def sft(pico, tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.train.loop import run_finetune
    from mfcli.train.methods import finetune_options

    root = tmp_path_factory.mktemp("tailor")
    prepare("counting", root / "counting", PrepareOptions(limit=40))
    run_finetune("tiny", [str(root / "counting")], root / "full", finetune_options(method="full", lr=1e-3, max_steps=4,
                                                                              batch_size=4), progress=False)
    run_finetune("tiny", [str(root / "counting")], root / "lora", finetune_options(method="lora", lora_r=4, lora_alpha=8,
                                                                              max_steps=2, batch_size=4), progress=False)
    return root


def test_cli_tailor_end_to_end(pico, sft, tmp_path):
    from transformers import AutoModelForImageTextToText

    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--sparsity", "0.1", "--nsamples", "8", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert "tailor (refined): kept" in r.stderr
    AutoModelForImageTextToText.from_pretrained(tmp_path / "t")
    m = json.loads((tmp_path / "t" / "mfcli.json").read_text())
    assert m["command"] == "tailor" and abs(m["metrics"]["kept_fraction"] - 0.1) < 0.01
    assert (m["options"]["variant"], m["options"]["refine_steps"], m["options"]["comp_penalty"]) == ("refined", 10, 0.1)  # the default
    hess = [t for t in m["metrics"]["tensors"] if t["path"] == "hessian"]
    # the refined decorator never ends above the plain mask (the paper's forward-only OBS may, per row)
    assert hess and all(t["error_fused"] <= t["error_masked"] * (1 + 1e-5) for t in hess)
    # lm_head is masked by salience alone unless --compensate-head
    assert next(t for t in m["metrics"]["tensors"] if t["name"].endswith("lm_head.weight"))["path"] == "salience"
    assert m["data"] and m["data"][0]["path"].endswith("train.jsonl")  # calibration found via SFT's manifest
    # the output has exactly PRE's tensors
    from mfcli.merge.run import _tensor_index

    assert _tensor_index(pico["tiny"]) == _tensor_index(tmp_path / "t")


def test_cli_tailor_paper_variant_is_one_flag_away_and_recorded(pico, sft, tmp_path):
    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--nsamples", "8", "--variant", "paper", "--compensate-head",
                "--out", tmp_path / "p")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "p" / "mfcli.json").read_text())
    o = m["options"]
    assert (o["variant"], o["refine_steps"], o["comp_penalty"], o["compensate_head"]) == ("paper", None, None, True)
    assert next(t for t in m["metrics"]["tensors"] if t["name"].endswith("lm_head.weight"))["path"] == "hessian"
    from mfcli.report.table import model_info

    assert model_info("p", str(tmp_path / "p")).method == "tailor (paper)"


def test_cli_tailor_lora_and_multitask(pico, sft, tmp_path):
    r = run_cli("tailor", "tiny", sft / "lora" / "step-2", sft / "full" / "step-4", "--nsamples", "8",
                "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert len(json.loads((tmp_path / "m" / "mfcli.json").read_text())["parents"]) == 3


def test_cli_bad_inputs(pico, sft, tmp_path):
    r = run_cli("tailor", "tiny", "tiny", "--out", tmp_path / "same")
    assert r.returncode == 0 and "warning" in r.stderr  # identical: PRE copied
    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--sparsity", "0", "--out", tmp_path / "z")
    assert r.returncode == 2 and "(0, 1]" in r.stderr
    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--out", tmp_path / "same")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--variant", "paper", "--comp-penalty", "1",
                "--out", tmp_path / "pp")
    assert r.returncode == 2 and "--variant refined" in r.stderr and not (tmp_path / "pp").exists()
    r = run_cli("tailor", "tiny", sft / "full" / "step-4", "--variant", "papr", "--out", tmp_path / "pv")
    assert r.returncode in (1, 2) and "paper" in r.stderr and not (tmp_path / "pv").exists()
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(sft / "full" / "step-4", bare)
    (bare / "mfcli.json").unlink()
    r = run_cli("tailor", "tiny", bare, "--out", tmp_path / "nodata")
    assert r.returncode == 1 and "--data" in r.stderr and not (tmp_path / "nodata").exists()
    r = run_cli("tailor", "tiny", pico["tiny-clip"], "--out", tmp_path / "arch")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_calibration_sample_is_seeded_and_spread_over_the_file():
    from mfcli.merge.calibration import calibration_sample

    a = calibration_sample(1000, 128, seed=0)
    assert a == calibration_sample(1000, 128, seed=0) and a != calibration_sample(1000, 128, seed=1)
    assert len(set(a)) == 128 and a != list(range(128))
    # a file grouped into 10 blocks (one per class): the sample reaches every block
    assert len({i // 100 for i in a}) == 10
    assert calibration_sample(50, 128, seed=0) == list(range(50))


# --- the exact kept set on a hand-made Δ (Eq. 9-11): the most salient / sensitive changes, never the least ---

HAND_DELTA = torch.tensor([[0.5, -0.1, 0.05, -0.9],
                           [0.2, 0.0, -0.3, 0.01]])  # 7 changed entries; (1, 1) is unchanged


def hand_case(h_diag):
    pre = {"lin.weight": torch.zeros(2, 4)}
    sft = {"lin.weight": HAND_DELTA.clone()}
    acc = HessianAccumulator(4)
    acc.H, acc.n = torch.diag(torch.tensor(h_diag)), 1  # diagonal H: OBS moves nothing, the mask is all there is
    return pre, [sft], [{"lin": acc}]


def kept_entries(fused):
    return {tuple(i) for i in torch.nonzero(fused["lin.weight"]).tolist()}


@pytest.mark.parametrize("omega, expected", [
    (1.0, {(0, 3), (0, 0), (1, 2)}),  # Eq. 10 salience |Δ|: 0.9, 0.5, 0.3
    # Eq. 9 sensitivity Δ²/(2[H⁻¹]_mm) = Δ²·h/2 with h = (0.01, 100, 1, 0.01): 0.5, 0.045, 0.0041 lead
    (0.0, {(0, 1), (1, 2), (0, 3)}),
])
def test_tailor_keeps_exactly_the_top_scored_changes(omega, expected):
    pre, sfts, hs = hand_case([0.01, 100.0, 1.0, 0.01])
    opts = tailor_options(sparsity=3 / 7, omega=omega, damp=1e-9, compensate=False)
    fused, report = merge_state(pre, sfts, opts, hessians=hs, linear_of={"lin.weight": "lin"})
    assert report.tensors[0].path == "hessian"
    assert kept_entries(fused) == expected
    for r, c in expected:  # kept entries carry the fine-tuned value itself
        assert fused["lin.weight"][r, c] == HAND_DELTA[r, c]


def test_salience_path_and_row_scope_keep_the_largest():
    pre = {"norm.weight": torch.zeros(2, 4)}  # no Hessian: salience only
    fused, _ = merge_state(pre, [{"norm.weight": HAND_DELTA.clone()}], tailor_options(sparsity=3 / 7))
    assert kept_entries({"lin.weight": fused["norm.weight"]}) == {(0, 3), (0, 0), (1, 2)}
    m = top_mask(HAND_DELTA.abs(), HAND_DELTA != 0, 0.5, "row")  # row 0: 4 changed → 2; row 1: 3 changed → 2 (1.5 rounds up)
    assert {tuple(i) for i in torch.nonzero(m).tolist()} == {(0, 3), (0, 0), (1, 2), (1, 0)}


def test_dare_seeds_differ_by_tensor_and_repeat():
    g = torch.Generator().manual_seed(0)
    pre = {"a": torch.zeros(20, 20), "b": torch.zeros(20, 20)}
    sft = {"a": torch.randn(20, 20, generator=g) + 3, "b": torch.randn(20, 20, generator=g) + 3}
    opts = tailor_options(method="dare", sparsity=0.3, seed=7)
    one, _ = merge_state(pre, [sft], opts)
    two, _ = merge_state(pre, [sft], opts)
    assert all(torch.equal(one[k], two[k]) for k in one)  # reproducible for a seed
    assert not torch.equal(one["a"] != 0, one["b"] != 0)  # but not the same mask for every tensor of a shape


def test_scope_paper_tailors_what_the_paper_counts_and_keeps_the_rest_fine_tuned():
    from mfcli.merge.run import router
    from mfcli.models.families import FAMILIES

    names = {"model.language_model.layers.0.mlp.down_proj.weight": "merge",
             "model.multi_modal_projector.linear_1.bias": "merge",
             "model.language_model.embed_tokens.weight": "merge", "lm_head.weight": "merge",
             "model.language_model.norm.weight": "sft", "model.vision_tower.x.weight": "sft"}
    paper = router(tailor_options(scope="paper"), FAMILIES["llava"])
    assert {n: paper(n) for n in names} == names
    assert {router(tailor_options(), FAMILIES["llava"])(n) for n in names} == {"merge"}
    layered = router(tailor_options(layers="1-2"), FAMILIES["llava"])  # outside --layers: PRE
    assert [layered(n) for n in ("model.language_model.layers.1.q.weight", "model.language_model.layers.0.q.weight",
                                 "model.multi_modal_projector.linear_1.bias")] == ["merge", "pre", "pre"]

    g = torch.Generator().manual_seed(0)
    pre = {"a": torch.zeros(4, 5), "b": torch.zeros(4, 5)}
    sfts = [{k: torch.randn(4, 5, generator=g) for k in pre} for _ in range(2)]
    fused, rep = merge_state(pre, sfts, tailor_options(sparsity=0.2), route=lambda n: "sft" if n == "b" else "merge")
    assert torch.allclose(fused["b"], (sfts[0]["b"] + sfts[1]["b"]) / 2)  # the mean fine-tuned value
    assert [t.name for t in rep.tensors] == ["a"] and rep.summary()["outside_scope_params"] == 20


def test_manifest_records_the_patch_distance_from_pre():
    d = HAND_DELTA
    fused, rep = merge_state({"w": torch.zeros(2, 4)}, [{"w": d.clone()}], tailor_options(sparsity=3 / 7))
    t = rep.tensors[0]
    assert t.patch_l1 == pytest.approx(0.9 + 0.5 + 0.3) and t.delta_l1 == pytest.approx(float(d.abs().sum()))
    assert t.max_ratio == pytest.approx(1.0)  # the largest change itself is kept, nothing grew
    # on correlated inputs the unconstrained compensation outgrows the fine-tuned change; the penalty holds it
    pre, sfts, hs = toy()
    g = torch.Generator().manual_seed(1)
    hs[0]["lin"] = HessianAccumulator(16)
    hs[0]["lin"].add(torch.randn(400, 16, generator=g) @ torch.randn(16, 16, generator=g))
    _, rep = merge_state(pre, sfts, tailor_options(sparsity=0.1, variant="refined", comp_penalty=0.0, refine_steps=30), hessians=hs,
                         linear_of={"lin.weight": "lin"})
    lin = next(t for t in rep.tensors if t.name == "lin.weight")
    _, rep_c = merge_state(pre, sfts, tailor_options(sparsity=0.1, variant="refined", comp_penalty=100.0, refine_steps=30), hessians=hs,
                           linear_of={"lin.weight": "lin"})
    lin_c = next(t for t in rep_c.tensors if t.name == "lin.weight")
    assert lin.max_ratio > 1.0 and lin_c.max_ratio < lin.max_ratio and lin_c.patch_l1 < lin.patch_l1


def test_summary_record_is_the_documented_manifest_block():
    from mfcli.merge.fuse import Report, TensorReport

    rep = Report([TensorReport("a", 10, 1, "hessian"), TensorReport("b", 30, 3, "salience")], outside_scope=5)
    s = rep.summary()
    assert set(s) == {"changed_params", "kept_params", "kept_fraction", "outside_scope_params", "tensors"}
    assert (s["changed_params"], s["kept_params"], s["outside_scope_params"]) == (40, 4, 5)
    assert s["kept_fraction"] == pytest.approx(0.1) and [t["name"] for t in s["tensors"]] == ["a", "b"]
    assert Report().summary()["kept_fraction"] == 0.0  # nothing changed: nothing kept


def test_every_method_is_registered_with_what_it_needs():
    from mfcli.merge import methods

    assert list(methods.REGISTRY) == ["tailor", "dare", "grafting", "task-arithmetic", "ties", "regmean", "fisher",
                                      "fisher-budget", "nps"]
    # RegMean and Fisher merging move every change: the papers' methods have no budget
    assert {n for n, m in methods.REGISTRY.items() if not m.budgeted} == {"regmean", "fisher"}
    needs = {n: m.needs for n, m in methods.REGISTRY.items()}
    assert needs == {"tailor": "hessian", "dare": None, "grafting": "gradient", "task-arithmetic": None, "ties": None,
                     "regmean": "hessian", "fisher": "fisher", "fisher-budget": "fisher", "nps": None}
    assert {n for n, m in methods.REGISTRY.items() if m.pre_side} == {"regmean", "fisher", "fisher-budget"}
    from mfcli.merge.options import METHODS_HELP

    assert METHODS_HELP.split(", ") == list(methods.REGISTRY)  # --help lists every method, in its order
    for name, m in methods.REGISTRY.items():
        assert m.name == name and callable(m.patch) and m.summary
    with pytest.raises(MfcliError, match="Did you mean 'tailor'"):
        methods.get("tailr")


def test_a_method_reads_only_the_options_it_declares():
    """mergekit's `parameters()`: a method sees the run's options through DeclaredOptions — what every run
    reads (TailorOptions) and its own options class — so `mfcli tailor` can refuse an option the method
    would silently ignore. Every test that runs a method holds it to that; here, one that reads more fails."""
    import torch

    from mfcli.merge import methods
    from mfcli.merge.contract import REGISTRY, DeclaredOptions, register
    from mfcli.merge.fuse import merge_state
    from mfcli.merge.methods import tailor_options

    view = DeclaredOptions(tailor_options(method="ties", lam=2.0), methods.get("ties"))
    assert view.lam == 2.0 and view.sparsity == 0.1  # declared, and common
    with pytest.raises(AttributeError, match="merge method 'ties' reads option 'omega', which it does not declare"):
        view.omega
    register("t-greedy", budgeted=True)(lambda inputs, opts, rep: inputs.deltas[0] * opts.lam)  # lam: undeclared
    try:
        pre = {"w": torch.zeros(2, 2)}
        with pytest.raises(AttributeError, match="'t-greedy' reads option 'lam'"):
            merge_state(pre, [{"w": torch.ones(2, 2)}], tailor_options(method="t-greedy"))
    finally:
        REGISTRY.pop("t-greedy")


def test_an_option_the_method_ignores_is_refused(tmp_path):
    from mfcli.cli.tailor import OWN_PARAMS, TAILOR_PARAMS, _tailor_options
    from mfcli.errors import UsageError
    from mfcli.merge.options import RegMeanOptions, TiesOptions

    values = {p.name: p.default for p in TAILOR_PARAMS + OWN_PARAMS}
    ties = _tailor_options({**values, "method": "ties", "lam": 2.0})  # ties reads λ, in its own class
    assert ties.method_options == TiesOptions(lam=2.0)
    assert _tailor_options({**values, "method": "regmean", "pre_data": ["d"]}).method_options == RegMeanOptions(
        pre_data=("d",))
    assert _tailor_options({**values, "method": "dare"}).method_options is None  # dare has no options
    with pytest.raises(UsageError, match=r"--lambda does nothing with --method tailor.*\(--lambda: task-arithmetic, ties\)"):
        _tailor_options({**values, "lam": 2.0})
    with pytest.raises(UsageError, match=r"--omega, --variant do nothing with --method regmean"):
        _tailor_options({**values, "method": "regmean", "variant": "paper", "omega": 0.5})
    r = run_cli("tailor", "tiny", tmp_path / "sft", "--method", "dare", "--regmean-alpha", "0.3", "--out", tmp_path / "o")
    assert r.returncode == 2 and "--regmean-alpha does nothing with --method dare" in r.stderr
    assert not (tmp_path / "o").exists()


def test_the_merge_contract_knows_every_run_option():
    """merge/contract.py refuses a method option named like one of TailorOptions' fields without importing
    merge/options.py (the contract is a leaf): its RUN_OPTIONS must be those fields."""
    from dataclasses import fields

    from mfcli.merge.contract import RUN_OPTIONS
    from mfcli.merge.options import TailorOptions

    assert RUN_OPTIONS == tuple(f.name for f in fields(TailorOptions))
