"""Effective-rank records (`mfcli rank`, mfcli.rank/1): the visual features' effective rank per model,
task and layer (MDGD's measure of representation drift)."""

from __future__ import annotations

from mfcli.io.records import RANK_SCHEMA, read_rank
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import Results, model_info


@register("rank", claims=lambda f: f.suffix == ".jsonl" and f.first.get("schema") == RANK_SCHEMA,
          schemas=(RANK_SCHEMA,), summary="rank JSONL (mfcli rank): effective rank of visual features")
def read(found: Found, res: Results) -> None:
    ranks = read_rank(found.path)
    res.ranks += ranks
    for r in ranks:
        res.models.setdefault(r.model, model_info(r.model, r.model_path))
