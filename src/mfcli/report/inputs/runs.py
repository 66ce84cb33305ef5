"""Checkpoints and runs on disk: a checkpoint directory (its mfcli.json: how the model was made), a run
directory (train_log.jsonl, watch.jsonl and its epoch-K checkpoints) and a bare train_log.jsonl. They add
what a model is and how it trained; its scores come from the judged files."""

from __future__ import annotations

from mfcli.io.records import read_train_log, read_watch
from mfcli.report.inputs.base import Found, register
from mfcli.report.results import Results, model_info
from mfcli.train.log import LOG, WATCH_FILE


@register("checkpoint", claims=lambda f: f.path.is_dir() and (f.path / "mfcli.json").is_file(),
          summary="a checkpoint directory (its mfcli.json: method, parents, targets, fingerprint)")
def read_checkpoint(found: Found, res: Results) -> None:
    res.models.setdefault(str(found.path), model_info(str(found.path), str(found.path)))


def _is_run(found: Found) -> bool:
    p = found.path
    return p.is_dir() and ((p / LOG).is_file() or any((d / "mfcli.json").is_file() for d in p.iterdir() if d.is_dir()))


@register("run", claims=_is_run, summary="a run directory: its training log, watch and epoch checkpoints")
def read_run(found: Found, res: Results) -> None:
    path = found.path
    if (path / LOG).is_file():
        res.logs[str(path)] = read_train_log(path / LOG)
    if (path / WATCH_FILE).is_file():
        res.watches[str(path)] = read_watch(path / WATCH_FILE)
    for d in sorted(path.iterdir()):
        if (d / "mfcli.json").is_file():
            res.models.setdefault(str(d), model_info(str(d), str(d)))


@register("train-log", claims=lambda f: f.path.is_file() and f.path.name.endswith(LOG),
          summary="a run's train_log.jsonl: its loss curve (and MDGD's gradient cosines)")
def read_train_log_file(found: Found, res: Results) -> None:
    res.logs[str(found.path.parent)] = read_train_log(found.path)
