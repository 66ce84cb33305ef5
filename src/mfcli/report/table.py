"""One results table from any mix of inputs: `collect` reads each INPUT through the registry of input
formats (report/inputs/: judged JSONL, summaries, rank files, watch files, run and checkpoint dirs,
plain tables, lmms-eval results, a report's JSON), groups repeats that differ only in a seed part,
refuses two results for one cell, and gives every task its role (pre-trained or target).
"""

from __future__ import annotations

from dataclasses import replace

from mfcli.errors import MfcliError, UsageError
from mfcli.forgetting import CAPTION_METRICS  # noqa: F401  (the studies read it from here)
from mfcli.report.inputs import read_input
from mfcli.report.results import (BINARY_METRICS, PRETRAINED, TARGET, TINY_CLIP_ABOUT, ModelInfo,  # noqa: F401
                                  Results, Row, Scored, model_info, selected_split, split_seed)


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
        read_input(spec, res)
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
