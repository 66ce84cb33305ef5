"""The predictions file both engines of `mfcli emt` write (weights loaded here, eval/emt.py; a served
model, eval/endpoint.py): its settings sidecar, the resume rule (equal settings, complete batches only),
and the generation cap per record kind they share."""

from __future__ import annotations

import json
from pathlib import Path

from mfcli import __version__
from mfcli.errors import MfcliError
from mfcli.io.jsonl import write_json_atomic, write_jsonl_atomic
from mfcli.io.records import PRED_META_SCHEMA
from mfcli.kinds import KINDS


def generation_caps() -> dict[str, int]:
    """The generation cap of each record kind when --max-new-tokens is not given (its module in kinds/:
    EMT's answers are one short sentence; lmms-eval caps short answers and option letters at 16 tokens
    and captions at 64)."""
    return {k.name: k.max_new_tokens for k in KINDS.values()}


def meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def update_meta(out: Path, **fields) -> None:
    """Set fields of OUT's sidecar (whether the run is complete, the server it asked, ...)."""
    meta = json.loads(meta_path(out).read_text())
    meta.update(fields)
    write_json_atomic(meta_path(out), meta)


def complete_batches(out: Path, batch_sizes: dict[int, int]) -> list[dict]:
    """Rows of OUT that belong to fully written batches (a torn or partial batch is dropped)."""
    rows = []
    with open(out, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn last line
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    count: dict[int, int] = {}
    for r in rows:
        count[r["batch"]] = count.get(r["batch"], 0) + 1
    return [r for r in rows if count[r["batch"]] == batch_sizes.get(r["batch"], -1)]


def settings_difference(old: dict | None, new: dict) -> str:
    """The settings that differ between a previous run's sidecar and this one, named for the user."""
    if old is None:
        return "its settings sidecar is missing or unreadable"
    old, new = _flat(old), _flat(new)
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = ", ".join(f"{k} ({_short(old.get(k))} there, {_short(new.get(k))} now)" for k in keys[:3])
    return f"it was made with another {shown}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _flat(settings: dict, prefix: str = "") -> dict:
    """{"generation": {"max_new_tokens": 8}} -> {"generation.max_new_tokens": 8}: the leaf that differs."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _comparable(settings: dict | None) -> dict | None:
    """The settings a resume must match: all but the process's environment (threads, library versions),
    which the sidecar records without making another machine's resume a different run."""
    if settings is None:
        return None
    fp = {k: v for k, v in (settings.get("fingerprint") or {}).items() if k != "environment"}
    return {**{k: v for k, v in settings.items() if k != "fingerprint"}, **({"fingerprint": fp} if fp else {})}


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def prepare_output(out: Path, settings: dict, batch_sizes: dict[int, int], *, resume: bool = True,
                   overwrite: bool = False, redo=lambda row: False) -> set[str]:
    """Decide between a fresh start and a resume; return the ids already done. A resumed run keeps the
    complete batches, less the rows `redo` picks (an endpoint's failed requests, asked again)."""
    meta = meta_path(out)
    if out.exists() or meta.exists():
        try:
            old = json.loads(meta.read_text()).get("settings") if meta.is_file() else None
        except json.JSONDecodeError:
            old = None
        same = _comparable(old) == _comparable(settings)
        if same and resume and not overwrite:
            keep = [r for r in (complete_batches(out, batch_sizes) if out.exists() else []) if not redo(r)]
            write_jsonl_atomic(out, keep)
            return {r["id"] for r in keep}
        if not overwrite:
            why = ("exists and --no-resume was given" if same
                   else f"holds another run: {settings_difference(_comparable(old), _comparable(settings))}")
            raise MfcliError(f"{out} {why}.", "Pass --overwrite to start afresh, or choose another --out.")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(meta, {"schema": PRED_META_SCHEMA, "settings": settings, "mfcli_version": __version__,
                             "complete": False})
    write_jsonl_atomic(out, [])
    return set()
