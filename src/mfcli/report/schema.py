"""The JSON Schema (draft 2020-12) of `mfcli report --out X.json` (mfcli.report/1), as docs/formats.md
prints it; tests validate the report's JSON against it and hold the two texts equal. Numbers are numbers:
an interval's ends have fields of their own, never a string such as "98.1 [96.0, 99.1]"."""

from __future__ import annotations

from mfcli.io.records import REPORT_SCHEMA

_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}
_PAIR = {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2}

REPORT_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"mfcli report ({REPORT_SCHEMA})",
    "type": "object",
    "required": ["schema", "base", "tasks", "roles", "not_percent_tasks", "rows", "models", "builds", "headline"],
    "properties": {
        "schema": {"const": REPORT_SCHEMA},
        "base": _STR,
        "tasks": {"type": "array", "items": {"type": "string"}},
        "roles": {"type": "object", "additionalProperties": {"type": "string"}},
        "not_percent_tasks": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {
            "type": "object",
            "required": ["model", "task", "role", "metric", "score", "n", "ci_low", "ci_high", "delta", "delta_low",
                         "delta_high", "p_value", "test", "p_floor", "seeds", "seed_scores", "selected_on"],
            "properties": {
                "model": {"type": "string"}, "task": {"type": "string"}, "role": {"type": "string"},
                "metric": {"type": "string"}, "score": {"type": "number"}, "n": {"type": ["integer", "null"]},
                "ci_low": _NUM, "ci_high": _NUM, "delta": _NUM, "delta_low": _NUM, "delta_high": _NUM,
                "p_value": {"type": ["number", "null"], "minimum": 0, "maximum": 1}, "test": _STR,
                "p_floor": _NUM, "spread": _NUM, "seeds": {"type": ["integer", "null"]},
                "seed_scores": {"type": ["array", "null"], "items": {"type": "number"}},
                "selected_on": _STR, "method": _STR, "epoch": _NUM}}},
        "models": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["avg_pretrained", "avg_target", "kept_pretrained", "h_score", "h_mdgd", "h_kept",
                         "h_all_target", "missing", "method", "kind", "mixed_scale"],
            "properties": {
                **{k: _NUM for k in ("avg_pretrained", "avg_target", "target_spread", "kept_pretrained", "kept_spread",
                                     "h_score", "h_spread", "h_mdgd", "h_mdgd_spread", "h_kept", "h_kept_spread",
                                     "h_all_target", "h_all_target_spread", "epoch", "budget")},
                "missing": {"type": "array", "items": {"type": "string"}}, "seeds": {"type": ["integer", "null"]},
                "method": _STR, "kind": {"enum": ["mllm", "vision-encoder"]}, "about": _STR,
                "targets": {"type": "array", "items": {"type": "string"}},
                "mixed_scale": {"type": "array", "items": {"enum": ["avg_pretrained", "avg_target", "h_score",
                                                                    "h_mdgd", "h_all_target"]}}}}},
        "headline": {"type": "array", "items": {
            "type": "object", "required": ["model", "kept", "gain", "kept_err", "gain_err", "pareto", "base"],
            "properties": {"model": {"type": "string"}, "kept": {"type": "number"}, "gain": {"type": "number"},
                           "kept_err": _PAIR, "gain_err": _PAIR, "pareto": {"type": "boolean"},
                           "base": {"type": "boolean"}}}},
        "front": {"type": "array", "items": {
            "type": "object", "required": ["model", "method", "budget", "kept", "gain", "pareto"],
            "properties": {"model": {"type": "string"}, "method": {"type": "string"}, "budget": _NUM,
                           "kept": {"type": "number"}, "gain": {"type": "number"}, "pareto": {"type": "boolean"}}}},
        "watches": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["mixed_scale", "records"],
            "properties": {"mixed_scale": {"type": "array", "items": {"type": "string"}},
                           "records": {"type": "array", "items": {"type": "object"}}}}},
        "builds": {"type": "array", "items": {
            "type": "object", "required": ["fingerprint", "digests", "models"],
            "properties": {"fingerprint": {"type": "object"}, "digests": {"type": "object"},
                           "models": {"type": "array", "items": {"type": "string"}}}}},
        "ranks": {"type": "array", "items": {
            "type": "object", "required": ["model", "task", "erank"],
            "properties": {"model": {"type": "string"}, "task": {"type": "string"}, "erank": {"type": "number"}}}},
        "bwt": {"type": "object"},
    },
}
