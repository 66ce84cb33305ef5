"""`mfcli judge`: read predictions (mfcli's, or any JSONL with an answer and a label set or references),
score each record by its kind — a label judge for classification, VQA accuracy, CIDEr-D, option
matching — and write judged records and a per-task summary."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.eval.judges import metric_judge
from mfcli.eval.judges.base import ERROR, VERDICTS, Item, Judgement
from mfcli.eval.judges.registry import all_verdicts, metric_judges, verdicts_of
from mfcli.io.jsonl import dumps, iter_jsonl, write_json_atomic, write_jsonl_atomic
from mfcli.io.records import JudgedRecord, SummaryRecord, check_pred_schema, check_references
from mfcli.kinds import CLASSIFICATION, KINDS, kind_of


@dataclass(frozen=True)
class Fields:
    output: str = "output"
    label: str = "label"
    labels: str = "labels"
    references: str = "references"


def _kind(obj: dict, where: str, f: Fields, forced: str | None) -> str:
    """The record's kind: its own, or the one a metric judge (--judge vqa) scores; a record that names
    none is a classification record."""
    kind = obj.get("kind")
    if kind is not None:
        kind_of(kind, where)
    if forced is not None and forced != CLASSIFICATION:
        if kind is not None and kind != forced:
            raise MfcliError(f"{where}: judge '{forced}' scores {forced} records; this is a {kind} record.",
                             "Drop --judge to score every record by its own kind.")
        return forced
    if kind is None and f.labels not in obj and f.references in obj:
        metric = [f"--judge {n}" for n in metric_judges()]
        raise MfcliError(f"{where}: a record with '{f.references}' but no 'kind' or label set.",
                         f"Say how to score it: {', '.join(metric[:-1])} or {metric[-1]}.")
    return kind or CLASSIFICATION


def _item(obj: dict, where: str, f: Fields, forced: str | None = None) -> Item | None:
    check_pred_schema(obj, where)
    kind = _kind(obj, where, f, forced)
    rk = kind_of(kind)
    if obj.get("error") and not rk.corpus:
        return None  # generation failed for this id; counted as an error (in a corpus, it is an empty answer)
    if f.output not in obj:
        raise MfcliError(f"{where}: missing field '{f.output}'.", "Name your answer field with --output-field.")
    output = "" if obj[f.output] is None else str(obj[f.output])
    task = str(obj.get("task", ""))
    if not rk.labelled:
        refs = check_references({"references": obj.get(f.references)}, where, kind)
        labels: tuple[str, ...] = ()
        if rk.options:
            if not isinstance(obj.get(f.labels), list):
                raise MfcliError(f"{where}: a {kind} record needs its options as a list in '{f.labels}'.",
                                 "Name your field with --labels-field.")
            labels = tuple(str(x) for x in obj[f.labels])
        rk.check(refs, labels, where)
        return Item(output, refs[0], labels, task, kind, refs)
    for key in (f.label, f.labels):
        if key not in obj:
            raise MfcliError(f"{where}: missing field '{key}'.",
                             "Name your fields with --output-field/--label-field/--labels-field.")
    labels = obj[f.labels]
    if not isinstance(labels, list) or not labels:
        raise MfcliError(f"{where}: '{f.labels}' must be a non-empty list of labels.", "Fix the record.")
    labels = tuple(str(x) for x in labels)
    label = str(obj[f.label])
    if label not in labels:
        raise MfcliError(f"{where}: label '{label}' is not in its label set.", "Fix the label or the label set.")
    return Item(output, label, labels, task)


def read_items(path: str, fields: Fields, forced: str | None = None) -> tuple[list[dict], list[Item | None]]:
    rows, items = [], []
    for lineno, obj in iter_jsonl(path):
        where = f"{path if path != '-' else '<stdin>'}:{lineno}"
        rows.append(obj)
        items.append(_item(obj, where, fields, forced))
    tasks: dict[str, str] = {}
    for it, (lineno, _) in zip(items, enumerate(rows, 1)):
        if it is not None and tasks.setdefault(it.task, it.kind) != it.kind:
            raise MfcliError(f"{path}:{lineno}: task '{it.task}' mixes {tasks[it.task]} and {it.kind} records.",
                             "One task scores on one metric: give each kind its own task name.")
    return rows, items


def judge_rows(rows: list[dict], items: list[Item | None], judge) -> list[JudgedRecord]:
    """Score every item by its kind: classification items with `judge` (unless `judge` is itself a metric
    judge), the others with their kind's metric judge."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if it is not None:
            by_kind[it.kind].append(i)
    verdicts: dict[int, Judgement] = {}
    judges = {}
    for kind, idx in by_kind.items():
        own = kind_of(kind).labelled or judge.kind == kind
        judges[kind] = judge if own else metric_judge(kind)
        verdicts.update(zip(idx, judges[kind].judge([items[i] for i in idx])))
    out = []
    for i, row in enumerate(rows):
        it = items[i]
        j = verdicts.get(i) or Judgement(ERROR, None, judge.name, {"error": row.get("error")}, score=0.0)
        if row.get("error"):  # a caption that failed to generate stays in its corpus as an empty caption
            j = Judgement(ERROR, None, j.stage, {"error": row.get("error")}, score=0.0)
        kind = it.kind if it is not None else row.get("kind", CLASSIFICATION)
        used = judges.get(kind, judge)
        out.append(JudgedRecord(row, kind, used.name, j.stage, j.verdict, j.correct, j.matched,
                                used.metric, j.value, j.detail or None))
    return out


