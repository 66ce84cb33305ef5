"""Every file format mfcli writes, typed: the prepared data (`EvalRecord`, `TrainRecord`, `DatasetInfo`),
predictions (`PredRecord`), judged rows (`JudgedRecord`), summaries (`SummaryRecord`), effective-rank
rows (`RankRecord`), the forgetting watch (`WatchRecord`), and the schema tag of every other file
(manifests, metadata, reports). Every record carries its tag; readers refuse tags they do not know and
name the file and line of a bad record. No schema literal lives anywhere else.

Formats are documented in docs/formats.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfcli.data.prompts import IMAGE_TOKEN
from mfcli.errors import MfcliError
from mfcli.io.jsonl import iter_jsonl
from mfcli.kinds import CLASSIFICATION, kind_of

EVAL_SCHEMA = "mfcli.eval/2"  # /2 added `kind` and `references`; /1 records read as classification
EVAL_SCHEMAS = (EVAL_SCHEMA, "mfcli.eval/1")
TRAIN_SCHEMA = "mfcli.train/1"  # LLaVA conversation form
SHAREGPT_SCHEMA = "mfcli.train.sharegpt/1"  # messages/images form (LLaMA-Factory, ms-swift)
PRED_SCHEMA = "mfcli.pred/2"  # /2 added `kind` and `references`
PRED_SCHEMAS = (PRED_SCHEMA, "mfcli.pred/1")
PRED_META_SCHEMA = "mfcli.pred-meta/1"  # preds.jsonl.meta.json: the run's settings, complete or not
JUDGED_SCHEMA = "mfcli.judged/2"  # /2 added `kind`, `metric` and `score`
JUDGED_SCHEMAS = (JUDGED_SCHEMA, "mfcli.judged/1")
SUMMARY_SCHEMA = "mfcli.summary/2"  # /2: a metric and a score per task
SUMMARY_SCHEMAS = (SUMMARY_SCHEMA, "mfcli.summary/1")
RANK_SCHEMA = "mfcli.rank/1"
RANK_PARTIAL_SCHEMA = "mfcli.rank.partial/1"  # rank's resume file beside OUT: each finished model's records
WATCH_SCHEMA = "mfcli.watch/1"
DATASET_SCHEMA = "mfcli.dataset/1"
MANIFEST_SCHEMA = "mfcli.manifest/1"  # a checkpoint's mfcli.json (io/checkpoint.py)
BUDGETS_SCHEMA = "mfcli.budgets/1"  # tailor --sparsity with several budgets: OUT/budgets.json
REPORT_SCHEMA = "mfcli.report/1"  # mfcli report --out X.json


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
                "images": [self.image] if self.image else [],
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


def _require_fields(obj: dict, where: str, keys: tuple[str, ...], what: str, hint: str) -> None:
    """One line naming every field a record lacks (`where`: file and line)."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise MfcliError(f"{where}: {what} without {', '.join(missing)}.", hint)


def _check_schema(obj: dict, where: str, known: tuple[str, ...]) -> str:
    tag = obj.get("schema", known[0])  # untagged files from other tools are read as the first form
    if tag not in known:
        raise MfcliError(f"{where}: unknown schema '{tag}' (this mfcli reads {', '.join(known)}).",
                         "Re-create the file with this version of mfcli, or upgrade mfcli.")
    return tag


def check_references(obj: dict, where: str, kind: str) -> tuple[str, ...]:
    """The `references` of a record of a kind that has them: a non-empty list of non-empty strings."""
    refs = obj.get("references")
    if refs is None or refs == []:
        raise MfcliError(f"{where}: a {kind} record needs 'references' ({kind_of(kind).references}).",
                         "Add a non-empty list under 'references'; see docs/formats.md.")
    if not isinstance(refs, list) or not all(isinstance(r, (str, int, float)) and not isinstance(r, bool)
                                             and str(r).strip() for r in refs):
        raise MfcliError(f"{where}: 'references' must be a list of non-empty strings, got {refs!r:.60}.",
                         "See docs/formats.md for the record layout.")
    return tuple(str(r) for r in refs)


