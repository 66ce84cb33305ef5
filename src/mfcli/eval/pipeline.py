"""`emt` then `judge` as one step: `evaluate_and_judge`, what `mfcli emt --judge` runs, and
`emt_and_judge`, for pipelines that evaluate many checkpoints (the demo, studies/)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file


def emt_and_judge(model: str, data: list, judged: str | Path, *, judge=None, device: str = "auto",
                  batch_size: int = 64) -> Path:
    """Predictions on `data`'s held-out splits beside JUDGED (NAME.judged.jsonl -> NAME.jsonl), then the
    judges (exact for labels unless `judge` says otherwise; VQA accuracy and CIDEr-D for the other kinds).
    Skipped when JUDGED exists; an interrupted emt resumes from its predictions."""
    judged = Path(judged)
    if not judged.exists():
        preds = judged.with_name(judged.name.replace(".judged.jsonl", ".jsonl"))
        run_emt(model, [str(d) for d in data], preds, EmtOptions(batch_size=batch_size, device=device),
                progress=False)  # generation length capped by record kind
        judge_file(str(preds), str(judged), judge or make_judge("exact"))
    return judged


def judged_paths(out: Path, summary: str | Path | None = None) -> tuple[Path, Path]:
    """Where `mfcli emt OUT --judge` writes: OUT-stem.judged.jsonl and the summary (OUT-stem.summary.json
    unless named)."""
    stem = Path(out).with_suffix("")
    return Path(f"{stem}.judged.jsonl"), Path(summary) if summary else Path(f"{stem}.summary.json")


def evaluate_and_judge(model: str, data: list[str], out: Path, opts, *, endpoint=None, judge=None,
                       summary: str | Path | None = None, log: Callable[[str], None] = lambda line: None):
    """Predictions of `model` on `data` into OUT (resumable), then — on the main process of a
    multi-process run only, once every shard is merged — the judge, if one is given: the judged file and
    the summary beside OUT. Returns the summary record (None without a judge, or on another process).
    The judge is built by the caller before this starts, so a missing key or an unknown name costs no
    generation."""
    run_emt(model, data, out, opts, endpoint=endpoint, log=log)
    if judge is None or os.environ.get("RANK", "0") != "0":  # torchrun / accelerate: the main process judges
        return None
    judged, summary_path = judged_paths(out, summary)
    return judge_file(str(out), str(judged), judge, summary_path=str(summary_path))


def is_main_process() -> bool:
    """Not a secondary process of torchrun / accelerate launch (their RANK > 0)."""
    return os.environ.get("RANK", "0") == "0"
