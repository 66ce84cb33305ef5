"""`mfcli rank` and `mfcli report` on the outputs of a tiny run, and every input kind report reads."""

import csv
import json
import shutil
import subprocess

import pytest

from conftest import report_section, run_cli
from mfcli.errors import MfcliError
from mfcli.report.build import build
from mfcli.report.table import collect


@pytest.fixture(scope="module")
def tiny_run(pico, tmp_path_factory):
    """base + a 2-epoch full fine-tune on counting, judged on digits (pre-trained) and counting (target),
    the CLIP baseline, and rank records."""
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.eval.emt import EmtOptions, run_emt
    from mfcli.eval.judges import make_judge
    from mfcli.eval.judging import judge_file
    from mfcli.train.loop import run_finetune
    from mfcli.train.options import TrainOptions

    root = tmp_path_factory.mktemp("report")
    for task in ("digits", "counting"):
        prepare(task, root / "data" / task, PrepareOptions(limit=40))
    data = [str(root / "data" / t) for t in ("digits", "counting")]
    run = run_finetune("tiny", [data[1]], root / "full", TrainOptions(method="full", lr=1e-3, epochs=2, batch_size=8),
                       progress=False)
    judged = []
    for name, model in (("base", "tiny"), ("clip", "tiny-clip"), ("e1", str(run / "epoch-1")),
                        ("e2", str(run / "epoch-2"))):
        run_emt(model, data, root / f"{name}.jsonl", EmtOptions(max_new_tokens=8), progress=False)
        judge_file(str(root / f"{name}.jsonl"), str(root / f"{name}.judged.jsonl"), make_judge("exact"))
        judged.append(root / f"{name}.judged.jsonl")
    r = run_cli("rank", "tiny", run / "epoch-2", "--data", data[0], "--data", data[1], "--nsamples", "6",
                "--out", root / "rank.jsonl")
    assert r.returncode == 0, r.stderr
    return root, judged, run


def _judged_accuracy(path):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    out = {}
    for r in rows:
        out.setdefault(r["task"], []).append(r["verdict"] == "correct")
    return {t: 100.0 * sum(v) / len(v) for t, v in out.items()}


def test_rank_records(tiny_run):
    root, _, run = tiny_run
    recs = [json.loads(x) for x in (root / "rank.jsonl").read_text().splitlines()]
    assert [(r["model"], r["task"]) for r in recs] == [("tiny", "digits"), ("tiny", "counting"),
                                                      (str(run / "epoch-2"), "digits"), (str(run / "epoch-2"), "counting")]
    for r in recs:
        assert r["schema"] == "mfcli.rank/1" and r["layer"] == "last" and r["n_images"] == 6
        assert r["n_tokens"] == 6 * 16  # tiny: 16 image tokens an image
        assert 1.0 <= r["erank"] <= r["dims"]
        sv = r["top_singular_values"]
        assert sv == sorted(sv, reverse=True)


def test_rank_matches_erank_of_the_stacked_matrix(pico, tiny_run):
    """The Gram-accumulated stacked erank equals effective_rank of the explicitly stacked features."""
    import torch

    from mfcli.analysis.erank import effective_rank
    from mfcli.analysis.rank import RankOptions, _features, rank_model, sample_records
    from mfcli.io.records import read_eval
    from mfcli.models.load import load_mllm
    from PIL import Image

    root, _, _ = tiny_run
    recs = read_eval(root / "data" / "digits" / "eval.jsonl")
    opts = RankOptions(nsamples=5, batch_size=2)
    got, _ = rank_model("tiny", {"digits": recs}, {"digits": root / "data" / "digits"}, opts)
    loaded = load_mllm("tiny", device="cpu", dtype="float32")
    picked = sample_records(recs, 5, 0)
    assert len({r.label for r in picked}) > 1  # a random sample, not the first (one-class) records
    images = [Image.open(root / "data" / "digits" / r.image).convert("RGB") for r in picked]
    feats = _features(loaded.model, loaded.processor, loaded.family, images, [r.prompt for r in picked], ["last"], "cpu")
    Z = torch.cat(feats["last"])
    assert got[0].erank == pytest.approx(effective_rank(Z), rel=1e-6)


