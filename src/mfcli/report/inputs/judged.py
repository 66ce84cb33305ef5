"""Judged predictions (`mfcli judge`, `mfcli emt --judge`; mfcli.judged/1-2): per (model, task) the
score over its records — accuracy with its hits for the Wilson interval, or the mean of VQA accuracies
and CIDEr-D — with every record kept for the paired tests (report/paired.py). The predictions'
metadata beside the file (PREDS.jsonl.meta.json) names the model, its path and fingerprint, and the
evaluation files, whose dataset.json give the tasks' roles."""

from __future__ import annotations

import json
from pathlib import Path

from mfcli.io.records import JUDGED_SCHEMAS, JudgedRecord, read_judged
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import (BINARY_METRICS, Results, Row, Scored, model_info, roles_from_eval_files,
                                  selected_split)


def _meta_for(judged: Path) -> dict:
    name = judged.name.replace(".judged.jsonl", ".jsonl")
    meta = judged.with_name(name + ".meta.json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


@register("judged", claims=lambda f: f.suffix == ".jsonl" and "verdict" in f.first, schemas=JUDGED_SCHEMAS,
          summary="judged JSONL (mfcli judge): a score per model and task, each record kept for paired tests")
def read(found: Found, res: Results) -> None:
    path = found.path
    meta = _meta_for(path)
    settings = meta.get("settings", {})
    res.roles.update(roles_from_eval_files(settings.get("data", [])))
    by: dict[tuple[str, str], list[JudgedRecord]] = {}
    for r in read_judged(path):
        model = str(r.get("model") or settings.get("model") or path.name.split(".")[0])
        by.setdefault((model, str(r.get("task", ""))), []).append(r)
    for (model, task), rows in by.items():
        if model not in res.models:
            res.models[model] = model_info(model, settings.get("model_path") if settings.get("model") == model else model)
        if not res.models[model].built_in and settings.get("model") == model:  # as the predictions recorded it
            res.models[model].built_in = dict((settings.get("fingerprint") or {}).get("built_in") or {})
            if settings.get("kind") == "clip" and settings.get("model") == model:
                res.models[model].kind = "vision-encoder"
        metric = rows[0].metric
        chosen = selected_split(res.models.get(model), settings.get("data", []), task)
        k = sum(1 for r in rows if r.verdict == "correct")
        verdicts: dict[str, int] = {}
        for r in rows:
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        binary = metric in BINARY_METRICS
        records = {str(r.get("id")): Scored(str(r.get(res.cluster) or r.get("image") or r.get("id")),
                                            float(r.verdict == "correct") if binary else float(r.score),
                                            str(r.get("output") or ""), tuple(r.get("references") or ()))
                   for r in rows}
        if binary:
            res.rows.append(Row(model, task, 100.0 * k / len(rows), metric, len(rows), source=str(path), correct=k,
                                verdicts=verdicts, outcomes={str(r.get("id")): r.verdict == "correct" for r in rows},
                                records=records, selected_on=chosen))
        else:  # VQA accuracy, CIDEr-D: the mean of the records' scores (CIDEr's is its corpus value), ×100
            score = 100.0 * sum(float(r.score) for r in rows) / len(rows)
            res.rows.append(Row(model, task, score, metric, len(rows), source=str(path), verdicts=verdicts,
                                records=records, selected_on=chosen))