def parse_eval(obj: dict, where: str) -> EvalRecord:
    """An evaluation record, checked against what its kind holds (kinds/)."""
    _check_schema(obj, where, EVAL_SCHEMAS)
    kind = kind_of(obj.get("kind", CLASSIFICATION), where)
    common = dict(id=str(_require(obj, where, "id", (str, int))),  # type: ignore[arg-type]
                  task=_require(obj, where, "task", str),
                  image=_require(obj, where, "image", str),
                  prompt=_require(obj, where, "prompt", str))
    if kind.labelled:
        labels = _require(obj, where, "labels", list)
        rec = EvalRecord(label=str(_require(obj, where, "label", (str, int))),  # type: ignore[arg-type]
                         labels=tuple(str(x) for x in labels), kind=kind.name, **common)  # type: ignore[arg-type]
        if rec.label not in rec.labels:
            raise MfcliError(f"{where}: label '{rec.label}' is not in its label set.",
                             "Add it to 'labels' or fix the label.")
        return rec
    refs = check_references(obj, where, kind.name)
    labels: tuple[str, ...] = ()
    if kind.options:
        labels = tuple(str(x) for x in _require(obj, where, "labels", list))  # type: ignore[union-attr]
    kind.check(refs, labels, where)
    return EvalRecord(label=refs[0], labels=labels, kind=kind.name, references=refs, **common)  # type: ignore[arg-type]


def parse_train(obj: dict, where: str) -> TrainRecord:
    tag = _check_schema(obj, where, (TRAIN_SCHEMA, SHAREGPT_SCHEMA)) if "schema" in obj else (
        SHAREGPT_SCHEMA if "messages" in obj else TRAIN_SCHEMA)
    rid = str(obj.get("id", where))
    if tag == SHAREGPT_SCHEMA:
        images = _require(obj, where, "images", list)
        messages = _require(obj, where, "messages", list)
        if not images:
            images = [""]  # a text record (its error below says so)
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
    if not image:
        raise MfcliError(f"{where}: a record asked without an image (the `text` kind, e.g. the built-in facts); "
                         "mfcli fine-tunes on image records.",
                         "Fine-tune on image data; ask text tasks with `mfcli emt` (they measure what a fine-tune "
                         "keeps).")
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
    counts: dict = field(default_factory=dict)  # {"train"|"eval"|"val": {label: n}, "skipped": n}
    seed: int = 0
    eval_fraction: float = 0.2
    format: str = "llava"
    role: str | None = None  # "pretrained" / "target" for built-in tasks; null: not known (report --target says)
    schema: str = "mfcli.dataset/1"
    prompt: str = ""  # the EMT prompt every eval record carries (classification)
    kind: str = CLASSIFICATION  # what the records ask: classification, vqa, caption or choice
    # the share of the not-held-out examples carved into val.jsonl (0: none; older dirs have none)
    val_fraction: float = 0.0


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


