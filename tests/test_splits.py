"""Held-out membership is a function of the example, never of --limit or --seed (issue 27, item 1)."""

import json

import numpy as np
import pytest
from PIL import Image

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.data.splits import hash_unit, held_out, limited
from mfcli.data.tasks import TASKS, split_indices
from mfcli.errors import MfcliError
from mfcli.io.records import read_eval, read_train
from mfcli.zoo.tiny import TinyRecipe
from mfcli.zoo.tiny_qwen2vl import TinyQwen2VLRecipe

LIMITS = (100, 2500, None)
SEEDS = (0, 1, 7)


@pytest.fixture(scope="module")
def sizes():
    return {name: len(task.load()[1]) for name, task in TASKS.items()}


def _trained_on(n: int) -> set[int]:
    """The indices the built-in models train on — tiny's LLaVA and its vision tower tiny-clip take a
    task's `train` split from the recipe (zoo/tiny.py, `_Data`), the Qwen2-VL tiny likewise."""
    out = set()
    for recipe in (TinyRecipe(), TinyQwen2VLRecipe()):
        out |= set(split_indices(n, recipe.eval_fraction, recipe.split_seed)[0].tolist())
    return out


def test_no_limit_or_seed_puts_a_built_in_models_training_example_into_the_held_out_set(sizes):
    for name, n in sizes.items():
        trained = _trained_on(n)
        mask = held_out(name, [f"{i:05d}" for i in range(n)], [None] * n, 0.2, builtin=True)
        for seed in SEEDS:
            previous = None
            for limit in LIMITS:  # ascending: each held-out set contains the one before
                train, held = limited(mask, limit, seed)
                assert not set(held.tolist()) & trained, (name, limit, seed)
                assert not set(train.tolist()) & set(held.tolist())
                if limit is not None:
                    assert len(train) + len(held) == min(limit, n)
                if previous is not None:
                    assert previous <= set(held.tolist()), (name, limit, seed)
                previous = set(held.tolist())


def test_seed_changes_the_sample_not_the_membership(sizes):
    n = sizes["animals"]
    mask = held_out("animals", [f"{i:05d}" for i in range(n)], [None] * n, 0.2, builtin=True)
    a, b = limited(mask, 2500, 0)[1], limited(mask, 2500, 1)[1]
    assert set(a.tolist()) != set(b.tolist())  # another sample ...
    assert mask[a].all() and mask[b].all()  # ... from the same held-out pool
    assert len(a) == len(b) == 500  # in proportion: 2,000 of 10,000 held out, 2,500 kept


def test_prepare_end_to_end_keeps_the_built_in_split(tmp_path):
    # the written files, not only the helper: the old draw (split after the limit, by --seed) fails here
    n = len(TASKS["shapes"].load()[1])
    trained = _trained_on(n)
    held_sets = []
    for limit in (100, 400):
        d = tmp_path / f"s{limit}"
        prepare("shapes", d, PrepareOptions(limit=limit, seed=7))
        held = {int(r.id.split("-")[1]) for r in read_eval(d / "eval.jsonl")}
        train = {int(r.id.split("-")[1]) for r in read_train(d / "train.jsonl")}
        assert not held & trained and not held & train
        assert len(held) + len(train) == limit
        held_sets.append(held)
    assert held_sets[0] <= held_sets[1]


def test_a_larger_eval_fraction_on_a_built_in_task_warns(tmp_path, capsys):
    prepare("shapes", tmp_path / "s", PrepareOptions(limit=50, eval_fraction=0.3))
    assert "training images" in capsys.readouterr().err
    prepare("shapes", tmp_path / "t", PrepareOptions(limit=50))
    assert "warning" not in capsys.readouterr().err


def _folder(root, n_per_class: int, classes=("cat", "dog")):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.new("RGB", (8, 8), (i * 7 % 255, 0, 0)).save(root / c / f"{i:03d}.png")
    return root


def _held_ids(source, out, opts=PrepareOptions()):
    prepare(str(source), out, opts)
    return {r.id for r in read_eval(out / "eval.jsonl")}


def test_user_folder_split_is_by_hash_of_the_example(tmp_path):
    src = _folder(tmp_path / "pets", 60)
    full = _held_ids(src, tmp_path / "a")
    # a hash of (source name, key) below the fraction, whatever the seed or the limit
    expected = {f"pets-{c}-{i:03d}" for c in ("cat", "dog") for i in range(60)
                if hash_unit("pets", f"{c}-{i:03d}") < 0.2}
    assert full == expected and 10 < len(full) < 40
    other_seed = _held_ids(src, tmp_path / "b", PrepareOptions(seed=3))
    assert other_seed == full
    limited_ids = _held_ids(src, tmp_path / "c", PrepareOptions(limit=40, seed=3))
    assert limited_ids <= full
    # adding images moves none of the old ones between the splits
    _folder(src, 90)
    grown = _held_ids(src, tmp_path / "d")
    assert grown & {f"pets-{c}-{i:03d}" for c in ("cat", "dog") for i in range(60)} == full


def test_a_tables_own_split_column_is_kept(tmp_path):
    rows = []
    for i in range(20):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i}.png")
        rows.append({"id": f"x{i}", "image": f"{i}.png", "label": "a" if i % 2 else "b",
                     "split": "test" if i < 5 else "train"})
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for seed in (0, 5):
        assert _held_ids(tmp_path / "t.jsonl", tmp_path / f"out{seed}", PrepareOptions(seed=seed)) == {
            f"t-x{i}" for i in range(5)}
    rows[0]["split"] = "holdout-ish"
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(MfcliError, match="bad.jsonl:1: split 'holdout-ish'"):
        prepare(str(tmp_path / "bad.jsonl"), tmp_path / "bad")


def test_a_tiny_source_still_gets_both_splits():
    keys = [str(i) for i in range(3)]
    # fractions at which the hash alone would leave one split empty: the fallback must cross one over
    for fraction in (0.001, 0.999):
        mask = held_out("few", keys, [None] * 3, fraction, builtin=False)
        assert 0 < mask.sum() < 3
        assert (held_out("few", keys, [None] * 3, fraction, builtin=False) == mask).all()
        np.testing.assert_array_equal(limited(mask, None, 4)[1], np.flatnonzero(mask))
