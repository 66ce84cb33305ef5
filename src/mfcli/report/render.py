"""Render a Report as Markdown, HTML (one self-contained file, plots as data URIs), CSV, JSON or
booktabs LaTeX. Plots are PNGs written beside the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import base64
import csv
import html
import io
import json
from pathlib import Path

from mfcli.forgetting import percent_scale, watch_mixed_scale
from mfcli.io.jsonl import write_text_atomic
from mfcli.io.records import REPORT_SCHEMA
from mfcli.provenance import differences
from mfcli.report import plots as P
from mfcli.report.build import ALPHA, Report
from mfcli.report.paired import P_RESOLUTION
from mfcli.report.plots import FIGURE_CSS_PX
from mfcli.report.stats import H_FORMULAS, H_KEYS, H_LABELS
from mfcli.report.summary import summary_lines
from mfcli.report.table import TINY_CLIP_ABOUT

FORMATS = (".md", ".html", ".csv", ".json", ".tex")


def _fmt(x, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _cell_text(rep: Report, m: str, t: str, *, interval: bool = True) -> Shown:
    c = rep.cells.get((m, t))
    if c is None:
        return Shown("")  # missing, never zero
    chosen = " ‡" if c.selected_on else ""  # chosen on these very records
    if c.spread is not None:
        return Shown(_fmt(c.score) + chosen, f" ± {c.spread:.1f}", f"mean ± sd over {c.seeds} seeds")
    if interval and c.interval:
        return Shown(_fmt(c.score) + chosen, f" [{c.interval[0]:.1f}, {c.interval[1]:.1f}]",
                     f"95 % Wilson interval over {c.n} records")
    return Shown(_fmt(c.score) + chosen, "", f"{c.n} records" if c.n else "")


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


class Shown(str):
    """A table cell: its main figure, what follows it (an interval, a test), and the detail a reader
    gets on hover in HTML (its `title`). As a string (Markdown, CSV, LaTeX) it is main + extra; HTML sets
    the extra under the main figure in small type."""

    main: str = ""
    extra: str = ""
    detail: str = ""

    def __new__(cls, main: str, extra: str = "", detail: str = ""):
        cell = super().__new__(cls, main + extra)
        cell.main, cell.extra, cell.detail = main, extra, detail
        return cell


@dataclass
class Section:
    """One folded section of the report's evidence: a short title (the line a reader clicks), what its
    columns are, its table and its figures."""

    key: str  # stable: scores, change, front, epochs, watch, verdicts, erank, bwt, training
    title: str
    caption: str = ""
    head: list = field(default_factory=list)
    body: list = field(default_factory=list)
    figures: list = field(default_factory=list)  # (title, png path)


def _p_text(c) -> str:
    """A p-value as a reader should take it: a randomised test cannot resolve below its floor, so a p
    under it prints as 'p < floor', never as a spuriously exact 0.0002."""
    if (c.test or "").startswith("sign-flip") and c.p_value < P_RESOLUTION:
        return f"p < {P_RESOLUTION:g}"
    return f"p = {c.p_value:.3g}"


def _test_name(c) -> str:
    return {"exact McNemar": "McNemar"}.get(c.test, c.test or "")


def _delta_detail(c) -> str:
    """Everything behind a change: its 95 % interval, exact p and the test that gave it."""
    parts = [f"95 % CI [{c.delta_interval[0]:+.1f}, {c.delta_interval[1]:+.1f}]"] if c.delta_interval else []
    if c.p_value is not None:
        parts.append(f"{_p_text(c)} ({_test_name(c)}){'' if c.p_value <= ALPHA else ', not significant'}")
    elif c.seeds:
        parts.append(f"mean of {c.seeds} seeds{', all equal' if c.test == 'all seeds equal' else ''}")
    else:
        parts.append("no paired test: only one model's records")
    return "; ".join(parts)


def _delta_text(rep: Report, m: str, t: str) -> Shown:
    """The folded table's change cell: the change (n.s. where p > ALPHA), then its interval, p and test."""
    c = rep.cells.get((m, t))
    if c is None or c.delta is None:
        return Shown("")
    main = f"{c.delta:+.1f}" + ("" if c.p_value is None or c.p_value <= ALPHA else " n.s.") + \
        (" ‡" if c.selected_on else "")
    interval = f" [{c.delta_interval[0]:+.1f}, {c.delta_interval[1]:+.1f}]" if c.delta_interval else ""
    if c.p_value is None:
        if c.seeds:
            return Shown(main, interval + f" (mean of {c.seeds} seeds{', all equal' if c.test == 'all seeds equal' else ''})",
                         _delta_detail(c))
        return Shown(main, interval + " (unpaired)", _delta_detail(c))  # a paired test needs both models' records
    tag = _test_name(c)
    return Shown(main, interval + f" ({_p_text(c)}{', ' + tag if tag else ''})", _delta_detail(c))


