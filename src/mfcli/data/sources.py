"""Where `prepare` reads labelled images from: a built-in task, a Hugging Face dataset id, an image
folder (one sub-folder per class), or a CSV/JSONL of image paths and labels."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mfcli.errors import MfcliError
from mfcli.data.tasks import TASKS

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Example:
    key: str  # stable id stem: index in the source, or the source's own id
    label: str
    load: object  # () -> PIL.Image, may raise on a corrupt file


@dataclass
class Source:
    name: str  # task name written into the records
    description: str  # what dataset.json records as the source
    labels: tuple[str, ...]
    examples: list[Example]
    noun: str | None = None  # forced prompt noun (built-in tasks); else derived from labels
    role: str = ""


def _from_array(a: np.ndarray):
    return lambda: Image.fromarray(a)


def builtin_source(name: str) -> Source:
    task = TASKS[name]
    images, ids = task.load()
    examples = [Example(f"{i:05d}", task.labels[int(y)], _from_array(images[i])) for i, y in enumerate(ids)]
    return Source(name, f"builtin:{name}", task.labels, examples, task.noun, task.role)


def _open_image(path: Path):
    def load():
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    return load


def folder_source(root: Path) -> Source:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise MfcliError(f"{root} has no class sub-folders.",
                         "Lay it out as ROOT/<label>/<image>, one sub-folder per class.")
    examples = []
    for label in classes:
        for f in sorted((root / label).rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                examples.append(Example(f"{label}-{f.stem}", label, _open_image(f)))
    if not examples:
        raise MfcliError(f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).",
                         "Put the images into the class sub-folders.")
    return Source(root.name, f"folder:{root.resolve()}", tuple(classes), examples)


def table_source(path: Path, image_field: str = "image", label_field: str = "label") -> Source:
    rows: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                rows.append((f"{path}:{i}", row))
    else:
        from mfcli.io.jsonl import iter_jsonl
        rows = [(f"{path}:{n}", obj) for n, obj in iter_jsonl(path)]
    if not rows:
        raise MfcliError(f"{path} has no rows.", "Give one row per image with columns 'image' and 'label'.")
    examples, seen = [], {}
    for where, row in rows:
        if image_field not in row or label_field not in row:
            raise MfcliError(f"{where}: needs fields '{image_field}' and '{label_field}'.",
                             "Add them, or name yours with --image-field/--label-field.")
        key = str(row.get("id") or len(examples))
        if key in seen:
            raise MfcliError(f"{where}: duplicate id '{key}' (first at {seen[key]}).", "Ids must be unique.")
        seen[key] = where
        examples.append(Example(key, str(row[label_field]), _open_image(path.parent / str(row[image_field]))))
    labels = tuple(sorted({e.label for e in examples}))
    return Source(path.stem, f"table:{path.resolve()}", labels, examples)


# The paper's datasets by their short names (EMT §4); any other id is passed through.
HUB_ALIASES = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100"}


def _hub_source(spec: str, split: str | None) -> Source:
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


def open_source(spec: str, split: str | None = None) -> Source:
    """Resolve SOURCE: a built-in task, an existing path, or else a Hugging Face dataset id."""
    if spec in TASKS:
        return builtin_source(spec)
    path = Path(spec)
    if path.is_dir():
        return folder_source(path)
    if path.is_file():
        if path.suffix.lower() in (".csv", ".jsonl", ".json"):
            return table_source(path)
        raise MfcliError(f"{path}: cannot read a source from a '{path.suffix}' file.",
                         "Give a folder, a .csv or .jsonl file, a built-in task or a dataset id.")
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).suffix
    if not looks_like_path and ("/" in spec or spec in HUB_ALIASES):
        return _hub_source(spec, split)
    from mfcli.errors import did_you_mean
    if looks_like_path:
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


def iter_loaded(examples: list[Example]) -> Iterator[tuple[Example, Image.Image | None, str | None]]:
    for ex in examples:
        try:
            yield ex, ex.load(), None
        except Exception as e:  # PIL raises several types for truncated/corrupt files
            yield ex, None, f"{type(e).__name__}: {e}"
