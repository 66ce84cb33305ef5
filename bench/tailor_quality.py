"""Model Tailor's variants against the merge baselines on `tiny`, over several SFT seeds, at one kept
budget (docs/results.md, "Model Tailor on tiny"; the study issue 12 asks for).

    python bench/tailor_quality.py --target counting --seeds 0,1,2 --out runs/tailor-study

Per seed: a `full` fine-tune of tiny on the target (1 epoch, lr 5e-4, batch 8, that seed), then every
variant tailors it at --sparsity, then `emt` + the exact judge on the held-out splits of the
pre-trained tasks and the target. The table is `mfcli report`'s (mean ± sd over seeds, H-score as the
mean of each seed's H): this script only runs the steps; OUT/report.md and OUT/report.json are the
report. Every step is skipped when its output exists, so a re-run resumes.
"""

import argparse
import sys
from pathlib import Path

from mfcli.merge.options import TailorOptions
from mfcli.merge.run import run_tailor
from mfcli.train.loop import run_finetune
from mfcli.train.options import TrainOptions
from study import evaluate, report, start

# name → TailorOptions fields (besides sparsity, data, seed); every field spelled out, so a variant
# means the same whatever the product's defaults are
VARIANTS = {
    "nocomp": dict(compensate=False),
    "obs": dict(refine_steps=0, comp_penalty=0.0),
    "cg-unconstrained": dict(comp_penalty=0.0),
    "pen-0.1": dict(comp_penalty=0.1),
    "pen-0.3": dict(comp_penalty=0.3),
    "pen-1": dict(comp_penalty=1.0),
    "pen-3": dict(comp_penalty=3.0),
    "pen-10": dict(comp_penalty=10.0),
    "pen-1-paper-scope": dict(comp_penalty=1.0, scope="paper"),
    "pen-1-omega-0.5": dict(comp_penalty=1.0, omega=0.5),
    "pen-1-omega-0.2": dict(comp_penalty=1.0, omega=0.2),
    "dare": dict(method="dare"),
    "ties": dict(method="ties"),
    "task-arithmetic": dict(method="task-arithmetic"),
    "grafting": dict(method="grafting"),
}




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sparsity", type=float, default=0.1)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="names from VARIANTS, comma-separated")
    ap.add_argument("--out", default="runs/tailor-study")
    args = ap.parse_args()
    out = Path(args.out)
    data, judge, judged = start(out, args.target)
    target_data = data[-1]
    for seed in [int(s) for s in args.seeds.split(",")]:
        root = out / f"seed-{seed}"
        sft = root / "sft" / "epoch-1"
        if not sft.exists():
            run_finetune("tiny", [str(target_data)], root / "sft",
                         TrainOptions(method="full", epochs=1, lr=5e-4, batch_size=8, seed=seed), progress=False)
        judged.append(evaluate(str(sft), data, root / "sft.judged.jsonl", judge))
        for name in args.variants.split(","):
            d = root / name
            if not d.exists():
                print(f"seed {seed}: {name}", file=sys.stderr)
                run_tailor("tiny", [str(sft)], d, TailorOptions(
                    sparsity=args.sparsity, data=str(target_data / "train.jsonl"), seed=seed, **VARIANTS[name]))
            judged.append(evaluate(str(d), data, root / f"{name}.judged.jsonl", judge))
    report(judged, out)


if __name__ == "__main__":
    main()
