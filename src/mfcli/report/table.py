"""One results table from any mix of inputs: rows of (model, task, metric, score, n, …).

Inputs (what `mfcli report` accepts):
- judged JSONL (`mfcli.judged/1`): per-record verdicts → accuracy per (model, task), with the record ids
  kept for paired tests;
- summary JSON (`mfcli.summary/1`, or the untagged form older mfcli wrote);
- rank JSONL (`mfcli.rank/1`);
- run directories (train_log.jsonl + epoch-K checkpoints) and checkpoint directories (mfcli.json);
- a plain CSV/JSONL table with columns model, task, score (optional role, metric, n);
- lmms-eval's `*_results.json` ({"results": {task: {"metric,filter": value}}, "config": {...}}).
Scores are percentages: accuracies ×100, and caption metrics (CIDEr, BLEU, ROUGE, METEOR, SPICE) ×100 as
the papers print them (Model Tailor's Flickr30k CIDEr 84.x is pycocoevalcap's 0.84x); other metrics on
their own scale (perplexity, …) keep it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mfcli.errors import MfcliError, UsageError
from mfcli.forgetting import CAPTION_METRICS, OWN_SCALE
from mfcli.io.records import (RANK_SCHEMA, REPORTED_SCHEMAS, SUMMARY_SCHEMAS, WATCH_SCHEMA, JudgedRecord, RankRecord,
                              SummaryRecord, read_judged, read_rank, read_train_log, read_watch)
from mfcli.train.log import LOG

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
    from mfcli.io.records import read_dataset_info

    info = read_dataset_info(Path(path)) if Path(path).parent.is_dir() else None
    return info.name if info else None


def model_info(name: str, path: str | None) -> ModelInfo:
    """Read the manifest of a checkpoint (if it has one): method, parents, epoch and target tasks; a
    tailored model inherits its SFTs' targets, a built-in name is the pre-trained base."""
    from mfcli.io.checkpoint import Manifest, read_manifest

    info = ModelInfo(name, _resolved(path))
    if name in ("tiny-clip",):
        info.kind, info.about = "vision-encoder", TINY_CLIP_ABOUT
    p = Path(path) if path else None
    if p is None or not p.is_dir():
        if name == "tiny":
            info.method = "pre-trained"
        return info
    cfg = p / "config.json"
    if cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == "clip":
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


def _role_from_eval_files(files: list) -> dict:
    roles = {}
    from mfcli.io.records import read_dataset_info

    for f in files:
        p = Path(f.get("path", ""))
        info = read_dataset_info(p) if p.parent.is_dir() else None
        if info is not None and info.role:
            roles[info.name] = info.role
    return roles


def _tasks_in(path: str) -> set[str] | None:
    """The tasks an evaluation file holds (None where it is gone)."""
    from mfcli.io.jsonl import iter_jsonl

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


