"""`mfcli finetune MODEL DATA... --method METHOD --out DIR`: its options are TrainOptions' and
WatchOptions' fields (train/options.py, train/watch/options.py), declared there with their help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcli.cli import app
from mfcli.cli.params import Group, flag_of, options
from mfcli.errors import UsageError
from mfcli.params import params_of
from mfcli.train import methods
from mfcli.train.loop import run_finetune
from mfcli.train.options import TrainOptions
from mfcli.train.watch.options import WatchOptions

# the flags: TrainOptions' fields, then every registered method's own options, once each (methods
# share an option only by sharing the class that declares it: contract._check_options_class), so a
# method with options of its own is one module and no edit here
TRAIN_PARAMS = params_of(TrainOptions)
OWN_PARAMS = list({p.name: p for s in methods.REGISTRY.values() if s.options for p in params_of(s.options)}.values())
FLAGS = {p.name: flag_of(p) for p in TRAIN_PARAMS + OWN_PARAMS}


def _train_options(values: dict) -> TrainOptions:
    """TrainOptions (and the chosen method's own options) from the flags; an option the chosen method
    would ignore is an error, not a no-op (each method declares what it reads where it registers:
    train/methods/contract.py)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    defaults = {p.name: p.default for p in TRAIN_PARAMS + OWN_PARAMS}
    ignored = methods.ignored_options(values["method"], {k for k, v in values.items() if v != defaults[k]})
    if ignored:
        readers = "; ".join(f"{FLAGS[k]}: {', '.join(methods.readers(k))}" for k in ignored)
        raise UsageError(f"{', '.join(FLAGS[k] for k in ignored)} {'does' if len(ignored) == 1 else 'do'} nothing "
                         f"with --method {values['method']}.", f"Drop it, or use a method that reads it ({readers}).")
    spec = methods.get(values["method"])
    own = {p.name: values.pop(p.name) for p in OWN_PARAMS}
    chosen = spec.options(**{k: own[k] for k in spec.own_options()}) if spec.options else None
    return TrainOptions(**values, method_options=chosen)


def methods_help() -> str:
    """Each registered method, what it trains and the options it reads, for `mfcli finetune --help`."""
    def reads(s) -> str:
        flags = [FLAGS[p] for p in s.own_options()]
        return f" [{', '.join(flags)}]" if flags else ""

    return "\n\n".join(f"{name}: {s.summary}{reads(s)}" for name, s in methods.REGISTRY.items())


def _watch(values: dict) -> WatchOptions | None:
    """--watch DATA… turns the watch on; its other options mean nothing without it."""
    if values["data"]:
        return WatchOptions(**{**values, "data": tuple(values["data"])})
    if any(values[k] is not None for k in ("every", "kept_min", "patience", "floor")):
        raise UsageError("--watch-every, --watch-kept-min, --watch-patience and --watch-floor need --watch.")
    return None


WATCH = Group(params_of(WatchOptions), _watch, prefix="watch_")


@app.command(help="Fine-tune a LLaVA-family model with a --method:\n\n" + methods_help() + "\n\n"
                  "An option in brackets is read by the methods that list it; set for another, it is refused. "
                  "Writes DIR/epoch-1, DIR/epoch-2, ... (self-describing checkpoints; lora: peft adapters) and "
                  "DIR/train_log.jsonl. Ctrl-C writes a resumable checkpoint; --resume continues.\n\n"
                  "Example:  mfcli finetune tiny data/animals --method lora --epochs 3 --out runs/lora")
@options(opts=Group(TRAIN_PARAMS + OWN_PARAMS, _train_options), watch=WATCH)
def finetune(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model dir, hub id, or tiny.")],
    data: Annotated[list[str], typer.Argument(metavar="DATA", help="train.jsonl files or prepared dirs (mixed tasks allowed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")],
    opts: TrainOptions,
    resume: Annotated[bool, typer.Option(help="Continue the run in DIR from its last checkpoint.")] = False,
    watch: WatchOptions | None = None,
):
    run_finetune(model, data, out, opts, resume=resume, watch=watch)
    print(str(out))
