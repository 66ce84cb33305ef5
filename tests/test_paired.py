"""Paired tests for every metric (issue 27, item 3): hand cases whose answers are known."""

import json

import numpy as np
import pytest

from mfcli.report.paired import CorpusCider, paired_cider_change, paired_mean_change

CAPTIONS = [  # (output, references)
    ("a red circle left of a blue square", ["a red circle left of a blue square", "a blue square right of a red circle"]),
    ("a green triangle", ["a green triangle above a red cross"]),
    ("two dogs on the grass", ["a dog on the grass", "two dogs play on green grass"]),
    ("", ["a yellow ring"]),
    ("a cat's toy, and a ball.", ["a cat 's toy and a ball", "a ball beside a toy"]),
]


def _pycoco(outputs, references):
    from pycocoevalcap.cider.cider import Cider

    from mfcli.eval.metrics.caption import tokenize

    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [tokenize(o)] for i, o in enumerate(outputs)}
    return Cider().compute_score(gts, res)


def test_corpus_cider_is_pycocoevalcaps_on_the_set_and_on_a_resample_with_repeats():
    pytest.importorskip("pycocoevalcap")
    outs, refs = [c[0] for c in CAPTIONS], [c[1] for c in CAPTIONS]
    cider = CorpusCider([outs], refs)
    corpus, each = _pycoco(outs, refs)
    (ours,) = cider.image_scores()
    np.testing.assert_allclose(ours, each, atol=1e-12)
    assert ours.mean() == pytest.approx(corpus)
    draw = [0, 0, 2, 4, 4, 4, 1]  # a resample: image 0 twice, image 4 three times, image 3 not at all
    corpus_resample, _ = _pycoco([outs[i] for i in draw], [refs[i] for i in draw])
    w = np.bincount(draw, minlength=len(outs)).astype(float)
    (ours_w,) = cider.image_scores(w)
    assert (w @ ours_w) / w.sum() == pytest.approx(corpus_resample)
    assert corpus_resample != pytest.approx(corpus)  # the weights really are recomputed on the resample


def test_identical_models_change_by_nothing():
    scores = [1.0, 0.0, 0.6, 1.0, 0.3]
    c = paired_mean_change(scores, scores, ["a", "b", "c", "d", "e"])
    assert c.delta == 0 and c.low == 0 and c.high == 0 and c.p_value == 1.0


def test_records_sharing_an_image_are_one_unit():
    # 4 images, 5 questions each, the model right on all 20 where the base is wrong on all: as 4 units the
    # exact sign-flip p is 2/2^4; read as 20 independent records it is at most ~1/1000 (2,000 random flips)
    images = [f"img{k}" for k in range(4) for _ in range(5)]
    c = paired_mean_change([1.0] * 20, [0.0] * 20, images)
    assert c.delta == pytest.approx(100.0) and c.p_value == pytest.approx(2 / 16)
    independent = paired_mean_change([1.0] * 20, [0.0] * 20, [str(i) for i in range(20)])
    assert independent.p_value < 0.002


def test_a_vqa_change_gets_its_sign_an_interval_and_a_p_value():
    rng = np.random.default_rng(0)
    base = rng.choice([0.0, 1 / 3, 2 / 3, 1.0], size=300)
    model = np.clip(base + rng.choice([0.0, 1 / 3], size=300, p=[0.6, 0.4]), 0, 1)  # better on ~40 %
    images = [str(i // 3) for i in range(300)]  # three questions per image
    up = paired_mean_change(model, base, images)
    assert up.delta == pytest.approx(100 * (model - base).mean())
    assert 0 < up.low < up.delta < up.high and up.p_value < 0.01
    down = paired_mean_change(base, model, images)
    assert down.delta == pytest.approx(-up.delta) and down.high < 0
    noise = paired_mean_change(rng.permutation(base), base, images)
    assert noise.low < 0 < noise.high or noise.p_value > 0.01


def test_a_cider_change_is_recomputed_as_a_corpus_and_points_the_right_way():
    pytest.importorskip("pycocoevalcap")
    refs = [c[1] for c in CAPTIONS] * 8
    good = [r[0] for r in refs]  # the first reference, word for word
    poor = ["a thing"] * len(refs)
    images = [str(i) for i in range(len(refs))]
    up = paired_cider_change(good, poor, refs, images)
    corpus_good, _ = _pycoco(good, refs)
    corpus_poor, _ = _pycoco(poor, refs)
    assert up.delta == pytest.approx(100 * (corpus_good - corpus_poor))
    assert 0 < up.low < up.delta < up.high and up.p_value < 0.01
    down = paired_cider_change(poor, good, refs, images)
    assert down.delta == pytest.approx(-up.delta) and down.high < 0


def test_the_report_puts_an_interval_and_the_right_test_on_every_change(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.render import markdown
    from mfcli.report.table import collect

    def judged(model, vqa_scores, right):
        rows = [{"schema": "mfcli.judged/2", "id": f"q{i}", "image": f"images/{i // 2}.png", "task": "vqa-task",
                 "metric": "vqa_accuracy", "score": s, "verdict": "correct" if s else "wrong", "model": model}
                for i, s in enumerate(vqa_scores)]
        rows += [{"schema": "mfcli.judged/2", "id": f"c{i}", "image": f"images/c{i}.png", "task": "cls",
                  "metric": "accuracy", "verdict": "correct" if ok else "wrong", "model": model}
                 for i, ok in enumerate(right)]
        path = tmp_path / f"{model}.judged.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    base = judged("base", [0.0] * 40, [True] * 30)
    sft = judged("sft", [1.0] * 30 + [0.0] * 10, [False] * 20 + [True] * 10)
    rep = build(collect([base, sft], targets=["vqa-task"]), base="base")
    vqa, cls = rep.cells[("sft", "vqa-task")], rep.cells[("sft", "cls")]
    assert vqa.test == "sign-flip by image" and vqa.delta == pytest.approx(75.0)
    assert vqa.delta_interval[0] > 0 and vqa.p_value < 0.01
    assert cls.test == "exact McNemar" and cls.p_value == pytest.approx(2 / 2 ** 20)
    assert cls.delta_interval[1] < 0
    text = markdown(rep)
    assert "+75.0 [" in text and "McNemar" in text


def test_the_bootstrap_resamples_whole_images():
    # five identical records per image are one image's worth of evidence: the interval is the one the
    # images alone give (the same draws over the same 40 images), not √5 narrower
    rng = np.random.default_rng(1)
    model, base = rng.random(40), rng.random(40)
    alone = paired_mean_change(model, base, [str(i) for i in range(40)])
    repeated = paired_mean_change(np.repeat(model, 5), np.repeat(base, 5), [str(i) for i in np.repeat(np.arange(40), 5)])
    assert repeated.delta == pytest.approx(alone.delta)
    assert (repeated.low, repeated.high) == pytest.approx((alone.low, alone.high))
