"""A report's own JSON read back (`mfcli report --out X.json`, mfcli.report/1): its scores per model and
task (each seed's, where a model had several), the tasks' roles and what each model is — method, epoch,
targets, a merge's budget — so that reports of several studies combine into one table and one
trade-off front. Records are not in a report's JSON: read back, a score has its Wilson interval (from
its n) but no paired test; feed the judged files for those."""

from __future__ import annotations

from mfcli.io.records import REPORT_SCHEMA
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import BINARY_METRICS, ModelInfo, Results, Row


def _is_report(found: Found) -> bool:
    return isinstance(found.json, dict) and found.json.get("schema") == REPORT_SCHEMA


@register("report-json", claims=_is_report, schemas=(REPORT_SCHEMA,),
          summary="a report's JSON (mfcli report --out X.json): its table and front, to combine studies")
def read(found: Found, res: Results) -> None:
    obj, path = found.json, found.path
    res.roles.update({str(t): str(r) for t, r in (obj.get("roles") or {}).items()})
    for name, s in (obj.get("models") or {}).items():
        res.models.setdefault(name, ModelInfo(name, kind=s.get("kind") or "mllm", method=s.get("method"),
                                              epoch=s.get("epoch"), targets=list(s.get("targets") or []),
                                              about=s.get("about") or "", budget=s.get("budget")))
    for r in obj.get("rows") or []:
        model, task, metric, n = str(r["model"]), str(r["task"]), str(r.get("metric") or "accuracy"), r.get("n")
        per_seed = r.get("seed_scores") or []
        if per_seed:  # a mean over seeds: each seed's row again, so the spread is recomputed, not copied
            for seed, score in enumerate(per_seed):
                res.rows.append(Row(model, task, float(score), metric, n, source=str(path), seed=seed,
                                    selected_on=r.get("selected_on")))
            continue
        score = float(r["score"])
        binary = metric in BINARY_METRICS and n
        res.rows.append(Row(model, task, score, metric, n, source=str(path),
                            correct=round(score / 100 * n) if binary else None, selected_on=r.get("selected_on")))
