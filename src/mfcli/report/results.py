"""What the report's inputs become: rows of (model, task, metric, score, n, …), what each checkpoint's
manifest says (`ModelInfo`), and the `Results` every input reader (report/inputs/) adds to. A leaf of
report/: the readers and `table.collect` import it, it imports neither.

Scores are percentages: accuracies ×100, and caption metrics (CIDEr, BLEU, ROUGE, METEOR, SPICE) ×100 as
the papers print them (Model Tailor's Flickr30k CIDEr 84.x is pycocoevalcap's 0.84x); other metrics on
their own scale (perplexity, …) keep it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mfcli.io.checkpoint import Manifest, read_manifest
from mfcli.io.jsonl import iter_jsonl
from mfcli.io.records import RankRecord, read_dataset_info
from mfcli.models.load import model_type_of

PRETRAINED, TARGET = "pretrained", "target"
BINARY_METRICS = ("accuracy",)  # each record right or wrong: Wilson intervals and McNemar apply


@dataclass
class Row:
    model: str
    task: str
    score: float  # percent for accuracies
    metric: str = "accuracy"
    n: int | None = None
    role: str | None = None
    source: str = ""
    correct: int | None = None  # hits behind an accuracy (for the Wilson interval)
    verdicts: dict | None = None
    outcomes: dict | None = field(default=None, repr=False)  # record id → correct, for McNemar
    records: dict | None = field(default=None, repr=False)  # record id → Scored, for the paired tests
    seed: int | None = None  # one of several repeats of the same model (mean ± spread in the report)
    # the split this model's checkpoint was chosen on, where that is the very file these scores come
    # from (the watch's best/ chosen with --watch-on eval): a selected maximum, marked in the report
    selected_on: str | None = None


@dataclass(frozen=True)
class Scored:
    """One judged record, as the paired tests need it (report/paired.py)."""
    image: str  # records sharing an image are resampled together
    score: float  # 1/0 for right/wrong; VQA accuracy; the image's CIDEr-D
    output: str = ""
    references: tuple = ()


@dataclass
class ModelInfo:
    """What a checkpoint's manifest says: how it was made and what it was fine-tuned on."""
    name: str
    path: str | None = None
    kind: str = "mllm"  # or "vision-encoder"
    method: str | None = None
    parents: list = field(default_factory=list)
    epoch: float | None = None
    targets: list = field(default_factory=list)
    about: str = ""  # what a vision encoder's row is, said in the report (e.g. what it was trained on)
    budget: float | None = None  # a budgeted merge's ρ (tailor --sparsity): the trade-off front's x along a method
    # the files the checkpoint (or a parent of it) was chosen on: [{"path", "sha256", "split"}] (the watch)
    selected_on: list = field(default_factory=list)
    # the built-in model it is or descends from (its manifest's fingerprint.built_in: digest, recipe, libraries)
    built_in: dict = field(default_factory=dict)


# tiny-clip is pre-trained with the labelled training splits of every built-in classification task,
# targets included (zoo/tiny.py, train_clip): its "zero-shot" reading is on tasks it has seen
TINY_CLIP_ABOUT = "vision encoder, pre-trained on these tasks' labels"


@dataclass
class Results:
    rows: list = field(default_factory=list)
    ranks: list[RankRecord] = field(default_factory=list)
    logs: dict = field(default_factory=dict)  # run name → train_log rows
    watches: dict = field(default_factory=dict)  # run name → its forgetting watch (io.records.WatchRecord list)
    models: dict = field(default_factory=dict)  # model name → ModelInfo
    roles: dict = field(default_factory=dict)  # task → role
    # the judged records' field whose equal values form one cluster for the paired tests (report/paired.py):
    # the image by default, or a key the user names (`mfcli report --cluster FIELD`)
    cluster: str = "image"


# a path component naming a repeat: runs/seed-1/tailor, tailor_seed2, sft.seed-3 (not "seedling")
SEED_PART = re.compile(r"(?:^|(?<=[/_.-]))seed[-_]?(\d+)(?=$|[/_.-])")