def test_report_numbers_equal_the_judged_files_all_formats(tiny_run, tmp_path):
    root, judged, run = tiny_run
    inputs = [*judged, root / "rank.jsonl", run]
    for ext in (".md", ".html", ".csv", ".json", ".tex"):
        r = run_cli("report", *inputs, "--out", tmp_path / f"report{ext}")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"report{ext}").stat().st_size > 200
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["base"] == "tiny" and rep["roles"] == {"digits": "pretrained", "counting": "target"}
    want = {}
    for name, path in zip(("tiny", "tiny-clip", str(run / "epoch-1"), str(run / "epoch-2")), judged):
        for task, acc in _judged_accuracy(path).items():
            want[(name, task)] = acc
    got = {(r["model"], r["task"]): r["score"] for r in rep["rows"]}
    assert got == pytest.approx(want)
    e2 = str(run / "epoch-2")
    m = rep["models"][e2]
    assert m["method"] == "full" and m["epoch"] == 2
    from mfcli.forgetting import h_score

    assert m["h_score"] == pytest.approx(h_score([want[(e2, "digits")]], [want[(e2, "counting")]]))
    assert rep["models"]["tiny-clip"]["kind"] == "vision-encoder"
    # an honest label: tiny-clip learned these tasks' labels, so its "zero-shot" row says so
    assert rep["models"]["tiny-clip"]["about"] == "vision encoder, pre-trained on these tasks' labels"
    with open(tmp_path / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["model"], r["task"]) for r in rows} == set(want)
    md = (tmp_path / "report.md").read_text()
    assert "Change against tiny" in md and "H (Model Tailor)" in md
    assert "pre-trained on these tasks' labels" in md and "whose labels it learned" in md and (tmp_path / "report_files" / "epochs.png").is_file()
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert r"\toprule" in (tmp_path / "report.tex").read_text()
    ranks = {(x["model"], x["task"]) for x in rep["ranks"]}
    assert ("tiny", "digits") in ranks


def test_report_paired_test_and_interval(tiny_run):
    root, judged, run = tiny_run
    rep = build(collect([str(p) for p in judged]))
    cell = rep.cells[(str(run / "epoch-2"), "digits")]
    base = rep.cells[("tiny", "digits")]
    assert cell.delta == pytest.approx(cell.score - base.score)
    assert 0.0 <= cell.p_value <= 1.0 and cell.interval[0] <= cell.score <= cell.interval[1]
    assert rep.curves and sorted(e for e, _ in rep.curves["full"]["counting"]) == [0.0, 1.0, 2.0]


SUMMARY_TABLE = (  # base, and three fine-tunes that each win one of the summary's three verdicts
    "model,task,score,role\n"
    "base,pre1,90,pretrained\nbase,pre2,80,pretrained\nbase,tgt,10,target\n"
    "greedy,pre1,20,pretrained\ngreedy,pre2,20,pretrained\ngreedy,tgt,95,target\n"    # learns most
    "careful,pre1,90,pretrained\ncareful,pre2,79,pretrained\ncareful,tgt,30,target\n"  # keeps most
    "balanced,pre1,80,pretrained\nbalanced,pre2,70,pretrained\nbalanced,tgt,80,target\n"  # best H: 77.4
)


def test_the_summary_names_the_right_model_for_each_verdict(tmp_path):
    from mfcli.report.render import markdown

    (tmp_path / "t.csv").write_text(SUMMARY_TABLE)
    text = markdown(build(collect([str(tmp_path / "t.csv")]), base="base"))
    line = text.split("## Summary")[1].split("\n## ")[0]
    assert "learned most: greedy, 95.0" in line
    assert "kept most of base's pre-trained scores: careful, 99.4 %" in line  # (100 + 98.75) / 2
    assert "best trade-off by H (Model Tailor): balanced, 77.4" in line  # 2·75·80 / 155
    assert text.index("## Summary") < text.index("## At a glance") < text.index("<summary>Scores per task")


