"""A judged file's summary JSON (mfcli.summary/1-2, or the untagged form older mfcli wrote: one
object per task with its accuracy): a score per task, without records — so no paired test."""

from __future__ import annotations

from mfcli.io.records import SUMMARY_SCHEMAS, SummaryRecord
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import BINARY_METRICS, Results, Row, model_info


def _is_summary(found: Found) -> bool:
    obj = found.json
    return isinstance(obj, dict) and (obj.get("schema") in SUMMARY_SCHEMAS or
                                      bool(obj) and all(isinstance(v, dict) and "accuracy" in v for v in obj.values()))


@register("summary", claims=_is_summary, schemas=SUMMARY_SCHEMAS,
          summary="summary JSON (mfcli judge's summary.json): a score per task, no records")
def read(found: Found, res: Results) -> None:
    path = found.path
    summary = SummaryRecord.from_json(found.json, str(path), model=path.name.split(".")[0])
    model = summary.model
    res.models.setdefault(model, model_info(model, model))
    for task, s in summary.tasks.items():
        n = int(s["n"])
        metric = s.get("metric", summary.metric)
        score = float(s["score"] if "score" in s else s["accuracy"])
        binary = metric in BINARY_METRICS
        res.rows.append(Row(model, task, 100.0 * score, metric, n, source=str(path),
                            correct=round(score * n) if binary else None, verdicts=s.get("verdicts")))
