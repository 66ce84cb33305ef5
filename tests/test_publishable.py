"""Issue 38: numbers chosen on validation data, tested at the right unit, marked where they are not."""

import json
from dataclasses import asdict

import pytest

from mfcli.io.checkpoint import Manifest, sha256_file


def _judged(tmp_path, model, right_by_record, images, meta=None):
    rows = [{"schema": "mfcli.judged/2", "id": f"r{i}", "image": img, "task": "cls", "metric": "accuracy",
             "verdict": "correct" if ok else "wrong", "model": model}
            for i, (ok, img) in enumerate(zip(right_by_record, images))]
    path = tmp_path / f"{model.replace('/', '_')}.judged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if meta is not None:
        (tmp_path / f"{model.replace('/', '_')}.jsonl.meta.json").write_text(json.dumps({"settings": meta}))
    return str(path)


def test_five_questions_per_image_are_tested_by_image_not_as_independent_records(tmp_path):
    """40 images × 5 records; the fine-tune gets all 5 records of 10 images wrong. Record-level McNemar
    would say p = 2/2^50; the images are the unit: 10 discordant images, p = 2/2^10 by sign flips."""
    from mfcli.report.build import build
    from mfcli.report.render import markdown
    from mfcli.report.table import collect

    images = [f"images/{i // 5}.png" for i in range(200)]
    base = _judged(tmp_path, "base", [True] * 200, images)
    sft = _judged(tmp_path, "sft", [False] * 50 + [True] * 150, images)
    rep = build(collect([base, sft], targets=["cls"]), base="base")
    cell = rep.cells[("sft", "cls")]
    assert cell.test == "sign-flip by image"
    # the exact by-image p is 2/2^10 ≈ 0.002; scipy's randomised two-sided estimate over 2,000 flips is
    # 2·(k + 1)/2001 with k ≈ 2,000/1,024, so about 0.005 — and nowhere near McNemar's 2e-15
    assert 0.0005 < cell.p_value < 0.012
    assert "sign-flip by image" in markdown(rep)
    # one record per image: the record is the unit, and McNemar's exact test applies
    single = [f"images/{i}.png" for i in range(200)]
    rep1 = build(collect([_judged(tmp_path, "b1", [True] * 200, single),
                          _judged(tmp_path, "s1", [False] * 50 + [True] * 150, single)], targets=["cls"]), base="b1")
    assert rep1.cells[("s1", "cls")].test == "exact McNemar"
    assert rep1.cells[("s1", "cls")].p_value == pytest.approx(2 / 2 ** 50)


