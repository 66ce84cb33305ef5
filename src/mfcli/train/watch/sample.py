"""What the watch scores and how: the fixed sample of validation records per task (`draw_sample`), the
targets a run trains on, and the scores of a set of answers, judged as `mfcli judge` judges them
(`score_outputs`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.eval.emt import Query
from mfcli.eval.judges import make_judge
from mfcli.eval.judges.base import Item
from mfcli.eval.judging import judge_rows, summarize
from mfcli.io.checkpoint import sha256_file
from mfcli.io.records import read_dataset_info, read_eval, read_train
from mfcli.kinds import kind_of
from mfcli.train.watch.options import SPLIT_FILES

SAMPLE_SEED = 29  # the watch sample's seed: fixed, so every run of a study is watched on the same records


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
                queries.append(Query(len(queries), r, path.parent / r.image if kind_of(r.kind).image else None))
    return queries, files


def score_outputs(queries, outputs: list[str]) -> tuple[dict, dict, dict]:
    """Each task's score (report scale: ×100), metric and record count, judged as `mfcli judge` does
    with the exact label judge and each other kind's metric."""
    rows, items = [], []
    for q, out in zip(queries, outputs):
        r = q.record
        rows.append({"id": r.id, "task": r.task, "kind": r.kind, "output": out, "references": list(r.references)})
        items.append(Item(out, r.label, r.labels, r.task, r.kind, r.references))
    summary = summarize(judge_rows(rows, items, make_judge("exact")))
    tasks = summary.tasks
    return ({t: 100.0 * s["score"] for t, s in tasks.items()}, {t: s["metric"] for t, s in tasks.items()},
            {t: s["n"] for t, s in tasks.items()})
