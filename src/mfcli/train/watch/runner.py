"""The watch of one run: before the first step the history and the step-0 scores (cached), then at
each due step the model's answers on the sample, their record, best/ through the run's `save_best` and
why to stop — all over a `RunView`, the typed part of the run the watch reads."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfcli.cache import cache_root
from mfcli.errors import MfcliError, UsageError
from mfcli.eval.emt import batch_queries
from mfcli.eval.predictions import generation_caps
from mfcli.io.checkpoint import read_manifest
from mfcli.io.images import load_rgb
from mfcli.io.jsonl import dumps, write_json_atomic, write_text_atomic
from mfcli.io.records import WatchRecord, read_watch
from mfcli.kinds import CAPTION, kind_of
from mfcli.models.chat import generate_from_inputs, generation_inputs
from mfcli.train.log import WATCH_FILE
from mfcli.train.watch.options import WatchOptions, schedule
from mfcli.train.watch.records import Tracker, live_line, make_record
from mfcli.train.watch.sample import _target_tasks, draw_sample, score_outputs

BEST_DIR = "best"
INPUT_CACHE_BYTES = 1 << 30  # processed watch inputs kept in host memory between evaluations, at most


@dataclass(frozen=True)
class RunView:
    """What the watch reads of a run, and the one thing it asks of it: to save best/."""

    parent: str  # the checkpoint the run fine-tunes (step 0's model: the key of its cached scores)
    model: Any  # the training model itself (the watch scores it in eval mode, no copy)
    processor: Any
    device: Any
    dist: Any  # mfcli.dist.Dist: rank, world, collectives
    fsdp: bool  # the model is sharded: generation gathers and keeps the processes in step
    steps_per_epoch: int
    save_best: Callable[[dict], Any]  # (best/'s manifest metrics) -> None; a collective under FSDP

def _fingerprint(model_dir: str) -> list:
    """What identifies a checkpoint's weights without reading them: its files' names, sizes and times."""
    d = Path(model_dir)
    if not d.is_dir():
        return [model_dir]
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in d.iterdir()
                  if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))


class Watch:
    """The watch of one run: the loop calls `start`, then `due` and `evaluate` after each step, each with
    its RunView; `evaluate` returns why the run should stop, if it should."""

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

        # a few hundred small images, opened once (None for a record asked without one: the `text` kind)
        self.images = [load_rgb(q.image_path) if q.image_path is not None else None for q in self.queries]
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
    def _cache_file(self, run: RunView) -> Path:
        key = json.dumps({"model": str(Path(run.parent).resolve()) if Path(run.parent).exists()
                          else run.parent, "weights": _fingerprint(run.parent),
                          "sample": [[{k: f[k] for k in ("path", "sha256")} for f in self.files],
                             [q.record.id for q in self.queries]],
                          "generation": generation_caps(), "dtype": str(run.model.dtype),
                          "device": str(run.device).split(":")[0]}, sort_keys=True, default=str)
        return cache_root() / "watch" / f"{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.json"

    def start(self, run: RunView, step: int) -> None:
        """Before the first step of this process: the history up to `step`, and the step-0 scores."""
        self.steps_per_epoch = run.steps_per_epoch
        self.every_steps, self.per_epoch = schedule(self.opts.every, run.steps_per_epoch)
        history = [r for r in read_watch(self.path) if r.step <= step] if self.path.is_file() else []
        if run.dist.rank == 0:
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
        cache = self._cache_file(run)
        t0 = time.perf_counter()
        # rank 0 alone reads the cache and hands its scores to the others: with node-local caches one
        # process could find the file and another not, and the one scoring alone would wait forever in
        # generation's collectives
        got = self.dist.broadcast_from_main(json.loads(cache.read_text()) if run.dist.rank == 0 and cache.is_file()
                                            else None)
        if got is not None:
            scores, self.metrics, self.n = got["scores"], got["metrics"], got["n"]
        else:
            scores, self.metrics, self.n = self.score(run)
            if run.dist.rank == 0:
                cache.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(cache, {"scores": scores, "metrics": self.metrics, "n": self.n})
        self.base = scores
        self._append(run, make_record(0, 0.0, scores, self.metrics, self.n, self.targets, self.base,
                                          self.opts.best, time.perf_counter() - t0))

    # ---- one evaluation ---------------------------------------------------------------------------
    def evaluate(self, run: RunView, step: int) -> str | None:
        """Score the model now; write the record (and best/); return why to stop, if the run should."""
        t0 = time.perf_counter()
        scores, metrics, n = self.score(run)
        rec = make_record(step, step / run.steps_per_epoch, scores, metrics, n, self.targets, self.base,
                          self.opts.best, time.perf_counter() - t0)
        return self._append(run, rec)

    def _append(self, run: RunView, rec: WatchRecord) -> str | None:
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
            run.save_best(extra)
        if run.dist.rank == 0:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(dumps(rec.to_json()) + "\n")
                f.flush()
            print(live_line(rec), file=sys.stderr, flush=True)
        self.stopped = self.stopped or bool(rec.stop)
        return rec.stop

    def score(self, run: RunView) -> tuple[dict, dict, dict]:
        """(score, metric, n) per task of the model as it is now, on the watch sample."""
        outputs = self.generate(run)
        return score_outputs(self.queries, outputs)

    def generate(self, run: RunView) -> list[str]:
        """Greedy answers for every watch query, in order. Each process answers its slice of every batch;
        the slices are gathered. The RNG and the train/eval mode are left as they were."""
        import torch

        model, rank, world, fsdp = run.model, run.dist.rank, run.dist.world, run.fsdp
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
                    images = [self.images[q.index] for q in part]  # one kind per batch: all images, or none
                    inputs = generation_inputs(run.processor, None if images[0] is None else images,
                                               [q.record.prompt for q in part])
                    size = sum(v.numel() * v.element_size() for v in inputs.values())
                    if self._input_bytes + size <= INPUT_CACHE_BYTES:
                        self._inputs[b], self._input_bytes = inputs, self._input_bytes + size
                answers = generate_from_inputs(model, run.processor, inputs, max_new_tokens=cap,
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
        if run.dist.active:
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


def _best_step(best: Path) -> int | None:
    m = read_manifest(best)
    return m.metrics.get("watch", {}).get("step") if m else None