def test_report_html_renders_in_chromium(tmp_path):
    # .ci/run installs Debian's chromium where it is missing, so CI renders the page
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        pytest.skip("no headless Chromium installed (Debian: apt-get install chromium)")
    (tmp_path / "t.csv").write_text(SUMMARY_TABLE)
    assert run_cli("report", tmp_path / "t.csv", "--out", tmp_path / "r.html").returncode == 0
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run(flags + ["--dump-dom", (tmp_path / "r.html").as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    summary = dom.split("<ul id=\"summary\">")[1].split("</ul>")[0]
    assert "learned most: greedy" in summary and "best trade-off by H (Model Tailor): balanced" in summary
    assert "<table>" in dom and "H (Model Tailor)" in dom
    png = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={png}", "--window-size=1200,1600", (tmp_path / "r.html").as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    lo, hi = Image.open(png).convert("L").getextrema()
    assert hi - lo > 100  # drawn, not blank


def test_plain_table_and_lmms_eval_inputs(tmp_path):
    (tmp_path / "paper.csv").write_text("model,task,score,role,n\nbase,mnist,90.0,pretrained,100\n"
                                        "base,cifar,40.0,target,100\nsft,mnist,60.0,pretrained,100\n"
                                        "sft,cifar,80.0,target,100\n")
    lmms = {"results": {"ok_vqa": {"alias": "ok_vqa", "exact_match,none": 0.5, "exact_match_stderr,none": 0.01},
                        "flickr30k": {"flickr_CIDEr,none": 0.62}},
            "config": {"model": "llava", "model_args": "pretrained=liuhaotian/llava-v1.5-7b"},
            "n-samples": {"ok_vqa": {"original": 5046, "effective": 5046}}}
    (tmp_path / "llava_results.json").write_text(json.dumps(lmms))
    res = collect([str(tmp_path / "paper.csv"), str(tmp_path / "llava_results.json")],
                  targets=["cifar", "flickr30k"])
    got = {(r.model, r.task, r.metric): (r.score, r.n) for r in res.rows}
    assert got[("liuhaotian/llava-v1.5-7b", "ok_vqa", "exact_match")] == (50.0, 5046)
    assert got[("liuhaotian/llava-v1.5-7b", "flickr30k", "flickr_CIDEr")] == (62.0, None)  # CIDEr ×100, as papers print it
    rep = build(res, base="base")
    # sft has no ok_vqa or flickr30k result: no average over fewer tasks than the other rows'
    assert rep.summary["sft"]["h_score"] is None and rep.summary["sft"]["missing"] == ["ok_vqa", "flickr30k"]
    alone = build(collect([str(tmp_path / "paper.csv")], targets=["cifar"]), base="base")
    assert alone.summary["sft"]["h_score"] == pytest.approx(2 * 60 * 80 / 140)
    assert alone.summary["sft"]["h_mdgd"] == pytest.approx(2 * 60 * 70 / 130)  # avg(all) = (60 + 80) / 2
    assert rep.cells[("sft", "mnist")].delta == pytest.approx(-30.0)
    assert rep.cells[("sft", "mnist")].interval == pytest.approx((50.2, 69.1), abs=0.1)


def test_report_bad_inputs(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("model,task,score\nm,t,1\n")
    b.write_text("model,task,score\nm,t,2\n")
    r = run_cli("report", a, b, "--target", "t")
    assert r.returncode == 1 and "a.csv" in r.stderr and "b.csv" in r.stderr and "--last-wins" in r.stderr
    r = run_cli("report", a, b, "--target", "t", "--last-wins", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["rows"][0]["score"] == 2.0
    r = run_cli("report", a)
    assert r.returncode == 1 and "--target t" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("report", a, "--target", "t", "--out", tmp_path / "x.docx")
    assert r.returncode == 2 and "unknown format" in r.stderr
    (tmp_path / "odd.txt").write_text("hello")
    r = run_cli("report", tmp_path / "odd.txt")
    assert r.returncode == 1 and "extension" in r.stderr
    (tmp_path / "future.jsonl").write_text(json.dumps({"schema": "mfcli.judged/9", "verdict": "correct"}) + "\n")
    r = run_cli("report", tmp_path / "future.jsonl")
    assert r.returncode == 1 and "mfcli.judged/9" in r.stderr
    with pytest.raises(MfcliError, match="score 'x' is not a number"):
        (tmp_path / "bad.csv").write_text("model,task,score\nm,t,x\n")
        collect([str(tmp_path / "bad.csv")], targets=["t"])


def test_seeds_are_grouped_into_mean_and_spread(tmp_path):
    # two repeats of one method named by a seed part, plus the base: mean ± sample sd per cell, and the
    # H-score as the mean of each seed's own H (H of the means would be 58.1, not 57.6)
    rows = [("tiny", "digits", 90, ""), ("tiny", "counting", 20, ""),
            ("runs/seed-0/tailor", "digits", 80, ""), ("runs/seed-0/tailor", "counting", 60, ""),
            ("runs/seed-1/tailor", "digits", 40, ""), ("runs/seed-1/tailor", "counting", 80, ""),
            ("other", "digits", 50, "3"), ("other", "digits", 70, "4"), ("other", "counting", 50, "3"),
            ("other", "counting", 50, "4")]
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "task", "score", "seed"])
        w.writerows(rows)
    rep = build(collect([str(table)]), base="tiny")
    assert rep.models == ["tiny", "runs/tailor", "other"]
    c = rep.cells[("runs/tailor", "digits")]
    assert (c.score, c.seeds) == (60.0, 2) and c.spread == pytest.approx(28.2843, abs=1e-3)
    assert c.delta == pytest.approx(-30.0)
    h0, h1 = 2 * 80 * 60 / 140, 2 * 40 * 80 / 120
    s = rep.summary["runs/tailor"]
    assert s["h_score"] == pytest.approx((h0 + h1) / 2) and s["seeds"] == 2
    assert s["h_spread"] == pytest.approx(abs(h0 - h1) / 2 ** 0.5)
    assert rep.cells[("other", "digits")].score == 60.0 and rep.summary["other"]["seeds"] == 2  # seed column
    md = run_cli("report", str(table), "--base", "tiny")
    assert md.returncode == 0 and "60.0 ± 28.3" in md.stdout, md.stderr
    apart = build(collect([str(table)], per_seed=True), base="tiny")
    assert "runs/seed-0/tailor" in apart.models


def test_display_names_drop_the_shared_directory_only():
    from mfcli.report.render import display_names

    assert display_names(["tiny", "runs/s/pen-1", "runs/s/sft/epoch-1"]) == {
        "tiny": "tiny", "runs/s/pen-1": "pen-1", "runs/s/sft/epoch-1": "sft/epoch-1"}
    assert display_names(["a/b/x", "a/c/x"]) == {"a/b/x": "b/x", "a/c/x": "c/x"}  # never alike
    assert display_names(["tiny", "runs/only"]) == {"tiny": "tiny", "runs/only": "runs/only"}


def test_rank_resumes_after_an_interruption_and_draws_tsne(tiny_run, tmp_path, monkeypatch):
    from PIL import Image

    from mfcli.analysis import rank as R

    root, _, run = tiny_run
    data = [str(root / "data" / "digits")]
    opts = R.RankOptions(nsamples=6)
    whole = R.run_rank(["tiny", str(run / "epoch-2")], data, tmp_path / "whole.jsonl", opts)
    real, calls = R.rank_model, []

    def interrupted(spec, *a, **k):
        calls.append(spec)
        if spec != "tiny" and len(calls) == 2:
            raise KeyboardInterrupt  # killed while ranking the second model
        return real(spec, *a, **k)

    monkeypatch.setattr(R, "rank_model", interrupted)
    out = tmp_path / "rank.jsonl"
    with pytest.raises(KeyboardInterrupt):
        R.run_rank(["tiny", str(run / "epoch-2")], data, out, opts)
    assert not out.exists() and (tmp_path / ".rank.jsonl.partial").is_file()  # nothing half-written
    calls.clear()
    assert R.run_rank(["tiny", str(run / "epoch-2")], data, out, opts) == whole
    assert calls == [str(run / "epoch-2")]  # the finished model was not ranked again
    assert not (tmp_path / ".rank.jsonl.partial").exists()
    assert out.read_text() == (tmp_path / "whole.jsonl").read_text()
    calls.clear()  # other options: the partial file is not trusted
    (tmp_path / ".rank.jsonl.partial").write_text((tmp_path / "whole.jsonl").read_text())
    R.run_rank(["tiny"], data, out, R.RankOptions(nsamples=4))
    assert calls == ["tiny"]

    monkeypatch.setattr(R, "rank_model", real)
    png = tmp_path / "tsne.png"
    r = run_cli("rank", "tiny", run / "epoch-2", "--data", data[0], "--nsamples", 6, "--out", tmp_path / "t.jsonl",
                "--tsne", png)
    assert r.returncode == 0, r.stderr
    with Image.open(png) as im:
        w, h = im.size
        colours = len(im.convert("RGB").getcolors(1 << 24))
    assert w > h and colours > 20  # two panels side by side, with coloured points


def test_kept_is_each_seeds_mean_share_of_the_base_score(tmp_path):
    # kept = mean over pre-trained tasks of score / base score, per seed, then mean ± sd over seeds:
    # a CIDEr task weighs as much as an accuracy (avg pre would be dominated by it), the target is out
    rows = [("tiny", "digits", 80, "", "accuracy"), ("tiny", "caps", 800, "", "cider"),
            ("tiny", "counting", 10, "", "accuracy"),
            ("runs/seed-0/ft", "digits", 40, "", "accuracy"), ("runs/seed-0/ft", "caps", 800, "", "cider"),
            ("runs/seed-0/ft", "counting", 90, "", "accuracy"),
            ("runs/seed-1/ft", "digits", 80, "", "accuracy"), ("runs/seed-1/ft", "caps", 400, "", "cider"),
            ("runs/seed-1/ft", "counting", 70, "", "accuracy")]
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "task", "score", "seed", "metric"])
        w.writerows(rows)
    rep = build(collect([str(table)], targets=["counting"]), base="tiny")
    s = rep.summary["runs/ft"]
    assert s["kept_pretrained"] == pytest.approx(75.0)  # seed 0: (50 + 100) / 2, seed 1: (100 + 50) / 2
    assert s["kept_spread"] == pytest.approx(0.0)
    assert s["target_spread"] == pytest.approx(20 / 2 ** 0.5)
    assert rep.summary["tiny"]["kept_pretrained"] == pytest.approx(100.0)
    md = run_cli("report", str(table), "--base", "tiny", "--target", "counting", "--out", tmp_path / "r.md")
    assert md.returncode == 0, md.stderr
    assert "75.0 ± 0.0" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r_files" / "tradeoff.png").is_file()


