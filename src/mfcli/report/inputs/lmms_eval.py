"""lmms-eval's `*_results.json` ({"results": {task: {"metric,filter": value}}, "config": {...}}): every
metric of every task, caption metrics ×100 as the papers print them, fractions as percentages."""

from __future__ import annotations

from mfcli.forgetting import CAPTION_METRICS, OWN_SCALE
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import ModelInfo, Results, Row


def _is_lmms_eval(found: Found) -> bool:
    obj = found.json
    return isinstance(obj, dict) and "results" in obj and ("config" in obj or "configs" in obj)


@register("lmms-eval", claims=_is_lmms_eval, summary="lmms-eval *_results.json: every metric of every task")
def read(found: Found, res: Results) -> None:
    obj, path = found.json, found.path
    cfg = obj.get("config", {})
    model = obj.get("model_name") or cfg.get("model_name") or str(cfg.get("model_args", "")).split("pretrained=")[-1].split(",")[0] \
        or cfg.get("model") or path.stem
    res.models.setdefault(model, ModelInfo(model))
    n_samples = obj.get("n-samples", {})
    for task, metrics in obj["results"].items():
        for key, value in metrics.items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
                continue
            metric = key.split(",")[0]
            own = any(w in metric.lower() for w in OWN_SCALE)
            caption = any(w in metric.lower() for w in CAPTION_METRICS)
            score = 100.0 * float(value) if caption or (not own and value <= 1) else float(value)
            n = (n_samples.get(task) or {}).get("effective")
            res.rows.append(Row(model, task, score, metric, n, source=str(path)))
