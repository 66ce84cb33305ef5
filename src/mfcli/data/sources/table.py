"""A CSV or JSONL table, one row per image: classification rows (image, label), or questions and answers,
captions or options (data/qa.py reads those). Its `split` column, where it has one, is kept."""

from __future__ import annotations

import csv
from pathlib import Path

from mfcli.data.qa import QaFields, detect_kind, parse_row
from mfcli.data.sources.base import Example, Request, Source, check_kind, open_image, register
from mfcli.data.splits import EVAL_NAMES, TRAIN_NAMES
from mfcli.errors import MfcliError
from mfcli.io.records import CLASSIFICATION


TABLE_SUFFIXES = (".csv", ".jsonl", ".json")


@register("table", claims=lambda req: req.path.is_file() and req.path.suffix.lower() in TABLE_SUFFIXES,
          summary="a CSV or JSONL table of image paths with labels, questions, captions or options")
def read(req: Request) -> Source:
    path, kind, fields, image_field, label_field = req.path, req.kind, req.fields, req.image_field, req.label_field
    rows = _table_rows(path)
    kind, examples = rows_to_examples(rows, lambda v: open_image(path.parent / str(v)), kind=kind,
                                      label_field=label_field, image_field=image_field, fields=fields,
                                      csv_lists=path.suffix.lower() == ".csv")
    labels = tuple(sorted({e.label for e in examples})) if kind == CLASSIFICATION else ()
    return Source(path.stem, f"table:{path.resolve()}", labels, examples, kind=kind)


def _table_rows(path: Path) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                rows.append((f"{path}:{i}", row))
    else:
        from mfcli.io.jsonl import iter_jsonl
        rows = [(f"{path}:{n}", obj) for n, obj in iter_jsonl(path)]
    if not rows:
        raise MfcliError(f"{path} has no rows.", "Give one row per image; see docs/formats.md.")
    return rows


def rows_to_examples(rows: list[tuple[str, dict]], image_of, *, kind: str | None, label_field: str,
                     image_field: str, fields: QaFields, csv_lists: bool) -> tuple[str, list[Example]]:
    """One kind for the whole table: given, or detected from the first row; a row of another kind
    is an error at its line."""
    check_kind(kind)
    first_kind = kind or detect_kind(rows[0][1], fields)
    examples, seen = [], {}
    for where, row in rows:
        if kind is None and (k := detect_kind(row, fields)) != first_kind:
            raise MfcliError(f"{where}: a {k} row in a table of {first_kind} rows (after its first row).",
                             "Give one kind of row per file, or force one with --kind.")
        need = [image_field] + ([label_field] if first_kind == CLASSIFICATION else [])
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
        if first_kind == CLASSIFICATION:
            examples.append(Example(key, str(row[label_field]), load, split=split))
        else:
            qa = parse_row(row, first_kind, fields, where, csv=csv_lists)
            examples.append(Example(key, qa.references[0], load, qa.question, qa.references, qa.options, split))
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


def table_source(path: Path, image_field: str = "image", label_field: str = "label", *,
                 kind: str | None = None, fields: QaFields = QaFields()) -> Source:
    rows = _table_rows(path)
    kind, examples = rows_to_examples(rows, lambda v: _open_image(path.parent / str(v)), kind=kind,
                                      label_field=label_field, image_field=image_field, fields=fields,
                                      csv_lists=path.suffix.lower() == ".csv")
    labels = tuple(sorted({e.label for e in examples})) if kind == CLASSIFICATION else ()
    return Source(path.stem, f"table:{path.resolve()}", labels, examples, kind=kind)


def llava_json_source(path: Path, kind: str | None = None) -> Source:
    """LLaVA's instruction JSON (a JSON array of {"id", "image", "conversations"}): each human/gpt pair
    becomes one example, a short-answer question unless --kind says caption."""
    _check_kind(kind)
    kind = kind or "vqa"
    if kind not in ("vqa", "caption"):
        raise MfcliError(f"--kind {kind} does not fit LLaVA conversations.", "Use --kind vqa or --kind caption.")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise MfcliError(f"{path}: not valid JSON ({e}).", "Give LLaVA's instruction JSON: an array of records.") from None
    examples = []
    for n, obj in enumerate(records):
        where = f"{path}:record {n}"
        if not isinstance(obj, dict) or "image" not in obj:
            raise MfcliError(f"{where}: needs 'image' and 'conversations'.", "See docs/formats.md.")
        load = _open_image(path.parent / str(obj["image"]))
        for k, (question, answer) in enumerate(llava_pairs(obj, where)):
            key = f"{obj.get('id', n)}-{k}" if k else str(obj.get("id", n))
            examples.append(Example(key, answer, load, question, (answer,)))  # a caption's question: its instruction
    if not examples:
        raise MfcliError(f"{path} has no records.", "Give a JSON array of LLaVA records.")
    return Source(path.stem, f"llava:{path.resolve()}", (), examples, kind=kind)


