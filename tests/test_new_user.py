"""Issue 44: what a new user trips on, one behaviour per test — the warning present, the one line, the
exit code, nothing written — on the suite's pico model and small built-in tasks."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("new-user")
    prepare("animals", root / "animals", PrepareOptions(limit=40))
    prepare("shapes", root / "shapes", PrepareOptions(limit=30))
    return root


def test_a_run_too_short_to_learn_is_warned_before_training_and_summed_up_after(pico, data, tmp_path):
    out = tmp_path / "run"
    r = run_cli("finetune", "tiny", data / "animals", "--method", "lora", "--epochs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    warning = [x for x in r.stderr.splitlines() if "warning: this run has only" in x]
    assert len(warning) == 1 and "--epochs" in warning[0] and "--batch-size" in warning[0], r.stderr
    closing = r.stderr.strip().splitlines()[-1]
    assert closing.startswith("finetune: ") and "final loss" in closing and "epoch-1/" in closing, r.stderr
    r = run_cli("finetune", "tiny", data / "animals", "--method", "lora", "--epochs", "1", "--out", out, "--resume")
    assert r.returncode == 0 and "was already complete" in r.stderr, r.stderr
    r = run_cli("finetune", "tiny", data / "animals", "--method", "lora", "--epochs", "40", "--batch-size", "4",
                "--max-steps", "60", "--out", tmp_path / "long")
    assert "warning: this run has only" not in r.stderr


def test_a_watch_whose_best_is_step_0_says_so_at_the_end_and_in_the_manifest(pico, data, tmp_path):
    """A learning rate of 0 changes nothing: every evaluation equals step 0's, so best/ stays the
    untouched model — said once at the end, and in best/'s manifest."""
    out = tmp_path / "run"
    r = run_cli("finetune", "tiny", data / "animals", "--method", "full", "--epochs", "1", "--lr", "0",
                "--out", out, "--watch", data / "shapes", "--watch", data / "animals", "--watch-n", "50")
    assert r.returncode == 0, r.stderr
    assert "the watch's best is step 0" in r.stderr and "untouched model" in r.stderr, r.stderr
    manifest = json.loads((out / "best" / "mfcli.json").read_text())
    assert "step 0" in json.dumps(manifest) and "untouched model" in json.dumps(manifest)
    # --watch-n 50 on validation sets of 3 and 2 records: said once, not silently
    said = [x for x in r.stderr.splitlines() if "--watch-n 50 asked" in x]
    assert len(said) == 1 and "animals has 3 val records" in said[0] and "shapes has 2," in said[0], r.stderr


def test_emt_ends_with_one_line_and_a_finished_run_says_so(pico, data, tmp_path):
    out = tmp_path / "p.jsonl"
    r = run_cli("emt", "tiny", data / "shapes", "--out", out)
    assert r.returncode == 0 and "emt: 6 records in" in r.stderr and str(out) in r.stderr, r.stderr
    r = run_cli("emt", "tiny", data / "shapes", "--out", out)
    assert "was already complete (6 records)" in r.stderr, r.stderr


def test_library_noise_stays_out_unless_debugging(pico, data, tmp_path):
    """transformers' "Loading weights" bar (the cascade judge's sentence encoder) and library
    FutureWarnings are kept out of the output; MFCLI_DEBUG=1 lets them through."""
    out = tmp_path / "p.jsonl"
    assert run_cli("emt", "tiny", data / "shapes", "--out", out).returncode == 0
    env = {"COLUMNS": "120"}
    r = run_cli("judge", out, "--judge", "cascade", "--out", tmp_path / "j.jsonl", env=env, process=True)
    assert r.returncode == 0, r.stderr
    assert "Loading weights" not in r.stderr and "FutureWarning" not in r.stderr, r.stderr


def test_mistakes_in_paths_are_named(pico, data, tmp_path, monkeypatch):
    run = tmp_path / "runs" / "lora"
    for name in ("epoch-1", "epoch-2", "best"):
        shutil.copytree(pico["tiny"], run / name)
    r = run_cli("emt", run, data / "shapes", "--out", tmp_path / "p.jsonl")
    assert r.returncode == 1 and "is a run directory" in r.stderr and "epoch-1/" in r.stderr, r.stderr
    assert "best/" in r.stderr
    r = run_cli("rank", "tiny", data / "shapes", "--data", data / "animals", "--out", tmp_path / "rank.jsonl")
    assert r.returncode == 1 and "is a prepared data set, not a model" in r.stderr, r.stderr
    assert not list(tmp_path.glob(".rank.jsonl*"))  # validated before any work: no partial file
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)  # `data/` exists here, `data/nope` does not
    r = run_cli("prepare", "data/nope", "--out", tmp_path / "nope")
    assert r.returncode == 1 and "there is no folder 'data/nope'" in r.stderr, r.stderr


def test_zoo_says_when_it_copied_from_the_cache(pico, tmp_path):
    r = run_cli("zoo", "tiny", "--out", tmp_path / "m")
    assert r.returncode == 0 and "copied from the cache" in r.stderr and "built in" not in r.stderr, r.stderr


def test_a_table_source_names_its_task_and_counts_missing_images(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    rows = ["image,label"]
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{'abc'[i % 3]}")
    rows.append("img/gone.png,a")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    r = run_cli("prepare", tmp_path / "labels.csv", "--out", tmp_path / "o", "--task", "pets")
    assert r.returncode == 0 and "1 images skipped (1 missing)" in r.stderr, r.stderr
    info = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert info["name"] == "pets" and info["role"] is None and info["counts"]["skipped_why"] == {"missing": 1}
    assert {json.loads(x)["task"] for x in (tmp_path / "o" / "eval.jsonl").read_text().splitlines()} == {"pets"}
    # the held-out split does not move with the name
    r = run_cli("prepare", tmp_path / "labels.csv", "--out", tmp_path / "o2")
    ids = lambda d: sorted(json.loads(x)["image"].split("-", 1)[1] for x in (d / "eval.jsonl").read_text().splitlines())
    assert ids(tmp_path / "o") == ids(tmp_path / "o2")
    r = run_cli("prepare", "digits", "--out", tmp_path / "d", "--task", "mine", "--limit", "20")
    assert r.returncode == 2 and "built in" in r.stderr


def test_tables_and_figures_name_models_alike():
    """The shared directory prefix is dropped for every table, figure and sentence, or for none."""
    from types import SimpleNamespace

    from mfcli.report.render import names_of

    rep = SimpleNamespace(models={"tiny": 0, "runs/c-full/epoch-1": 0}, ranks={("runs/c-lora/epoch-1", "t"): 1})
    assert names_of(rep) == {"tiny": "tiny", "runs/c-full/epoch-1": "c-full/epoch-1",
                             "runs/c-lora/epoch-1": "c-lora/epoch-1"}