@dataclass(frozen=True)
class WatchRecord:
    """One evaluation of a fine-tune while it trains (`RUN/watch.jsonl`, train/watch/).

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
    # the fields above that take a CIDEr score (×100) as a number beside percentages (forgetting.py's
    # watch_mixed_scale): the file says so itself, as the report's † does
    mixed_scale: list = field(default_factory=list)
    schema: str = WATCH_SCHEMA

    def to_json(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "WatchRecord":
        _check_schema(obj, where, (WATCH_SCHEMA,))
        _require_fields(obj, where, ("step", "epoch", "scores", "targets"), "a watch record",
                        "The file was not written by `mfcli finetune --watch`; remove it or start a new run.")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: (tuple(v) if k == "targets" else v) for k, v in obj.items() if k in known})


def read_watch(path: str | Path) -> list[WatchRecord]:
    return [WatchRecord.from_json(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


# -- evaluation outputs: emt → judge → report ------------------------------------------------------------


@dataclass(frozen=True)
class PredRecord:
    """One answer of `mfcli emt` (preds.jsonl): the evaluation record asked, the prompt as sent, the
    model's free-text output (None where the image could not be read: `error` says why), and the batch
    it was generated in (a resumed run keeps only whole batches)."""

    model: str
    id: str
    index: int  # the record's position in the evaluation files: merged shards are sorted by it
    task: str
    kind: str
    label: str
    labels: tuple[str, ...]
    prompt: str
    image: str
    references: tuple[str, ...]
    output: str | None
    batch: int
    batch_size: int
    batch_seconds: float
    error: str | None = None
    schema: str = PRED_SCHEMA

    def to_json(self) -> dict:
        return {"schema": self.schema, "model": self.model, "id": self.id, "index": self.index, "task": self.task,
                "kind": self.kind, "label": self.label, "labels": list(self.labels), "prompt": self.prompt,
                "image": self.image,
                **({"references": list(self.references)} if kind_of(self.kind).references else {}),
                "output": self.output, "batch": self.batch, "batch_size": self.batch_size,
                "batch_seconds": self.batch_seconds, **({"error": self.error} if self.error is not None else {})}


def check_pred_schema(obj: dict, where: str) -> None:
    """`judge` reads any JSONL with an answer field; a *mfcli* prediction must be of a form it knows."""
    tag = obj.get("schema")
    if isinstance(tag, str) and tag.startswith("mfcli.pred/") and tag not in PRED_SCHEMAS:
        raise MfcliError(f"{where}: predictions of schema '{tag}'; this mfcli reads {', '.join(PRED_SCHEMAS)}.",
                         "Re-run `mfcli emt` with this version, or use the matching mfcli version.")


# the fields a judgement adds to the record it judged
JUDGEMENT_FIELDS = ("schema", "kind", "judge", "stage", "verdict", "correct", "matched", "metric", "score",
                    "judge_detail")


@dataclass(frozen=True)
class JudgedRecord:
    """One judged answer (judged.jsonl): the record that was judged — an mfcli prediction or any JSONL
    row, every field kept — plus the judgement: its kind, the judge and the stage that decided, the
    verdict, whether it is correct, the label matched, the metric and the record's score on it."""

    record: dict  # the judged row as read (its own fields, whatever they are)
    kind: str
    judge: str
    stage: str | None
    verdict: str
    correct: bool | None
    matched: str | None
    metric: str
    score: float | None
    detail: dict | None = None

    def get(self, key: str, default=None):
        """A field of the judged row (model, task, id, image, output, references, ...)."""
        return self.record.get(key, default)

    def to_json(self) -> dict:
        return {**self.record, "schema": JUDGED_SCHEMA, "kind": self.kind, "judge": self.judge, "stage": self.stage,
                "verdict": self.verdict, "correct": self.correct, "matched": self.matched, "metric": self.metric,
                "score": self.score, **({"judge_detail": self.detail} if self.detail else {})}

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "JudgedRecord":
        tag = obj.get("schema")
        if isinstance(tag, str) and tag.startswith("mfcli.") and tag not in JUDGED_SCHEMAS:
            raise MfcliError(f"{where}: schema '{tag}' is not a judged record ({', '.join(JUDGED_SCHEMAS)}).",
                             "Judge predictions with this version of mfcli (mfcli judge), or upgrade mfcli.")
        if "verdict" not in obj:
            raise MfcliError(f"{where}: a judged record needs 'verdict'.", "Judge it first: mfcli judge.")
        record = {k: v for k, v in obj.items() if k not in JUDGEMENT_FIELDS}
        # judged/1 rows carry no metric or score: a right/wrong verdict is the score
        return cls(record, str(obj.get("kind", CLASSIFICATION)), str(obj.get("judge", "")), obj.get("stage"),
                   str(obj["verdict"]), obj.get("correct"), obj.get("matched"), str(obj.get("metric", "accuracy")),
                   obj.get("score"), obj.get("judge_detail"))