def test_a_user_named_cluster_key_is_the_unit(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.table import collect

    rows_images = [f"images/{i}.png" for i in range(200)]  # distinct images, but 40 clusters by "question_group"
    paths = []
    for model, right in (("base", [True] * 200), ("sft", [False] * 50 + [True] * 150)):
        p = _judged(tmp_path, model, right, rows_images)
        rows = [json.loads(x) for x in open(p)]
        for i, r in enumerate(rows):
            r["question_group"] = f"g{i // 5}"
        open(p, "w").write("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(p)
    cell = build(collect(paths, targets=["cls"], cluster="question_group"), base="base").cells[("sft", "cls")]
    assert cell.test == "sign-flip by question_group" and cell.p_value > 1e-3
    assert build(collect(paths, targets=["cls"]), base="base").cells[("sft", "cls")].test == "exact McNemar"


def test_a_p_value_at_the_resampling_floor_prints_as_below_a_thousandth(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.render import markdown
    from mfcli.report.table import collect

    images = [f"images/{i // 2}.png" for i in range(400)]
    rep = build(collect([_judged(tmp_path, "base", [True] * 400, images),
                         _judged(tmp_path, "sft", [False] * 200 + [True] * 200, images)], targets=["cls"]), base="base")
    assert rep.cells[("sft", "cls")].p_value < 1e-3
    text = markdown(rep)
    assert "p < 0.001, sign-flip by image" in text and "p=0.0005" not in text


def _checkpoint(path, selected_on):
    path.mkdir(parents=True)
    m = Manifest("finetune", options={"method": "lora"}, metrics={"selected_on": selected_on})
    (path / "mfcli.json").write_text(json.dumps(asdict(m)))
    return path


@pytest.mark.parametrize("split, marked", [("eval", True), ("val", False)])
def test_a_model_chosen_on_the_records_it_is_scored_on_is_marked(tmp_path, split, marked):
    from mfcli.report.build import build
    from mfcli.report.render import as_json, html_page, markdown
    from mfcli.report.table import collect

    data = tmp_path / "data"
    data.mkdir()
    for name in ("eval.jsonl", "val.jsonl"):
        (data / name).write_text(json.dumps({"id": f"{name}-1", "task": "cls", "image": "a.png", "label": "a",
                                             "labels": ["a", "b"], "prompt": "?"}) + "\n")
    scored = {"path": str((data / "eval.jsonl").resolve()), "sha256": sha256_file(data / "eval.jsonl")}
    chosen = data / f"{split}.jsonl"
    best = _checkpoint(tmp_path / "run" / "best", [{"path": str(chosen.resolve()), "sha256": sha256_file(chosen),
                                                    "split": split}])
    images = [f"images/{i}.png" for i in range(30)]
    base = _judged(tmp_path, "base", [True] * 30, images, {"model": "base", "data": [scored]})
    sft = _judged(tmp_path, "run/best", [True] * 20 + [False] * 10, images,
                  {"model": "run/best", "model_path": str(best), "data": [scored]})
    rep = build(collect([base, sft], targets=["cls"]), base="base")
    assert (rep.cells[("run/best", "cls")].selected_on == "eval") is marked
    md, page = markdown(rep), html_page(rep, [])
    rows = {r["model"]: r for r in as_json(rep)["rows"]}
    assert ("‡" in md and "‡" in page and "selected maximum" in md) is marked
    assert (rows["run/best"]["selected_on"] == "eval") is marked
    assert rows["base"]["selected_on"] is None


def test_mdgd_table2_form_is_the_harmonic_mean_of_all_tasks_and_the_target():
    from mfcli.forgetting import h_score, h_score_all_target, h_score_mdgd

    pre, tgt = [80.0, 60.0], [30.0]
    all_avg = (80 + 60 + 30) / 3
    assert h_score_all_target(pre, tgt) == pytest.approx(2 * all_avg * 30 / (all_avg + 30))
    assert h_score_all_target(pre, tgt) not in (pytest.approx(h_score(pre, tgt)), pytest.approx(h_score_mdgd(pre, tgt)))


def test_the_json_report_names_the_averages_that_take_cider_as_a_number(tmp_path):
    from mfcli.report.build import build
    from mfcli.report.render import as_json
    from mfcli.report.table import collect

    table = tmp_path / "t.csv"
    table.write_text("model,task,score,role,metric\n"
                     "base,cls,80,pretrained,accuracy\nbase,cap,600,pretrained,cider\nbase,tgt,10,target,accuracy\n"
                     "sft,cls,70,pretrained,accuracy\nsft,cap,500,pretrained,cider\nsft,tgt,60,target,accuracy\n")
    j = as_json(build(collect([str(table)]), base="base"))
    assert j["not_percent_tasks"] == ["cap"]
    assert set(j["models"]["sft"]["mixed_scale"]) == {"avg_pretrained", "h_score", "h_mdgd", "h_all_target"}
    assert j["models"]["sft"]["avg_pretrained"] == pytest.approx(285.0)  # the number the mark is about
    plain = tmp_path / "p.csv"
    plain.write_text("model,task,score,role\nbase,cls,80,pretrained\nbase,tgt,10,target\n")
    assert as_json(build(collect([str(plain)]), base="base"))["models"]["base"]["mixed_scale"] == []


def test_the_scope_help_says_what_the_paper_counts():
    from mfcli.merge.options import SCOPES

    assert "271" in SCOPES["paper"] and "273M" in SCOPES["paper"] and "do not add up" in SCOPES["paper"]