MDGD_TABLE_1 = {  # MDGD Table 1, LLaVA-1.5, target Flickr30k (CIDEr ×100): GQA VizWiz SQA TextVQA POPE MMBench | Flickr30k
    "zero-shot": ([61.94, 50.00, 66.80, 58.27, 85.90, 64.30], 3.5, 59.86, 6.64),
    "fine-tune": ([56.26, 44.45, 28.34, 38.98, 38.40, 50.56], 78.82, 45.26, 55.50),
    "lora": ([17.74, 40.63, 5.38, 30.48, 2.40, 9.55], 64.18, 20.49, None),
    "model-tailor": ([52.49, 42.28, 67.15, 43.89, 82.88, 63.40], 75.40, 59.85, 66.00),
    "mdgd": ([67.71, 48.18, 69.05, 57.32, 85.12, 65.43], 73.47, 66.03, 69.24),
    "mdgd-gm": ([69.89, 51.22, 65.87, 58.18, 84.39, 66.42], 64.18, 65.86, None),
}
MT_TABLE_2 = {  # Model Tailor Table 2, LLaVA-1.5, target Flickr30k: 8 pre-trained tasks | Flickr30k; H as printed
    "zero-shot": ([78.54, 61.94, 50.0, 66.8, 58.27, 85.9, 64.3, 58.3], 3.5, 6.64),
    "fine-tune": ([68.61, 49.01, 27.24, 63.86, 40.03, 79.73, 59.02, 50.17], 77.1, 64.00),  # printed 63.40
    "dare": ([78.12, 59.25, 48.9, 64.92, 57.17, 84.86, 64.77, 57.47], 25.6, 36.64),
    "grafting": ([74.48, 58.28, 43.16, 66.82, 52.56, 80.35, 64.52, 55.49], 58.2, 60.02),  # printed 60.03
    "ours": ([73.21, 52.49, 42.28, 67.15, 43.89, 82.88, 63.40, 56.15], 75.4, 66.94),
}