SIGNIFICANT = "*"  # after a change whose test gives p ≤ ALPHA


def _delta_glance(rep: Report, m: str, t: str) -> Shown:
    """The headline table's change cell: the change and a significance mark; the interval, exact p and
    test on hover (and in the folded table)."""
    c = rep.cells.get((m, t))
    if c is None or c.delta is None:
        return Shown("")
    mark = SIGNIFICANT if c.p_value is not None and c.p_value <= ALPHA else ""
    return Shown(f"{c.delta:+.1f}{mark}" + (" ‡" if c.selected_on else ""), "", _delta_detail(c))


METRIC_NAMES = {"vqa_accuracy": "VQA acc", "cider": "CIDEr"}


def _metric_tag(rep: Report, task: str) -> str:
    """", CIDEr" after a task scored on another metric than accuracy."""
    metrics = {c.metric for (m, t), c in rep.cells.items() if t == task}
    metric = metrics.pop() if len(metrics) == 1 else None
    return "" if metric in (None, "accuracy") else f", {METRIC_NAMES.get(metric, metric)}"


def _marks(rep: Report) -> tuple[str, str, str]:
    """(any average, avg pre, avg target): " †" where it takes a score not in % (CIDEr ×100) as a number."""
    off = _off_percent(rep)
    mark = " †" if off else ""
    pre = " †" if any(rep.roles[t] == "pretrained" for t in off) else ""
    tgt = " †" if any(rep.roles[t] == "target" for t in off) else ""
    return mark, pre, tgt


def _selected(rep: Report, m: str) -> bool:
    return any(c.selected_on for (mm, _), c in rep.cells.items() if mm == m)


def headline_table(rep: Report, h_forms=DEFAULT_H) -> tuple[list[str], list[list[str]]]:
    """One row per model: what it kept, what it reached on the targets, the H forms, and its change on
    each target against the base with a significance mark (interval and p on hover)."""
    mark, _, tgt_mark = _marks(rep)
    targets = [t for t in rep.tasks if rep.roles[t] == "target"]
    name = names_of(rep)
    kept_h = bool(mark) and any(s.get("h_kept") is not None for s in rep.summary.values())
    head = (["model", "method", "kept (% of base)", f"avg target{tgt_mark}"] + [f"{H_LABELS[f]}{mark}" for f in h_forms]
            + (["H of kept (scale-free)"] if kept_h else [])
            + ([f"Δ {t} vs {name[rep.base]}" for t in targets] if rep.base else []))
    body = []
    for m in rep.models:
        s = rep.summary[m]
        if s["kind"] == "vision-encoder":
            continue
        gap = "—" if s.get("missing") else ""
        body.append([name[m] + (" ‡" if _selected(rep, m) else ""), s["method"] or "",
                     _spread_text(s, "kept_pretrained", "kept_spread") or gap,
                     _spread_text(s, "avg_target", "target_spread") or gap]
                    + [_h_text(s, f) or gap for f in h_forms]
                    + ([_spread_text(s, "h_kept", "h_kept_spread") or gap] if kept_h else [])
                    + ([_delta_glance(rep, m, t) if m != rep.base else Shown("") for t in targets] if rep.base else []))
    return head, body


