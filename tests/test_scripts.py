"""Smoke tests of the scripts behind docs/benchmarks.md (bench/: speed and memory) and docs/results.md
(studies/: the tables): each one imports and answers --help (a broken import or a moved neighbour fails
here, not in the middle of an hour's study), every script the docs name exists, and a table script runs
on a hand-made report."""

import json
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("studies/*.py")])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_script_imports_and_answers_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(script.parent))  # as `python studies/x.py` puts its folder first
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    if '__name__ == "__main__"' not in script.read_text():
        runpy.run_path(str(script), run_name=script.stem)  # a module the others import (validation.py)
        return
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(script), run_name="__main__")
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out


def test_every_script_the_docs_name_exists():
    named = set()
    for doc in [ROOT / "README.md", *ROOT.glob("docs/*.md")]:
        if doc.name == "results-history.md":  # what earlier builds ran, some scripts since retired
            continue
        named |= set(re.findall(r"\b((?:bench|studies)/[a-z_]+\.(?:py|sh))", doc.read_text(encoding="utf-8")))
    assert named and not [n for n in sorted(named) if not (ROOT / n).is_file()]


def test_the_front_table_from_a_report(tmp_path, monkeypatch, capsys):
    """studies/front_table.py on a report.json made by hand: one row per method and budget, gain over
    the base, the Pareto mark as the report gives it."""
    report = {"base": "tiny", "models": {
        "tiny": {"avg_target": 10.0, "kept_pretrained": 100.0},
        "seed-{0,1}/tailor@0.1": {"avg_target": 40.0, "kept_pretrained": 90.0, "kept_spread": 1.5,
                                  "target_spread": 2.0, "h_kept": 55.4},
        "seed-{0,1}/regmean": {"avg_target": 30.0, "kept_pretrained": 97.0}},
        "front": [{"model": "seed-{0,1}/tailor@0.1", "method": "tailor", "budget": 0.1, "pareto": True},
                  {"model": "seed-{0,1}/regmean", "method": "regmean", "budget": None, "pareto": True}]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    monkeypatch.setattr(sys, "argv", ["front_table.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "studies" / "front_table.py"), run_name="__main__")
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows == ["| regmean |  | 97.0 | 20.0 |  | ✓ |", "| tailor | 0.1 | 90.0 ± 1.5 | 30.0 ± 2.0 | 55.4 | ✓ |"]


def test_a_study_gives_each_method_the_options_it_reads():
    """A study runs several methods with one set of flags: each takes what it reads, the rest is dropped
    (not refused, as `mfcli finetune` refuses it), and an unset flag (None) is the method's default."""
    from mfcli.study import finetune_options_for

    lora = finetune_options_for("lora", lr=1e-4, lora_r=16, lora_alpha=32, layers=3, projector_lr=None)
    assert (lora.lr, lora.method_options.lora_r, lora.method_options.lora_alpha) == (1e-4, 16, 32)
    assert lora.method_options.projector_lr is None and not hasattr(lora.method_options, "layers")
    lastn = finetune_options_for("lastn", lr=1e-4, lora_r=16, layers=3)
    assert lastn.method_options.layers == 3 and not hasattr(lastn.method_options, "lora_r")
    full = finetune_options_for("full", lr=1e-4, batch_size=8, lora_r=16, layers=3)
    assert (full.method, full.lr, full.batch_size) == ("full", 1e-4, 8)


def test_the_forgetting_study_builds_a_fine_tune_for_every_method(monkeypatch):
    """studies/forgetting.py with its default flags (LoRA's rank and alpha among them) builds the options
    of every registered method, each with the study's seed, epochs and lr — the study ran no method at
    all while it passed every flag to every method."""
    from mfcli.train.methods import names

    monkeypatch.syspath_prepend(str(ROOT / "studies"))
    study = runpy.run_path(str(ROOT / "studies" / "forgetting.py"), run_name="forgetting")
    args = study["parser"]().parse_args(["--lr", "3e-4", "--epochs", "2"])
    for method in names():
        opts = study["options"](args, method, 7)
        assert (opts.method, opts.seed, opts.epochs, opts.lr) == (method, 7, 2, 3e-4)
    assert study["options"](args, "lora", 0).method_options.lora_r == 16


def _study(name, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "studies"))  # as `python studies/x.py` puts its folder first
    return runpy.run_path(str(ROOT / "studies" / f"{name}.py"), run_name=name)


def test_every_fine_tune_and_merge_a_study_names_builds(monkeypatch):
    """Each named fine-tune and merge of the studies behind docs/results.md builds its options as the
    study does — an option its method does not read is refused by the library, and two studies ran no
    MDGD-GM and no Model Tailor sweep while they passed one (MDGD's variant, RegMean's pre-trained data)."""
    mdgd = _study("mdgd_quality", monkeypatch)
    for name in mdgd["VARIANTS"]:
        opts = mdgd["variant_options"](name, 5e-4, 3)
        assert opts.seed == 3 and opts.method == mdgd["VARIANTS"][name]["method"]
    assert mdgd["variant_options"]("mdgd-gm", 5e-4, 0).method_options.mask_ratio == 0.1
    assert mdgd["variant_options"]("mdgd-decoupled-all-layers", 5e-4, 0).method_options.mdgd_variant == "decoupled"

    front = _study("merge_front", monkeypatch)
    for name in {**front["BUDGETED"], **front["UNBUDGETED"]}:
        opts = front["merge_options"](name, sparsity=0.1, calib="c.jsonl", seed=1, pre_data=("a", "b"))
        assert (opts.data, opts.seed) == ("c.jsonl", 1)
        reads_pre = hasattr(opts.method_options, "pre_data")
        assert reads_pre == (opts.method in ("regmean", "fisher", "fisher-budget"))
        assert not reads_pre or opts.method_options.pre_data == ("a", "b")

    tailor = _study("tailor_quality", monkeypatch)
    for name in tailor["VARIANTS"]:
        assert tailor["variant_options"](name, 0.1, "c.jsonl", 2).sparsity == 0.1
    for name in ["sft", *tailor["FINETUNES"]]:
        assert tailor["finetune_of"](name, 2).method == "full"
    assert tailor["finetune_of"]("full-lr2e-4", 2).lr == 2e-4 and tailor["finetune_of"]("sft", 2).lr == 5e-4
