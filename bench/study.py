"""The steps every study script in bench/ shares: prepare the built-in tasks, evaluate a checkpoint
(emt + the exact judge for classification, each other kind on its metric — VQA accuracy, CIDEr-D —;
skipped when its judged file exists, so a re-run resumes), and write the table through `mfcli report`."""

from pathlib import Path

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.eval.judges import make_judge
from mfcli.eval.pipeline import emt_and_judge
from mfcli.report.build import build
from mfcli.report.render import markdown, write
from mfcli.report.table import collect


def prepare_tasks(out: Path, target: str | list[str], target_limit: int | None = None) -> list[Path]:
    """Prepared dirs under OUT/data: every pre-trained task, then the target(s) (last)."""
    targets = [target] if isinstance(target, str) else list(target)
    data = []
    for task in [t for t, v in TASKS.items() if v.role == PRETRAINED] + targets:
        d = out / "data" / task
        if not d.exists():
            prepare(task, d, PrepareOptions(limit=target_limit if task in targets else None))
        data.append(d)
    return data


def evaluate(model: str, data: list[Path], judged: Path, judge) -> Path:
    """emt + the judge on every task's held-out split, skipped when the judged file exists."""
    return emt_and_judge(model, data, judged, judge=judge)


def start(out: Path, target: str | list[str], target_limit: int | None = None):
    """A study's common first steps: the prepared tasks (target(s) last), the exact judge, and the
    untouched `tiny` evaluated as the first judged file."""
    data = prepare_tasks(out, target, target_limit)
    judge = make_judge("exact")
    return data, judge, [evaluate("tiny", data, out / "tiny.judged.jsonl", judge)]


def report(judged: list[Path], out: Path, base: str = "tiny", targets: list[str] | None = None) -> None:
    """OUT/report.md and OUT/report.json, the Markdown also on stdout; `targets` name the target tasks
    when there are several (the report's H averages over them)."""
    rep = build(collect([str(p) for p in judged], targets=targets or ()), base=base)
    write(rep, str(out / "report.md"))
    write(rep, str(out / "report.json"))
    print(markdown(rep))
