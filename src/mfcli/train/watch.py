"""The forgetting watch: score the pre-trained tasks and the target while a fine-tune trains, keep the
checkpoint with the best trade-off, stop in time (`mfcli finetune … --watch DATA…`).

EMT §5.3 finds the best trade-off early in fine-tuning and a worse one with more steps; the watch shows
that as it happens instead of after every epoch was evaluated. What it does, in order:

1. draws a fixed sample of `--watch-n` records per task from each watched data set's validation split,
   `val.jsonl` (`--watch-on eval` takes the held-out `eval.jsonl` instead: recorded in best/'s manifest
   as `selected_on`, and `mfcli report` marks every score of that checkpoint on those records, since a
   checkpoint chosen on the records it is scored on reads high) — a seeded permutation per task,
   independent of the training seed, so every run of a study is watched on the same records;
2. scores the model before training (step 0) once per (model, sample) — cached in the mfcli cache —
   with the batched greedy generation `mfcli emt` uses and the judge each record's kind calls for
   (exact match for labels, VQA accuracy, CIDEr-D, option match);
3. scores it again every `--watch-every` steps and at each epoch's end, on the training model itself
   (eval mode, no gradient, no second copy), and appends one `mfcli.watch/1` record to RUN/watch.jsonl;
4. keeps RUN/best/ (weights and a manifest naming the evaluation) whenever the criterion improves, and,
   if asked, stops after `--watch-patience` evaluations without improvement or when kept falls below
   `--watch-floor`.

Under torchrun / accelerate each process generates its share of every batch and the outputs are
gathered, so every process scores the same answers (with FSDP, generation keeps the processes in step).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mfcli.errors import MfcliError, UsageError, did_you_mean
from mfcli.io.records import WatchRecord, read_dataset_info, read_eval, read_train, read_watch
from mfcli.kinds import CAPTION, kind_of
from mfcli.params import option
from mfcli.train.log import WATCH_FILE

BEST_DIR = "best"
INPUT_CACHE_BYTES = 1 << 30  # processed watch inputs kept in host memory between evaluations, at most
SAMPLE_SEED = 29  # the watch sample's seed: fixed, so every run of a study is watched on the same records
# the split of a prepared directory the watch samples: validation by default (what chooses must not be
# what is scored), the held-out split only when asked
SPLIT_FILES = {"val": "val.jsonl", "eval": "eval.jsonl"}


def _value(field: str):
    return lambda r: getattr(r, field)


# What "best" means: a field of the watch record, higher is better.
CRITERIA = {"h": _value("h"), "h-mdgd": _value("h_mdgd"), "h-kept": _value("h_kept"), "kept": _value("kept_mean"),
            "target": _value("target")}


@dataclass(frozen=True)
class WatchOptions:
    """The forgetting watch's options: `mfcli finetune --watch DATA --watch-every …` (the fields made with
    `option` are those flags, with this help)."""

    # prepared dirs or eval.jsonl files: the pre-trained tasks and the target(s)
    data: tuple[str, ...] = option((), "Forgetting watch: score these prepared data sets' validation records (the "
                                       "pre-trained tasks and the target) while training; repeat the option per "
                                       "data set. Writes DIR/watch.jsonl and DIR/best/.",
                                   flags=("--watch",), cli_type=Optional[list[str]])
    # which split of a prepared dir is watched and chosen on: val (val.jsonl) or eval (eval.jsonl,
    # recorded as selected_on and marked in reports)
    on: str = option("val", "The split the watch scores and best/ is chosen on: val (val.jsonl, the default) or "
                            "eval (the held-out split: recorded in best/'s manifest, marked in reports).",
                     flags=("--watch-on",))
    # "N" optimiser steps or "Xep" (a fraction of an epoch); always each epoch's end
    every: str | None = option(None, "Also watch every N optimiser steps (50) or fraction of an epoch (0.5ep); "
                                     "always at each epoch's end.")
    # records per task (a seeded sample of its held-out split); 100 keeps the cost ≤ 15 % on tiny
    n: int = option(100, "Watched records per task (a fixed, seeded sample).")
    best: str = option("h", f"What DIR/best/ maximises: {', '.join(CRITERIA)} (h: Model Tailor's H).")
    kept_min: float | None = option(None, "Only evaluations keeping at least this % of the step-0 scores can be "
                                          "best (with --watch-best target: the most target while kept ≥ X).")
    patience: int | None = option(None, "Stop after this many evaluations without a new best.")
    floor: float | None = option(None, "Stop when the mean kept % falls below this.")
    batch_size: int = 64

    def __post_init__(self):
        if not self.data:
            raise UsageError("--watch needs at least one data set.")
        if self.every is not None:
            parse_every(self.every)
        if self.n < 1 or self.batch_size < 1:
            raise UsageError("--watch-n and the watch batch size must be at least 1.")
        if self.on not in SPLIT_FILES:
            raise UsageError(f"--watch-on must be val or eval, got '{self.on}'.", did_you_mean(self.on, SPLIT_FILES))
        if self.best not in CRITERIA:
            raise UsageError(f"unknown --watch-best '{self.best}'.", did_you_mean(self.best, CRITERIA))
        for name, v in (("--watch-kept-min", self.kept_min), ("--watch-floor", self.floor)):
            if v is not None and not 0 <= v <= 100:
                raise UsageError(f"{name} is a percentage of the step-0 scores: 0 to 100, got {v}.")
        if self.patience is not None and self.patience < 1:
            raise UsageError("--watch-patience must be at least 1 evaluation.")


def parse_every(spec: str) -> tuple[int | None, float | None]:
    """'50' → every 50 optimiser steps; '0.5ep' → twice an epoch. Returns (steps, epochs)."""
    s = str(spec).strip().lower()
    try:
        if s.endswith("ep"):
            ep = float(s[:-2])
            if ep > 0:
                return None, ep
        else:
            steps = int(s)
            if steps > 0:
                return steps, None
    except ValueError:
        pass
    raise UsageError(f"--watch-every must be a positive step count (50) or a fraction of an epoch (0.5ep), "
                     f"got '{spec}'.")


def schedule(every: str | None, steps_per_epoch: int) -> tuple[int | None, bool]:
    """(evaluate every N steps, whether N counts from each epoch's start): '50' → (50, False) over the
    run; '0.5ep' → (half an epoch's steps, True) within each epoch; '2ep' → (two epochs' steps, False)."""
    if not every:
        return None, False
    steps, epochs = parse_every(every)
    if steps:
        return steps, False
    return max(1, round(epochs * steps_per_epoch)), epochs < 1


# ---- the figures of one evaluation (pure, so tests can drive them with made-up scores) ------------

def make_record(step: int, epoch: float, scores: dict, metrics: dict, n: dict, targets: tuple[str, ...],
                base: dict, criterion: str = "h", seconds: float = 0.0) -> WatchRecord:
    """The watch record of `scores` against the step-0 scores `base` (the same tasks)."""
    from mfcli.forgetting import h_score, h_score_mdgd, mean, percent_scale, watch_mixed_scale

    pre = [t for t in scores if t not in targets]
    tgt = [t for t in scores if t in targets]
    kept = {t: 100.0 * scores[t] / base[t] for t in pre if base.get(t)}
    kept_mean = mean(list(kept.values())) if kept else None
    target = mean([scores[t] for t in tgt]) if tgt else None
    gain = target - mean([base[t] for t in tgt]) if tgt else None
    both = bool(pre and tgt)
    percent_target = all(percent_scale(metrics[t]) for t in tgt)
    return WatchRecord(
        step=step, epoch=round(epoch, 4), scores=dict(scores), metrics=dict(metrics), n=dict(n), targets=tuple(targets),
        kept=kept, kept_mean=kept_mean, target=target, target_gain=gain,
        h=h_score([scores[t] for t in pre], [scores[t] for t in tgt]) if both else None,
        h_mdgd=h_score_mdgd([scores[t] for t in pre], [scores[t] for t in tgt]) if both else None,
        h_kept=h_score([kept_mean], [target]) if kept_mean is not None and tgt and percent_target else None,
        criterion=criterion, seconds=round(seconds, 3), mixed_scale=watch_mixed_scale(metrics, targets))


class Tracker:
    """The best evaluation so far and how long since it improved; decides best/ and stopping."""

    def __init__(self, opts: WatchOptions):
        self.opts = opts
        self.key = CRITERIA[opts.best]
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.since_best = 0

    def state(self) -> tuple:
        return self.best_value, self.best_step, self.since_best

    def restore(self, state: tuple) -> None:
        self.best_value, self.best_step, self.since_best = state

    def qualifies(self, r: WatchRecord) -> float | None:
        v = self.key(r)
        if v is None or (self.opts.kept_min is not None and (r.kept_mean is None or r.kept_mean < self.opts.kept_min)):
            return None
        return v

    def update(self, r: WatchRecord) -> WatchRecord:
        """`r` with its criterion value, whether it is the new best, and why to stop (if so)."""
        from dataclasses import replace

        v = self.qualifies(r)
        better = v is not None and (self.best_value is None or v > self.best_value)
        if better:
            self.best_value, self.best_step, self.since_best = v, r.step, 0
        elif r.step > 0:
            self.since_best += 1
        stop = None
        if r.step > 0 and self.opts.patience is not None and self.since_best >= self.opts.patience:
            stop = (f"{self.opts.best} has not improved for {self.since_best} evaluations "
                    f"(best {self.best_value:.2f} at step {self.best_step})" if self.best_value is not None else
                    f"no evaluation qualified in {self.since_best} evaluations")
        elif r.step > 0 and self.opts.floor is not None and r.kept_mean is not None and r.kept_mean < self.opts.floor:
            stop = f"kept {r.kept_mean:.1f} % fell below the floor of {self.opts.floor:g} %"
        return replace(r, criterion=self.opts.best, value=v, best=better, best_step=self.best_step, stop=stop)


# ---- the sample ---------------------------------------------------------------------------------

def _target_tasks(train_files: list[Path]) -> tuple[str, ...]:
    tasks = []
    for f in train_files:
        names = {r.task for r in read_train(f) if r.task}
        if not names:
            info = read_dataset_info(f)
            names = {info.name} if info else set()
        tasks += sorted(names)
    return tuple(dict.fromkeys(tasks))


def split_of(path: Path) -> str:
    """Which split a watched file is: val, eval, or a file the user named ("file")."""
    return next((k for k, f in SPLIT_FILES.items() if path.name == f), "file")


def draw_sample(data: tuple[str, ...], n: int, on: str = "val"):
    """The watch queries: per task, `n` records of its `on` split (a seeded sample, in file order)."""
    import numpy as np

    from mfcli.eval.emt import Query
    from mfcli.io.checkpoint import sha256_file

    queries, files, seen_tasks = [], [], {}
    for spec in data:
        p = Path(spec)
        path = p / SPLIT_FILES[on] if p.is_dir() else p
        if not path.is_file() and p.is_dir() and on == "val":
            raise MfcliError(f"--watch {spec}: no validation split ({path} does not exist; it was prepared before "
                             "mfcli carved one, or with --val-fraction 0).",
                             f"Prepare it again (mfcli prepare … --out {spec}), or choose on the held-out split with "
                             "--watch-on eval (best/ is then marked as selected on the records it is scored on).")
        if not path.is_file():
            raise MfcliError(f"--watch {spec}: {path} does not exist.",
                             "Pass a prepared directory (mfcli prepare) or a val.jsonl / eval.jsonl file.")
        records = read_eval(path)
        if not records:
            raise MfcliError(f"--watch {spec}: {path} holds no records.",
                             "Prepare it again (mfcli prepare), with a validation and a held-out split.")
        files.append({"path": str(path.resolve()), "sha256": sha256_file(path), "split": split_of(path)})
        by_task: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_task.setdefault(r.task, []).append(i)
        for task, idx in by_task.items():
            if task in seen_tasks:
                raise MfcliError(f"task '{task}' is in both {seen_tasks[task]} and {path}.",
                                 "Watch each task from one data set.")
            seen_tasks[task] = path
            seed = int.from_bytes(hashlib.blake2b(task.encode(), digest_size=4).digest(), "big")
            chosen = sorted(np.random.default_rng([SAMPLE_SEED, seed]).permutation(len(idx))[:n])
            for j in chosen:
                r = records[idx[j]]
                queries.append(Query(len(queries), r, path.parent / r.image))
    return queries, files


def _fingerprint(model_dir: str) -> list:
    """What identifies a checkpoint's weights without reading them: its files' names, sizes and times."""
    d = Path(model_dir)
    if not d.is_dir():
        return [model_dir]
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in d.iterdir()
                  if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))


class Watch:
    """The watch of one run (train/loop.py's Trainer calls start, due, evaluate)."""

    def __init__(self, opts: WatchOptions, train_files: list[Path], out: Path, dist):
        self.opts, self.out, self.dist = opts, Path(out), dist
        self.targets = _target_tasks(train_files)
        self.queries, self.files = draw_sample(opts.data, opts.n, opts.on)
        self.stopped = False  # the watch stopped the run: its last checkpoint's length was chosen too
        watched = list(dict.fromkeys(q.record.task for q in self.queries))
        missing = [t for t in self.targets if t not in watched]
        if missing:
            raise MfcliError(f"the target task(s) {', '.join(missing)} are not among the watched tasks "
                             f"({', '.join(watched)}).", "Add the target's prepared data to --watch.")
        if len(watched) == len(self.targets):
            raise UsageError("--watch names only the target; forgetting is measured on the other tasks.",
                             "Add the pre-trained tasks' prepared data to --watch.")
        self.tasks = watched
        per_task = Counter(q.record.task for q in self.queries)
        short = {t: per_task[t] for t in watched if per_task[t] < opts.n}
        if short and dist.rank == 0:  # said once: the sample is smaller than asked, not silently
            print(f"watch: --watch-n {opts.n} asked, but {', '.join(f'{t} has {c}' for t, c in short.items())} "
                  f"{opts.on} records; the watch scores all of them", file=sys.stderr)
        captions = sorted({q.record.task for q in self.queries if q.record.kind == CAPTION})
        if captions and opts.best in ("h", "h-mdgd") and dist.rank == 0:
            print(f"watch: H averages {', '.join(captions)}'s CIDEr (×100, to 1000) with percentages, as the papers' "
                  "tables do; --watch-best h-kept is the scale-free trade-off", file=sys.stderr)
        from mfcli.io.images import load_rgb

        self.images = [load_rgb(q.image_path) for q in self.queries]  # a few hundred small images, opened once
        self.tracker = Tracker(opts)
        self.path = self.out / WATCH_FILE
        self.every_steps: int | None = None
        self._inputs: dict = {}  # batch → the processor's inputs (kept between evaluations)
        self._input_bytes = 0
        self.per_epoch, self.steps_per_epoch = False, 1

    # ---- when ------------------------------------------------------------------------------------
    def due(self, step: int, end_of_epoch: bool, last: bool) -> bool:
        """At each epoch's end and the last step; `--watch-every 50`: every 50 steps of the run;
        `--watch-every 0.5ep`: at each half of every epoch, counted from the epoch's start."""
        if end_of_epoch or last:
            return True
        if not self.every_steps:
            return False
        at = (step - 1) % self.steps_per_epoch + 1 if self.per_epoch else step
        return at % self.every_steps == 0

    # ---- the step-0 scores and the history -----------------------------------------------------
    def _cache_file(self, trainer) -> Path:
        from mfcli.eval.predictions import generation_caps
        from mfcli.cache import cache_root

        key = json.dumps({"model": str(Path(trainer.parent).resolve()) if Path(trainer.parent).exists()
                          else trainer.parent, "weights": _fingerprint(trainer.parent),
                          "sample": [[{k: f[k] for k in ("path", "sha256")} for f in self.files],
                             [q.record.id for q in self.queries]],
                          "generation": generation_caps(), "dtype": str(trainer.model.dtype),
                          "device": str(trainer.device).split(":")[0]}, sort_keys=True, default=str)
        return cache_root() / "watch" / f"{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.json"

    def start(self, trainer, step: int) -> None:
        """Before the first step of this process: the history up to `step`, and the step-0 scores."""
        from mfcli.io.jsonl import dumps, write_json_atomic, write_text_atomic

        self.steps_per_epoch = trainer.steps_per_epoch
        self.every_steps, self.per_epoch = schedule(self.opts.every, trainer.steps_per_epoch)
        history = [r for r in read_watch(self.path) if r.step <= step] if self.path.is_file() else []
        if trainer.rank == 0:
            write_text_atomic(self.path, "".join(dumps(r.to_json()) + "\n" for r in history))  # drop what a kill left
            best = self.out / BEST_DIR
            kept_best = max((r.step for r in history if r.best), default=None)
            made_at = _best_step(best)
            if best.is_dir() and made_at != kept_best:  # best/ of an evaluation the resumed run will redo
                import shutil

                shutil.rmtree(best)
        for r in history:
            self.tracker.update(r)  # an evaluation of the history (resume), taken as if it had just happened
        if history:
            first = history[0]
            self.base, self.metrics, self.n = first.scores, first.metrics, first.n
            return
        if step > 0:
            raise MfcliError(f"{self.path} has no step-0 evaluation to resume from.",
                             "Resume without --watch, or start a new run with --watch.")
        cache = self._cache_file(trainer)
        t0 = time.perf_counter()
        # rank 0 alone reads the cache and hands its scores to the others: with node-local caches one
        # process could find the file and another not, and the one scoring alone would wait forever in
        # generation's collectives
        got = self.dist.broadcast_from_main(json.loads(cache.read_text()) if trainer.rank == 0 and cache.is_file()
                                            else None)
        if got is not None:
            scores, self.metrics, self.n = got["scores"], got["metrics"], got["n"]
        else:
            scores, self.metrics, self.n = self.score(trainer)
            if trainer.rank == 0:
                cache.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(cache, {"scores": scores, "metrics": self.metrics, "n": self.n})
        self.base = scores
        self._append(trainer, make_record(0, 0.0, scores, self.metrics, self.n, self.targets, self.base,
                                          self.opts.best, time.perf_counter() - t0))

    # ---- one evaluation ---------------------------------------------------------------------------
    def evaluate(self, trainer, step: int) -> str | None:
        """Score the model now; write the record (and best/); return why to stop, if the run should."""
        t0 = time.perf_counter()
        scores, metrics, n = self.score(trainer)
        rec = make_record(step, step / trainer.steps_per_epoch, scores, metrics, n, self.targets, self.base,
                          self.opts.best, time.perf_counter() - t0)
        return self._append(trainer, rec)

    def _append(self, trainer, rec: WatchRecord) -> str | None:
        from mfcli.io.jsonl import dumps

        rec = self.tracker.update(rec)
        # every process scored the same gathered answers, so each would decide alike; still, the decision
        # (best/, stop) is rank 0's, broadcast, so that no float or file difference can split the processes
        # (one saving best/ — a collective under FSDP — while another does not, or one stopping alone)
        rec, state = self.dist.broadcast_from_main((rec, self.tracker.state()))
        self.tracker.restore(state)
        if rec.best:  # best/ first: a record that says "best" always has its weights on disk
            extra = {"watch": rec.to_json(), "selected_on": self.files}
            if rec.step == 0:  # said in the manifest too: a best/ that is the untouched model is no fine-tune
                extra["note"] = "step 0: the untouched model; no later evaluation has beaten it"
            trainer.save_weights(BEST_DIR, extra)
        if trainer.rank == 0:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(dumps(rec.to_json()) + "\n")
                f.flush()
            print(live_line(rec), file=sys.stderr, flush=True)
        self.stopped = self.stopped or bool(rec.stop)
        return rec.stop

    def score(self, trainer) -> tuple[dict, dict, dict]:
        """(score, metric, n) per task of the model as it is now, on the watch sample."""
        outputs = self.generate(trainer)
        return score_outputs(self.queries, outputs)

    def generate(self, trainer) -> list[str]:
        """Greedy answers for every watch query, in order. Each process answers its slice of every batch;
        the slices are gathered. The RNG and the train/eval mode are left as they were."""
        import torch

        from mfcli.eval.emt import batch_queries
        from mfcli.models.chat import generate_from_inputs, generation_inputs

        model, rank, world = trainer.model, trainer.rank, trainer.world
        fsdp = getattr(trainer.sharding, "fsdp", False)
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        was_training = model.training
        model.eval()
        mine: list[tuple[int, str]] = []
        gathered_groups = _unshard(model) if fsdp else []
        try:
            for b, batch in enumerate(batch_queries(self.queries, self.opts.batch_size * world)):
                part = batch[rank::world] or batch[:1]  # an idle process still takes part in FSDP's collectives
                cap = kind_of(part[0].record.kind).max_new_tokens
                inputs = self._inputs.get(b)
                if inputs is None:  # the processor's work is the same every evaluation: kept, within a cap
                    inputs = generation_inputs(trainer.processor, [self.images[q.index] for q in part],
                                               [q.record.prompt for q in part])
                    size = sum(v.numel() * v.element_size() for v in inputs.values())
                    if self._input_bytes + size <= INPUT_CACHE_BYTES:
                        self._inputs[b], self._input_bytes = inputs, self._input_bytes + size
                answers = generate_from_inputs(model, trainer.processor, inputs, max_new_tokens=cap,
                                               **({"synced_gpus": True} if fsdp else {}))
                if batch[rank::world]:
                    mine += [(q.index, a) for q, a in zip(part, answers)]
        finally:
            for m in gathered_groups:
                m.reshard()
            model.train(was_training)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        if trainer.dist.active:
            import torch.distributed as td

            gathered: list = [None] * world
            td.all_gather_object(gathered, mine)
            mine = [x for part in gathered for x in part]
        out = dict(mine)
        return [out[q.index] for q in self.queries]


def _unshard(model) -> list:
    """FSDP2: gather every shard group's weights for generation (generate reaches submodules, such as
    the vision tower, outside the root's forward hooks); resharded right after."""
    from torch.distributed.fsdp import FSDPModule

    groups = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for m in groups:
        m.unshard()
    return groups


def score_outputs(queries, outputs: list[str]) -> tuple[dict, dict, dict]:
    """Each task's score (report scale: ×100), metric and record count, judged as `mfcli judge` does
    with the exact label judge and each other kind's metric."""
    from mfcli.eval.judges import make_judge
    from mfcli.eval.judges.base import Item
    from mfcli.eval.judging import judge_rows, summarize

    rows, items = [], []
    for q, out in zip(queries, outputs):
        r = q.record
        rows.append({"id": r.id, "task": r.task, "kind": r.kind, "output": out, "references": list(r.references)})
        items.append(Item(out, r.label, r.labels, r.task, r.kind, r.references))
    summary = summarize(judge_rows(rows, items, make_judge("exact")))
    tasks = summary.tasks
    return ({t: 100.0 * s["score"] for t, s in tasks.items()}, {t: s["metric"] for t, s in tasks.items()},
            {t: s["n"] for t, s in tasks.items()})


def _best_step(best: Path) -> int | None:
    from mfcli.io.checkpoint import read_manifest

    m = read_manifest(best)
    return m.metrics.get("watch", {}).get("step") if m else None


def live_line(r: WatchRecord) -> str:
    f = lambda x, unit="": "—" if x is None else f"{x:.1f}{unit}"  # noqa: E731
    gain = "" if r.target_gain is None else f" ({r.target_gain:+.1f})"
    best = " *best*" if r.best else (f"; best at step {r.best_step}" if r.best_step is not None else "")
    line = (f"watch step {r.step} (epoch {r.epoch:.2f}): target {f(r.target)}{gain}, kept {f(r.kept_mean, ' %')}, "
            f"H {f(r.h)}{' †' if 'h' in r.mixed_scale else ''}{best} [{r.seconds:.1f} s]")
    return line + (f"\nwatch: stopping — {r.stop}" if r.stop else "")
