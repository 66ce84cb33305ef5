"""A fine-tune's forgetting watch (RUN/watch.jsonl, mfcli.watch/1): each evaluation while it trained."""

from __future__ import annotations

from mfcli.io.records import WATCH_SCHEMA, read_watch
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import Results


@register("watch", claims=lambda f: f.suffix == ".jsonl" and f.first.get("schema") == WATCH_SCHEMA,
          schemas=(WATCH_SCHEMA,), summary="a run's watch.jsonl (finetune --watch): scores while it trained")
def read(found: Found, res: Results) -> None:
    res.watches[str(found.path.parent)] = read_watch(found.path)