def _scores_section(rep: Report, h_forms) -> Section | None:
    mark, pre_mark, tgt_mark = _marks(rep)
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
    if not body:  # a run with a watch and nothing evaluated yet
        return None
    seeded = any(s.get("seeds") for s in rep.summary.values())
    scale = "accuracy in %, CIDEr ×100 on its own scale" if mark else "%"
    return Section("scores", "Scores per task", f"Held-out scores ({scale}) with their 95 % Wilson interval"
                   + ("; mean ± sd over seeds where a model has several" if seeded else "") + ".", head, body)


def sections(rep: Report, h_forms=DEFAULT_H) -> list[Section]:
    """The report's evidence, each part a section a reader unfolds: tables first, figures added by
    `plots`."""
    out = []
    name = names_of(rep)
    scores = _scores_section(rep, h_forms)
    if scores:
        out.append(scores)
    if rep.base:
        body = [[name[m]] + [_delta_text(rep, m, t) for t in rep.tasks] for m in rep.models if m != rep.base]
        if body:
            out.append(Section(
                "change", f"Change against {name[rep.base]} per task",
                f"Points (CIDEr ×100 for caption tasks), with the 95 % paired-bootstrap interval by image; p and its "
                f"test in each cell: exact McNemar where each image holds one right/wrong record, else a sign-flip "
                f"permutation test by image (several questions about one image are not independent; it resolves "
                f"p down to {P_RESOLUTION:g}); a model with several seeds: Student's t over its seeds; "
                f"n.s. = p > {ALPHA}.", ["model"] + rep.tasks, body))
    if rep.front:
        targets = [t for t in rep.tasks if rep.roles[t] == "target"]
        gain_mark = " †" if len({percent_scale(rep.cells[(m, t)].metric) for (m, t) in rep.cells if t in targets}) > 1 else ""
        out.append(Section(
            "front", "Trade-off front over budgets",
            "Kept against target gain, each method over its budgets; ✓ = Pareto-optimal.",
            ["model", "method", "budget ρ", "kept (% of base)", f"target gain (points){gain_mark}", "Pareto"],
            [[name[p.model] + (" ‡" if _selected(rep, p.model) else ""), p.method,
              _fmt(p.budget, 2) if p.budget is not None else "—", _fmt(p.kept), _fmt(p.gain), "✓" if p.pareto else ""]
             for p in rep.front]))
    if rep.curves:
        out.append(Section("epochs", "Per-epoch scores", "Each run's checkpoints by epoch (0 = the base model)."))
    if rep.watches:
        head, body = watch_table(rep)
        mixed = any(watch_mixed(records) for records in rep.watches.values())
        out.append(Section("watch", "Forgetting watch",
                           "Scores on the watch sample; kept = % of step 0's; H as in the table above"
                           + ("; † takes a CIDEr score (×100) as a number beside percentages — compare by kept and "
                              "H of kept" if mixed else "") + ".", head, body))
    if rep.verdicts:
        kinds = sorted({v for d in rep.verdicts.values() for v in d})
        out.append(Section("verdicts", "Where the answers go", "% of records scored by accuracy, by verdict.",
                           ["model"] + kinds, [[name[m]] + [_fmt(rep.verdicts[m].get(v, 0.0)) for v in kinds]
                                               for m in rep.models if m in rep.verdicts]))
    if rep.ranks:
        rtasks = sorted({t for _, t in rep.ranks})
        rmodels = list(dict.fromkeys([m for m in rep.models if any((m, t) in rep.ranks for t in rtasks)]
                                     + [m for m, _ in rep.ranks]))
        out.append(Section("erank", "Effective rank of visual features",
                           "Last layer, after the final norm (MDGD's measure of representation drift).",
                           ["model"] + rtasks, [[name.get(m, m)] + [_fmt(rep.ranks.get((m, t)), 2) for t in rtasks]
                                                for m in rmodels]))
    if rep.bwt:
        out.append(Section("bwt", "Backward transfer over fine-tuning sequences", "",
                           ["model", "sequence", "tasks", "BWT"],
                           [[m, " → ".join(v["sequence"]), ", ".join(v["tasks"]), _fmt(v["bwt"])]
                            for m, v in rep.bwt.items()]))
    if any(rep.logs.values()):
        out.append(Section("training", "Training", "Each run's loss (and MDGD's gradient agreement) by step."))
    return out


