"""`mfcli finetune MODEL DATA... --method METHOD --out DIR`: its options are TrainOptions' and
WatchOptions' fields (train/options.py, train/watch.py), declared there with their help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcli.cli import app
from mfcli.cli.params import Group, options
from mfcli.errors import UsageError
from mfcli.params import params_of
from mfcli.train.options import TrainOptions
from mfcli.train.watch import WatchOptions


def _watch(values: dict) -> WatchOptions | None:
    """--watch DATA… turns the watch on; its other options mean nothing without it."""
    if values["data"]:
        return WatchOptions(**{**values, "data": tuple(values["data"])})
    if any(values[k] is not None for k in ("every", "kept_min", "patience", "floor")):
        raise UsageError("--watch-every, --watch-kept-min, --watch-patience and --watch-floor need --watch.")
    return None


WATCH = Group(params_of(WatchOptions), _watch, prefix="watch_")


@app.command(help="Fine-tune a LLaVA-family model: linear, lora, lastn, full, mdgd, mdgd-gm.\n\n"
                  "Writes DIR/epoch-1, DIR/epoch-2, ... (self-describing checkpoints; lora: peft adapters) and "
                  "DIR/train_log.jsonl. Ctrl-C writes a resumable checkpoint; --resume continues.\n\n"
                  "Example:  mfcli finetune tiny data/animals --method lora --epochs 3 --out runs/lora")
@options(opts=TrainOptions, watch=WATCH)
def finetune(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model dir, hub id, or tiny.")],
    data: Annotated[list[str], typer.Argument(metavar="DATA", help="train.jsonl files or prepared dirs (mixed tasks allowed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")],
    opts: TrainOptions,
    resume: Annotated[bool, typer.Option(help="Continue the run in DIR from its last checkpoint.")] = False,
    watch: WatchOptions | None = None,
):
    from mfcli.train.loop import run_finetune

    run_finetune(model, data, out, opts, resume=resume, watch=watch)
    print(str(out))
