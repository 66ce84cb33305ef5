"""Render a Report as Markdown, HTML (one self-contained file, plots as data URIs), CSV, JSON or
booktabs LaTeX. Plots are PNGs written beside the report."""

from __future__ import annotations

from dataclasses import asdict

import base64
import csv
import html
import io
import json
from pathlib import Path

from mfcli.forgetting import percent_scale
from mfcli.io.records import REPORT_SCHEMA
from mfcli.report.build import ALPHA, Report
from mfcli.report.paired import P_RESOLUTION
from mfcli.report.stats import H_FORMULAS, H_KEYS, H_LABELS
from mfcli.report.summary import summary_lines
from mfcli.report.table import TINY_CLIP_ABOUT

FORMATS = (".md", ".html", ".csv", ".json", ".tex")


def _fmt(x, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _cell_text(rep: Report, m: str, t: str, *, interval: bool = True) -> str:
    c = rep.cells.get((m, t))
    if c is None:
        return ""  # missing, never zero
    s = _fmt(c.score) + (f" ± {c.spread:.1f}" if c.spread is not None else
                         f" [{c.interval[0]:.1f}, {c.interval[1]:.1f}]" if interval and c.interval else "")
    return s + (" ‡" if c.selected_on else "")  # chosen on these very records


def display_names(names) -> dict[str, str]:
    """Shorter names for tables and plots: the directory every path-like name shares is dropped
    (runs/study/pen-1 → pen-1); built-in names and a lone model stay as they are. JSON/CSV keep the
    full names."""
    names = list(dict.fromkeys(names))
    paths = [n.split("/") for n in names if "/" in n]
    if len(paths) < 2:
        return {n: n for n in names}
    common = 0
    while all(len(p) > common + 1 and p[common] == paths[0][common] for p in paths):
        common += 1
    short = {n: "/".join(n.split("/")[common:]) if "/" in n else n for n in names}
    if len(set(short.values())) < len(short):  # never make two models look alike
        return {n: n for n in names}
    return short


def names_of(rep) -> dict[str, str]:
    """One display name per model for every table, figure and sentence of a report, computed over every
    model it names (scores and ranks alike), so a figure never shows a prefix its table drops."""
    return display_names(list(rep.models) + [m for m, _ in rep.ranks])


def _spread_text(s: dict, key: str, spread: str) -> str:
    if s.get(key) is not None and s.get(spread) is not None:
        return f"{s[key]:.1f} ± {s[spread]:.1f}"
    return _fmt(s.get(key))


DEFAULT_H = ("model-tailor",)


def _h_text(s: dict, form: str = "model-tailor") -> str:
    key, spread = H_KEYS[form]
    return _spread_text(s, key, spread)


def _off_percent(rep: Report) -> list[str]:
    """Tasks whose scores are not percentages: a caption metric (×100, CIDEr to 1000) or one on its own
    scale (the one test of that, forgetting.percent_scale), or any task scored above 100."""
    return [t for t in rep.tasks if any(tt == t and (not percent_scale(c.metric) or c.score > 100)
                                        for (_, tt), c in rep.cells.items())]


def _delta_text(rep: Report, m: str, t: str) -> str:
    c = rep.cells.get((m, t))
    if c is None or c.delta is None:
        return ""
    s = f"{c.delta:+.1f}"
    if c.delta_interval:
        s += f" [{c.delta_interval[0]:+.1f}, {c.delta_interval[1]:+.1f}]"
    if c.p_value is None:
        if c.seeds:
            return s + f" (mean of {c.seeds} seeds{', all equal' if c.test == 'all seeds equal' else ''})"
        return s + " (unpaired)"  # a paired test needs both models' records
    tag = {"exact McNemar": "McNemar"}.get(c.test, c.test or "")
    randomised = (c.test or "").startswith("sign-flip")
    p = "p < 0.001" if randomised and c.p_value < P_RESOLUTION else f"p={c.p_value:.3g}"
    return s + ("" if c.p_value <= ALPHA else " n.s.") + f" ({p}{', ' + tag if tag else ''})" + \
        (" ‡" if c.selected_on else "")


METRIC_NAMES = {"vqa_accuracy": "VQA acc", "cider": "CIDEr"}


def _metric_tag(rep: Report, task: str) -> str:
    """", CIDEr" after a task scored on another metric than accuracy."""
    metrics = {c.metric for (m, t), c in rep.cells.items() if t == task}
    metric = metrics.pop() if len(metrics) == 1 else None
    return "" if metric in (None, "accuracy") else f", {METRIC_NAMES.get(metric, metric)}"


def tables(rep: Report, h_forms=DEFAULT_H) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables as header + string rows, shared by Markdown and HTML."""
    out = {}
    off = _off_percent(rep)
    mark = " †" if off else ""  # an average that takes a CIDEr score as a number
    pre_mark = " †" if any(rep.roles[t] == "pretrained" for t in off) else ""
    tgt_mark = " †" if any(rep.roles[t] == "target" for t in off) else ""
    head = (["model", "method", "epoch"]
            + [f"{t} ({'pre' if rep.roles[t] == 'pretrained' else 'target'}{_metric_tag(rep, t)})" for t in rep.tasks]
            + [f"avg pre{pre_mark}", "kept (% of base)", f"avg target{tgt_mark}"] + [f"{H_LABELS[f]}{mark}" for f in h_forms])
    kept_h = bool(mark) and any(s.get("h_kept") is not None for s in rep.summary.values())
    if kept_h:  # mixed scales: the scale-free trade-off beside the papers' H, which takes CIDEr as a number
        head.append("H of kept (scale-free)")
    body = []
    name = names_of(rep)
    for m in rep.models:
        s = rep.summary[m]
        method = (s.get("about") or "vision encoder") if s["kind"] == "vision-encoder" else (s["method"] or "")
        gap = "—" if s.get("missing") else ""
        body.append([name[m], method, _fmt(s["epoch"], 0)] + [_cell_text(rep, m, t) for t in rep.tasks]
                    + [_fmt(s["avg_pretrained"]) or gap, _spread_text(s, "kept_pretrained", "kept_spread") or gap,
                       _spread_text(s, "avg_target", "target_spread") or gap]
                    + [_h_text(s, f) or gap for f in h_forms]
                    + ([_spread_text(s, "h_kept", "h_kept_spread") or gap] if kept_h else []))
    seeded = any(s.get("seeds") for s in rep.summary.values())
    if not body:  # a run with a watch and nothing evaluated yet
        body = None
    scale = "accuracy in %, CIDEr ×100 on its own scale" if mark else "%"
    if body:
        out[f"Scores ({scale}, with 95 % Wilson interval" + ("; mean ± sd over seeds where a model has several"
                                                            if seeded else "") + ")"] = (head, body)
    if rep.base:
        head = ["model"] + rep.tasks
        body = [[name[m]] + [_delta_text(rep, m, t) for t in rep.tasks] for m in rep.models if m != rep.base]
        if body:
            out[f"Change against {name[rep.base]} (points, CIDEr ×100 for caption tasks; 95 % paired-bootstrap "
                f"interval by image; p and its test in each cell: exact McNemar where each image holds one right/wrong "
                f"record, else a sign-flip permutation test by image (several questions about one image are not "
                f"independent); a model with several seeds: Student's t over its seeds; n.s. = p > {ALPHA})"] = (head, body)
    if rep.verdicts:
        kinds = sorted({v for d in rep.verdicts.values() for v in d})
        out["Where the answers go (% of records scored by accuracy)"] = (["model"] + kinds, [[name[m]] + [_fmt(rep.verdicts[m].get(v, 0.0)) for v in kinds]
                                                                       for m in rep.models if m in rep.verdicts])
    if rep.ranks:
        rtasks = sorted({t for _, t in rep.ranks})
        rmodels = list(dict.fromkeys([m for m in rep.models if any((m, t) in rep.ranks for t in rtasks)]
                                     + [m for m, _ in rep.ranks]))
        out["Effective rank of visual features (last layer, after the final norm)"] = (
            ["model"] + rtasks, [[name[m]] + [_fmt(rep.ranks.get((m, t)), 2) for t in rtasks] for m in rmodels])
    if rep.front:
        out["Trade-off front (kept against target gain, each method over its budgets; ✓ = Pareto-optimal)"] = (
            ["model", "method", "budget ρ", "kept (% of base)", "target gain (points)", "Pareto"],
            [[name[p.model], p.method, _fmt(p.budget, 2) if p.budget is not None else "—", _fmt(p.kept),
              _fmt(p.gain), "✓" if p.pareto else ""] for p in rep.front])
    if rep.watches:
        out["Forgetting watch (scores on the watch sample; kept = % of step 0's, H = Model Tailor's)"] = watch_table(rep)
    if rep.bwt:
        out["Backward transfer over fine-tuning sequences"] = (
            ["model", "sequence", "tasks", "BWT"],
            [[m, " → ".join(v["sequence"]), ", ".join(v["tasks"]), _fmt(v["bwt"])] for m, v in rep.bwt.items()])
    return out


def _by_scale(rep: Report) -> tuple[tuple[set[str], str, str], ...]:
    """(tasks, file-name suffix, axis label) per scale: percentages, then CIDEr (×100). CIDEr-D runs to
    1000, so caption tasks get charts of their own or they flatten every percentage drawn beside them."""
    cider = {t for (_, t), c in rep.cells.items() if "cider" in c.metric.lower()}
    every = set(rep.tasks) | {t for by_task in rep.curves.values() for t in by_task}
    return (every - cider, "", "score (%)"), (cider, "-cider", "CIDEr (×100)")


def plots(rep: Report, folder: Path) -> list[tuple[str, Path]]:
    from mfcli.report import plots as P

    if folder.is_dir():  # a replaced report's figures: none of them may outlive it
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    name = names_of(rep)
    by_scale = _by_scale(rep)
    for (tasks, suffix, ylabel), title in zip(by_scale, ("Held-out score per task", "Held-out CIDEr per caption task")):
        scores = {name[m]: {t: rep.cells[(m, t)].score for t in tasks if (m, t) in rep.cells} for m in rep.models}
        if any(scores.values()):
            made.append((title, P.grouped_bars({m: v for m, v in scores.items() if v}, folder / f"scores{suffix}.png",
                                               ylabel, title)))
    points = {name[m]: (s["avg_target"], s["kept_pretrained"], s.get("target_spread"), s.get("kept_spread"))
              for m, s in rep.summary.items()
              if s["kind"] != "vision-encoder" and s["avg_target"] is not None and s["kept_pretrained"] is not None}
    if len(points) > 1:
        made.append(("Learned vs kept", P.tradeoff(points, folder / "tradeoff.png", "avg target score",
                                                   "kept (% of base, mean over pre-trained tasks)",
                                                   "What each model learned and what it kept (error bars: sd over seeds)")))
    for (tasks, suffix, ylabel), title in zip(by_scale, ("Per-epoch scores", "Per-epoch CIDEr")):
        curves = {run: {t: pts for t, pts in by_task.items() if t in tasks} for run, by_task in rep.curves.items()}
        if any(curves.values()):
            made.append((title, P.epoch_curves(curves, folder / f"epochs{suffix}.png", ylabel)))
    if rep.verdicts:
        made.append(("Verdicts", P.grouped_bars(rep.verdicts, folder / "verdicts.png", "% of records",
                                                "Where the answers go")))
    if rep.ranks:
        ranks = {m: {t: v for (mm, t), v in rep.ranks.items() if mm == m} for m in dict.fromkeys(m for m, _ in rep.ranks)}
        made.append(("Effective rank", P.grouped_bars(ranks, folder / "erank.png", "effective rank",
                                                      "Effective rank of visual features")))
    if rep.front:
        made.append(("Trade-off front", P.front(rep.front, folder / "front.png")))
    for run, records in rep.watches.items():
        if len(records) > 1:
            made.append((f"Forgetting watch: {Path(run).name}", P.watch(records, folder / f"watch-{Path(run).name}.png",
                                                                        f"Forgetting watch: {Path(run).name}")))
    loss = {Path(run).name: [(r.step, r.loss) for r in rows] for run, rows in rep.logs.items()}
    if any(loss.values()):
        made.append(("Training loss", P.lines(loss, folder / "loss.png", "step", "loss", "Training loss")))
    cos = {Path(run).name: [(r.step, r.extra["cos_grad_pre"]) for r in rows if "cos_grad_pre" in r.extra]
           for run, rows in rep.logs.items()}
    if any(cos.values()):
        made.append(("MDGD gradient cosine", P.lines({k: v for k, v in cos.items() if v}, folder / "mdgd_cos.png",
                                                    "step", "cos(∇L_t(θ), ∇L_t(θ_pre))", "MDGD: task-gradient agreement")))
    return made


def watch_table(rep: Report) -> tuple[list[str], list[list[str]]]:
    """Per watched run: step 0, the best evaluation (by the run's criterion) and the last."""
    head = ["run", "evaluation", "step", "epoch", "target", "gain", "kept (%)", "H (Model Tailor)", "H (MDGD)",
            "criterion"]
    body = []
    for run, records in rep.watches.items():
        best = next((r for r in reversed(records) if r.best), None)
        picks = [("step 0", records[0])] + ([("best", best)] if best and best.step else []) + [("last", records[-1])]
        for what, r in picks:
            if what == "last" and r.stop:
                what = f"last (stopped: {r.stop})"
            body.append([Path(run).name, what, str(r.step), _fmt(r.epoch, 2), _fmt(r.target),
                         _fmt(r.target_gain), _fmt(r.kept_mean), _fmt(r.h), _fmt(r.h_mdgd),
                         f"{r.criterion} {_fmt(r.value, 2)}"])
    return head, body


def markdown(rep: Report, images: list[tuple[str, Path]] = (), rel_to: Path | None = None,
             h_forms=DEFAULT_H) -> str:
    lines = ["# mfcli report", ""]
    said = summary_lines(rep, names_of(rep), h_forms[0], mixed=bool(_off_percent(rep)))
    if said:
        lines += ["## Summary", ""] + [f"- {x}" for x in said] + [""]
    for title, (head, body) in tables(rep, h_forms).items():
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body] + [""]
    if rep.tasks:
        lines += [_notes(rep, h_forms), ""]
    for title, png in images:
        rel = png.relative_to(rel_to) if rel_to else png
        lines += [f"![{title}]({rel.as_posix()})", ""]
    return "\n".join(lines)


def _notes(rep: Report, h_forms=DEFAULT_H) -> str:
    """What every derived column is, printed under the table."""
    pre = [t for t in rep.tasks if rep.roles[t] == "pretrained"]
    tgt = [t for t in rep.tasks if rep.roles[t] == "target"]
    s = (f"Pre-trained tasks: {', '.join(pre) or '—'}; targets: {', '.join(tgt) or '—'}. "
         "avg pre = mean score over every pre-trained task; avg target = over every target; "
         "kept (% of base) = mean over pre-trained tasks of score / the base model's score × 100 (scale-free); "
         + "; ".join(H_FORMULAS[f] for f in h_forms) + ". ")
    off = _off_percent(rep)
    if off:
        s += (f"† averages a CIDEr score (×100: {', '.join(off)}) as a number beside percentages, as Model Tailor's "
              "Table 2 and MDGD's Table 1 take Flickr30k's: not a percentage, and above 100 where the CIDEr is; "
              "compare such rows by 'kept (% of base)', each task on its own scale, and 'H of kept' = "
              "2·kept·avg(target) / (kept + avg(target)) (mfcli's, scale-free on the pre-trained side; where every "
              "target is scored in %). ")
    name = names_of(rep)
    if any(rep.summary[m].get("about") == TINY_CLIP_ABOUT for m in rep.models):
        s += ("tiny-clip, tiny's vision tower, was pre-trained with the labelled training images of every built-in "
              "classification task, the targets included; its zero-shot scores are on held-out images of tasks "
              "whose labels it learned — as CLIP's are on labels the web showed it. ")
    for m in rep.models:
        if rep.summary[m].get("missing"):
            s += (f"{name[m]} has no result on {', '.join(rep.summary[m]['missing'])}: no averages (—), which would "
                  "run over fewer tasks than the other rows'. ")
    s += _small_n_notes(rep) + _selected_notes(rep) + build_notes(rep)
    return s + "Empty cells: no result."


def _build_text(build: dict) -> str:
    fp, libs = build["fingerprint"], build["fingerprint"].get("libraries") or {}
    digests = ", ".join(f"{name} {d[:12]}…" for name, d in build["digests"].items())
    return (f"recipe {fp.get('recipe_version')}, weights sha256 {digests} "
            f"(torch {libs.get('torch')}, transformers {libs.get('transformers')}, pillow {libs.get('pillow')}; "
            f"kernel {fp.get('cpu_capability')}, MKL_CBWR {fp.get('mkl_cbwr')}, {fp.get('threads')} threads"
            f"{'' if fp.get('pinned') else ', not pinned'})")


def build_notes(rep) -> str:
    """Which build of a built-in model the numbers come from; a warning when they come from several."""
    if not rep.builds:
        return ""
    if len(rep.builds) == 1:
        return f"Built-in model: {_build_text(rep.builds[0])}. "
    from mfcli.provenance import differences

    name = names_of(rep)
    first = rep.builds[0]["fingerprint"]
    parts = [f"{_build_text(b)} for {', '.join(name[m] for m in b['models'])}" for b in rep.builds]
    diff = "; ".join(differences(rep.builds[1]["fingerprint"], first)[:4])
    return (f"These models descend from {len(rep.builds)} different builds of the built-in model — "
            + "; ".join(parts) + f" (they differ in: {diff}): their scores are not comparable number for number. ")


def _selected_notes(rep) -> str:
    """The sentence under the table for every model whose checkpoint was chosen on the records it is
    scored on (‡): such a score is the maximum of a selection, and reads high."""
    name, said = names_of(rep), []
    for m in rep.models:
        tasks = [t for t in rep.tasks if (c := rep.cells.get((m, t))) is not None and c.selected_on]
        if tasks:
            split = rep.cells[(m, tasks[0])].selected_on
            said.append(f"‡ {name[m]} was chosen (its checkpoint, or one it was merged from, by the forgetting watch) "
                        f"on the {split} records of {', '.join(tasks)} — the records it is scored on here: its scores "
                        "there are a selected maximum and read high; choose on val.jsonl (the watch's default) and "
                        "score on eval.jsonl. ")
    return "".join(said)


WIDE_INTERVAL = 15.0  # points: a half-width above this makes most differences in such a table noise


def _small_n_notes(rep) -> str:
    """A sentence per task whose held-out set is too small for the differences the table shows: the
    widest 95 % interval's half-width, beside the largest difference between models on that task."""
    notes = []
    for t in rep.tasks:
        cells = [rep.cells[(m, t)] for m in rep.models if (m, t) in rep.cells]
        widths = [(c.interval[1] - c.interval[0]) / 2 for c in cells if c.interval and c.n]
        if not widths or max(widths) <= WIDE_INTERVAL:
            continue
        n = min(c.n for c in cells if c.n)
        spread = max(c.score for c in cells) - min(c.score for c in cells)
        notes.append(f"{t} has {n} held-out records: its 95 % intervals are up to ±{max(widths):.0f} points wide, "
                     f"against differences of at most {spread:.0f} points between models here — too few records "
                     "to tell most of them apart; score more held-out records (prepare without --limit). ")
    return "".join(notes)


def html_page(rep: Report, images: list[tuple[str, Path]], h_forms=DEFAULT_H) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mfcli report</title><style>",
             "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}",
             "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:4px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#eef}",
             "img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}</style></head><body>",
             "<h1>mfcli report</h1>"]
    said = summary_lines(rep, names_of(rep), h_forms[0], mixed=bool(_off_percent(rep)))
    if said:
        parts.append("<h2>Summary</h2><ul id='summary'>" + "".join(f"<li>{html.escape(x)}</li>" for x in said) + "</ul>")
    for title, (head, body) in tables(rep, h_forms).items():
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                     + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
    if rep.tasks:
        parts.append(f"<p>{html.escape(_notes(rep, h_forms))}</p>")
    for title, png in images:
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def long_rows(rep: Report) -> list[dict]:
    rows = []
    for (m, t), c in rep.cells.items():
        rows.append({"model": m, "task": t, "role": rep.roles[t], "metric": c.metric, "score": c.score, "n": c.n,
                     "ci_low": c.interval[0] if c.interval else None, "ci_high": c.interval[1] if c.interval else None,
                     "delta": c.delta, "delta_low": c.delta_interval[0] if c.delta_interval else None,
                     "delta_high": c.delta_interval[1] if c.delta_interval else None, "p_value": c.p_value,
                     "test": c.test, "spread": c.spread, "seeds": c.seeds, "selected_on": c.selected_on,
                     "method": rep.summary[m]["method"],
                     "epoch": rep.summary[m]["epoch"]})
    return rows