def _corpus(rows: list[JudgedRecord], f: Fields) -> dict:
    """A corpus-scored task's figures (a caption task's CIDEr-D, BLEU-4, ROUGE-L), from its kind's metric
    judge; a failed generation is an empty answer."""
    return metric_judge(rows[0].kind).corpus(["" if r.get("error") else str(r.get(f.output) or "") for r in rows],
                                             [[str(x) for x in r.record[f.references]] for r in rows])


def summarize(judged: list[JudgedRecord], model: str | None = None, fields: Fields = Fields()) -> SummaryRecord:
    """The summary of judged records: per task (and overall) n, its metric, score (the mean of the records'
    scores: accuracy, VQA accuracy or CIDEr-D), `accuracy` where the metric is one, and a count per
    verdict. Tasks sit under "tasks", so a task named like a summary key cannot collide with it."""
    by_task: dict[str, list[JudgedRecord]] = defaultdict(list)
    for r in judged:
        by_task[str(r.get("task", ""))].append(r)

    def figures(rows: list[JudgedRecord], metric: str | None) -> dict:
        counts = Counter(r.verdict for r in rows)
        n = len(rows)
        kinds = sorted({r.kind for r in rows}, key=list(KINDS).index)
        names = list(dict.fromkeys([v for k in kinds for v in verdicts_of(k)] +
                                   [v for v in all_verdicts() if counts.get(v)]))
        out = {"n": n, "verdicts": {v: counts.get(v, 0) for v in names}}
        if metric is not None:
            score = sum(float(r.score) for r in rows) / n if n else 0.0
            out["metric"], out["score"] = metric, score
            if metric == "accuracy":
                out["accuracy"] = score
        return out

    metric_of = {t: rows[0].metric for t, rows in by_task.items()}
    tasks = {}
    for t, rows in sorted(by_task.items()):
        tasks[t] = figures(rows, metric_of[t])
        if kind_of(rows[0].kind).corpus:
            tasks[t]["corpus"] = _corpus(rows, fields)
    one = set(metric_of.values())
    models = {str(r.get("model")) for r in judged if r.get("model")}
    return SummaryRecord(model or (models.pop() if len(models) == 1 else None), one.pop() if len(one) == 1 else "mixed",
                         tasks, figures(judged, metric_of[next(iter(metric_of))] if len(set(metric_of.values())) == 1
                                        else None))


def format_summary(summary: SummaryRecord) -> str:
    """A table for the terminal: each task's metric and score (×100, the papers' scale for accuracies
    and CIDEr alike), then its verdict counts."""
    shown = [v for v in all_verdicts() if any(s["verdicts"].get(v) for s in summary.tasks.values())
             or v in VERDICTS]
    head = f"{'task':<14}{'n':>6}{'metric':>14}{'score':>8}" + "".join(f"{v:>13}" for v in shown)
    lines = [head]
    for task, s in list(summary.tasks.items()) + [("(all)", summary.overall)]:
        score = f"{100 * s['score']:>8.1f}" if "score" in s else f"{'':>8}"
        lines.append(f"{task:<14}{s['n']:>6}{s.get('metric', ''):>14}{score}"
                     + "".join(f"{s['verdicts'].get(v, 0):>13}" for v in shown))
    return "\n".join(lines)


def write_judged(out: str, judged: list[JudgedRecord]) -> None:
    rows = [r.to_json() for r in judged]
    if out == "-":
        sys.stdout.write("".join(dumps(r) + "\n" for r in rows))
        sys.stdout.flush()
    else:
        write_jsonl_atomic(Path(out), rows)


def judge_file(preds: str, out: str, judge, *, fields: Fields = Fields(), summary_path: str | None = None) -> SummaryRecord:
    rows, items = read_items(preds, fields, judge.kind)
    judged = judge_rows(rows, items, judge)
    write_judged(out, judged)
    summary = summarize(judged, fields=fields)
    if summary_path:
        write_json_atomic(Path(summary_path), summary.to_json())
    return summary