def _paper_table(path, rows):
    lines = ["model,task,score,role,metric"]
    for model, (pre, target, *_) in rows.items():
        lines += [f"{model},pre{k},{v},pretrained,accuracy" for k, v in enumerate(pre)]
        lines.append(f"{model},flickr30k,{target},target,cider")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_both_h_forms_recompute_their_papers_tables_from_a_plain_table(tmp_path):
    # METHODS.md §7: each paper's printed H comes out of model,task,score rows in its own form
    rep = build(collect([_paper_table(tmp_path / "mdgd.csv", MDGD_TABLE_1)]))
    for model, (_, _, h_mdgd, h_tailor) in MDGD_TABLE_1.items():
        assert rep.summary[model]["h_mdgd"] == pytest.approx(h_mdgd, abs=0.01), model
        if h_tailor is not None:
            assert rep.summary[model]["h_score"] == pytest.approx(h_tailor, abs=0.01), model
    rep = build(collect([_paper_table(tmp_path / "mt.csv", MT_TABLE_2)]))
    for model, (_, _, h_tailor) in MT_TABLE_2.items():
        assert rep.summary[model]["h_score"] == pytest.approx(h_tailor, abs=0.01), model


def test_report_headline_names_the_h_form_and_marks_averages_that_mix_scales(tmp_path):
    from mfcli.report.render import markdown

    path = _paper_table(tmp_path / "mt.csv", MT_TABLE_2)
    rep = build(collect([path]))
    text = markdown(rep)
    assert "H (Model Tailor) †" in text and "H (MDGD)" not in text
    assert "2·avg(pre)·avg(target)" in text and "† averages a CIDEr score" in text  # formulas under the table
    assert "Held-out scores (accuracy in %, CIDEr ×100 on its own scale" in text  # no "%" heading over a CIDEr column
    assert "H of kept (scale-free)" not in text  # the target is CIDEr: no scale-free H to give
    mdgd = markdown(rep, h_forms=("mdgd",))
    assert "H (MDGD) †" in mdgd and "avg(all)" in mdgd and "H (Model Tailor)" not in mdgd
    (tmp_path / "acc.csv").write_text("model,task,score,role\nb,x,90,pretrained\nb,y,10,target\n")
    plain = markdown(build(collect([str(tmp_path / "acc.csv")])))
    assert "H (Model Tailor) |" in plain and "†" not in plain and "Held-out scores (%" in plain
    r = run_cli("report", path, "--hscore", "both", "--out", "-")
    assert r.returncode == 0 and "H (MDGD)" in r.stdout and "H (Model Tailor)" in r.stdout
    r = run_cli("report", path, "--hscore", "paper")
    assert r.returncode == 2 and "model-tailor" in r.stderr


