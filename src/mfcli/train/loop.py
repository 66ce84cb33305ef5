"""The one training loop every method shares.

AdamW with linear warm-up and cosine decay; loss on answer tokens only, normalised by the answer
tokens of the whole optimiser step (so gradient accumulation and data-parallel processes give the
same update as one big batch); a self-describing checkpoint after every epoch (`DIR/epoch-K`) and
every `--save-steps` (`DIR/step-N`), each resumable bit-for-bit on CPU.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.checkpoint import Manifest, read_manifest, write_checkpoint
from mfcli.train.data import Batcher, load_examples
from mfcli.train.interrupt import DeferredInterrupt
from mfcli.train.log import LOG
from mfcli.train.methods import get_method
from mfcli.train.options import TrainOptions, with_model_defaults
from mfcli.train.schedule import warmup_cosine
from mfcli.train.sharding import make_sharding
from mfcli.train.state import has_state, load_state, save_state


def nll_sum(logits, labels):
    """Summed next-token NLL over answer tokens (labels != -100)."""
    import torch

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100, reduction="sum")


class Context:
    """What a method's hooks see of the run (base.Method: start, update, after_step)."""

    def __init__(self, model, params, names, parent, image_token_id, opts, device, dist):
        self.model, self.params, self.names, self.parent = model, params, names, parent
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