def tables(rep: Report, h_forms=DEFAULT_H) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every section's table by its title (sections without one left out)."""
    return {s.title: (s.head, s.body) for s in sections(rep, h_forms) if s.body}


def _epoch_scales(rep: Report) -> tuple[tuple[set[str], str, str], ...]:
    """(tasks, file-name suffix, axis label) per scale: percentages, then CIDEr (×100). CIDEr-D runs to
    1000, so caption tasks get a chart of their own or they flatten every percentage drawn beside them."""
    cider = {t for (_, t), c in rep.cells.items() if "cider" in c.metric.lower()}
    every = set(rep.tasks) | {t for by_task in rep.curves.values() for t in by_task}
    return (every - cider, "", "score (%)"), (cider, "-cider", "CIDEr (×100)")


HEADLINE = "headline"


def figures(rep: Report, folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """The report's figures by the section they belong to (HEADLINE: the first screen's), written to
    `folder` (a replaced report's figures removed first)."""
    if folder.is_dir():  # a replaced report's figures: none of them may outlive it
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, list[tuple[str, Path]]] = {}
    add = lambda key, title, path: made.setdefault(key, []).append((title, path))  # noqa: E731
    name = names_of(rep)
    if len(rep.headline) > 1:
        points = [P.Point(name[p.model] + (" ‡" if _selected(rep, p.model) else ""), p.kept, p.gain, p.kept_err,
                          p.gain_err, p.pareto, p.base) for p in rep.headline]
        seeded = any(rep.summary[p.model].get("seeds") for p in rep.headline)
        targets = [t for t in rep.tasks if rep.roles[t] == "target"]
        mixed = len({percent_scale(c.metric) for (_, t), c in rep.cells.items() if t in targets}) > 1
        add(HEADLINE, "What each model kept and what it learned",
            P.tradeoff(points, folder / "tradeoff.png",
                       "Kept against learned (up and right is better; error bars: "
                       + ("sd over seeds" if seeded else "95 % interval of the change") + ")",
                       gain_label="target gain over the base (points" + (", † CIDEr ×100 beside %)" if mixed else ")")))
    by_task = {}
    for t in rep.tasks:
        dots = []
        for m in rep.models:
            c = rep.cells.get((m, t))
            if c is None:
                continue
            low, high = ((c.score - c.spread, c.score + c.spread) if c.spread is not None else
                         tuple(c.interval) if c.interval else (None, None))
            dots.append((name[m], c.score, low, high))
        if dots:
            by_task[f"{t} ({'pre' if rep.roles[t] == 'pretrained' else 'target'}{_metric_tag(rep, t)})"] = dots
    if by_task:
        seeded = any(c.spread is not None for c in rep.cells.values())
        add("scores", "Held-out score per task",
            P.task_intervals(by_task, folder / "scores.png", "Held-out score per task (95 % interval"
                             + ("; ± sd over seeds" if seeded else "") + ")"))
    if rep.front:
        add("front", "Trade-off front", P.front(rep.front, folder / "front.png"))
    for (tasks, suffix, ylabel), title in zip(_epoch_scales(rep), ("Per-epoch scores", "Per-epoch CIDEr")):
        curves = {run: {t: pts for t, pts in by_task.items() if t in tasks} for run, by_task in rep.curves.items()}
        if any(curves.values()):
            add("epochs", title, P.epoch_curves(curves, folder / f"epochs{suffix}.png", ylabel))
    for run, records in rep.watches.items():
        if len(records) > 1:
            add("watch", f"Forgetting watch: {Path(run).name}",
                P.watch(records, folder / f"watch-{Path(run).name}.png", f"Forgetting watch: {Path(run).name}"))
    if rep.verdicts:
        add("verdicts", "Verdicts", P.shares({name[m]: v for m, v in rep.verdicts.items()}, folder / "verdicts.png",
                                             "Where the answers go"))
    if rep.ranks:
        ranks = {name.get(m, m): {t: v for (mm, t), v in rep.ranks.items() if mm == m}
                 for m in dict.fromkeys(m for m, _ in rep.ranks)}
        add("erank", "Effective rank", P.grouped_bars(ranks, folder / "erank.png", "effective rank",
                                                      "Effective rank of visual features"))
    loss = {Path(run).name: [(r.step, r.loss) for r in rows] for run, rows in rep.logs.items()}
    if any(loss.values()):
        add("training", "Training loss", P.lines(loss, folder / "loss.png", "step", "loss", "Training loss"))
    cos = {Path(run).name: [(r.step, r.extra["cos_grad_pre"]) for r in rows if "cos_grad_pre" in r.extra]
           for run, rows in rep.logs.items()}
    if any(cos.values()):
        add("training", "MDGD gradient cosine",
            P.lines({k: v for k, v in cos.items() if v}, folder / "mdgd_cos.png", "step", "cos(∇L_t(θ), ∇L_t(θ_pre))",
                    "MDGD: task-gradient agreement"))
    return made