# The paper's datasets by their short names (EMT §4); any other id is passed through.
HUB_ALIASES = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100"}


def _hub_source(spec: str, split: str | None, kind: str | None = None, fields: QaFields = QaFields()) -> Source:
    from mfcli.models.hub import ensure_hub_reachable

    dataset_id = HUB_ALIASES.get(spec, spec)

    ensure_hub_reachable(dataset_id, kind="dataset")
    try:
        import datasets
    except ImportError:
        raise MfcliError("Hugging Face dataset ids need the 'datasets' package.",
                         "Install it with `pip install 'mfcli[hub]'`.") from None
    try:
        ds = datasets.load_dataset(dataset_id, split=split or "train")
    except Exception as e:  # datasets raises many types for "not found / not cached"
        raise MfcliError(f"could not load dataset '{dataset_id}': {type(e).__name__}: {str(e).splitlines()[0]}",
                         "Check the id and split, or go online once so it is cached.") from None
    image_col = next((k for k, f in ds.features.items() if isinstance(f, datasets.Image)), None)
    columns = {k: k for k in ds.features}  # column names stand in for values: detect_kind reads names
    if image_col is not None and (kind or detect_kind(columns, fields)) != CLASSIFICATION:
        # question / answers / captions / options columns: the same row reader as for JSONL files
        rows = [(f"{dataset_id}[{i}]", {**ds[i], "id": ds[i].get("question_id", ds[i].get("id", i))})
                for i in range(len(ds))]
        kind, examples = rows_to_examples(rows, lambda v: (lambda: v.convert("RGB")), kind=kind,
                                          label_field="label", image_field=image_col, fields=fields,
                                          csv_lists=False)
        return Source(spec.split("/")[-1].lower(), f"hf:{dataset_id}", (), examples, kind=kind)
    label_cols = [k for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)]
    label_col = next((k for k in ("label", "fine_label") if k in label_cols), label_cols[0] if label_cols else None)
    if image_col is None or label_col is None:
        raise MfcliError(f"dataset '{dataset_id}' has no Image and ClassLabel columns.",
                         "Export it to a folder or CSV and prepare that instead.")
    # EMT writes names with spaces ("African hunting dog"), never underscores
    names = tuple(n.replace("_", " ") for n in ds.features[label_col].names)
    examples = [Example(f"{i:06d}", names[ds[i][label_col]], (lambda i=i: ds[i][image_col].convert("RGB")))
                for i in range(len(ds))]
    return Source(spec.split("/")[-1].lower(), f"hf:{dataset_id}", names, examples)


def open_source(spec: str, split: str | None = None, *, kind: str | None = None,
                fields: QaFields = QaFields(), image_field: str = "image", label_field: str = "label") -> Source:
    """Resolve SOURCE: a built-in task, an existing path, or else a Hugging Face dataset id. `kind`
    forces what a table's rows hold (else detected from their fields)."""
    if spec in TASKS:
        if kind is not None and kind != TASKS[spec].kind:
            raise MfcliError(f"built-in task '{spec}' is a {TASKS[spec].kind} task, not {kind}.", "Drop --kind.")
        return builtin_source(spec)
    path = Path(spec)
    if path.is_dir():
        if kind not in (None, CLASSIFICATION):
            raise MfcliError(f"an image folder holds labelled images, not {kind} data.",
                             "Give questions, answers or captions in a JSONL/CSV file; see docs/formats.md.")
        return folder_source(path)
    if path.is_file():
        if path.suffix.lower() == ".json" and path.read_text(encoding="utf-8", errors="replace").lstrip()[:1] == "[":
            return llava_json_source(path, kind)
        if path.suffix.lower() in (".csv", ".jsonl", ".json"):
            return table_source(path, image_field, label_field, kind=kind, fields=fields)
        raise MfcliError(f"{path}: cannot read a source from a '{path.suffix}' file.",
                         "Give a folder, a .csv or .jsonl file, a built-in task or a dataset id.")
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).suffix
    if not looks_like_path and ("/" in spec or spec in HUB_ALIASES):
        return _hub_source(spec, split, kind, fields)
    from mfcli.errors import did_you_mean
    if looks_like_path:
        raise MfcliError(f"source '{spec}' is neither a built-in task nor an existing path.",
                         "Check the path, or name a built-in task: " + ", ".join(sorted(TASKS)) + ".")
    raise MfcliError(f"source '{spec}' is neither a built-in task, a path, nor a dataset id.",
                     did_you_mean(spec, TASKS))
