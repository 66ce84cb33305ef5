"""`mfcli judge`: read predictions (mfcli's or any JSONL with answer, label and label set), judge
them, write judged records and a per-task summary."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.eval.judges.base import ERROR, VERDICTS, Item, Judgement
from mfcli.io.jsonl import dumps, iter_jsonl, write_json_atomic, write_jsonl_atomic

PRED_SCHEMA = "mfcli.pred/1"
JUDGED_SCHEMA = "mfcli.judged/1"
SUMMARY_SCHEMA = "mfcli.summary/1"


@dataclass(frozen=True)
class Fields:
    output: str = "output"
    label: str = "label"
    labels: str = "labels"


def _item(obj: dict, where: str, f: Fields) -> Item | None:
    tag = obj.get("schema")
    if isinstance(tag, str) and tag.startswith("mfcli.pred/") and tag != PRED_SCHEMA:
        raise MfcliError(f"{where}: predictions of schema '{tag}'; this mfcli reads {PRED_SCHEMA}.",
                         "Re-run `mfcli emt` with this version, or use the matching mfcli version.")
    if obj.get("error"):
        return None  # generation failed for this id; counted as an error
    for key in (f.output, f.label, f.labels):
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
    output = obj[f.output]
    return Item("" if output is None else str(output), label, labels, str(obj.get("task", "")))


def read_items(path: str, fields: Fields) -> tuple[list[dict], list[Item | None]]:
    rows, items = [], []
    for lineno, obj in iter_jsonl(path):
        rows.append(obj)
        items.append(_item(obj, f"{path if path != '-' else '<stdin>'}:{lineno}", fields))
    return rows, items


def judge_rows(rows: list[dict], items: list[Item | None], judge) -> list[dict]:
    todo = [i for i, it in enumerate(items) if it is not None]
    verdicts: dict[int, Judgement] = dict(zip(todo, judge.judge([items[i] for i in todo]))) if todo else {}
    out = []
    for i, row in enumerate(rows):
        j = verdicts.get(i) or Judgement(ERROR, None, judge.name, {"error": row.get("error")})
        out.append({**row, "schema": JUDGED_SCHEMA, "judge": judge.name, "stage": j.stage,
                    "verdict": j.verdict, "correct": j.correct, "matched": j.matched,
                    **({"judge_detail": j.detail} if j.detail else {})})
    return out


def summarize(judged: list[dict], model: str | None = None) -> dict:
    """A `mfcli.summary/1` record: per task (and overall) n, accuracy and a count per verdict. Tasks sit
    under "tasks", so a task named like a summary key cannot collide with it."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in judged:
        by_task[str(r.get("task", ""))].append(r)

    def figures(rows: list[dict]) -> dict:
        counts = Counter(r["verdict"] for r in rows)
        n = len(rows)
        return {"n": n, "accuracy": (counts["correct"] / n) if n else 0.0,
                "verdicts": {v: counts.get(v, 0) for v in VERDICTS}}

    models = {str(r["model"]) for r in judged if r.get("model")}
    return {"schema": SUMMARY_SCHEMA, "model": model or (models.pop() if len(models) == 1 else None),
            "metric": "accuracy", "tasks": {t: figures(rows) for t, rows in sorted(by_task.items())},
            "overall": figures(judged)}


def format_summary(summary: dict) -> str:
    head = f"{'task':<14}{'n':>6}{'acc %':>8}" + "".join(f"{v:>13}" for v in VERDICTS)
    lines = [head]
    for task, s in list(summary["tasks"].items()) + [("(all)", summary["overall"])]:
        lines.append(f"{task:<14}{s['n']:>6}{100 * s['accuracy']:>8.1f}"
                     + "".join(f"{s['verdicts'][v]:>13}" for v in VERDICTS))
    return "\n".join(lines)


def write_judged(out: str, judged: list[dict]) -> None:
    if out == "-":
        sys.stdout.write("".join(dumps(r) + "\n" for r in judged))
        sys.stdout.flush()
    else:
        write_jsonl_atomic(Path(out), judged)


def judge_file(preds: str, out: str, judge, *, fields: Fields = Fields(), summary_path: str | None = None) -> dict:
    rows, items = read_items(preds, fields)
    judged = judge_rows(rows, items, judge)
    write_judged(out, judged)
    summary = summarize(judged)
    if summary_path:
        write_json_atomic(Path(summary_path), summary)
    return summary