def plots(rep: Report, folder: Path) -> list[tuple[str, Path]]:
    """Every figure of the report, in the order it shows them: (title, png path)."""
    return [fig for figs in figures(rep, folder).values() for fig in figs]


def watch_mixed(records) -> list[str]:
    """The watch fields that take a score not in % (a caption task's CIDEr ×100) as a number beside
    percentages: as the run's records say, or, for a file written before they said it, as their metrics
    show (forgetting.watch_mixed_scale)."""
    if not records:
        return []
    return list(records[0].mixed_scale) or watch_mixed_scale(records[0].metrics, records[0].targets)


def watch_table(rep: Report) -> tuple[list[str], list[list[str]]]:
    """Per watched run: step 0, the best evaluation (by the run's criterion) and the last; a field that
    averages a CIDEr score as a number beside percentages marked † (the run's own records say so too)."""
    mixed = sorted({f for records in rep.watches.values() for f in watch_mixed(records)})
    dag = lambda f: " †" if f in mixed else ""  # noqa: E731
    head = ["run", "evaluation", "step", "epoch", f"target{dag('target')}", f"gain{dag('target_gain')}", "kept (%)",
            f"H (Model Tailor){dag('h')}", f"H (MDGD){dag('h_mdgd')}"] + (["H of kept"] if mixed else []) + ["criterion"]
    body = []
    for run, records in rep.watches.items():
        best = next((r for r in reversed(records) if r.best), None)
        picks = [("step 0", records[0])] + ([("best", best)] if best and best.step else []) + [("last", records[-1])]
        for what, r in picks:
            if what == "last" and r.stop:
                what = f"last (stopped: {r.stop})"
            body.append([Path(run).name, what, str(r.step), _fmt(r.epoch, 2), _fmt(r.target),
                         _fmt(r.target_gain), _fmt(r.kept_mean), _fmt(r.h), _fmt(r.h_mdgd)]
                        + ([_fmt(r.h_kept)] if mixed else []) + [f"{r.criterion} {_fmt(r.value, 2)}"])
    return head, body


GLANCE = "At a glance"


def _legend(rep: Report) -> str:
    """The line under the headline table: what its marks mean."""
    mark, _, _ = _marks(rep)
    parts = [f"{SIGNIFICANT} = the change's test gives p ≤ {ALPHA} (its interval, p and test: hover the cell, or the "
             "folded change table)"] if rep.base else []
    if mark:
        parts.append("† takes a CIDEr score (×100) as a number beside percentages (see the notes)")
    if any(_selected(rep, m) for m in rep.models):
        parts.append("‡ chosen on the records it is scored on")
    return "; ".join(parts) + ("." if parts else "")


