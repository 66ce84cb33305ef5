"""A CSV or JSONL table, one row per image: classification rows (image, label), or questions and answers,
captions or options (each kind in kinds/ reads its own rows). Its `split` column, where it has one, is kept."""

from __future__ import annotations

import csv
from pathlib import Path

from mfcli.data.sources.base import Example, Request, Source, open_image, register
from mfcli.data.splits import EVAL_NAMES, TRAIN_NAMES
from mfcli.errors import MfcliError
from mfcli.io.jsonl import iter_jsonl
from mfcli.kinds import QaFields, detect_kind, kind_of


TABLE_SUFFIXES = (".csv", ".jsonl", ".json")


@register("table", claims=lambda req: req.path.is_file() and req.path.suffix.lower() in TABLE_SUFFIXES,
          summary="a CSV or JSONL table of image paths with labels, questions, captions or options")
def read(req: Request) -> Source:
    path, kind, fields, image_field, label_field = req.path, req.kind, req.fields, req.image_field, req.label_field
    rows = _table_rows(path)
    kind, examples = rows_to_examples(rows, lambda v: open_image(path.parent / str(v)), kind=kind,
                                      label_field=label_field, image_field=image_field, fields=fields,
                                      csv_lists=path.suffix.lower() == ".csv")
    labels = tuple(sorted({e.label for e in examples})) if kind_of(kind).labelled else ()
    return Source(path.stem, f"table:{path.resolve()}", labels, examples, kind=kind)


def _table_rows(path: Path) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                rows.append((f"{path}:{i}", row))
    else:
        rows = [(f"{path}:{n}", obj) for n, obj in iter_jsonl(path)]
    if not rows:
        raise MfcliError(f"{path} has no rows.", "Give one row per image; see docs/formats.md.")
    return rows


def rows_to_examples(rows: list[tuple[str, dict]], image_of, *, kind: str | None, label_field: str,
                     image_field: str, fields: QaFields, csv_lists: bool) -> tuple[str, list[Example]]:
    """One kind for the whole table: given, or detected from the first row; a row of another kind
    is an error at its line."""
    first_kind = kind or detect_kind(rows[0][1], fields)
    reader = kind_of(first_kind)  # a forced kind that is not registered stops here
    labelled = reader.labelled
    examples, seen = [], {}
    for where, row in rows:
        if kind is None and (k := detect_kind(row, fields)) != first_kind:
            raise MfcliError(f"{where}: a {k} row in a table of {first_kind} rows (after its first row).",
                             "Give one kind of row per file, or force one with --kind.")
        need = [image_field] + ([label_field] if labelled else [])
        if any(f not in row for f in need):
            raise MfcliError(f"{where}: needs field{'s' if len(need) > 1 else ''} "
                             f"{' and '.join(repr(f) for f in need)}.",
                             "Add them, or name yours with --image-field/--label-field.")
        key = str(row.get("id") or len(examples))
        if key in seen:
            raise MfcliError(f"{where}: duplicate id '{key}' (first at {seen[key]}).", "Ids must be unique.")
        seen[key] = where
        load = image_of(row[image_field])
        split = _own_split(row, where)
        if labelled:
            examples.append(Example(key, str(row[label_field]), load, split=split, image=str(row[image_field])))
        else:
            qa = reader.parse_row(row, fields, where, csv=csv_lists)
            examples.append(Example(key, qa.references[0], load, qa.question, qa.references, qa.options, split,
                                    image=str(row[image_field])))
    return first_kind, examples


def _own_split(row: dict, where: str) -> str | None:
    """A table's `split` column, where it has one: the source's own train / held-out split, kept."""
    value = str(row.get("split") or "").strip().lower()
    if not value:
        return None
    if value in TRAIN_NAMES:
        return "train"
    if value in EVAL_NAMES:
        return "eval"
    raise MfcliError(f"{where}: split '{row['split']}' is neither a training nor a held-out split.",
                     "Use train, or one of eval/test/val/validation/dev, or leave it empty for a hashed split.")