def test_a_row_lacking_a_task_shows_the_gap_not_an_average_over_fewer(tmp_path):
    from mfcli.report.render import markdown

    (tmp_path / "t.csv").write_text("model,task,score,role\nb,x,90,pretrained\nb,z,80,pretrained\nb,y,10,target\n"
                                    "enc,x,95,pretrained\nenc,y,50,target\n")
    rep = build(collect([str(tmp_path / "t.csv")]), base="b")
    assert rep.summary["enc"]["avg_pretrained"] is None and rep.summary["enc"]["h_score"] is None
    assert rep.summary["enc"]["missing"] == ["z"]
    assert rep.summary["b"]["avg_pretrained"] == pytest.approx(85.0)
    assert "enc has no result on z" in markdown(rep)


def test_mixed_scales_add_the_scale_free_h_of_kept(tmp_path):
    from mfcli.report.render import markdown

    (tmp_path / "t.csv").write_text("model,task,score,role,metric\nb,x,90,pretrained,accuracy\n"
                                    "b,cap,800,pretrained,cider\nb,y,10,target,accuracy\n"
                                    "s,x,45,pretrained,accuracy\ns,cap,800,pretrained,cider\ns,y,60,target,accuracy\n")
    rep = build(collect([str(tmp_path / "t.csv")]), base="b")
    kept = (50.0 + 100.0) / 2
    assert rep.summary["s"]["kept_pretrained"] == pytest.approx(kept)
    assert rep.summary["s"]["h_kept"] == pytest.approx(2 * kept * 60 / (kept + 60))
    assert rep.summary["s"]["h_score"] == pytest.approx(2 * 422.5 * 60 / 482.5)  # the paper's: CIDEr as a number
    text = markdown(rep)
    assert "H of kept (scale-free)" in text and "66.7" in report_section(text, "Scores per task")


