"""Line-oriented JSON: read with file:line in every error, write atomically and deterministically."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mfcli.errors import MfcliError


def dumps(obj: Any) -> str:
    """One canonical line: sorted keys and no spaces, so equal data gives equal bytes."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; `-` reads stdin."""
    name = "<stdin>" if str(path) == "-" else str(path)
    if name != "<stdin>" and not Path(path).is_file():
        raise MfcliError(f"{name}: no such file.", "Check the path, or run `mfcli prepare` to make one.")
    stream = sys.stdin if name == "<stdin>" else open(path, encoding="utf-8")
    try:
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise MfcliError(f"{name}:{lineno}: not valid JSON ({e.msg}).", "Fix or remove that line.") from None
            if not isinstance(obj, dict):
                raise MfcliError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}.",
                                 "Each line must be one {...} record.")
            yield lineno, obj
    finally:
        if stream is not sys.stdin:
            stream.close()


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> int:
    """Write all rows to `path` through a temporary file and a rename; return the row count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