def split_seed(name: str) -> tuple[str, int | None]:
    """'runs/seed-1/tailor' → ('runs/tailor', 1); a name without a seed part is its own group."""
    m = SEED_PART.search(name)
    if not m:
        return name, None
    head, tail = name[:m.start()], name[m.end():]
    if head and tail:  # two separators meet: keep a path separator if either is one
        sep = "/" if "/" in (head[-1], tail[0]) else head[-1]
        head, tail = head[:-1] + sep, tail[1:]
    group = (head + tail).strip("/_.-")
    return group or name, int(m.group(1))


def _resolved(p: str | None) -> str | None:
    if not p:
        return None
    q = Path(p)
    return str(q.resolve()) if q.exists() else p


def task_of_train_file(path: str) -> str | None:
    info = read_dataset_info(Path(path)) if Path(path).parent.is_dir() else None
    return info.name if info else None


def model_info(name: str, path: str | None) -> ModelInfo:
    """Read the manifest of a checkpoint (if it has one): method, parents, epoch and target tasks; a
    tailored model inherits its SFTs' targets, a built-in name is the pre-trained base."""
    info = ModelInfo(name, _resolved(path))
    if name in ("tiny-clip",):
        info.kind, info.about = "vision-encoder", TINY_CLIP_ABOUT
    p = Path(path) if path else None
    if p is None or not p.is_dir():
        if name == "tiny":
            info.method = "pre-trained"
        return info
    if model_type_of(p) == "clip":
        info.kind = "vision-encoder"
    m = read_manifest(p) or Manifest("")
    cmd, opts = m.command, m.options
    info.parents = [_resolved(x) for x in m.parents]
    info.selected_on = list(m.metrics.get("selected_on") or [])
    info.built_in = dict((m.fingerprint or {}).get("built_in") or {})
    if info.kind == "vision-encoder":
        info.about = (TINY_CLIP_ABOUT if cmd == "zoo tiny-clip" else
                      f"vision encoder, fine-tuned on {', '.join(t for t in (task_of_train_file(d['path']) for d in m.data) if t) or 'its data'}"
                      if cmd.startswith("finetune") else info.about or "vision encoder")
    if cmd.startswith("finetune"):
        info.method = opts.get("method")
        info.epoch = m.metrics.get("epoch")
        info.targets = [t for t in (task_of_train_file(d["path"]) for d in m.data) if t]
    elif cmd == "tailor":
        info.method = opts.get("method", "tailor")
        if info.method == "tailor":  # which decorator: the paper's or mfcli's refined one (older manifests: refined)
            info.method += f" ({opts.get('variant', 'refined')})"
        if m.metrics.get("budgeted", True):  # older manifests: every method was budgeted
            info.budget = opts.get("sparsity")
        for parent in info.parents[1:]:
            parent_info = model_info(parent, parent)
            info.targets += [t for t in parent_info.targets if t not in info.targets]
            info.selected_on += parent_info.selected_on  # a merge of a selected SFT is selected too
    elif cmd.startswith("zoo"):
        info.method = "pre-trained"
    return info


def roles_from_eval_files(files: list) -> dict:
    roles = {}
    for f in files:
        p = Path(f.get("path", ""))
        info = read_dataset_info(p) if p.parent.is_dir() else None
        if info is not None and info.role:
            roles[info.name] = info.role
    return roles


def _tasks_in(path: str) -> set[str] | None:
    """The tasks an evaluation file holds (None where it is gone)."""
    p = Path(path)
    return {str(r.get("task", "")) for _, r in iter_jsonl(p)} if p.is_file() else None


def selected_split(info: ModelInfo | None, scored: list[dict], task: str) -> str | None:
    """The split name when the model was chosen on the same file (same sha256, or same path) that
    scores `task` here; None otherwise."""
    for chosen in (info.selected_on if info else []):
        for f in scored:
            same = (chosen.get("sha256") and chosen.get("sha256") == f.get("sha256")) or \
                   (chosen.get("path") and chosen.get("path") == f.get("path"))
            tasks = _tasks_in(f.get("path", "")) if same else None
            if same and (tasks is None or task in tasks):
                return str(chosen.get("split") or "eval")
    return None