def mixed_scale_fields(rep: Report) -> list[str]:
    """The summary fields that average a score not on the percent scale (a CIDEr task, ×100) as a number
    beside percentages — marked † in the tables, named in JSON so a reader of the file sees it too."""
    off = _off_percent(rep)
    pre = any(rep.roles[t] == "pretrained" for t in off)
    tgt = any(rep.roles[t] == "target" for t in off)
    return ((["avg_pretrained"] if pre else []) + (["avg_target"] if tgt else [])
            + (["h_score", "h_mdgd", "h_all_target"] if off else []))


def as_json(rep: Report) -> dict:
    mixed = mixed_scale_fields(rep)
    models = {m: {**s, "mixed_scale": [k for k in mixed if s.get(k) is not None]} for m, s in rep.summary.items()}
    return {"schema": REPORT_SCHEMA, "base": rep.base, "tasks": rep.tasks, "roles": rep.roles,
            "not_percent_tasks": _off_percent(rep), "rows": long_rows(rep), "models": models, "bwt": rep.bwt,
            "builds": rep.builds,
            "ranks": [{"model": m, "task": t, "erank": v} for (m, t), v in rep.ranks.items()],
            **({"front": [asdict(p) for p in rep.front]} if rep.front else {})}


def csv_text(rep: Report) -> str:
    buf = io.StringIO()
    rows = long_rows(rep)
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["model", "task", "score"])
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def latex(rep: Report, h_forms=DEFAULT_H) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    cols = "l" + "r" * (len(rep.tasks) + 2 + len(h_forms))
    lines = [r"% \usepackage{booktabs}", r"\begin{tabular}{" + cols + "}", r"\toprule",
             " & ".join(["Model"] + [esc(t) for t in rep.tasks] + ["Avg pre", "Avg target"]
                       + [esc(H_LABELS[f]) for f in h_forms]) + r" \\", r"\midrule"]
    name = names_of(rep)
    for m in rep.models:
        s = rep.summary[m]
        lines.append(" & ".join([esc(name[m])] + [_cell_text(rep, m, t, interval=False) for t in rep.tasks]
                                + [_fmt(s["avg_pretrained"]), _fmt(s["avg_target"])]
                                + [_fmt(s[H_KEYS[f][0]]) for f in h_forms]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write(rep: Report, out: str | None, h_forms=DEFAULT_H) -> str | None:
    """Write OUT by its extension (Markdown on stdout when OUT is None or '-'); returns the text for stdout."""
    from mfcli.io.jsonl import write_text_atomic

    if out in (None, "-"):
        return markdown(rep, h_forms=h_forms)
    path = Path(out)
    ext = path.suffix.lower()
    if ext in (".md", ".html"):
        images = plots(rep, path.with_name(path.stem + "_files"))
        text = (markdown(rep, images, rel_to=path.parent, h_forms=h_forms) if ext == ".md"
                else html_page(rep, images, h_forms))
    elif ext == ".csv":
        text = csv_text(rep)
    elif ext == ".json":
        text = json.dumps(as_json(rep), indent=1)
    else:
        text = latex(rep, h_forms)
    write_text_atomic(path, text)
    return None