def read_judged(path: str | Path) -> list[JudgedRecord]:
    return [JudgedRecord.from_json(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


@dataclass(frozen=True)
class SummaryRecord:
    """A judged file's summary (summary.json): per task (and overall) n, the verdict counts, its metric
    and score (a fraction: accuracy, VQA accuracy or CIDEr-D), `accuracy` where the metric is one, and a
    caption task's corpus figures. Tasks sit under `tasks`, so no task name can collide with a key."""

    model: str | None
    metric: str  # the tasks' one metric, or "mixed"
    tasks: dict  # task → {"n", "verdicts", "metric", "score", ["accuracy"], ["corpus"]}
    overall: dict  # the same figures over every record ("metric"/"score" only where one metric is shared)
    schema: str = SUMMARY_SCHEMA

    def to_json(self) -> dict:
        return {"schema": self.schema, "model": self.model, "metric": self.metric, "tasks": self.tasks,
                "overall": self.overall}

    @classmethod
    def from_json(cls, obj: dict, where: str, model: str | None = None) -> "SummaryRecord":
        """A tagged summary, or the untagged form other tools write: {task: {"n", "accuracy", ...}, "ALL": ...}."""
        if "schema" not in obj:
            tasks = {t: v for t, v in obj.items() if t != "ALL"}
            return cls(model, "accuracy", tasks, obj.get("ALL", {}), SUMMARY_SCHEMA)
        _check_schema(obj, where, SUMMARY_SCHEMAS)
        if not isinstance(obj.get("tasks"), dict):
            raise MfcliError(f"{where}: a summary without its 'tasks'.", "Re-create it with `mfcli judge`.")
        return cls(obj.get("model") or model, str(obj.get("metric", "accuracy")), obj["tasks"],
                   obj.get("overall", {}), obj["schema"])


@dataclass(frozen=True)
class RankRecord:
    """The effective rank of one model's features on one task at one layer (rank.jsonl, analysis/rank.py)."""

    model: str
    model_path: str
    task: str
    layer: int | str
    mode: str  # "stacked" (every token of the task in one matrix) or "per-image" (mean over images)
    n_images: int
    n_tokens: int
    dims: int
    top_singular_values: tuple[float, ...]
    erank: float
    erank_std: float | None = None  # per-image mode: the spread over images
    schema: str = RANK_SCHEMA

    def to_json(self) -> dict:
        d = {"schema": self.schema, "model": self.model, "model_path": self.model_path, "task": self.task,
             "layer": self.layer, "mode": self.mode, "n_images": self.n_images, "n_tokens": self.n_tokens,
             "dims": self.dims, "top_singular_values": list(self.top_singular_values), "erank": self.erank}
        if self.erank_std is not None:
            d["erank_std"] = self.erank_std
        return d

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "RankRecord":
        _check_schema(obj, where, (RANK_SCHEMA,))
        _require_fields(obj, where, ("model", "task", "layer", "erank"), "a rank record", "Re-create it with `mfcli rank`.")
        known = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in obj.items() if k in known}
        fields["top_singular_values"] = tuple(obj.get("top_singular_values") or ())
        return cls(**{"model_path": obj.get("model_path") or obj["model"], "mode": "stacked", "n_images": 0,
                      "n_tokens": 0, "dims": 0, **fields})


def read_rank(path: str | Path) -> list[RankRecord]:
    return [RankRecord.from_json(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


# -- fine-tuning runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainLogRecord:
    """One optimiser step of a fine-tune (RUN/train_log.jsonl): the step, the epoch it reached (a
    fraction), the loss, the learning rate it used, the gradient norm before clipping, its wall time, and
    the method's own figures (MDGD's `visual_loss`, `cos_grad_pre`, …) beside them."""

    step: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    seconds: float
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "loss": self.loss, "lr": self.lr,
                "grad_norm": self.grad_norm, "seconds": self.seconds, **self.extra}

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "TrainLogRecord":
        _require_fields(obj, where, ("step", "loss"), "a training-log row",
                        "Pass the train_log.jsonl `mfcli finetune` wrote.")
        base = ("step", "epoch", "loss", "lr", "grad_norm", "seconds")
        return cls(int(obj["step"]), float(obj.get("epoch", 0.0)), float(obj["loss"]), float(obj.get("lr", 0.0)),
                   float(obj.get("grad_norm", 0.0)), float(obj.get("seconds", 0.0)),
                   {k: v for k, v in obj.items() if k not in base})


def read_train_log(path: str | Path) -> list[TrainLogRecord]:
    return [TrainLogRecord.from_json(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]
