"""Held-out membership is a function of the example, never of --limit or --seed (issue 27, item 1)."""

import json

import numpy as np
import pytest
from PIL import Image

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.data.splits import VAL_SALT, group_keys, hash_unit, held_out, limited, validation
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
                train, held, _ = limited(mask, limit, seed)
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
        val = {int(r.id.split("-")[1]) for r in read_eval(d / "val.jsonl")}
        assert not held & trained and not held & train
        assert not val & held and not val & train
        assert len(held) + len(train) + len(val) == limit
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


# ---- the validation split (issue 38, item 1) ----------------------------------------------------------

def _ids(path):
    return {r.id for r in read_eval(path)} if path.is_file() else set()


@pytest.mark.parametrize("task", ["shapes", "counting", "scene-caption"])
def test_validation_is_disjoint_nested_and_unmoved_by_seed(tmp_path, task):
    """On a built-in task at several --limit/--seed: val ∩ train = val ∩ eval = ∅; a smaller limit's
    val set is part of a larger one's for one seed; every seed draws from the same val pool."""
    pools = {}
    for seed in (0, 3):
        previous = None
        for limit in (150, 600):
            d = tmp_path / f"{task}-{seed}-{limit}"
            prepare(task, d, PrepareOptions(limit=limit, seed=seed))
            val, held = _ids(d / "val.jsonl"), _ids(d / "eval.jsonl")
            images = lambda f: {r.image for r in read_eval(d / f)}  # noqa: E731
            train = {r.image for r in read_train(d / "train.jsonl")}  # a caption's several records: one image
            assert val and not val & held, (task, seed, limit)
            assert not images("val.jsonl") & train and not images("eval.jsonl") & train
            assert json.loads((d / "dataset.json").read_text())["counts"]["val"]
            if previous is not None:
                assert previous <= val  # nested across limits
            previous = val
        d = tmp_path / f"{task}-{seed}-all"
        prepare(task, d, PrepareOptions(seed=seed, limit=None if task != "scene-caption" else 10**9))
        pools[seed] = _ids(d / "val.jsonl")
    assert pools[0] == pools[3]  # --seed never moves membership
    n = len(pools[0])
    total = len(TASKS[task].load()[1])
    assert 0.06 * 0.8 * total < n < 0.14 * 0.8 * total  # about --val-fraction 0.1 of the not-held-out pool


def test_validation_is_the_hash_rule_on_a_users_folder(tmp_path):
    src = _folder(tmp_path / "pets", 60)
    prepare(str(src), tmp_path / "a")
    keys = [f"{c}-{i:03d}" for c in ("cat", "dog") for i in range(60)]
    expected = {f"pets-{k}" for k in keys if hash_unit("pets", k) >= 0.2 and hash_unit("pets" + VAL_SALT, k) < 0.1}
    assert _ids(tmp_path / "a" / "val.jsonl") == expected and expected
    # the validation records are asked exactly as the held-out ones: the same prompt and labels
    v, e = read_eval(tmp_path / "a" / "val.jsonl")[0], read_eval(tmp_path / "a" / "eval.jsonl")[0]
    assert (v.prompt, v.labels, v.kind) == (e.prompt, e.labels, e.kind)
    prepare(str(src), tmp_path / "none", PrepareOptions(val_fraction=0.0))
    assert not (tmp_path / "none" / "val.jsonl").exists()
    assert json.loads((tmp_path / "none" / "dataset.json").read_text())["val_fraction"] == 0.0


def test_questions_about_one_image_fall_on_one_side(tmp_path):
    """A VQA table with five questions per image: an image never straddles train, val and eval."""
    rows = []
    for i in range(60):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i}.png")
        rows += [{"id": f"q{i}-{k}", "image": f"{i}.png", "question": f"q{k}?", "answers": [str(k)]}
                 for k in range(5)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = tmp_path / "out"
    prepare(str(tmp_path / "t.jsonl"), d, PrepareOptions(val_fraction=0.3))
    image_of = lambda rid: rid.split("-")[1]  # noqa: E731  t-q12-3 -> q12
    sides = {}
    for split, ids in (("eval", _ids(d / "eval.jsonl")), ("val", _ids(d / "val.jsonl")),
                       ("train", {r.id for r in read_train(d / "train.jsonl")})):
        for rid in ids:
            sides.setdefault(image_of(rid), set()).add(split)
    assert all(len(s) == 1 for s in sides.values())
    assert {next(iter(s)) for s in sides.values()} == {"train", "val", "eval"}
    assert group_keys(["a", "b", "c"], ["x.png", "x.png", "y.png"]) == ["image:x.png", "image:x.png", "c"]


def test_validation_fraction_zero_carves_nothing_and_bad_values_are_refused():
    keys = [str(i) for i in range(50)]
    held = held_out("n", keys, [None] * 50, 0.2, builtin=False)
    assert not validation("n", keys, held, 0.0).any()
    assert not (validation("n", keys, held, 0.5) & held).any()
    from mfcli.errors import UsageError
    with pytest.raises(UsageError, match="--val-fraction"):
        PrepareOptions(val_fraction=1.0)
