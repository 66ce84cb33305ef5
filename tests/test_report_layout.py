"""The report a reader grasps at a glance (issue 43): the answer first — summary and the kept-against-
learned figure in the first viewport of a 1366×768 screen — the evidence folded below, every figure at
one width and a readable type size, labels that never overprint, marks that travel, and the inputs read
through one registry."""

import csv
import json
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import pytest

from conftest import report_section, run_cli
from mfcli.report.build import build
from mfcli.report.table import collect

TASKS = [("digits", "pretrained", "accuracy"), ("icons", "pretrained", "accuracy"), ("shapes", "pretrained", "accuracy"),
         ("scene-objects", "pretrained", "cider"), ("counting", "target", "accuracy")]
# the demo's cast: 15 models with long names, several close together on the trade-off
MODELS = {"tiny": (98, 97, 89, 900, 6)}
for k, (keep, learn) in enumerate([(0.58, 40), (0.57, 47), (0.59, 49), (0.85, 42), (0.82, 52), (0.82, 51),
                                   (0.70, 70), (0.64, 86), (0.65, 72), (0.83, 56), (0.61, 71), (0.98, 44),
                                   (0.97, 34), (0.98, 47)]):
    group = ["linear", "lora", "full", "tailor", "mdgd"][min(k // 3, 4)]
    MODELS[f"finetune/{group}/epoch-{k % 3 + 1}-run{k}"] = (98 * keep, 97 * keep, 89 * keep, 900 * keep, learn)


def demo_like_table(path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "task", "score", "role", "metric", "n"])
        for model, scores in MODELS.items():
            for (task, role, metric), score in zip(TASKS, scores):
                w.writerow([model, task, score, role, metric, 600])
    return path


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("no headless Chromium installed (Debian: apt-get install chromium)")
    return found


MEASURE = """<script>
window.addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const out = {viewport: [innerWidth, innerHeight], summary: box(document.getElementById('summary')),
               figure: box(document.querySelector('#headline-figure img'))};
  document.querySelectorAll('details').forEach(d => d.open = true);
  out.widths = [...document.images].map(i => i.getBoundingClientRect().width);
  out.loaded = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  out.sources = [...document.images].map(i => i.getAttribute('src').slice(0, 5));
  const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body>"""


def measure(page: Path, tmp: Path) -> dict:
    """Open a copy of the page (with a measuring script) in headless Chromium at 1366×768, alone in a
    directory of its own (so only what the page embeds can show)."""
    alone = tmp / "elsewhere"
    alone.mkdir(exist_ok=True)
    copy = alone / "page.html"
    copy.write_text(page.read_text().replace("</body>", MEASURE))
    dom = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1366,768", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(dom.split('<pre id="measured">')[1].split("</pre>")[0])


@pytest.fixture(scope="module")
def demo_like_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    r = run_cli("report", demo_like_table(tmp / "t.csv"), "--base", "tiny", "--out", tmp / "r.html")
    assert r.returncode == 0, r.stderr
    assert run_cli("report", tmp / "t.csv", "--base", "tiny", "--out", tmp / "r.md").returncode == 0
    return tmp


def test_the_first_screen_holds_the_summary_and_the_tradeoff_figure(demo_like_report):
    got = measure(demo_like_report / "r.html", demo_like_report)
    width, height = got["viewport"]  # headless Chromium keeps ~90 px of a 768 px window for its frame, as a
    assert width == 1366 and 600 <= height <= 768  # browser on a 1366×768 screen does: the page gets the rest
    for what in ("summary", "figure"):
        left, top, right, bottom = got[what]
        assert 0 <= left < right <= width and 0 <= top < bottom <= height, (what, got[what])


def test_every_figure_shows_at_one_css_width_and_embedded(demo_like_report):
    from mfcli.report.plots import FIGURE_CSS_PX

    got = measure(demo_like_report / "r.html", demo_like_report)
    assert len(got["widths"]) >= 2  # the headline and the scores (a table has no curves or verdicts)
    assert set(got["widths"]) == {FIGURE_CSS_PX}
    assert all(got["loaded"]) and set(got["sources"]) == {"data:"}  # opened from another directory


def test_figures_share_one_pixel_width_and_no_type_below_the_minimum(demo_like_report):
    from PIL import Image

    from mfcli.report.plots import DPI, FIG_WIDTH, FONT_META, MIN_FONT

    pngs = sorted((demo_like_report / "r_files").glob("*.png"))
    assert {p.name for p in pngs} >= {"tradeoff.png", "scores.png"}
    for png in pngs:
        with Image.open(png) as im:
            assert im.size[0] == round(FIG_WIDTH * DPI), png.name
            assert float(im.info[FONT_META]) >= MIN_FONT, (png.name, im.info[FONT_META])


def test_the_minimum_font_check_catches_a_small_label(tmp_path):
    from mfcli.report import plots as P

    plt = P._plt()
    fig, axes = P._figure(plt, 2.0)
    axes[0][0].text(0.5, 0.5, "tiny print", fontsize=5)
    assert P.smallest_font(fig) == 5  # what the PNG would record, and the test above refuse
    plt.close(fig)


def _boxes(fig, ax):
    from mfcli.report.plots import text_box

    renderer = fig.canvas.get_renderer()
    return [(a.get_text(), text_box(a, renderer)) for a in ax.texts]


def test_no_two_tradeoff_labels_overlap_even_in_a_crowd():
    """Twelve models within a point of each other, and two far off: every label clear of every other
    label and every marker, inside the axes; a lone model's label sits right beside it."""
    from mfcli.report import plots as P

    crowd = [P.Point(f"finetune/lora/epoch-{i}", 80 + (i % 4) * 0.3, 40 + (i // 4) * 0.4) for i in range(12)]
    alone = [P.Point("tiny", 100.0, 0.0, base=True, pareto=True), P.Point("full", 60.0, 80.0, pareto=True,
                                                                          gain_err=(75.0, 85.0))]
    fig = P.tradeoff_figure(crowd + alone, "crowd")
    ax = fig.axes[0]
    boxes = _boxes(fig, ax)
    assert sorted(t for t, _ in boxes) == sorted(p.name for p in crowd + alone)  # every model named in full
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for text, box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        for p in crowd + alone:
            px, py = ax.transData.transform((p.kept, p.gain))
            assert not (box.x0 < px < box.x1 and box.y0 < py < box.y1), (text, p.name)  # no label on a marker
    x, y = ax.transData.transform((100.0, 0.0))
    tiny = dict(boxes)["tiny"]
    assert abs(tiny.x0 - x) < 30 or abs(tiny.x1 - x) < 30  # uncrowded: beside its point
    P._plt().close(fig)


def test_the_pareto_front_is_drawn_through_the_models_no_other_beats(tmp_path):
    from mfcli.report.build import _headline
    from mfcli.report.plots import Point, tradeoff_figure

    table_rep = build(collect_table(tmp_path, {"base": (90, 80, 10), "greedy": (20, 20, 95), "careful": (90, 79, 30),
                                     "dominated": (50, 50, 20)}), base="base")
    points = {p.model: p for p in _headline(table_rep)}
    assert {m for m, p in points.items() if p.pareto} == {"base", "greedy", "careful"}
    fig = tradeoff_figure([Point(p.model, p.kept, p.gain, pareto=p.pareto, base=p.base) for p in points.values()], "t")
    front = [line for line in fig.axes[0].lines if line.get_label() == "Pareto front"]
    assert len(front) == 1 and sorted(front[0].get_xdata()) == sorted(p.kept for p in points.values() if p.pareto)


def collect_table(folder: Path, rows: dict):
    """A report's inputs from {model: (pre1, pre2, target)}, 200 records each."""
    path = folder / "t.csv"
    lines = ["model,task,score,role,n"]
    for model, (pre1, pre2, tgt) in rows.items():
        lines += [f"{model},pre1,{pre1},pretrained,200", f"{model},pre2,{pre2},pretrained,200",
                  f"{model},tgt,{tgt},target,200"]
    path.write_text("\n".join(lines) + "\n")
    return collect([str(path)])


def test_markdown_has_the_same_order_and_open_sections(demo_like_report):
    text = (demo_like_report / "r.md").read_text()
    order = [text.index(x) for x in ("## Summary", "![What each model kept", "## At a glance", "## Evidence",
                                     "<summary>Scores per task")]
    assert order == sorted(order)
    assert text.count("<details open>") == text.count("</details>") >= 2
    assert "scene-objects" in report_section(text, "Scores per task")


def _judged(folder: Path, model: str, right: dict) -> str:
    """A judged file: per task a list of right/wrong records, one image each."""
    rows = [{"schema": "mfcli.judged/2", "id": f"{task}-{i}", "image": f"{task}/{i}.png", "task": task,
             "metric": "accuracy", "verdict": "correct" if ok else "wrong", "model": model}
            for task, outcomes in right.items() for i, ok in enumerate(outcomes)]
    path = folder / f"{model}.judged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_change_shows_its_mark_and_hides_interval_and_p_behind_it(tmp_path):
    """The headline cell: the change and its significance mark; the interval, exact p and test in its
    title (HTML hover) — and written out in the folded change table."""
    base = _judged(tmp_path, "base", {"pre": [True] * 100, "tgt": [False] * 100})
    sft = _judged(tmp_path, "sft", {"pre": [True] * 97 + [False] * 3, "tgt": [True] * 60 + [False] * 40})
    assert run_cli("report", base, sft, "--target", "tgt", "--base", "base", "--out", tmp_path / "r.html").returncode == 0
    assert run_cli("report", base, sft, "--target", "tgt", "--base", "base", "--out", tmp_path / "r.md").returncode == 0
    page = (tmp_path / "r.html").read_text()
    row = page.split("id='headline'")[1].split("</table>")[0].split("<td>sft</td>")[1].split("</tr>")[0]
    cell = row.split("<td title='")[1]
    title, shown = cell.split("'>")[0], cell.split("'>")[1].split("</td>")[0]
    assert shown == "+60.0*"  # 60 of 100 discordant pairs, all one way: McNemar's p far below 0.05
    assert "95 % CI [+" in title and "p = " in title and "McNemar" in title
    md = (tmp_path / "r.md").read_text()
    glance = md.split("## At a glance")[1].split("\n\n")[1]
    assert "+60.0\\*" in glance and "p =" not in glance and "[" not in glance  # no interval or p in the cells
    change = report_section(md, "Change against base per task")
    assert "+60.0 [+" in change and "McNemar" in change
    # pre: 3 discordant of 100, p = 0.25 — the mark is absent and the folded table says n.s.
    assert "-3.0 n.s." in change and "-3.0<" not in row and "-3.0*" not in glance


def test_a_randomised_p_below_its_resolution_prints_as_a_bound():
    from mfcli.report.build import Cell
    from mfcli.report.render import _p_text

    assert _p_text(Cell(1.0, 10, p_value=0.0, test="sign-flip by image")) == "p < 0.001"
    assert _p_text(Cell(1.0, 10, p_value=0.0004, test="exact McNemar")) == "p = 0.0004"  # exact tests resolve it
    assert _p_text(Cell(1.0, 10, p_value=0.02, test="sign-flip by image")) == "p = 0.02"


def test_intervals_sit_in_their_own_csv_and_json_fields(demo_like_report):
    r = run_cli("report", demo_like_report / "t.csv", "--base", "tiny", "--json")
    rows = json.loads(r.stdout)["rows"]
    row = next(x for x in rows if x["model"] == "tiny" and x["task"] == "digits")
    assert row["ci_low"] < row["score"] < row["ci_high"] and isinstance(row["ci_low"], float)
    assert all(not isinstance(v, str) or "[" not in v for x in rows for v in x.values())


# ---- marks that travel ---------------------------------------------------------------------------------

def _watch_run(folder: Path, caption: bool) -> Path:
    from mfcli.io.records import WatchRecord

    folder.mkdir(parents=True)
    metrics = {"shapes": "accuracy", "caps" if caption else "icons": "cider" if caption else "accuracy",
               "counting": "accuracy"}
    other = "caps" if caption else "icons"
    records = []
    for step, (s, o, c) in enumerate([(90.0, 800.0 if caption else 95.0, 5.0), (70.0, 600.0 if caption else 80.0, 60.0)]):
        records.append(WatchRecord(step=step * 10, epoch=float(step), scores={"shapes": s, other: o, "counting": c},
                                   metrics=metrics, n={"shapes": 50, other: 50, "counting": 50},
                                   targets=("counting",), kept={}, kept_mean=80.0, target=c, target_gain=c - 5.0,
                                   h=2 * c * (s + o) / 2 / (c + (s + o) / 2), h_mdgd=None, h_kept=None))
    (folder / "watch.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    return folder / "watch.jsonl"


@pytest.mark.parametrize("caption", [True, False])
def test_a_watch_h_over_a_cider_score_is_marked_in_tables_and_json(tmp_path, caption):
    watch = _watch_run(tmp_path / "run", caption)
    r = run_cli("report", watch, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["watches"]
    assert got[str(tmp_path / "run")]["mixed_scale"] == (["h", "h_mdgd"] if caption else [])
    md = run_cli("report", watch).stdout
    header = next(line for line in report_section(md, "Forgetting watch").splitlines() if line.startswith("| run"))
    assert ("H (Model Tailor) †" in header) is caption and ("H of kept" in header) is caption


# ---- inputs through one registry -------------------------------------------------------------------------

def test_a_new_input_format_is_one_registered_reader(tmp_path):
    """A TSV of scores from another harness, as a user would add it: `mfcli report` reads it with no other
    edit, and its rows land in the report like any table's."""
    from mfcli.report.inputs import INPUTS, register
    from mfcli.report.results import ModelInfo, Row

    def read(found, res):
        for line in found.path.read_text().splitlines()[1:]:
            model, task, score = line.split("\t")
            res.models.setdefault(model, ModelInfo(model))
            res.rows.append(Row(model, task, float(score), source=str(found.path)))
            res.roles.setdefault(task, "target" if task == "new" else "pretrained")

    register("harness-tsv", claims=lambda f: f.suffix == ".tsv", summary="another harness's scores")(read)
    try:
        (tmp_path / "s.tsv").write_text("model\ttask\tscore\nbase\told\t90\nbase\tnew\t10\nft\told\t70\nft\tnew\t80\n")
        r = run_cli("report", tmp_path / "s.tsv", "--base", "base", "--json")
        assert r.returncode == 0, r.stderr
        got = {(x["model"], x["task"]): x["score"] for x in json.loads(r.stdout)["rows"]}
        assert got == {("base", "old"): 90.0, ("base", "new"): 10.0, ("ft", "old"): 70.0, ("ft", "new"): 80.0}
    finally:
        INPUTS.pop("harness-tsv")


def test_the_registry_refuses_a_second_reader_of_one_name():
    from mfcli.report.inputs import register

    with pytest.raises(ValueError, match="registered twice"):
        register("judged", claims=lambda f: False, summary="again")(lambda f, r: None)


def test_each_builtin_reader_claims_its_own_format(tmp_path, demo_like_report):
    from mfcli.report.inputs import read_input
    from mfcli.report.results import Results

    (tmp_path / "report.json").write_text(run_cli("report", demo_like_report / "t.csv", "--base", "tiny",
                                                  "--json").stdout)
    (tmp_path / "lmms_results.json").write_text(json.dumps({"results": {"ok_vqa": {"exact_match,none": 0.5}},
                                                            "config": {"model": "llava"}}))
    (tmp_path / "t.jsonl").write_text(json.dumps({"model": "m", "task": "t", "score": 1}) + "\n")
    got = {name: read_input(str(tmp_path / name), Results()) for name in ("report.json", "lmms_results.json", "t.jsonl")}
    assert got == {"report.json": "report-json", "lmms_results.json": "lmms-eval", "t.jsonl": "table"}
    assert read_input(str(demo_like_report / "t.csv"), Results()) == "table"


def test_a_reports_json_read_back_gives_the_same_table(demo_like_report, tmp_path):
    """A report's JSON is an input too (fronts of several studies combine): read back, every score and
    role is the same, and so are the summary's averages and H."""
    first = json.loads(run_cli("report", demo_like_report / "t.csv", "--base", "tiny", "--json").stdout)
    (tmp_path / "first.json").write_text(json.dumps(first))
    again = json.loads(run_cli("report", tmp_path / "first.json", "--base", "tiny", "--json").stdout)
    key = lambda rows: {(x["model"], x["task"]): (x["score"], x["role"]) for x in rows}  # noqa: E731
    assert key(again["rows"]) == key(first["rows"])
    for m, s in first["models"].items():
        assert again["models"][m]["h_score"] == pytest.approx(s["h_score"]) if s["h_score"] is not None else True


def test_the_demo_like_report_json_validates_against_the_documented_schema(demo_like_report):
    jsonschema = pytest.importorskip("jsonschema")
    from mfcli.report.schema import REPORT_JSON_SCHEMA

    out = json.loads(run_cli("report", demo_like_report / "t.csv", "--base", "tiny", "--json").stdout)
    jsonschema.validate(out, REPORT_JSON_SCHEMA)
    out["rows"][0]["score"] = "98.1 [96.0, 99.1]"  # an interval in a string: what the schema forbids
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(out, REPORT_JSON_SCHEMA)


def test_the_schema_in_the_docs_is_the_one_the_test_validates_against():
    from mfcli.report.schema import REPORT_JSON_SCHEMA

    docs = (Path(__file__).parent.parent / "docs" / "formats.md").read_text()
    block = docs.split("<!-- report-schema -->")[1].split("```json")[1].split("```")[0]
    assert json.loads(block) == REPORT_JSON_SCHEMA


@pytest.mark.parametrize("other, metric, marked", [("caps", "cider", True), ("icons", "accuracy", False)])
def test_the_watch_record_and_its_live_line_carry_the_mark(other, metric, marked):
    from mfcli.train.watch import live_line, make_record

    metrics = {"shapes": "accuracy", other: metric, "counting": "accuracy"}
    rec = make_record(10, 1.0, {"shapes": 80.0, other: 70.0, "counting": 50.0}, metrics,
                      {t: 50 for t in metrics}, ("counting",), base={"shapes": 90.0, other: 80.0, "counting": 5.0})
    assert rec.mixed_scale == (["h", "h_mdgd"] if marked else [])
    assert ("H 60.0 †" in live_line(rec)) is marked and "H 60.0" in live_line(rec)
    assert json.loads(json.dumps(rec.to_json()))["mixed_scale"] == rec.mixed_scale  # written to watch.jsonl