def _summary(tmp_path, table: str) -> str:
    from mfcli.report.render import markdown

    (tmp_path / "t.csv").write_text(table)
    text = markdown(build(collect([str(tmp_path / "t.csv")]), base="base"))
    return text.split("## Summary")[1].split("\n## ")[0]


def test_the_summary_crowns_no_one_when_nothing_was_learned(tmp_path):
    """Every fine-tune at the base's 0.0 on the target: no "learned most", no "best trade-off" (the first
    model in input order used to win both, though it kept least)."""
    line = _summary(tmp_path, "model,task,score,role\nbase,pre,90,pretrained\nbase,tgt,0,target\n"
                              "forgetful,pre,70,pretrained\nforgetful,tgt,0,target\n"
                              "careful,pre,88,pretrained\ncareful,tgt,0,target\n")
    assert "nothing learned" in line and "learned most" not in line, line
    assert "best trade-off" not in line and "no trade-off named: nothing was learned" in line
    assert "kept most of base's pre-trained scores: careful" in line


def test_a_tie_is_reported_as_a_tie(tmp_path):
    line = _summary(tmp_path, "model,task,score,role\nbase,pre,90,pretrained\nbase,tgt,10,target\n"
                              "a,pre,60,pretrained\na,tgt,80,target\nb,pre,60,pretrained\nb,tgt,80,target\n")
    assert "learned most: a tie between a, b, 80.0" in line, line
    assert "kept most of base's pre-trained scores: a tie between a, b" in line
    assert "best trade-off by H (Model Tailor): a tie between a, b" in line


