"""The one training loop every method shares, as a trainer with named steps.

AdamW with linear warm-up and cosine decay; loss on answer tokens only, normalised by the answer
tokens of the whole optimiser step (so gradient accumulation and data-parallel processes give the
same update as one big batch); a self-describing checkpoint after every epoch (`DIR/epoch-K`) and
every `--save-steps` (`DIR/step-N`), each resumable bit-for-bit on CPU.

`Trainer` reads top-down: `open_run` (the run directory and what it holds), `build` (model, method,
sharding, optimiser, restored state), `train_step` (one optimiser step), `save` (a resumable
checkpoint), `run` (the loop, the watch and the interrupts), then the method's `finish` hook (LoRA's
merge). Each method's own behaviour lives behind its hooks (train/methods/base.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

from mfcli.dist import init_dist
from mfcli.errors import MfcliError, UsageError
from mfcli.io.checkpoint import Manifest, read_manifest, write_checkpoint
from mfcli.models.load import checkpoints_inside, resolve_device, resolve_model_path
from mfcli.provenance import inherited as inherited_fingerprint
from mfcli.io.records import TrainLogRecord
from mfcli.models.chat import IGNORE_INDEX, image_token_of
from mfcli.progress import show_progress
from mfcli.train.data import load_examples
from mfcli.train.interrupt import DeferredInterrupt
from mfcli.train.log import LOG
from mfcli.train.methods import get as get_method_spec
from mfcli.train.methods.contract import RunEnd, with_method_options
from mfcli.train.options import TrainOptions, with_model_defaults
from mfcli.train.schedule import warmup_cosine
from mfcli.train.sharding import make_sharding
from mfcli.train.state import has_state, load_state, save_state
from mfcli.train.watch import BEST_DIR, RunView, Watch


def nll_sum(logits, labels):
    """Summed next-token NLL over answer tokens (labels != IGNORE_INDEX)."""
    import torch

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")


class Context:
    """What a method's hooks see of the run (base.Method: start, update, after_step)."""

    def __init__(self, model, processor, params, names, parent, image_token_id, opts, device, dist):
        self.model, self.processor, self.params, self.names, self.parent = model, processor, params, names, parent
        self.image_token_id, self.opts, self.device, self.dist = image_token_id, opts, device, dist
        self.nll_sum = nll_sum
        self.step = 0

    def inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "labels"}


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for d in out.glob("*-*"):
        if d.is_dir() and not d.name.startswith(".") and has_state(d):
            step = json.loads((d / "trainer_state.json").read_text())["progress"]["global_step"]
            found.append((step, d))
    return sorted(found)


class EarlyStop(Exception):
    """The watch asked the run to stop (train/watch/); carries the reason."""


