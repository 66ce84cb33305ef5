"""The study runner every multi-step pipeline shares — `mfcli demo` (demo.py) and the studies behind
docs/results.md (studies/): a study directory whose steps (prepare, emt + judge, fine-tune, tailor,
report) each write their outputs whole and are skipped when they exist, so a stopped study finishes only
what is missing when run again. The example shell pipelines (examples/) chain the same commands.

    study = Study("runs/x")
    data = study.prepare_tasks("counting")                       # OUT/data/<task>, the target last
    judged = [study.evaluate("tiny", data, "tiny")]              # OUT/tiny.judged.jsonl
    run = study.finetune("tiny", data[-1], "full", TrainOptions(method="full"))
    study.report(judged, study.out / "report.md")
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mfcli.data.tasks import PRETRAINED, TASKS

from mfcli.eval.judges import make_judge
from mfcli.eval.pipeline import emt_and_judge
from mfcli.report.table import collect
from mfcli.train.loop import run_finetune
from mfcli.zoo.fingerprint import pin_if_asked

pin_if_asked()  # a study script run with MFCLI_PINNED=1 computes under the built-in models' pins, as `mfcli` does


class Study:
    def __init__(self, out: str | Path, *, device: str = "auto", log=None, eval_dir: str = ""):
        self.out, self.device = Path(out), device
        self.eval_dir = eval_dir  # where judged files go under OUT ("" = OUT itself; the demo: "eval")
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.t0 = time.time()

    def step(self, what: str, done: bool) -> bool:
        """Log the step; True when it has to run."""
        self.log(f"{type(self).__name__.lower()} [{time.time() - self.t0:6.0f} s] {what}: "
                 f"{'done already' if done else 'running'}")
        return not done

    def prepare(self, task: str, limit: int | None = None, seed: int = 0) -> Path:
        """OUT/data/TASK: `mfcli prepare TASK` (a built-in task)."""
        from mfcli.data.prepare import PrepareOptions, prepare

        d = self.out / "data" / task
        if self.step(f"prepare {task}", (d / "dataset.json").exists()):
            prepare(task, d, PrepareOptions(limit=limit, seed=seed))
        return d

    def prepare_tasks(self, target: str | list[str], target_limit: int | None = None) -> list[Path]:
        """Every pre-trained task, then the target(s) (last)."""
        targets = [target] if isinstance(target, str) else list(target)
        pretrained = [t for t, v in TASKS.items() if v.role == PRETRAINED]
        return [self.prepare(t, target_limit if t in targets else None) for t in pretrained + targets]

    def judged_path(self, name: str) -> Path:
        return self.out / self.eval_dir / f"{name}.judged.jsonl"

    def evaluate(self, model: str, data: list[Path], name: str | Path, judge=None) -> Path:
        """emt + the judges (exact for labels, each other kind on its metric) on `data`'s held-out splits:
        OUT/[eval_dir/]NAME.judged.jsonl, or the judged path given."""
        judged = Path(name) if isinstance(name, Path) else self.judged_path(name)
        self.step(f"emt {judged.name.replace('.judged.jsonl', '')}", judged.exists())
        return emt_and_judge(model, data, judged, judge=judge, device=self.device)

    def finetune(self, model: str, data: list[Path] | Path, run: str | Path, opts, *, watch=None) -> Path:
        """OUT/RUN (or the run dir given) to its last epoch, resumed when it was stopped."""
        run = Path(run) if isinstance(run, Path) else self.out / "finetune" / run
        data = [data] if isinstance(data, Path) else data
        if self.step(f"finetune {run.name} ({opts.method}, {opts.epochs} epochs)",
                     (run / f"epoch-{opts.epochs}").exists()):
            run_finetune(model, [str(d) for d in data], run, opts, resume=run.exists(), progress=False, watch=watch)
        return run

    def tailor(self, pre: str, sfts: list[Path], out: str | Path, opts, budgets: list[float] | None = None) -> Path:
        """OUT/tailor/NAME (or the directory given): `mfcli tailor PRE SFT...`."""
        from mfcli.merge.run import run_tailor

        out = Path(out) if isinstance(out, Path) else self.out / "tailor" / out
        if self.step(f"tailor {out.name} ({opts.method} at {opts.sparsity:.0%})", out.exists()):
            run_tailor(pre, [str(s) for s in sfts], out, opts, budgets=budgets)
        return out

    def report(self, inputs: list[Path], outs: list[Path], base: str = "tiny", targets: list[str] | None = None,
               echo: bool = False):
        """`mfcli report` of `inputs` into each of `outs` (.md, .html, .json, ...); `targets` name the
        target tasks when there are several (the report's H averages over them)."""
        from mfcli.report.build import build
        from mfcli.report.render import markdown, write

        rep = build(collect([str(p) for p in inputs], targets=targets or ()), base=base)
        for o in outs:
            write(rep, str(o))
        if echo:
            print(markdown(rep))
        return rep


# -- the studies' shorthand (studies/*.py): a study directory whose judged files sit in OUT itself ----------


def prepare_tasks(out: Path, target: str | list[str], target_limit: int | None = None) -> list[Path]:
    return Study(out).prepare_tasks(target, target_limit)


def evaluate(model: str, data: list[Path], judged: Path, judge=None) -> Path:
    """emt + the judge on every task's held-out split, skipped when the judged file exists."""
    return Study(judged.parent).evaluate(model, data, judged, judge)


def start(out: Path, target: str | list[str], target_limit: int | None = None):
    """A study's common first steps: the prepared tasks (target(s) last), the exact judge, and the
    untouched `tiny` evaluated as the first judged file."""
    study = Study(out)
    data = study.prepare_tasks(target, target_limit)
    judge = make_judge("exact")
    return data, judge, [study.evaluate("tiny", data, out / "tiny.judged.jsonl", judge)]


def report(judged: list[Path], out: Path, base: str = "tiny", targets: list[str] | None = None) -> None:
    """OUT/report.md and OUT/report.json, the Markdown also on stdout."""
    Study(out).report(judged, [out / "report.md", out / "report.json"], base, targets, echo=True)


def finetune_options_for(method: str, **values):
    """`finetune_options` for one of the several methods a study runs with one set of flags: each method
    takes the options it reads and the others are dropped — `--methods full,lora --lora-r 16` sets LoRA's
    rank and nothing of full's — where `finetune_options` and `mfcli finetune` refuse an option the method
    does not read. A value of None is the method's default, as an unset flag is."""
    from mfcli.train.methods import get
    from mfcli.train.methods.contract import common_options, finetune_options

    reads = set(common_options()) | set(get(method).own_options())
    return finetune_options(method, **{k: v for k, v in values.items() if k in reads and v is not None})


def tailor_options_for(method: str, **values):
    """`tailor_options` for one of the several merge methods a study runs with one set of options: each
    takes those it reads (RegMean and Fisher the pre-trained tasks' data, Model Tailor not), the others
    are dropped, as in `finetune_options_for`."""
    from mfcli.merge.methods import own_options, tailor_options
    from mfcli.merge.options import common_options

    reads = set(common_options()) | set(own_options(method))
    return tailor_options(method, **{k: v for k, v in values.items() if k in reads and v is not None})


def mean_sd(xs: list[float], digits: int = 1) -> str:
    """"mean ± sample sd" of a study's per-seed figures (the value alone for one seed)."""
    import statistics

    if len(xs) < 2:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"
