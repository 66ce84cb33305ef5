"""A Hugging Face dataset by id (`datasets.load_dataset`): image-and-ClassLabel datasets, or rows of
questions, answers, captions or options (read as a table's rows are)."""

from __future__ import annotations

from mfcli.data.sources.base import Example, Request, Source, looks_like_path, register
from mfcli.data.sources.table import rows_to_examples
from mfcli.errors import MfcliError
from mfcli.hub import ensure_hub_reachable
from mfcli.kinds import detect_kind, kind_of

# The paper's datasets by their short names (EMT §4); any other id is passed through.
HUB_ALIASES = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100"}


def _claims(req: Request) -> bool:
    """A dataset id (`org/name`) or one of the short names — anything that does not look like a path."""
    spec = req.spec
    return not looks_like_path(spec) and not req.path.exists() and ("/" in spec or spec in HUB_ALIASES)


def _load_dataset(dataset_id: str, split: str | None):
    """The dataset from the hub or its cache: one clear line for every way that fails."""
    ensure_hub_reachable(dataset_id, kind="dataset")
    try:
        import datasets
    except ImportError:
        raise MfcliError("Hugging Face dataset ids need the 'datasets' package.",
                         "Install it with `pip install 'mfcli[hub]'`.") from None
    try:
        return datasets.load_dataset(dataset_id, split=split or "train")
    except Exception as e:  # datasets raises many types for "not found / not cached"
        raise MfcliError(f"could not load dataset '{dataset_id}': {type(e).__name__}: {str(e).splitlines()[0]}",
                         "Check the id and split, or go online once so it is cached.") from None


@register("hub", claims=_claims, summary="a Hugging Face dataset id (mnist, cifar10, cifar100 by short name)")
def read(req: Request) -> Source:
    spec, split, kind, fields = req.spec, req.split, req.kind, req.fields
    dataset_id = HUB_ALIASES.get(spec, spec)
    try:
        ds = _load_dataset(dataset_id, split)
    except MfcliError as e:
        if req.path.parent.is_dir() and str(req.path.parent) not in ("", "."):
            # `data/nope` beside an existing `data/`: far likelier a mistyped folder than a hub id
            raise MfcliError(f"there is no folder '{spec}' ({req.path.parent}/ exists; read as a Hugging Face "
                             f"dataset id instead, it failed: {e.what.rstrip('.')}).",
                             "Check the folder's name, or run `mfcli prepare --help` for what SOURCE can be."
                             ) from None
        raise
    import datasets  # there: _load_dataset imported it

    image_col = next((k for k, f in ds.features.items() if isinstance(f, datasets.Image)), None)
    columns = {k: k for k in ds.features}  # column names stand in for values: detect_kind reads names
    if image_col is not None and not kind_of(kind or detect_kind(columns, fields)).labelled:
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