def test_a_lead_within_the_runner_up_spread_is_said_so(tmp_path):
    """Over seeds: a 70 ± 8 leads a 66 ± 5 by less than their spreads — the sentence says so; 90 ± 1
    against 66 ± 5 is a clear lead and says nothing more."""
    rows = ["model,task,score,role", "base,pre,90,pretrained", "base,tgt,10,target"]
    for seed, (a, b) in enumerate([(62, 61), (70, 66), (78, 71)], start=1):
        rows += [f"runs/seed-{seed}/a,pre,60,pretrained", f"runs/seed-{seed}/a,tgt,{a},target",
                 f"runs/seed-{seed}/b,pre,60,pretrained", f"runs/seed-{seed}/b,tgt,{b},target"]
    line = _summary(tmp_path, "\n".join(rows) + "\n")
    assert "learned most: runs/a" in line or "learned most: a," in line, line
    assert "within the interval of" in line and "b" in line.split("within the interval of")[1], line
    clear = [r.replace(",tgt,62,", ",tgt,89,").replace(",tgt,70,", ",tgt,90,").replace(",tgt,78,", ",tgt,91,")
             for r in rows]
    line = _summary(tmp_path, "\n".join(clear) + "\n")
    assert "learned most" in line and "within the interval" not in line, line


def test_a_task_with_too_few_records_is_said_to_be(tmp_path):
    """6 held-out records give 95 % intervals of about ±30 points: the report says the task's n is too
    small for the differences it shows; 200 records (±7) draw no such sentence."""
    from mfcli.report.render import markdown

    def judged(path, model, task, n, correct):
        rows = [{"model": model, "id": f"{task}-{i}", "task": task, "kind": "classification", "label": "a",
                 "labels": ["a", "b"], "output": "a" if i < correct else "b", "judge": "exact", "verdict":
                 "correct" if i < correct else "wrong_label", "correct": i < correct, "metric": "accuracy",
                 "score": 1.0 if i < correct else 0.0, "schema": "mfcli.judged/2", "image": f"{i}.png"}
                for i in range(n)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    files = [judged(tmp_path / "a.jsonl", "base", "tiny6", 6, 3), judged(tmp_path / "b.jsonl", "ft", "tiny6", 6, 4),
             judged(tmp_path / "c.jsonl", "base", "big", 200, 100), judged(tmp_path / "d.jsonl", "ft", "big", 200, 120)]
    text = markdown(build(collect(files, targets=["tiny6", "big"]), base="base"))
    assert "tiny6 has 6 held-out records" in text and "too few records" in text
    assert "big has 200 held-out records" not in text


def test_inputs_without_scores_and_unknown_targets_are_refused(tmp_path):
    """`report runs/lora` alone (a run directory: a training log, no judged results) used to print a
    heading and nothing else; `--target cifar10` that no input has was silently ignored; an existing
    --out was overwritten (and its old figures left beside it)."""
    run = tmp_path / "runs" / "lora"
    run.mkdir(parents=True)
    (run / "train_log.jsonl").write_text(json.dumps({"step": 1, "epoch": 0.5, "loss": 1.0, "lr": 0.1,
                                                     "grad_norm": 0.3, "seconds": 0.1}) + "\n")
    r = run_cli("report", run)
    assert r.returncode == 1 and "no scores in" in r.stderr and "judged JSONL" in r.stderr, r.stderr
    (tmp_path / "t.csv").write_text(SUMMARY_TABLE)
    r = run_cli("report", tmp_path / "t.csv", "--target", "cifar10")
    assert r.returncode == 2 and "cifar10" in r.stderr and "pre1, pre2, tgt" in r.stderr, r.stderr
    out = tmp_path / "r.html"
    assert run_cli("report", tmp_path / "t.csv", "--out", out).returncode == 0
    stale = tmp_path / "r_files" / "old-figure.png"
    stale.write_bytes(b"x")
    r = run_cli("report", tmp_path / "t.csv", "--out", out)
    assert r.returncode == 1 and "already exists" in r.stderr and "--overwrite" in r.stderr
    assert run_cli("report", tmp_path / "t.csv", "--out", out, "--overwrite").returncode == 0
    assert not stale.exists()
