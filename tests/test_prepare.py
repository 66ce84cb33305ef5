import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.errors import MfcliError, UsageError
from mfcli.io.records import read_eval, read_train

MNIST_PROMPT = "What is the number in the image? Please only answer a single number in 0, 1, 2, 3, 4, 5, 6, 7, 8, 9."


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_digits_cli_offline(tmp_path):
    r = run_cli("prepare", "digits", "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    ev = read_eval(tmp_path / "d" / "eval.jsonl")
    tr = read_train(tmp_path / "d" / "train.jsonl")
    val = read_eval(tmp_path / "d" / "val.jsonl")
    assert len(ev) == 359 and len(tr) + len(val) == 1797 - 359  # EMT: 20 % held out
    assert 100 < len(val) < 190  # --val-fraction 0.1 of the rest, carved for choosing
    assert {e.prompt for e in ev} == {MNIST_PROMPT}  # METHODS.md §1, verbatim
    assert tr[0].question == "What is the number in the image? <image>"
    assert tr[0].answer == f"The number is {tr[0].label}."
    assert all((tmp_path / "d" / e.image).is_file() for e in ev[:20])
    info = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert info["role"] == "pretrained" and info["labels"] == [str(i) for i in range(10)]


def test_animals_offline_prompt_and_answers(tmp_path):
    prepare("animals", tmp_path / "a", PrepareOptions(limit=200))
    ev = read_eval(tmp_path / "a" / "eval.jsonl")
    assert ev[0].prompt == ("What is the object in the image? Please only answer a single object in "
                            "bear, bird, cat, cow, dog, elephant, giraffe, horse, sheep, zebra.")
    tr = read_train(tmp_path / "a" / "train.jsonl")
    assert tr[0].answer == f"The object is a(n) {tr[0].label}."
    assert json.loads((tmp_path / "a" / "dataset.json").read_text())["role"] == "target"


def test_byte_identical_outputs(tmp_path):
    opts = PrepareOptions(limit=120, seed=3)
    prepare("shapes", tmp_path / "x", opts)
    prepare("shapes", tmp_path / "y", opts)
    assert tree_digest(tmp_path / "x") == tree_digest(tmp_path / "y")
    prepare("shapes", tmp_path / "z", PrepareOptions(limit=120, seed=4))
    assert tree_digest(tmp_path / "x") != tree_digest(tmp_path / "z")


def test_sharegpt_format(tmp_path):
    prepare("counting", tmp_path / "s", PrepareOptions(limit=50, format="sharegpt"))
    row = json.loads((tmp_path / "s" / "train.jsonl").read_text().splitlines()[0])
    assert row["images"][0].startswith("images/")
    assert row["messages"][0] == {"role": "user", "content": "What is the number in the image? <image>"}
    assert row["messages"][1]["role"] == "assistant"
    rec = read_train(tmp_path / "s" / "train.jsonl")[0]  # the reader takes both forms
    assert rec.answer == row["messages"][1]["content"]


def _folder(root: Path, classes=("cat", "dog"), n=6, corrupt=0):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    for i in range(corrupt):
        (root / classes[0] / f"bad{i}.png").write_bytes(b"not a png at all")
    return root


def test_image_folder_and_corrupt_images(tmp_path):
    src = _folder(tmp_path / "pets", corrupt=2)
    info = prepare(str(src), tmp_path / "o", PrepareOptions(eval_fraction=0.25))
    assert info.labels == ("cat", "dog") and info.counts["skipped"] == 2
    assert read_eval(tmp_path / "o" / "eval.jsonl")[0].prompt.endswith("single object in cat, dog.")
    with pytest.raises(MfcliError, match="unreadable image"):
        prepare(str(src), tmp_path / "strict", PrepareOptions(strict=True))
    assert not (tmp_path / "strict").exists()  # nothing half-written


def test_csv_source_and_label_names(tmp_path):
    src = _folder(tmp_path / "img", classes=("n01", "n02"))
    rows = ["image,label"] + [f"{c}/{i}.png,{c}" for c in ("n01", "n02") for i in range(6)]
    (tmp_path / "img" / "list.csv").write_text("\n".join(rows))
    (tmp_path / "names.json").write_text(json.dumps({"n01": "African hunting dog", "n02": "yawl"}))
    prepare(str(src / "list.csv"), tmp_path / "o", PrepareOptions(label_names=str(tmp_path / "names.json")))
    ev = read_eval(tmp_path / "o" / "eval.jsonl")
    assert ev[0].labels == ("African hunting dog", "yawl")


def test_bad_inputs_one_line_each(tmp_path):
    cases = []
    (tmp_path / "empty").mkdir()
    cases.append((["prepare", tmp_path / "empty", "--out", tmp_path / "o1"], 1, "no class sub-folders"))
    cases.append((["prepare", tmp_path / "nope", "--out", tmp_path / "o2"], 1, "nor an existing path"))
    sep = _folder(tmp_path / "sep", classes=("a, b", "c"))
    cases.append((["prepare", sep, "--out", tmp_path / "o3"], 1, "label separator"))
    (tmp_path / "dup.csv").write_text("id,image,label\n1,x.png,a\n1,y.png,b\n")
    cases.append((["prepare", tmp_path / "dup.csv", "--out", tmp_path / "o4"], 1, "duplicate id"))
    (tmp_path / "exists").mkdir()
    cases.append((["prepare", "digits", "--out", tmp_path / "exists"], 1, "already exists"))
    cases.append((["prepare", "digits", "--out", tmp_path / "o5", "--format", "xml"], 2, "--format"))
    for args, code, text in cases:
        r = run_cli(*args)
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_unknown_dataset_id_offline_fails_fast(tmp_path, no_network):
    r = run_cli("prepare", "someone/no-such-dataset", "--out", tmp_path / "o")
    assert r.returncode == 1 and "no-such-dataset" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    # in process, with every connection refused: no retry loop against an unreachable hub
    with pytest.raises(MfcliError, match="no-such-dataset"):
        prepare("someone/no-such-dataset", tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_options_validate():
    with pytest.raises(UsageError):
        PrepareOptions(eval_fraction=0.0)


def test_default_eval_split_is_tinys_held_out_split(tmp_path):
    # tiny is built on split_indices(n, 0.2, 0); prepare's default eval.jsonl must be that held-out set
    from mfcli.data.tasks import TASKS, split_indices

    prepare("shapes", tmp_path / "s")
    _, held = split_indices(len(TASKS["shapes"].load()[1]), 0.2, 0)
    assert {e.id for e in read_eval(tmp_path / "s" / "eval.jsonl")} == {f"shapes-{i:05d}" for i in held}


def test_splits_are_written_in_a_seeded_random_order(tmp_path):
    # issue 12.1: rows grouped by label made `head -n` (and tailor's calibration) one class
    prepare("digits", tmp_path / "d")
    tr = read_train(tmp_path / "d" / "train.jsonl")
    ev = read_eval(tmp_path / "d" / "eval.jsonl")
    assert len({r.label for r in tr[:40]}) >= 8 and len({r.label for r in ev[:40]}) >= 8
    ids = [r.id for r in tr]
    assert ids != sorted(ids)
    prepare("digits", tmp_path / "e")
    assert [r.id for r in read_train(tmp_path / "e" / "train.jsonl")] == ids  # same seed, same order