def _md(text: str) -> str:
    """A cell or line as Markdown: the significance mark escaped, so a viewer shows it, not emphasis."""
    return text.replace(SIGNIFICANT, "\\" + SIGNIFICANT)


def _md_table(head: list, body: list) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(_md, row)) + " |"
                                                                         for row in body]


def markdown(rep: Report, figs=None, rel_to: Path | None = None, h_forms=DEFAULT_H) -> str:
    """The report as Markdown, in the order the HTML shows it: the summary, the headline figure and
    table, the notes, then every section of evidence in a <details> block (open: Markdown viewers
    that fold it fold it open, plain text shows it all)."""
    figs = _as_figures(figs)
    where = lambda png: (png.relative_to(rel_to) if rel_to else png).as_posix()  # noqa: E731
    lines = ["# mfcli report", ""]
    said = summary_lines(rep, names_of(rep), h_forms[0], mixed=bool(_off_percent(rep)))
    if said:
        lines += ["## Summary", ""] + [f"- {x}" for x in said] + [""]
    lines += [f"![{title}]({where(png)})\n" for title, png in figs.get(HEADLINE, [])]
    head, body = headline_table(rep, h_forms)
    if body and rep.tasks:
        lines += [f"## {GLANCE}", ""] + _md_table(head, body) + ["", _md(_legend(rep)), ""]
    if rep.tasks:
        lines += [_notes(rep, h_forms), ""]
    parts = sections(rep, h_forms)
    if parts:
        lines += ["## Evidence", ""]
    for s in parts:
        lines += ["<details open>", f"<summary>{s.title}</summary>", ""]
        lines += [s.caption, ""] if s.caption else []
        lines += _md_table(s.head, s.body) + [""] if s.body else []
        lines += [f"![{title}]({where(png)})\n" for title, png in figs.get(s.key, [])]
        lines += ["</details>", ""]
    return "\n".join(lines)


def _as_figures(figs) -> dict[str, list[tuple[str, Path]]]:
    """figures()'s mapping; a plain list of (title, path) (or nothing) is evidence without a section."""
    if isinstance(figs, dict):
        return figs
    return {"other": list(figs or [])}


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


CSS = """
body{font-family:system-ui,sans-serif;margin:16px 24px;color:#222;max-width:1320px}
h1{font-size:1.5em;margin:0 0 8px} h2{font-size:1.15em;margin:18px 0 6px}
.top{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.top .summary{flex:1 1 360px} .top .summary h2{margin-top:0} .top li{margin-bottom:4px}
figure{margin:0;display:inline-block;outline:1px solid #ddd} img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;margin:6px 0 8px} td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left;white-space:nowrap} th{background:#eef} td[title]{cursor:help}
td .x{display:block;font-size:0.78em;color:#666;white-space:nowrap} .scroll{overflow-x:auto}
.legend,.notes,.caption{font-size:0.85em;color:#444;max-width:1200px} .warning{color:#a40000;font-weight:600}
details{margin:6px 0;border-top:1px solid #ddd;padding-top:4px} summary{font-weight:600;cursor:pointer}
"""


def _img(title: str, png: Path) -> str:
    """A figure embedded (so the page opens from anywhere) at the one CSS width every figure has."""
    from PIL import Image

    with Image.open(png) as im:
        w, h = im.size
    data = base64.b64encode(png.read_bytes()).decode()
    return (f"<figure><img alt='{html.escape(title)}' width='{FIGURE_CSS_PX}' height='{round(h * FIGURE_CSS_PX / w)}' "
            f"src='data:image/png;base64,{data}'></figure>")


