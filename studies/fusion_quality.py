"""Multi-task fusion (Model Tailor Tables 5-6) on `tiny`: two targets' fine-tunes merged into one model,
Model Tailor against task arithmetic, DARE and TIES at the same kept budget, over several seeds
(docs/results.md, "Multi-task fusion").

    python studies/fusion_quality.py --targets counting,animals --seeds 0,1,2 --out runs/fusion

Per seed: a `full` fine-tune of tiny on each target with tiny's own fine-tuning defaults (the ones
`mfcli finetune tiny DATA --method full` uses: 3 epochs, batch 16, the lr its mfcli.json recommends),
then every method merges all of them at --sparsity (each SFT's own patch; each SFT calibrated on its
own training data, the one its mfcli.json records; `NAME@0.05` runs one at another budget — the paper's
fusion setting is two 5 % patches), then `emt` + the exact judge on the held-out splits of the pre-trained
tasks and every target. Each target keeps --limit examples (80 % train), as studies/forgetting.py. The
table is `mfcli report`'s (mean ± sd over seeds; avg target and H over all the targets); OUT/report.md
and OUT/report.json are the report. Every step is skipped when its output exists, so a re-run resumes.
"""

import argparse
import sys
from pathlib import Path

from mfcli.merge.methods import tailor_options
from mfcli.merge.run import run_tailor
from mfcli.train.loop import run_finetune
from mfcli.train.options import TrainOptions
from mfcli.study import evaluate, report, start
from tailor_quality import VARIANTS  # the same names: paper, refined, dare, ties, task-arithmetic, …

METHODS = ("paper", "refined", "task-arithmetic", "dare", "ties")  # each at the same budget per SFT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="counting,animals", help="two or more target tasks, comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=2500, help="examples per target (80 %% train)")
    ap.add_argument("--sparsity", type=float, default=0.1)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default="runs/fusion")
    args = ap.parse_args()
    targets = args.targets.split(",")
    if len(targets) < 2:
        ap.error("--targets needs two or more tasks: fusion merges one fine-tune per target")
    out = Path(args.out)
    data, judge, judged = start(out, targets, target_limit=args.limit)
    target_data = data[-len(targets):]
    for seed in [int(s) for s in args.seeds.split(",")]:
        root = out / f"seed-{seed}"
        sfts = []
        for task, d in zip(targets, target_data):
            run = root / f"full-{task}"
            sft = run / f"epoch-{args.epochs}"
            if not sft.exists():
                print(f"seed {seed}: full on {task}", file=sys.stderr)
                run_finetune("tiny", [str(d)], run, TrainOptions(method="full", epochs=args.epochs, seed=seed),
                             resume=run.exists(), progress=False)
            sfts.append(sft)
            judged.append(evaluate(str(sft), data, root / f"full-{task}.judged.jsonl", judge))
        for method in args.methods.split(","):
            name, _, budget = method.partition("@")
            fused = root / f"fusion-{method}"
            if not fused.exists():
                print(f"seed {seed}: {method} over {', '.join(targets)}", file=sys.stderr)
                run_tailor("tiny", [str(s) for s in sfts], fused,
                           tailor_options(sparsity=float(budget or args.sparsity), seed=seed, **VARIANTS[name]))
            judged.append(evaluate(str(fused), data, root / f"fusion-{method}.judged.jsonl", judge))
    report(judged, out, targets=targets)


if __name__ == "__main__":
    main()