class Trainer:
    def __init__(self, model_spec: str, data: list[str], out: str | Path, opts: TrainOptions, *,
                 resume: bool = False, progress: bool = False, watch=None):
        self.model_spec, self.data, self.out, self.opts = model_spec, data, Path(out), opts
        self.resume, self.progress = resume, progress
        self.watch_options = watch  # train/watch/options.py's WatchOptions, or None
        self.spec = get_method_spec(opts.method)  # what the method declared when it registered
        self.method = self.spec.make()

        self.opts = with_method_options(self.spec, opts)

    # ---- open run: the directory, the processes, the data -------------------------------------
    def open_run(self) -> None:
        out, resume = self.out, self.resume
        self.dist = dist = init_dist()
        self.rank, self.world = dist.rank, dist.world
        self.existing = _checkpoints(out) if out.is_dir() else []
        if out.exists() and any(out.iterdir()) and not resume:
            raise MfcliError(f"{out} already holds a run.", "Pass --resume to continue it, or choose a new --out.")
        if resume and not self.existing and out.exists() and any(out.iterdir()):
            raise MfcliError(f"{out} has no resumable checkpoint.", "Choose a new --out to start afresh.")
        self.examples, self.files = load_examples(self.data)
        self.method.check_data(self.files, self.examples)
        if dist.active and not self.spec.multi_process:
            raise UsageError(f"--method {self.opts.method} trains in one process.", "Run it without torchrun/accelerate.")
        parent = resolve_model_path(self.model_spec) if self.rank == 0 else None
        if dist.active:
            dist.barrier()  # rank 0 builds/resolves `tiny` once
            parent = resolve_model_path(self.model_spec)
        self.parent = parent
        # a fine-tune of tiny is tiny-sized: it passes its parent's recommendation on
        parent_manifest = read_manifest(parent)
        self.inherited = getattr(parent_manifest, "finetune_defaults", {})
        self.fingerprint = inherited_fingerprint(parent_manifest)  # the built-in model it descends from
        self.opts, supplied = with_model_defaults(self.opts, self.inherited)
        if supplied and self.rank == 0:
            print(f"finetune: the model recommends {', '.join(f'{k}={v}' for k, v in supplied.items())} for "
                  f"{self.opts.method} (its mfcli.json); flags override", file=sys.stderr)
        self.resume_dir = self.existing[-1][1] if (resume and self.existing) else None
        self.watch = None
        if self.watch_options is not None and not self.spec.watchable:
            raise UsageError(f"--watch scores an MLLM's answers; --method {self.opts.method} trains another model.",
                             "Evaluate its checkpoints with `mfcli emt` instead.")
        if self.watch_options is not None:  # checked before any model is loaded: bad input costs nothing
            self.watch = Watch(self.watch_options, self.files, self.out, self.dist)

    # ---- build: model, method, sharding, optimiser, restored state ---------------------------
    def build(self) -> None:
        import torch

        opts, method, rank = self.opts, self.method, self.rank
        torch.manual_seed(opts.seed)
        if opts.device in ("auto", "cpu") and not torch.cuda.is_available():
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.device = self.dist.device or resolve_device(opts.device)
        adapter_method = self.spec.adapter
        # a full checkpoint continues from its own weights; an adapter is re-attached to the parent in prepare()
        load_from = str(self.resume_dir) if (self.resume_dir and not adapter_method) else self.parent
        loaded = method.load(load_from, self.device, opts.dtype)
        model, self.processor, family = loaded.model, loaded.processor, loaded.family
        model.train()
        if opts.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            if hasattr(model, "enable_input_require_grads"):
                model.enable_input_require_grads()
        model, groups = method.prepare(model, family, opts,
                                       resume_from=str(self.resume_dir) if (self.resume_dir and adapter_method) else None)
        group_names = [g.pop("names") for g in groups]
        self.names = [n for gn in group_names for n in gn]
        if not self.names:
            raise MfcliError(f"--method {opts.method} left nothing to train.", "Check --layers / --lora-targets.")
        self.sharding = make_sharding(opts.fsdp, self.dist, self.spec)
        if self.sharding.fsdp:  # fully_shard swaps every parameter for a sharded one: collect them afterwards
            if rank == 0:
                print(f"finetune: FSDP, weights, gradients and optimiser state sharded over {self.world} processes",
                      file=sys.stderr)
            self.sharding.shard(model, family)
            named = dict(model.named_parameters())
            for g, gn in zip(groups, group_names):
                g["params"] = [named[n] for n in gn]
        self.model = model
        self.params = [p for g in groups for p in g["params"]]
        resumed_extra = self.build_optimizer(groups)
        self.start_method(resumed_extra)

    def build_optimizer(self, groups: list[dict]) -> dict:
        """AdamW over the method's groups, the warm-up + cosine schedule over the run's steps, and, on
        resume, their state; returns the method's own saved state (MDGD's), if any."""
        import torch

        opts = self.opts
        self.optimizer = torch.optim.AdamW(groups, weight_decay=opts.weight_decay)
        self.global_batch = opts.batch_size * opts.grad_accum * self.world
        self.steps_per_epoch = math.ceil(len(self.examples) / self.global_batch)
        self.total = opts.max_steps or self.steps_per_epoch * opts.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(self.total, opts.warmup_ratio))
        self.done_steps = 0
        if self.resume_dir is None:
            return {}
        restored = load_state(self.resume_dir, self.optimizer, self.scheduler,
                              lambda sd: self.sharding.load_optimizer(self.model, self.optimizer, self.names, sd))
        self.done_steps = restored["global_step"]
        return restored["extra"]

    def start_method(self, resumed_extra: dict) -> None:
        """The method's context and start hook, the batcher, DDP's wrapper, the run's log."""
        opts, method, model = self.opts, self.method, self.model
        tok = self.processor.tokenizer
        image_token = image_token_of(self.processor) or "<image>"
        self.ctx = Context(model, self.processor, self.params, self.names, self.parent,
                           tok.convert_tokens_to_ids(image_token), opts, self.device, self.dist)
        method.start(self.ctx)  # MDGD loads its frozen copy here; CLIP embeds its class prompts
        if resumed_extra:
            method.load_extra_state(resumed_extra, self.device)
        self.batcher = method.batcher(self.processor)
        self.train_model = model
        if self.dist.active and not method.custom_update and not self.sharding.fsdp:  # a custom update all-reduces its own
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(model)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / LOG
        if self.rank == 0:
            _trim_log(self.log_path, self.done_steps)

    # ---- one optimiser step -------------------------------------------------------------------
    def train_step(self, step: int, chunk: list) -> TrainLogRecord:
        """One optimiser step on `chunk` (the global batch); returns its training-log row."""
        import torch

        opts, method, rank, world = self.opts, self.method, self.rank, self.world
        t0 = time.perf_counter()
        micro = [chunk[i:i + opts.batch_size * world] for i in range(0, len(chunk), opts.batch_size * world)]
        n_tok = sum(method.units(self.batcher, m) for m in micro)  # the whole step, every process
        self.optimizer.zero_grad(set_to_none=True)
        batches = [_to(self.batcher(m[rank::world]), self.device, self.model.dtype) for m in micro]
        if method.custom_update:
            self.ctx.step = step
            loss_value, extras = method.update(self.ctx, batches, n_tok)
        else:
            loss_value, extras = 0.0, {}
            for b in batches:
                loss = method.loss_sum(self.ctx, self.train_model, b) / n_tok * world  # DDP averages over world
                loss.backward()
                loss_value += float(loss.detach()) / world
            self.ctx.step = step
            reg = method.extra_loss(self.ctx)  # once per step, on the unwrapped model: the same on every process
            if reg is not None:
                reg.backward()
                extras["reg"] = float(reg.detach())
        loss_value = self.dist.all_reduce_sum(loss_value)
        if not math.isfinite(loss_value):
            where = f"; the last good checkpoint is {self.last_good}" if self.last_good else ""
            raise MfcliError(f"the loss became {loss_value} at step {step + 1}{where}.", "Lower --lr, or check the data.")
        grad_norm = self.sharding.grad_norm(torch.nn.utils.clip_grad_norm_(self.params, opts.max_grad_norm))
        lr_now = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        method.after_step(self.params)
        self.scheduler.step()
        return TrainLogRecord(step + 1, round((step + 1) / self.steps_per_epoch, 4), round(loss_value, 6), lr_now,
                              round(grad_norm, 6), round(time.perf_counter() - t0, 4),
                              {k: round(v, 6) for k, v in extras.items()})

    # ---- checkpoints --------------------------------------------------------------------------
    def manifest(self, command: str, metrics: dict | None = None) -> Manifest:
        opts = self.opts
        metrics = dict(metrics or {})
        if self.watch is not None and self.watch.stopped:  # the watch chose where this run ended: say on what
            metrics.setdefault("selected_on", self.watch.files)
        # one flat record of what the run read, as `mfcli finetune`'s flags name it: the loop's options and
        # the method's own (its options class's fields)
        recorded = {k: v for k, v in asdict(opts).items() if k != "method_options"}
        recorded.update(asdict(opts.method_options) if opts.method_options is not None else {})
        m = Manifest(command, options={"method": opts.method, **recorded}, parents=[self.parent], seed=opts.seed,
                     metrics=metrics, finetune_defaults=self.inherited, fingerprint=self.fingerprint)
        for f in self.files:
            m.add_data(f)
        return m

    def progress_state(self, step: int, epoch: int) -> dict:
        return {"global_step": step, "epoch": epoch, "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total}

    def save(self, name: str, progress_state: dict, rng_state) -> Path:
        """A resumable checkpoint: weights, optimiser, scheduler, progress and the RNG state of `step`."""
        import torch

        snap = self.sharding.snapshot(self.model, self.optimizer, self.names)  # collective under FSDP
        if self.rank != 0:
            return self.out / name
        m = self.manifest("finetune", {"global_step": progress_state["global_step"], "epoch": progress_state["epoch"]})

        def write(d: Path):
            self.method.save(self.model, self.processor, d, self.parent, state_dict=snap.model)
            cur = torch.get_rng_state()
            torch.set_rng_state(rng_state)
            save_state(d, snap.optimizer, self.scheduler, progress_state, self.method.extra_state())
            torch.set_rng_state(cur)
        return write_checkpoint(self.out / name, write, m, overwrite=True)

    def save_weights(self, name: str, metrics: dict) -> Path:
        """The weights alone (no trainer state: not a resume point), e.g. the watch's best/."""
        snap = self.sharding.snapshot(self.model, self.optimizer, self.names)  # collective under FSDP
        if self.rank != 0:
            return self.out / name
        return write_checkpoint(self.out / name, lambda d: self.method.save(self.model, self.processor, d, self.parent,
                                                                              state_dict=snap.model),
                                self.manifest("finetune", metrics), overwrite=True)

    def watch_view(self):
        """What the forgetting watch sees of this run (train/watch/runner.py's RunView)."""
        return RunView(self.parent, self.model, self.processor, self.device, self.dist, self.sharding.fsdp,
                       self.steps_per_epoch, lambda metrics: self.save_weights(BEST_DIR, metrics))

    # ---- the loop -----------------------------------------------------------------------------
    def batches(self, step: int):
        """(step, its index in the epoch, epoch, the global batch) from `step` to the last: each epoch's
        order is a permutation seeded by (seed, epoch), so a resumed run sees the same batches."""
        import torch

        spe = self.steps_per_epoch
        while step < self.total:
            epoch, in_epoch = step // spe, step % spe
            # a prime stride keeps (seed, epoch) pairs from colliding: seed 1's epoch 0 is not seed 0's epoch 1
            gen = torch.Generator().manual_seed(self.opts.seed * 100003 + epoch)
            order = torch.randperm(len(self.examples), generator=gen).tolist()
            for s in range(in_epoch, spe):
                if step >= self.total:
                    return
                yield step, s, epoch, [self.examples[i] for i in order[s * self.global_batch:(s + 1) * self.global_batch]]
                step += 1

    def after_step(self, step: int, s: int, epoch: int) -> str | None:
        """After `step` steps: the watch when due, then a checkpoint at an epoch's end, every --save-steps,
        at the last step or before an early stop. Returns why the run stops early, if it does."""
        import torch

        end_of_epoch = s + 1 == self.steps_per_epoch
        rng = torch.get_rng_state()  # the step's own, before the watch or a save runs
        prog = self.progress_state(step, epoch + (1 if end_of_epoch else 0))
        stop_reason = None
        if self.watch is not None and self.watch.due(step, end_of_epoch, step == self.total):
            stop_reason = self.watch.evaluate(self.watch_view(), step)
        if end_of_epoch:
            self.last_good, self.saved_step = self.save(f"epoch-{epoch + 1}", prog, rng), step
        elif self.opts.save_steps and step % self.opts.save_steps == 0 or step == self.total or stop_reason:
            self.last_good, self.saved_step = self.save(f"step-{step}", prog, rng), step
        return stop_reason

    def interrupted(self, stop: DeferredInterrupt, step: int) -> None:
        """Ctrl-C: after a complete step, a resumable checkpoint of it (unless one was just saved); a
        second Ctrl-C mid-step writes nothing, as that state may be half-updated."""
        import torch

        if stop.requested and step == self.saved_step:
            print(f"interrupted: resumable checkpoint at {self.last_good}; continue with --resume", file=sys.stderr)
        elif stop.requested:  # between steps: weights, optimiser, scheduler and RNG all belong to `step`
            d = self.save(f"step-{step}", self.progress_state(step, step // self.steps_per_epoch), torch.get_rng_state())
            print(f"interrupted: resumable checkpoint at {d}; continue with --resume", file=sys.stderr)
        else:
            where = f"the last checkpoint is {self.last_good}" if self.last_good else "no checkpoint was written"
            print(f"interrupted mid-step: {where}; continue with --resume", file=sys.stderr)

    def run(self) -> Path:
        self.open_run()
        self.build()
        from tqdm.auto import tqdm

        step = self.done_steps
        started, t0, last_loss = step, time.perf_counter(), None
        if self.rank == 0 and step < self.total:
            self.warn_if_too_short()
        if self.watch is not None:
            self.watch.start(self.watch_view(), step)  # step 0's scores (cached), and the history up to `step`
        bar = tqdm(total=self.total, initial=step, desc=f"finetune {self.opts.method}", unit="step",
                   disable=not self.progress or self.rank)
        self.last_good = self.existing[-1][1] if self.existing else None
        self.saved_step = self.done_steps if self.resume_dir is not None else None
        stop = DeferredInterrupt()
        try:
            stop.__enter__()
            for current, s, epoch, chunk in self.batches(step):
                row = self.train_step(current, chunk)
                step = current + 1
                if self.rank == 0:
                    with open(self.log_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row.to_json()) + "\n")
                bar.update(1)
                bar.set_postfix(loss=f"{row.loss:.4f}")
                last_loss = row.loss
                stop_reason = self.after_step(step, s, epoch)
                if stop_reason:
                    raise EarlyStop(stop_reason)
                if stop.requested:  # Ctrl-C during this step: it is complete, stop here
                    raise KeyboardInterrupt
        except EarlyStop as e:
            bar.close()
            if self.rank == 0:
                print(f"finetune: stopped early at step {step}: {e}; the checkpoint is {self.last_good}",
                      file=sys.stderr)
        except KeyboardInterrupt:
            bar.close()
            self.interrupted(stop, step)
            raise
        finally:
            stop.__exit__(*sys.exc_info())
        bar.close()
        self.method.finish(RunEnd(self.model, self.processor, self.out, self.rank == 0, self.opts,
                                  self.manifest))  # LoRA's --merge
        self.dist.barrier()
        if self.rank == 0:
            self.closing_line(started, step, last_loss, time.perf_counter() - t0)
        return self.out

    # runs of 10 optimiser steps (`animals`) and 2 (a 3-class folder) were seen to learn nothing, in
    # silence (issue 44); 50 is a round floor well above those — a warning threshold, not a measured one
    FEW_STEPS = 50

    def warn_if_too_short(self) -> None:
        """One line before training when the run is far too short to learn anything: 10 steps on
        `animals` or 2 on a small folder ran without a word and changed nothing."""
        if self.total >= self.FEW_STEPS:
            return
        print(f"finetune: warning: this run has only {self.total} optimiser step(s) ({len(self.examples)} "
              f"examples, {self.global_batch} per step, {self.opts.epochs} epoch(s)); fine-tunes this short "
              f"learn little or nothing (at least {self.FEW_STEPS} is a floor, not a target). Raise --epochs, "
              "or lower --batch-size.", file=sys.stderr)

    def closing_line(self, started: int, step: int, last_loss: float | None, seconds: float) -> None:
        inside = checkpoints_inside(self.out) if self.out.is_dir() else []
        where = f"{self.out}/ ({', '.join(d + '/' for d in inside)})" if inside else str(self.out)
        if step == started:
            print(f"finetune: {self.out} was already complete ({step} of {self.total} steps); nothing to do.",
                  file=sys.stderr)
            return
        loss = f", final loss {last_loss:.4f}" if last_loss is not None else ""
        print(f"finetune: {step} of {self.total} steps ({step - started} this run){loss}, {seconds:.1f} s -> "
              f"{where}", file=sys.stderr)
        best_step = self.watch.tracker.best_step if self.watch is not None else None
        if best_step == 0:
            print(f"finetune: warning: the watch's best is step 0 — {self.out}/best/ is the untouched model; "
                  "no evaluation after training beat it (more steps, another --lr, or check the data).",
                  file=sys.stderr)


def run_finetune(model_spec: str, data: list[str], out: str | Path, opts: TrainOptions, *, resume: bool = False,
                 progress: bool | None = None, watch=None) -> Path:
    """Fine-tune `model_spec` on `data` into the run directory `out`; `watch` (train/watch/options.py's
    WatchOptions) scores the watched tasks while it trains."""
    progress = show_progress() if progress is None else progress
    return Trainer(model_spec, data, out, opts, resume=resume, progress=progress, watch=watch).run()


def _to(batch: dict, device: str, dtype=None) -> dict:
    out = {k: v.to(device) for k, v in batch.items()}
    if dtype is not None:
        out["pixel_values"] = out["pixel_values"].to(dtype)
    return out


def _trim_log(path: Path, keep_steps: int) -> None:
    """On resume, drop log rows past the checkpoint we continue from."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= keep_steps]
    path.write_text("".join(r + "\n" for r in kept))
