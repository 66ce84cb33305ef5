"""Where `prepare` reads its examples from, one reader per module behind the registry in `base.py`:
a built-in task, an image folder (one sub-folder per class), LLaVA's instruction JSON, a CSV/JSONL
table of image paths with labels, questions and answers, captions or options, or a Hugging Face
dataset id. A new source is one module here that calls `register` (and one import line below, where
its place in the order is decided), plus its test.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mfcli.kinds import QaFields, kind_of
from mfcli.data.sources.base import (READERS, Example, Reader, Request, Source, iter_loaded,  # noqa: F401
                                     looks_like_path, register)
from mfcli.data.tasks import TASKS
from mfcli.errors import MfcliError, did_you_mean

# importing a reader registers it; the first one (in this order) that claims SOURCE reads it: a built-in
# name before a folder of that name, LLaVA's JSON array before a table's .json, the hub only for what
# looks like no path at all
from mfcli.data.sources import builtin, folder, llava_json, table, hub  # noqa: E402,F401


def open_source(spec: str, split: str | None = None, *, kind: str | None = None,
                fields: QaFields = QaFields(), image_field: str = "image", label_field: str = "label") -> Source:
    """Resolve SOURCE with the first registered reader that claims it. `kind` forces what a table's rows
    hold (else detected from their fields)."""
    if kind is not None:
        kind_of(kind)  # a forced --kind is a registered one, before any reader runs
    req = Request(spec, split, kind, fields, image_field, label_field)
    for reader in READERS.values():
        if reader.claims(req):
            return reader.read(req)
    path = req.path
    if path.is_file():
        raise MfcliError(f"{path}: cannot read a source from a '{path.suffix}' file.",
                         "Give a folder, a .csv or .jsonl file, a built-in task or a dataset id.")
    if looks_like_path(spec):
        raise MfcliError(f"source '{spec}' is neither a built-in task nor an existing path.",
                         "Check the path, or name a built-in task: " + ", ".join(sorted(TASKS)) + ".")
    raise MfcliError(f"source '{spec}' is neither a built-in task, a path, nor a dataset id.",
                     did_you_mean(spec, TASKS))


def read_label_names(path: str | None) -> dict[str, str]:
    """--label-names: a JSON object or two-column CSV mapping raw labels (e.g. wnids) to names."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise MfcliError(f"label-names file {p} not found.", "Give a JSON object or a two-column CSV.")
    if p.suffix.lower() == ".json":
        return {str(k): str(v) for k, v in json.loads(p.read_text(encoding="utf-8")).items()}
    with open(p, newline="", encoding="utf-8") as f:
        return {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}