def run_finetune(model_spec: str, data: list[str], out: str | Path, opts: TrainOptions, *, resume: bool = False,
                 progress: bool | None = None) -> Path:
    import torch

    from mfcli.models.load import load_mllm, resolve_device, resolve_model_path

    out = Path(out)
    progress = sys.stderr.isatty() if progress is None else progress
    if opts.method == "clip":  # EMT §3.2: a CLIP dual encoder, not an MLLM
        from mfcli.train.clip_finetune import run_clip_finetune

        return run_clip_finetune(model_spec, data, out, opts, progress=progress)
    method = get_method(opts.method)
    from mfcli.dist import init_dist

    dist = init_dist()
    rank, world = dist.rank, dist.world
    existing = _checkpoints(out) if out.is_dir() else []
    if out.exists() and any(out.iterdir()) and not resume:
        raise MfcliError(f"{out} already holds a run.", "Pass --resume to continue it, or choose a new --out.")
    if resume and not existing and out.exists() and any(out.iterdir()):
        raise MfcliError(f"{out} has no resumable checkpoint.", "Choose a new --out to start afresh.")
    examples, files = load_examples(data)
    parent = resolve_model_path(model_spec) if rank == 0 else None
    if dist.active:
        dist.barrier()  # rank 0 builds/resolves `tiny` once
        parent = resolve_model_path(model_spec)
    parent_manifest = read_manifest(parent)
    opts, supplied = with_model_defaults(opts, parent_manifest)
    inherited = (parent_manifest or {}).get("finetune_defaults") or {}  # a fine-tune of tiny is still tiny-sized
    if supplied and rank == 0:
        print(f"finetune: the model recommends {', '.join(f'{k}={v}' for k, v in supplied.items())} for "
              f"{opts.method} (its mfcli.json); flags override", file=sys.stderr)
    torch.manual_seed(opts.seed)
    if opts.device in ("auto", "cpu") and not torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = dist.device or resolve_device(opts.device)

    resume_dir = existing[-1][1] if (resume and existing) else None
    adapter_method = getattr(method, "adapter", False)
    # a full checkpoint continues from its own weights; an adapter is re-attached to the parent in prepare()
    load_from = str(resume_dir) if (resume_dir and not adapter_method) else parent
    loaded = load_mllm(load_from, device=device, dtype=opts.dtype)
    model, processor, family = loaded.model, loaded.processor, loaded.family
    model.train()
    if opts.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model, groups = method.prepare(model, family, opts,
                                   resume_from=str(resume_dir) if (resume_dir and adapter_method) else None)
    group_names = [g.pop("names") for g in groups]
    names = [n for gn in group_names for n in gn]
    if not names:
        raise MfcliError(f"--method {opts.method} left nothing to train.", "Check --layers / --lora-targets.")
    sharding = make_sharding(opts.fsdp, dist, opts.method, method.custom_update)
    if sharding.fsdp:  # fully_shard swaps every parameter for a sharded one: collect them afterwards
        if rank == 0:
            print(f"finetune: FSDP, weights, gradients and optimiser state sharded over {world} processes",
                  file=sys.stderr)
        sharding.shard(model, family)
        named = dict(model.named_parameters())
        for g, gn in zip(groups, group_names):
            g["params"] = [named[n] for n in gn]
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=opts.weight_decay)

    global_batch = opts.batch_size * opts.grad_accum * world
    steps_per_epoch = math.ceil(len(examples) / global_batch)
    total = opts.max_steps or steps_per_epoch * opts.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, opts.warmup_ratio))
    done_steps = 0
    if resume_dir is not None:
        restored = load_state(resume_dir, optimizer, scheduler,
                              lambda sd: sharding.load_optimizer(model, optimizer, names, sd))
        done_steps = restored["global_step"]
        resumed_extra = restored["extra"]
    else:
        resumed_extra = {}

    tok = processor.tokenizer
    image_token = getattr(processor, "image_token", None) or getattr(tok, "image_token", "<image>")
    ctx = Context(model, params, names, parent, tok.convert_tokens_to_ids(image_token), opts, device, dist)
    method.start(ctx)  # MDGD loads its frozen copy here
    if resumed_extra:
        method.load_extra_state(resumed_extra, device)
    batcher = Batcher(processor)
    train_model = model
    if dist.active and not method.custom_update and not sharding.fsdp:  # DDP; a custom update all-reduces its own
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model)

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG
    if rank == 0:
        _trim_log(log_path, done_steps)

    def save(name: str, progress_state: dict, rng_state) -> Path:
        snap = sharding.snapshot(model, optimizer, names)  # collective under FSDP
        if rank != 0:
            return out / name
        m = Manifest("finetune", options={"method": opts.method, **asdict(opts)}, parents=[parent], seed=opts.seed,
                     metrics={"global_step": progress_state["global_step"], "epoch": progress_state["epoch"]},
                     finetune_defaults=inherited)
        for f in files:
            m.add_data(f)

        def write(d: Path):
            method.save(model, processor, d, parent, state_dict=snap.model)
            cur = torch.get_rng_state()
            torch.set_rng_state(rng_state)
            save_state(d, snap.optimizer, scheduler, progress_state, method.extra_state())
            torch.set_rng_state(cur)
        return write_checkpoint(out / name, write, m, overwrite=True)

    from tqdm.auto import tqdm

    step = done_steps
    bar = tqdm(total=total, initial=step, desc=f"finetune {opts.method}", unit="step", disable=not progress or rank)
    last_good = existing[-1][1] if existing else None
    saved_step = done_steps if resume_dir is not None else None
    stop = DeferredInterrupt()
    try:
        stop.__enter__()
        while step < total:
            epoch = step // steps_per_epoch
            in_epoch = step % steps_per_epoch
            gen = torch.Generator().manual_seed(opts.seed * 100003 + epoch)
            order = torch.randperm(len(examples), generator=gen).tolist()
            for s in range(in_epoch, steps_per_epoch):
                if step >= total:
                    break
                t0 = time.perf_counter()
                chunk = [examples[i] for i in order[s * global_batch:(s + 1) * global_batch]]
                micro = [chunk[i:i + opts.batch_size * world] for i in range(0, len(chunk), opts.batch_size * world)]
                n_tok = sum(_answer_tokens(batcher, m) for m in micro)  # the whole step, every process
                optimizer.zero_grad(set_to_none=True)
                batches = [_to(batcher(m[rank::world]), device, model.dtype) for m in micro]
                if method.custom_update:
                    ctx.step = step
                    loss_value, extras = method.update(ctx, batches, n_tok)
                else:
                    loss_value, extras = 0.0, {}
                    for b in batches:
                        o = train_model(**ctx.inputs(b))
                        loss = nll_sum(o.logits, b["labels"]) / n_tok * world  # DDP averages over world
                        loss.backward()
                        loss_value += float(loss.detach()) / world
                loss_value = dist.all_reduce_sum(loss_value)
                if not math.isfinite(loss_value):
                    where = f"; the last good checkpoint is {last_good}" if last_good else ""
                    raise MfcliError(f"the loss became {loss_value} at step {step + 1}{where}.",
                                     "Lower --lr, or check the data.")
                grad_norm = sharding.grad_norm(torch.nn.utils.clip_grad_norm_(params, opts.max_grad_norm))
                lr_now = scheduler.get_last_lr()[0]
                optimizer.step()
                method.after_step(params)
                scheduler.step()
                step += 1
                row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": round(loss_value, 6),
                       "lr": lr_now, "grad_norm": round(grad_norm, 6), "seconds": round(time.perf_counter() - t0, 4),
                       **{k: round(v, 6) for k, v in extras.items()}}
                if rank == 0:
                    with open(log_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
                prog = {"global_step": step, "epoch": epoch + (1 if s + 1 == steps_per_epoch else 0),
                        "steps_per_epoch": steps_per_epoch, "total_steps": total}
                if s + 1 == steps_per_epoch:
                    last_good, saved_step = save(f"epoch-{epoch + 1}", prog, torch.get_rng_state()), step
                elif opts.save_steps and step % opts.save_steps == 0 or step == total:
                    last_good, saved_step = save(f"step-{step}", prog, torch.get_rng_state()), step
                if stop.requested:  # Ctrl-C during this step: it is complete, stop here
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        bar.close()
        if stop.requested and step == saved_step:
            print(f"interrupted: resumable checkpoint at {last_good}; continue with --resume", file=sys.stderr)
        elif stop.requested:  # between steps: weights, optimiser, scheduler and RNG all belong to `step`
            prog = {"global_step": step, "epoch": step // steps_per_epoch, "steps_per_epoch": steps_per_epoch,
                    "total_steps": total}
            d = save(f"step-{step}", prog, torch.get_rng_state())
            print(f"interrupted: resumable checkpoint at {d}; continue with --resume", file=sys.stderr)
        else:  # a second Ctrl-C, mid-step: this state may be half-updated, so nothing new is written
            where = f"the last checkpoint is {last_good}" if last_good else "no checkpoint was written"
            print(f"interrupted mid-step: {where}; continue with --resume", file=sys.stderr)
        raise
    finally:
        stop.__exit__(*sys.exc_info())
    bar.close()
    if rank == 0 and opts.merge and opts.method == "lora":
        merged = model.merge_and_unload()
        m = Manifest("finetune --merge", options={"method": opts.method, **asdict(opts)}, parents=[parent],
                     seed=opts.seed, finetune_defaults=inherited)
        for f in files:
            m.add_data(f)
        write_checkpoint(out / "merged", lambda d: (merged.save_pretrained(d), processor.save_pretrained(d)), m,
                         overwrite=True)
    dist.barrier()
    return out


def _answer_tokens(batcher, examples) -> int:
    n = 0
    for ex in examples:
        _, labels = batcher.encoder.encode(ex.question, ex.answer)
        n += sum(1 for x in labels[1:] if x != -100)
    return max(1, n)


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
