"""The data-source registry (data/sources/): the first reader that claims SOURCE reads it, in the
documented order, and a new source is one registered reader — reached by `prepare` with no other edit."""

import json

import numpy as np
import pytest
from PIL import Image

from mfcli.data.prepare import prepare
from mfcli.data.sources import READERS, Example, Request, Source, open_source, register
from mfcli.errors import MfcliError
from mfcli.io.records import read_eval, read_train


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def test_the_order_is_the_documented_one():
    assert list(READERS)[:4] == ["builtin", "folder", "llava-json", "table"] and "hub" in READERS
    assert all(r.summary for r in READERS.values())


def test_first_claim_wins(tmp_path, monkeypatch):
    # a folder named like a built-in task: the built-in task (its name is the user's intent)
    (tmp_path / "digits" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert open_source("digits").builtin
    # a .json holding LLaVA's array is LLaVA's, a .json holding one object per line is a table
    _png(tmp_path / "img.png", 10)
    (tmp_path / "llava.json").write_text(json.dumps([{"id": "x", "image": "img.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "grey"}]}]))
    (tmp_path / "table.json").write_text(json.dumps({"image": "img.png", "label": "grey"}) + "\n")
    assert open_source(str(tmp_path / "llava.json")).description.startswith("llava:")
    assert open_source(str(tmp_path / "table.json")).description.startswith("table:")
    # the hub only for what looks like no path: a missing relative path is an error, never a download
    with pytest.raises(MfcliError, match="neither a built-in task nor an existing path"):
        open_source("./missing/set")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MfcliError, match="cannot read a source from a '.txt' file"):
        open_source(str(tmp_path / "notes.txt"))


def test_a_new_source_is_one_registered_reader(tmp_path, monkeypatch):
    """An .npz of images and labels, as a user would add it: `prepare` reads it with no other change."""
    arrays = tmp_path / "colours.npz"
    images = np.stack([np.full((8, 8, 3), v, np.uint8) for v in range(0, 240, 6)])
    labels = np.array(["dark" if v < 120 else "light" for v in range(0, 240, 6)])
    np.savez(arrays, images=images, labels=labels)

    def read(req: Request) -> Source:
        data = np.load(req.path)
        examples = [Example(f"{i:03d}", str(y), (lambda a=a: Image.fromarray(a))) for i, (a, y)
                    in enumerate(zip(data["images"], data["labels"]))]
        return Source(req.path.stem, f"npz:{req.path}", tuple(sorted(set(map(str, data["labels"])))), examples)

    monkeypatch.setitem(READERS, "npz", None)  # undone after the test: the registry as it was
    register("npz", claims=lambda req: req.path.suffix == ".npz", summary="images and labels in an .npz")(read)
    info = prepare(str(arrays), tmp_path / "out")
    assert info.name == "colours" and info.source.startswith("npz:") and info.labels == ("dark", "light")
    train, held = read_train(tmp_path / "out" / "train.jsonl"), read_eval(tmp_path / "out" / "eval.jsonl")
    val = read_eval(tmp_path / "out" / "val.jsonl")
    assert len(train) + len(held) + len(val) == 40 and {r.label for r in held} <= {"dark", "light"}
