"""A plain table, CSV or JSONL, with columns model, task and score (optional role, metric, n, seed):
results from a paper, a spreadsheet or another tool, on the report's scale (percent for accuracies)."""

from __future__ import annotations

import csv

from mfcli.errors import MfcliError
from mfcli.io.jsonl import iter_jsonl
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import BINARY_METRICS, ModelInfo, Results, Row

COLUMNS = ("model", "task", "score")


def _is_table(found: Found) -> bool:
    return found.suffix == ".csv" or (found.suffix == ".jsonl" and set(COLUMNS) <= set(found.first))


@register("table", claims=_is_table, summary="a model,task,score table (.csv or .jsonl; optional role, metric, n, seed)")
def read(found: Found, res: Results) -> None:
    path = found.path
    if found.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            items = list(enumerate(csv.DictReader(f), start=2))
    else:
        items = list(iter_jsonl(path))
    for lineno, r in items:
        where = f"{path}:{lineno}"
        missing = [k for k in COLUMNS if not r.get(k) and r.get(k) != 0]
        if missing:
            raise MfcliError(f"{where}: missing column '{missing[0]}'.", "A table needs model, task and score columns.")
        try:
            score = float(r["score"])
        except ValueError:
            raise MfcliError(f"{where}: score '{r['score']}' is not a number.", "Fix the table.") from None
        res.models.setdefault(str(r["model"]), ModelInfo(str(r["model"])))
        if r.get("role"):
            res.roles[str(r["task"])] = str(r["role"])
        n = int(r["n"]) if r.get("n") not in (None, "") else None
        seed = int(r["seed"]) if r.get("seed") not in (None, "") else None
        res.rows.append(Row(str(r["model"]), str(r["task"]), score, str(r.get("metric") or "accuracy"), n,
                            source=str(path), correct=round(score / 100 * n) if n and (r.get("metric") or "accuracy") in BINARY_METRICS else None,
                            seed=seed))
