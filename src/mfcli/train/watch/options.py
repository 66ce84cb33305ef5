"""The forgetting watch's options and schedule (`mfcli finetune --watch DATA --watch-every …`): light,
so the command line builds its flags without the watch's machinery. What "best" means (CRITERIA), which
split is watched (SPLIT_FILES), when the watch runs (`schedule`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mfcli.errors import UsageError, did_you_mean
from mfcli.params import option

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
