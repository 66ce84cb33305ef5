"""`mfcli finetune MODEL DATA... --method METHOD --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import Device, Dtype, Seed
from mfcli.errors import UsageError
from mfcli.train.options import TrainOptions
from mfcli.train.watch import CRITERIA, WatchOptions

_D = TrainOptions()  # the defaults live in one place
_W = WatchOptions(data=("-",))


@app.command(help="Fine-tune a LLaVA-family model: linear, lora, lastn, full, mdgd, mdgd-gm.\n\n"
                  "Writes DIR/epoch-1, DIR/epoch-2, ... (self-describing checkpoints; lora: peft adapters) and "
                  "DIR/train_log.jsonl. Ctrl-C writes a resumable checkpoint; --resume continues.\n\n"
                  "Example:  mfcli finetune tiny data/animals --method lora --epochs 3 --out runs/lora")
def finetune(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model dir, hub id, or tiny.")],
    data: Annotated[list[str], typer.Argument(metavar="DATA", help="train.jsonl files or prepared dirs (mixed tasks allowed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")],
    method: Annotated[str, typer.Option(help="linear, lora, lastn, full, mdgd, mdgd-gm; clip for a CLIP "
                                                 "encoder (tiny-clip).")] = "lora",
    epochs: Annotated[int, typer.Option(help="Epochs (EMT: 3).")] = 3,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: the model's recommendation, else "
                                                     "LLaVA's: lora 2e-4, others 2e-5).")] = None,
    projector_lr: Annotated[Optional[float], typer.Option(help="lora: projector lr (default: the model's "
                                                               "recommendation, else LLaVA's 2e-5).")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per micro-batch per process.")] = 16,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimiser step.")] = 1,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after N optimiser steps.")] = None,
    warmup_ratio: Annotated[float, typer.Option(help="Warm-up share of the steps (LLaVA: 0.03).")] = 0.03,
    save_steps: Annotated[Optional[int], typer.Option(help="Also checkpoint every N steps.")] = None,
    seed: Seed = 0,
    gradient_checkpointing: Annotated[bool, typer.Option(help="Trade compute for activation memory.")] = False,
    layers: Annotated[Optional[int], typer.Option(help="lastn/mdgd: train the last N decoder layers (default: "
                                                       "lastn 12/32, mdgd 6/32 of them, at least 1).")] = None,
    train_vision: Annotated[bool, typer.Option(help="full: also train the vision tower.")] = False,
    lora_r: Annotated[Optional[int], typer.Option(help="LoRA rank (default: the model's recommendation, else "
                                                       "LLaVA's 128).")] = None,
    lora_alpha: Annotated[Optional[int], typer.Option(help="LoRA alpha (default: the model's recommendation, "
                                                           "else LLaVA's 256).")] = None,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout (LLaVA: 0.05).")] = 0.05,
    lora_targets: Annotated[str, typer.Option(help="Comma-separated module names, matched only inside the "
                                                   "language model.")] = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    merge: Annotated[bool, typer.Option(help="lora: also write DIR/merged, a full checkpoint.")] = False,
    lambda_visual: Annotated[float, typer.Option(help="mdgd: weight λ of the visual alignment gradient "
                                                      "(L_v is a mean per element).")] = _D.lambda_visual,
    mdgd_variant: Annotated[str, typer.Option(help="mdgd: paper (Eq. 8, project onto g⊥_pre), pcgrad (remove "
                                                   "only the conflicting part) or decoupled (g⊥ as is).")]
    = _D.mdgd_variant,
    mask_ratio: Annotated[float, typer.Option(help="mdgd-gm: fraction of parameters updated per step.")] = _D.mask_ratio,
    projection: Annotated[str, typer.Option(help="mdgd: global or per-tensor projections.")] = _D.projection,
    mask_refresh: Annotated[int, typer.Option(help="mdgd-gm: re-select the mask every N steps (1: every step, "
                                                   "0: once).")] = _D.mask_refresh,
    fsdp: Annotated[bool, typer.Option(help="Shard weights, gradients and optimiser state over the processes of "
                                            "torchrun / accelerate launch (full, lastn, linear); "
                                            "accelerate's FSDP config turns it on too.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run in DIR from its last checkpoint.")] = False,
    watch: Annotated[Optional[list[str]], typer.Option(
        "--watch", help="Forgetting watch: score these prepared data sets' held-out records (the pre-trained "
                        "tasks and the target) while training; repeat the option per data set. Writes "
                        "DIR/watch.jsonl and DIR/best/.")] = None,
    watch_every: Annotated[Optional[str], typer.Option(
        help="Also watch every N optimiser steps (50) or fraction of an epoch (0.5ep); always at each "
             "epoch's end.")] = None,
    watch_n: Annotated[int, typer.Option(help="Watched records per task (a fixed, seeded sample).")] = _W.n,
    watch_best: Annotated[str, typer.Option(help=f"What DIR/best/ maximises: {', '.join(CRITERIA)} (h: "
                                                 "Model Tailor's H).")] = _W.best,
    watch_kept_min: Annotated[Optional[float], typer.Option(
        help="Only evaluations keeping at least this % of the step-0 scores can be best (with --watch-best "
             "target: the most target while kept ≥ X).")] = None,
    watch_patience: Annotated[Optional[int], typer.Option(
        help="Stop after this many evaluations without a new best.")] = None,
    watch_floor: Annotated[Optional[float], typer.Option(
        help="Stop when the mean kept % falls below this.")] = None,
    device: Device = "auto", dtype: Dtype = "auto",
):
    from mfcli.train.loop import run_finetune
    from mfcli.train.watch import WatchOptions

    watching = None
    if watch:
        watching = WatchOptions(tuple(watch), every=watch_every, n=watch_n, best=watch_best,
                                kept_min=watch_kept_min, patience=watch_patience, floor=watch_floor)
    elif any(v is not None for v in (watch_every, watch_kept_min, watch_patience, watch_floor)):
        raise UsageError("--watch-every, --watch-kept-min, --watch-patience and --watch-floor need --watch.")

    opts = TrainOptions(method=method, epochs=epochs, lr=lr, projector_lr=projector_lr, batch_size=batch_size,
                        grad_accum=grad_accum, max_steps=max_steps, warmup_ratio=warmup_ratio, save_steps=save_steps,
                        seed=seed, gradient_checkpointing=gradient_checkpointing, layers=layers,
                        train_vision=train_vision, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                        lora_targets=lora_targets, merge=merge, lambda_visual=lambda_visual,
                        mdgd_variant=mdgd_variant, mask_ratio=mask_ratio,
                        projection=projection, mask_refresh=mask_refresh, fsdp=fsdp, device=device, dtype=dtype)
    run_finetune(model, data, out, opts, resume=resume, watch=watching)
    print(str(out))
