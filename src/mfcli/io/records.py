"""Typed JSONL records. Every record carries a `schema` tag; readers refuse tags they do not know.

Formats are documented in docs/formats.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.jsonl import iter_jsonl

EVAL_SCHEMA = "mfcli.eval/2"  # /2 added `kind` and `references`; /1 records read as classification
EVAL_SCHEMAS = (EVAL_SCHEMA, "mfcli.eval/1")
TRAIN_SCHEMA = "mfcli.train/1"  # LLaVA conversation form
SHAREGPT_SCHEMA = "mfcli.train.sharegpt/1"  # messages/images form (LLaMA-Factory, ms-swift)
IMAGE_TOKEN = "<image>"  # LLaVA's placeholder in the human turn

# What an evaluation record asks, and so how its answer is scored (docs/formats.md)
CLASSIFICATION = "classification"  # one label of `labels` (EMT); judged by exact/embed/clip/openai/cascade
VQA = "vqa"  # a short answer; VQA accuracy against `references`
CAPTION = "caption"  # a description; CIDEr-D (with BLEU-4, ROUGE-L) against `references`, per task
CHOICE = "choice"  # an option letter; `labels` are the options in letter order, `references` = [letter]
KINDS = (CLASSIFICATION, VQA, CAPTION, CHOICE)


@dataclass(frozen=True)
class EvalRecord:
    """One query: an EMT classification query (EMT Appendix C.1), a VQA question, a caption request or
    a multiple-choice question, as `kind` says."""

    id: str  # unique within the file
    task: str  # task name, e.g. "digits"; several tasks may share one file
    image: str  # path relative to the JSONL file's directory
    label: str  # classification: the true label; vqa/caption: the first reference; choice: the letter
    labels: tuple[str, ...]  # classification: the label set in prompt order; choice: the options; else ()
    prompt: str  # what the model is asked, verbatim
    kind: str = CLASSIFICATION
    references: tuple[str, ...] = ()  # vqa: reference answers; caption: reference captions; choice: [letter]
    schema: str = EVAL_SCHEMA

    def to_json(self) -> dict:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["references"] = list(self.references)
        return d


@dataclass(frozen=True)
class TrainRecord:
    """One fine-tuning example in LLaVA's conversation format (EMT Appendix D.1).

    `conversations` alternates {"from": "human"|"gpt", "value": str}; the first human turn holds
    the `<image>` placeholder. `task` and `label` are mfcli's additions (LLaVA ignores them).
    """

    id: str
    image: str  # relative to the JSONL file's directory
    conversations: tuple[dict, ...]
    task: str = ""
    label: str = ""
    schema: str = TRAIN_SCHEMA

    @property
    def question(self) -> str:
        return self.conversations[0]["value"]

    @property
    def answer(self) -> str:
        return self.conversations[1]["value"]

    def to_json(self, fmt: str = "llava") -> dict:
        if fmt == "sharegpt":
            role = {"human": "user", "gpt": "assistant"}
            return {
                "schema": SHAREGPT_SCHEMA, "id": self.id, "task": self.task, "label": self.label,
                "images": [self.image],
                "messages": [{"role": role[t["from"]], "content": t["value"]} for t in self.conversations],
            }
        d = asdict(self)
        d["conversations"] = [dict(t) for t in self.conversations]
        return d


def _require(obj: dict, where: str, key: str, kind: type) -> object:
    if key not in obj:
        raise MfcliError(f"{where}: missing field '{key}'.", "See docs/formats.md for the record layout.")
    value = obj[key]
    if not isinstance(value, kind):
        raise MfcliError(f"{where}: field '{key}' must be {kind.__name__}, got {type(value).__name__}.",
                         "See docs/formats.md for the record layout.")
    return value


def _check_schema(obj: dict, where: str, known: tuple[str, ...]) -> str:
    tag = obj.get("schema", known[0])  # untagged files from other tools are read as the first form
    if tag not in known:
        raise MfcliError(f"{where}: unknown schema '{tag}' (this mfcli reads {', '.join(known)}).",
                         "Re-create the file with this version of mfcli, or upgrade mfcli.")
    return tag


def check_references(obj: dict, where: str, kind: str) -> tuple[str, ...]:
    """The `references` of a non-classification record: a non-empty list of non-empty strings."""
    what = {VQA: "reference answers", CAPTION: "reference captions", CHOICE: "the correct option letter"}[kind]
    refs = obj.get("references")
    if refs is None or refs == []:
        raise MfcliError(f"{where}: a {kind} record needs 'references' ({what}).",
                         "Add a non-empty list under 'references'; see docs/formats.md.")
    if not isinstance(refs, list) or not all(isinstance(r, (str, int, float)) and not isinstance(r, bool)
                                             and str(r).strip() for r in refs):
        raise MfcliError(f"{where}: 'references' must be a list of non-empty strings, got {refs!r:.60}.",
                         "See docs/formats.md for the record layout.")
    return tuple(str(r) for r in refs)


def check_kind(obj: dict, where: str) -> str:
    kind = obj.get("kind", CLASSIFICATION)
    if kind not in KINDS:
        raise MfcliError(f"{where}: unknown kind '{kind}'.", f"Use one of {', '.join(KINDS)}.")
    return kind


def parse_eval(obj: dict, where: str) -> EvalRecord:
    _check_schema(obj, where, EVAL_SCHEMAS)
    kind = check_kind(obj, where)
    common = dict(id=str(_require(obj, where, "id", (str, int))),  # type: ignore[arg-type]
                  task=_require(obj, where, "task", str),
                  image=_require(obj, where, "image", str),
                  prompt=_require(obj, where, "prompt", str))
    if kind == CLASSIFICATION:
        labels = _require(obj, where, "labels", list)
        rec = EvalRecord(label=str(_require(obj, where, "label", (str, int))),  # type: ignore[arg-type]
                         labels=tuple(str(x) for x in labels), **common)  # type: ignore[arg-type]
        if rec.label not in rec.labels:
            raise MfcliError(f"{where}: label '{rec.label}' is not in its label set.",
                             "Add it to 'labels' or fix the label.")
        return rec
    refs = check_references(obj, where, kind)
    labels: tuple[str, ...] = ()
    if kind == CHOICE:
        labels = tuple(str(x) for x in _require(obj, where, "labels", list))  # type: ignore[union-attr]
        check_choice(refs, labels, where)
    return EvalRecord(label=refs[0], labels=labels, kind=kind, references=refs, **common)  # type: ignore[arg-type]


def check_choice(refs: tuple[str, ...], options: tuple[str, ...], where: str) -> None:
    from mfcli.eval.metrics.choice import LETTERS

    if len(options) < 2:
        raise MfcliError(f"{where}: a choice record needs at least two options in 'labels'.",
                         "List the options in letter order under 'labels'.")
    letters = LETTERS[:len(options)]
    if len(refs) != 1 or refs[0].strip().upper() not in letters:
        raise MfcliError(f"{where}: a choice record's 'references' must be one letter of {letters}, got {list(refs)}.",
                         "Give the correct option's letter, e.g. [\"B\"].")


def parse_train(obj: dict, where: str) -> TrainRecord:
    tag = _check_schema(obj, where, (TRAIN_SCHEMA, SHAREGPT_SCHEMA)) if "schema" in obj else (
        SHAREGPT_SCHEMA if "messages" in obj else TRAIN_SCHEMA)
    rid = str(obj.get("id", where))
    if tag == SHAREGPT_SCHEMA:
        images = _require(obj, where, "images", list)
        messages = _require(obj, where, "messages", list)
        if len(images) != 1:
            raise MfcliError(f"{where}: expected exactly one image, got {len(images)}.",
                             "mfcli trains on single-image records.")
        back = {"user": "human", "assistant": "gpt"}
        turns = tuple({"from": back.get(m.get("role"), m.get("role")), "value": m.get("content", "")}
                      for m in messages)
        image = str(images[0])
    else:
        image = _require(obj, where, "image", str)  # type: ignore[assignment]
        turns = tuple(dict(t) for t in _require(obj, where, "conversations", list))  # type: ignore[union-attr]
    if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
        raise MfcliError(f"{where}: a training record needs a human turn followed by a gpt answer.",
                         "See docs/formats.md.")
    if not str(turns[1].get("value", "")).strip():
        raise MfcliError(f"{where}: the answer is empty.", "Give every record a non-empty answer.")
    if IMAGE_TOKEN not in str(turns[0].get("value", "")):
        raise MfcliError(f"{where}: the human turn has no {IMAGE_TOKEN} placeholder.",
                         f"Put {IMAGE_TOKEN} where the image goes.")
    return TrainRecord(id=rid, image=image, conversations=turns, task=str(obj.get("task", "")),
                       label=str(obj.get("label", "")))


def _read(path: str | Path, parse) -> Iterator:
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        rec = parse(obj, where)
        if rec.id in seen:
            raise MfcliError(f"{where}: duplicate id '{rec.id}' (first on line {seen[rec.id]}).",
                             "Ids must be unique within a file.")
        seen[rec.id] = lineno
        yield rec


def read_eval(path: str | Path) -> list[EvalRecord]:
    return list(_read(path, parse_eval))


def read_train(path: str | Path) -> list[TrainRecord]:
    return list(_read(path, parse_train))


@dataclass(frozen=True)
class DatasetInfo:
    """dataset.json beside train.jsonl/eval.jsonl: what `prepare` made and from what."""

    name: str
    source: str
    labels: tuple[str, ...]
    noun: str
    counts: dict = field(default_factory=dict)  # {"train": {label: n}, "eval": {label: n}, "skipped": n}
    seed: int = 0
    eval_fraction: float = 0.2
    format: str = "llava"
    role: str = ""  # "pretrained" / "target" for built-in tasks
    schema: str = "mfcli.dataset/1"
    prompt: str = ""  # the EMT prompt every eval record carries (classification)
    kind: str = CLASSIFICATION  # what the records ask: classification, vqa, caption or choice


DATASET_SCHEMA = "mfcli.dataset/1"


def read_dataset_info(path: str | Path) -> DatasetInfo | None:
    """dataset.json of a prepared directory (or beside a train.jsonl/eval.jsonl); None when there is
    none. Files written before the schema tag read the same; an unknown tag or a broken file is an error."""
    import json

    p = Path(path)
    info = p / "dataset.json" if p.is_dir() else p.parent / "dataset.json"
    if not info.is_file():
        return None
    try:
        d = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MfcliError(f"{info}: not readable JSON ({e}).", "Re-run `mfcli prepare` for that directory.") from None
    if not isinstance(d, dict) or d.get("schema", DATASET_SCHEMA) != DATASET_SCHEMA or "name" not in d:
        raise MfcliError(f"{info}: not a {DATASET_SCHEMA} file.", "Re-run `mfcli prepare` for that directory.")
    known = set(DatasetInfo.__dataclass_fields__)
    return DatasetInfo(**{k: (tuple(v) if k == "labels" else v) for k, v in d.items() if k in known})


def resolve_data_file(data: str | Path, name: str) -> Path:
    """DATA may be a prepared directory or the JSONL file itself."""
    p = Path(data)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise MfcliError(f"{p}: no such file.", "Run `mfcli prepare SOURCE --out DIR` first, then pass DIR.")
    return p


WATCH_SCHEMA = "mfcli.watch/1"


@dataclass(frozen=True)
class WatchRecord:
    """One evaluation of a fine-tune while it trains (`RUN/watch.jsonl`, train/watch.py).

    Scores are on the report's scale (accuracies in %, CIDEr-D × 100). `kept` is each pre-trained
    task's score as a % of its step-0 score; `target` the mean over the targets; `target_gain` its
    change since step 0 (points); the H-scores are report/stats.py's two forms and mfcli's scale-free
    H of (kept, target)."""

    step: int
    epoch: float
    scores: dict  # task → score
    metrics: dict  # task → metric name (accuracy, vqa_accuracy, cider, ...)
    n: dict  # task → records scored
    targets: tuple[str, ...]
    kept: dict  # pre-trained task → % of its step-0 score (tasks step 0 scores 0 on are left out)
    kept_mean: float | None
    target: float | None
    target_gain: float | None
    h: float | None  # H (Model Tailor, App. D.2) of the pre-trained and target averages
    h_mdgd: float | None  # H (MDGD, Table 1)
    h_kept: float | None  # mfcli's: H of kept_mean and the target score (a percent target only)
    criterion: str = "h"
    value: float | None = None  # the criterion's value (None: this evaluation does not qualify)
    best: bool = False  # this evaluation became the best so far (RUN/best/ holds its weights)
    best_step: int | None = None  # the step of the best evaluation so far, this one included
    stop: str | None = None  # why the run stopped after this evaluation
    seconds: float = 0.0  # wall time of this evaluation
    schema: str = WATCH_SCHEMA

    def to_json(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "WatchRecord":
        _check_schema(obj, where, (WATCH_SCHEMA,))
        missing = [k for k in ("step", "epoch", "scores", "targets") if k not in obj]
        if missing:
            raise MfcliError(f"{where}: a watch record without {', '.join(missing)}.",
                             "The file was not written by `mfcli finetune --watch`; remove it or start a new run.")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: (tuple(v) if k == "targets" else v) for k, v in obj.items() if k in known})


def read_watch(path: str | Path) -> list[WatchRecord]:
    return [WatchRecord.from_json(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]