def _meta_for(judged: Path) -> dict:
    name = judged.name.replace(".judged.jsonl", ".jsonl")
    meta = judged.with_name(name + ".meta.json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    from mfcli.io.jsonl import iter_jsonl

    return list(iter_jsonl(path))


def _check_schema(tag, where: str) -> None:
    if tag is not None and tag not in REPORTED_SCHEMAS and str(tag).startswith("mfcli."):
        raise MfcliError(f"{where}: schema '{tag}' is not one this mfcli reports on ({', '.join(REPORTED_SCHEMAS)}).",
                         "Re-create the file with this version of mfcli, or upgrade mfcli.")


def load_judged(path: Path, res: Results) -> None:
    meta = _meta_for(path)
    settings = meta.get("settings", {})
    res.roles.update(_role_from_eval_files(settings.get("data", [])))
    by: dict[tuple[str, str], list[JudgedRecord]] = {}
    for r in read_judged(path):
        model = str(r.get("model") or settings.get("model") or path.name.split(".")[0])
        by.setdefault((model, str(r.get("task", ""))), []).append(r)
    for (model, task), rows in by.items():
        if model not in res.models:
            res.models[model] = model_info(model, settings.get("model_path") if settings.get("model") == model else model)
        if not res.models[model].built_in and settings.get("model") == model:  # as the predictions recorded it
            res.models[model].built_in = dict((settings.get("fingerprint") or {}).get("built_in") or {})
            if settings.get("kind") == "clip" and settings.get("model") == model:
                res.models[model].kind = "vision-encoder"
        metric = rows[0].metric
        chosen = selected_split(res.models.get(model), settings.get("data", []), task)
        k = sum(1 for r in rows if r.verdict == "correct")
        verdicts: dict[str, int] = {}
        for r in rows:
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        binary = metric in BINARY_METRICS
        records = {str(r.get("id")): Scored(str(r.get(res.cluster) or r.get("image") or r.get("id")),
                                            float(r.verdict == "correct") if binary else float(r.score),
                                            str(r.get("output") or ""), tuple(r.get("references") or ()))
                   for r in rows}
        if binary:
            res.rows.append(Row(model, task, 100.0 * k / len(rows), metric, len(rows), source=str(path), correct=k,
                                verdicts=verdicts, outcomes={str(r.get("id")): r.verdict == "correct" for r in rows},
                                records=records, selected_on=chosen))
        else:  # VQA accuracy, CIDEr-D: the mean of the records' scores (CIDEr's is its corpus value), ×100
            score = 100.0 * sum(float(r.score) for r in rows) / len(rows)
            res.rows.append(Row(model, task, score, metric, len(rows), source=str(path), verdicts=verdicts,
                                records=records, selected_on=chosen))


def load_summary(path: Path, obj: dict, res: Results) -> None:
    summary = SummaryRecord.from_json(obj, str(path), model=path.name.split(".")[0])
    model = summary.model
    res.models.setdefault(model, model_info(model, model))
    for task, s in summary.tasks.items():
        n = int(s["n"])
        metric = s.get("metric", summary.metric)
        score = float(s["score"] if "score" in s else s["accuracy"])
        binary = metric in BINARY_METRICS
        res.rows.append(Row(model, task, 100.0 * score, metric, n, source=str(path),
                            correct=round(score * n) if binary else None, verdicts=s.get("verdicts")))


def load_lmms_eval(path: Path, obj: dict, res: Results) -> None:
    cfg = obj.get("config", {})
    model = obj.get("model_name") or cfg.get("model_name") or str(cfg.get("model_args", "")).split("pretrained=")[-1].split(",")[0] \
        or cfg.get("model") or path.stem
    res.models.setdefault(model, ModelInfo(model))
    n_samples = obj.get("n-samples", {})
    for task, metrics in obj["results"].items():
        for key, value in metrics.items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
                continue
            metric = key.split(",")[0]
            own = any(w in metric.lower() for w in OWN_SCALE)
            caption = any(w in metric.lower() for w in CAPTION_METRICS)
            score = 100.0 * float(value) if caption or (not own and value <= 1) else float(value)
            n = (n_samples.get(task) or {}).get("effective")
            res.rows.append(Row(model, task, score, metric, n, source=str(path)))


def load_table(path: Path, res: Results) -> None:
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            items = list(enumerate(csv.DictReader(f), start=2))
    else:
        items = _read_jsonl(path)
    for lineno, r in items:
        where = f"{path}:{lineno}"
        missing = [k for k in ("model", "task", "score") if not r.get(k) and r.get(k) != 0]
        if missing:
            raise MfcliError(f"{where}: missing column '{missing[0]}'.", "A table needs model, task and score columns.")
        try:
            score = float(r["score"])
        except ValueError:
            raise MfcliError(f"{where}: score '{r['score']}' is not a number.", "Fix the table.") from None
        res.models.setdefault(str(r["model"]), ModelInfo(str(r["model"])))
        if r.get("role"):
            res.roles[str(r["task"])] = str(r["role"])
        n = int(r["n"]) if r.get("n") not in (None, "") else None
        seed = int(r["seed"]) if r.get("seed") not in (None, "") else None
        res.rows.append(Row(str(r["model"]), str(r["task"]), score, str(r.get("metric") or "accuracy"), n,
                            source=str(path), correct=round(score / 100 * n) if n and not r.get("metric") else None,
                            seed=seed))


def load_run_dir(path: Path, res: Results) -> None:
    from mfcli.train.log import WATCH_FILE

    log = path / LOG
    if log.is_file():
        res.logs[str(path)] = read_train_log(log)
    if (path / WATCH_FILE).is_file():
        res.watches[str(path)] = read_watch(path / WATCH_FILE)
    for d in sorted(path.iterdir()):
        if (d / "mfcli.json").is_file():
            res.models.setdefault(str(d), model_info(str(d), str(d)))


def load_input(spec: str, res: Results) -> None:
    path = Path(spec)
    if not path.exists():
        raise MfcliError(f"{spec}: no such file or directory.", "Pass judged files, summaries, rank files, run dirs or tables.")
    if path.is_dir():
        if (path / "mfcli.json").is_file():
            res.models.setdefault(str(path), model_info(str(path), str(path)))
        elif (path / LOG).is_file() or any((d / "mfcli.json").is_file() for d in path.iterdir() if d.is_dir()):
            load_run_dir(path, res)
        else:
            raise MfcliError(f"{spec}: a directory with neither mfcli.json nor train_log.jsonl.",
                             "Pass a checkpoint or run directory, or the files inside it.")
        return
    if path.name.endswith(LOG):
        res.logs[str(path.parent)] = read_train_log(path)
        return
    if path.suffix == ".csv":
        return load_table(path, res)
    if path.suffix == ".json":
        obj = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(obj, dict) and "results" in obj and ("config" in obj or "configs" in obj):
            return load_lmms_eval(path, obj, res)
        if isinstance(obj, dict) and (obj.get("schema") in SUMMARY_SCHEMAS or
                                      (obj and all(isinstance(v, dict) and "accuracy" in v for v in obj.values()))):
            return load_summary(path, obj, res)
        _check_schema(obj.get("schema") if isinstance(obj, dict) else None, str(path))
        raise MfcliError(f"{spec}: a JSON file that is neither an mfcli summary nor lmms-eval results.",
                         "See docs/formats.md for what report reads.")
    if path.suffix == ".jsonl":
        first = next(iter(_read_jsonl(path)), (0, {}))[1]
        tag = first.get("schema")
        _check_schema(tag, f"{path}:1")
        if tag == WATCH_SCHEMA:  # a fine-tune's forgetting watch (train/watch.py)
            res.watches[str(path.parent)] = read_watch(path)
            return
        if tag == RANK_SCHEMA:
            res.ranks += read_rank(path)
            for r in res.ranks:
                res.models.setdefault(r.model, model_info(r.model, r.model_path))
            return
        if "verdict" in first:
            return load_judged(path, res)
        if {"model", "task", "score"} <= set(first):
            return load_table(path, res)
        raise MfcliError(f"{spec}: JSONL that is neither judged records, rank records nor a model,task,score table.",
                         "Judge predictions first (mfcli judge), or see docs/formats.md.")
    raise MfcliError(f"{spec}: cannot tell what this is from its extension '{path.suffix}'.",
                     "report reads .jsonl, .json, .csv files and run/checkpoint directories.")


def group_seeds(res: Results) -> None:
    """Rows of models whose names differ only in a seed part become one model with several seeds."""
    for row in res.rows:
        if row.seed is not None:
            continue
        group, seed = split_seed(row.model)
        if seed is None:
            continue
        info = res.models.get(row.model)
        if info is not None and group not in res.models:
            res.models[group] = replace(info, name=group, path=None)
        row.model, row.seed = group, seed


def collect(inputs: list[str], *, targets: list[str] = (), last_wins: bool = False,
            per_seed: bool = False, cluster: str = "image") -> Results:
    """Read every input; refuse two rows for the same (model, task, metric, seed) from different files.
    Unless per_seed, models named alike but for a seed part (runs/seed-1/x, runs/seed-2/x) are grouped."""
    from mfcli.data.tasks import TASKS

    res = Results(cluster=cluster)
    for spec in inputs:
        load_input(spec, res)
    if not per_seed:
        group_seeds(res)
    seen: dict[tuple, Row] = {}
    for row in res.rows:
        key = (row.model, row.task, row.metric, row.seed)
        if key in seen and not last_wins:
            raise MfcliError(f"two results for model '{row.model}', task '{row.task}': {seen[key].source} and {row.source}.",
                             "Pass only one of them, or --last-wins to keep the later file's.")
        seen[key] = row
    res.rows = list(seen.values())
    if not (res.rows or res.ranks or res.watches):  # a training log alone makes a loss curve, not a report
        found = " (only training logs)" if res.logs else ""
        raise MfcliError(f"no scores in {', '.join(inputs)}{found}: a report's tables come from judged JSONL "
                         "(`mfcli judge`, `mfcli emt --judge`), summary JSON, rank JSONL, a run's watch.jsonl, "
                         "model,task,score tables and lmms-eval *_results.json; run directories add their "
                         "training curves to those.",
                         "Judge the checkpoints' predictions first (mfcli emt CKPT DATA --judge exact --out "
                         "runs/CKPT.jsonl), then pass the .judged.jsonl files.")
    present = {r.task for r in res.rows}
    unknown = [t for t in targets if t not in present]
    if unknown and res.rows:
        raise UsageError(f"--target {unknown[0]}: no input has results for that task; the inputs hold "
                         f"{', '.join(sorted(present))}.", "Name one of those as --target.")
    for t, task in TASKS.items():  # built-in tasks have fixed roles
        res.roles.setdefault(t, task.role)
    for t in targets:
        res.roles[t] = TARGET
    if targets:  # the user named the targets: every other task is what the model knew before
        for r in res.rows:
            res.roles.setdefault(r.task, PRETRAINED)
    for info in res.models.values():  # what a checkpoint was fine-tuned on is a target for the report
        for t in info.targets:
            res.roles.setdefault(t, TARGET)
    missing = sorted({r.task for r in res.rows} - set(res.roles))
    if missing:
        raise MfcliError(f"task '{missing[0]}' has no role (pre-trained or target) in any input.",
                         f"Name the fine-tuning targets with --target {missing[0]} (the other tasks count as "
                         "pre-trained), or add a role column.")
    for r in res.rows:
        r.role = res.roles[r.task]
    return res
