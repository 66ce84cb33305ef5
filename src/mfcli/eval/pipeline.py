"""`emt` then `judge` as one step, for pipelines that evaluate many checkpoints (the demo, studies/)."""

from __future__ import annotations

from pathlib import Path


def emt_and_judge(model: str, data: list, judged: str | Path, *, judge=None, device: str = "auto",
                  batch_size: int = 64) -> Path:
    """Predictions on `data`'s held-out splits beside JUDGED (NAME.judged.jsonl -> NAME.jsonl), then the
    judges (exact for labels unless `judge` says otherwise; VQA accuracy and CIDEr-D for the other kinds).
    Skipped when JUDGED exists; an interrupted emt resumes from its predictions."""
    from mfcli.eval.emt import EmtOptions, run_emt
    from mfcli.eval.judges import make_judge
    from mfcli.eval.judging import judge_file

    judged = Path(judged)
    if not judged.exists():
        preds = judged.with_name(judged.name.replace(".judged.jsonl", ".jsonl"))
        run_emt(model, [str(d) for d in data], preds, EmtOptions(batch_size=batch_size, device=device),
                progress=False)  # generation length capped by record kind
        judge_file(str(preds), str(judged), judge or make_judge("exact"))
    return judged