def _html_table(head: list, body: list, ident: str = "") -> str:
    def cell(c) -> str:
        if not isinstance(c, Shown):
            return f"<td>{html.escape(c)}</td>"
        title = f" title='{html.escape(c.detail)}'" if c.detail else ""
        extra = f"<span class='x'>{html.escape(c.extra.strip())}</span>" if c.extra else ""
        return f"<td{title}>{html.escape(c.main)}{extra}</td>"

    return (f"<div class='scroll'><table{f' id={chr(39)}{ident}{chr(39)}' if ident else ''}><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in body) + "</table></div>")


def html_page(rep: Report, figs=None, h_forms=DEFAULT_H) -> str:
    """One self-contained page: the answer first — the summary beside the headline figure, then the
    headline table — and the evidence folded below it, each section one click away."""
    figs = _as_figures(figs)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mfcli report</title>",
             f"<style>{CSS}</style></head><body>", "<h1>mfcli report</h1>", "<div class='top'>"]
    said = summary_lines(rep, names_of(rep), h_forms[0], mixed=bool(_off_percent(rep)))
    if said:
        parts.append("<section class='summary'><h2>Summary</h2><ul id='summary'>"
                     + "".join(f"<li>{html.escape(x)}</li>" for x in said) + "</ul></section>")
    for title, png in figs.get(HEADLINE, []):
        parts.append(_img(title, png).replace("<figure>", "<figure id='headline-figure'>", 1))
    parts.append("</div>")
    head, body = headline_table(rep, h_forms)
    if body and rep.tasks:
        parts += [f"<h2>{GLANCE}</h2>", _html_table(head, body, "headline"),
                  f"<p class='legend'>{html.escape(_legend(rep))}</p>"]
    if len(rep.builds) > 1:
        parts.append(f"<p class='warning'>{html.escape(build_notes(rep))}</p>")
    if rep.tasks:
        parts.append(f"<p class='notes'>{html.escape(_notes(rep, h_forms))}</p>")
    parts_ = sections(rep, h_forms)
    if parts_ or figs.get("other"):
        parts.append("<h2>Evidence</h2>")
    for s in parts_:
        parts.append(f"<details id='{s.key}'><summary>{html.escape(s.title)}</summary>")
        if s.caption:
            parts.append(f"<p class='caption'>{html.escape(s.caption)}</p>")
        if s.body:
            parts.append(_html_table(s.head, s.body))
        parts += [_img(title, png) for title, png in figs.get(s.key, [])]
        parts.append("</details>")
    parts += [_img(title, png) for title, png in figs.get("other", [])]
    parts.append("</body></html>")
    return "\n".join(parts)


def long_rows(rep: Report) -> list[dict]:
    rows = []
    for (m, t), c in rep.cells.items():
        rows.append({"model": m, "task": t, "role": rep.roles[t], "metric": c.metric, "score": c.score, "n": c.n,
                     "ci_low": c.interval[0] if c.interval else None, "ci_high": c.interval[1] if c.interval else None,
                     "delta": c.delta, "delta_low": c.delta_interval[0] if c.delta_interval else None,
                     "delta_high": c.delta_interval[1] if c.delta_interval else None, "p_value": c.p_value,
                     "test": c.test, "p_floor": P_RESOLUTION if (c.test or "").startswith("sign-flip") else None,
                     "spread": c.spread, "seeds": c.seeds, "seed_scores": c.seed_scores, "selected_on": c.selected_on,
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
            "headline": [asdict(p) for p in rep.headline],
            "watches": {run: {"mixed_scale": watch_mixed(records), "records": [r.to_json() for r in records]}
                        for run, records in rep.watches.items()},
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
    if out in (None, "-"):
        return markdown(rep, h_forms=h_forms)
    path = Path(out)
    ext = path.suffix.lower()
    if ext in (".md", ".html"):
        figs = figures(rep, path.with_name(path.stem + "_files"))
        text = (markdown(rep, figs, rel_to=path.parent, h_forms=h_forms) if ext == ".md"
                else html_page(rep, figs, h_forms))
    elif ext == ".csv":
        text = csv_text(rep)
    elif ext == ".json":
        text = json.dumps(as_json(rep), indent=1)
    else:
        text = latex(rep, h_forms)
    write_text_atomic(path, text)
    return None
