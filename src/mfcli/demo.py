"""`mfcli demo`: the three papers' experiments, end to end, on the built-in model and offline tasks.

The steps, each a library call the matching subcommand makes too:

1. prepare every pre-trained task and two targets (EMT's setting: a new classification task);
2. EMT of the base model on all of them, and of its own vision encoder (EMT Table 2);
3. fine-tune on the target with `linear`, `lora` and `full`, EMT after every epoch (EMT Tables 3-5, §5.3);
   the `full` fine-tune under the forgetting watch (its curves and best checkpoint in the report);
4. Model Tailor at --sparsity on the `full` fine-tune, against DARE and task arithmetic at the same
   budget (Model Tailor Tables 1-4), and the fusion of two targets' fine-tunes (Tables 5-6);
5. MDGD and MDGD-GM on the target (MDGD Table 1);
6. the effective rank of the visual representation before and after (MDGD Fig. 4);
7. the reports, Markdown and HTML: OUT/report.* for the single-target study (steps 2-6), OUT/fusion.* for
   the two targets' fine-tunes and their fusion, each scored on both targets.

Every step writes its outputs whole (staged directories, atomic files) and is skipped when they exist,
so a run stopped at any point finishes only what is missing when run again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mfcli.analysis.rank import RankOptions, run_rank
from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.errors import UsageError
from mfcli.merge.options import TailorOptions
from mfcli.study import Study
from mfcli.train.log import LOG, WATCH_FILE
from mfcli.train.options import TrainOptions
from mfcli.train.watch import WatchOptions

TAILOR_METHODS = ("tailor", "dare", "task-arithmetic")  # at the same kept budget (Model Tailor Tables 1-4)
FULL_SIZE_LIMITS = {"animals": 2500}  # 2,000 training images, as studies/forgetting.py; other tasks whole


@dataclass(frozen=True)
class DemoOptions:
    target: str = "counting"  # tiny learns it to ~90 % in 3 epochs (docs/results.md)
    second_target: str = "animals"  # EMT's kind of target: a real classification data set; fused with the first
    epochs: int = 3  # EMT: 3 epochs, evaluated after each
    sparsity: float = 0.1  # Model Tailor's 10 % patch; DARE and task arithmetic keep as much
    limit: int | None = None  # examples per task (a seeded sample); None: each task whole, the second target 2,500
    nsamples: int = 128  # Model Tailor's calibration examples; rank's images per task
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        for name in (self.target, self.second_target):
            if name not in TASKS or TASKS[name].role == PRETRAINED:
                targets = ", ".join(n for n, t in TASKS.items() if t.role != PRETRAINED)
                raise UsageError(f"'{name}' is not one of tiny's target tasks.", f"Choose from {targets}.")
        if self.target == self.second_target:
            raise UsageError("--target and --second-target must differ (the fusion step merges the two).")
        if self.epochs < 1:
            raise UsageError("--epochs must be at least 1.")
        if not 0.0 < self.sparsity <= 1.0:  # checked before the first step, not by the tailor step minutes in
            raise UsageError(f"--sparsity must be in (0, 1] (the fraction of changes kept), got {self.sparsity}.")


QUICK = dict(epochs=1, limit=40, nsamples=8)  # `--quick`: every step on a sliver, for tests and a first look


class Demo(Study):
    """Runs the steps in order (mfcli/study.py's runner); each skipped when its output is there."""

    def __init__(self, out: str | Path, opts: DemoOptions, log=None):
        super().__init__(out, device=opts.device, log=log, eval_dir="eval")
        self.opts = opts
        self.interrupted = False

    def _on_sigint(self, signum, frame):
        # as Python's own handler, plus a note: should a library swallow the KeyboardInterrupt (a broad
        # `except BaseException:`), the demo still does not run on — its next step stops it
        self.interrupted = True
        raise KeyboardInterrupt

    def step(self, what: str, done: bool) -> bool:
        """A Ctrl-C that did not stop the previous step stops here."""
        if self.interrupted:
            raise KeyboardInterrupt
        return super().step(what, done)

    # ---- the building blocks, with the demo's settings ----------------------------------------
    def prepare_all(self) -> tuple[list[Path], Path, Path]:
        o = self.opts
        pretrained = [n for n, t in TASKS.items() if t.role == PRETRAINED]
        dirs = {task: self.prepare(task, o.limit if o.limit is not None else FULL_SIZE_LIMITS.get(task), o.seed)
                for task in pretrained + [o.target, o.second_target]}
        return [dirs[t] for t in pretrained], dirs[o.target], dirs[o.second_target]

    def train(self, method: str, data: Path, name: str, watch: list[Path] = ()) -> Path:
        """`watch`: the forgetting watch's data sets (the pre-trained tasks and the target), or none."""
        o = self.opts
        return self.finetune("tiny", data, name, TrainOptions(method=method, epochs=o.epochs, seed=o.seed,
                                                              device=o.device),
                             watch=WatchOptions(tuple(str(d) for d in watch)) if watch else None)

    def patch(self, sfts: list[Path], method: str, name: str, data: Path | None = None) -> Path:
        o = self.opts
        return self.tailor("tiny", sfts, name, TailorOptions(
            sparsity=o.sparsity, method=method, nsamples=o.nsamples, seed=o.seed,
            data=str(data / "train.jsonl") if data else None))  # tailor streams on the CPU (merge/run.py)

    # ---- the demo ----------------------------------------------------------------------------
    def run(self) -> tuple[Path, Path]:
        o = self.opts
        pretrained, target, second = self.prepare_all()
        tasks = pretrained + [target]  # the single-target study never sees the second target
        classification = [d for d in tasks if TASKS[d.name].kind == "classification"]
        ep = f"epoch-{o.epochs}"
        study, runs = [], []  # judged files and fine-tuning runs of the main report

        study.append(self.evaluate("tiny", tasks, "tiny"))
        study.append(self.evaluate("tiny-clip", classification, "tiny-clip"))  # the MLLM's own vision encoder

        tuned = {}
        for method in ("linear", "lora", "full"):  # the full fine-tune watched while it trains
            run = tuned[method] = self.train(method, target, method, watch=tasks if method == "full" else ())
            runs.append(run)
            for e in range(1, o.epochs + 1):
                study.append(self.evaluate(str(run / f"epoch-{e}"), tasks, f"{method}-{e}"))
        for method in TAILOR_METHODS:
            patched = self.patch([tuned["full"] / ep], method, method, target)
            study.append(self.evaluate(str(patched), tasks, method))
        for method in ("mdgd", "mdgd-gm"):
            run = tuned[method] = self.train(method, target, method)
            runs.append(run)
            study.append(self.evaluate(str(run / ep), tasks, f"{method}-{o.epochs}"))

        rank = self.out / "rank.jsonl"
        if self.step("rank (effective rank of the visual features)", rank.exists()):
            models = ["tiny"] + [str(tuned[m] / ep) for m in ("lora", "full", "mdgd", "mdgd-gm")]
            run_rank(models, [str(d) for d in classification], rank,
                     RankOptions(nsamples=max(o.nsamples, 16), seed=o.seed, device=o.device))

        # Model Tailor Tables 5-6: the two targets' full fine-tunes and their fusion, each scored on both
        # targets and on what tiny knew (a fine-tune's score on the other target is part of the table)
        other = self.train("full", second, f"full-{second.name}")
        fused = self.patch([tuned["full"] / ep, other / ep], "tailor", "fusion")
        fusion = [self.evaluate("tiny", [second], f"tiny.{second.name}"), study[0],
                  self.evaluate(str(tuned["full"] / ep), [second], f"full-{o.epochs}.{second.name}"),
                  self.evaluate(str(other / ep), tasks + [second], f"full-{second.name}-{o.epochs}"),
                  self.evaluate(str(fused), tasks + [second], "fusion")]
        fusion += [p for p in study if p.name == f"full-{o.epochs}.judged.jsonl"]

        watched = tuned["full"] / WATCH_FILE
        self.write_report([*study, rank, *(r / LOG for r in runs), *([watched] if watched.exists() else [])],
                          [target.name], "report")
        self.write_report(fusion, [target.name, second.name], "fusion")
        return self.out / "report.md", self.out / "report.html"

    def write_report(self, inputs: list[Path], targets: list[str], stem: str) -> None:
        """OUT/STEM.md and OUT/STEM.html: `report` for the single-target study, `fusion` for the fusion table."""
        self.log(f"demo [{time.time() - self.t0:6.0f} s] {stem}.md, {stem}.html")
        self.report(inputs, [self.out / (stem + ext) for ext in (".md", ".html")], "tiny", targets)


def run_demo(out: str | Path, opts: DemoOptions = DemoOptions(), log=None) -> tuple[Path, Path]:
    import signal
    import threading

    demo = Demo(out, opts, log)
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return demo.run()  # signals reach the main thread only; an ignored SIGINT stays ignored
    previous = signal.signal(signal.SIGINT, demo._on_sigint)
    try:
        return demo.run()
    finally:
        signal.signal(signal.SIGINT, previous)
