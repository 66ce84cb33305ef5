"""Model Tailor's decorators against the merge baselines on `tiny`, over several SFT seeds, at one kept
budget (docs/results.md, "Model Tailor on tiny").

    python studies/tailor_quality.py --target counting --seeds 0,1,2 --validation 200 --split val \
        --variants paper,refined-pen-0.1,refined-pen-0.3,refined-pen-1,refined-pen-3,refined-pen-10 --out runs/tailor
    python studies/tailor_quality.py --target counting --seeds 0,1,2 --validation 200 \
        --variants paper,refined,nocomp,dare,ties,task-arithmetic --finetunes full-lr2e-4 --out runs/tailor

Per seed: a `full` fine-tune of tiny on the target (1 epoch, lr 5e-4, batch 8, that seed), then every
variant tailors it at --sparsity, calibrated on 128 of the target's training records; --finetunes adds
plain fine-tunes of the same data as rows of their own. `--split val` scores every model on each task's
validation split (`mfcli prepare`'s val.jsonl, which the fine-tunes and the calibration never see;
OUT/val/), so a setting can be chosen there and then scored once on the held-out splits (`--split
heldout`, the default; OUT/). `--validation N` is the older way, kept to reproduce the tables measured
before prepare carved val.jsonl: N training images of every task carved off by studies/validation.py. `emt` + the judges on
each split; the table is `mfcli report`'s (studies/study_table.py). Every step is skipped when its output
exists, so a re-run resumes.
"""

import argparse
import sys
from pathlib import Path

from mfcli.merge.methods import tailor_options
from mfcli.merge.run import run_tailor
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
from mfcli.study import evaluate, report, start
from validation import carve

# name → tailor_options keywords (besides sparsity, data, seed); every option spelled out, so a variant
# means the same whatever the product's defaults are
VARIANTS = {
    "paper": dict(method="tailor", variant="paper"),  # Model Tailor as published
    "paper-scope-paper": dict(method="tailor", variant="paper", scope="paper"),
    "paper-head": dict(method="tailor", variant="paper", compensate_head=True),
    "nocomp": dict(method="tailor", compensate=False),  # the Eq. 9-11 mask alone (Table 4's ablation)
    "refined": dict(method="tailor", variant="refined", refine_steps=10, comp_penalty=0.1),  # the default
    **{f"refined-pen-{mu:g}": dict(method="tailor", variant="refined", refine_steps=10, comp_penalty=mu)
       for mu in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)},
    "refined-cg0": dict(method="tailor", variant="refined", refine_steps=0, comp_penalty=0.0),  # OBS + fallback
    "dare": dict(method="dare"),
    "ties": dict(method="ties"),
    "task-arithmetic": dict(method="task-arithmetic"),
    "grafting": dict(method="grafting"),
}
# plain fine-tunes of the same data, beside the SFT that is tailored
FINETUNES = {"full-lr2e-4": dict(method="full", lr=2e-4), "full-lr1e-4": dict(method="full", lr=1e-4)}
SFT = dict(method="full", epochs=1, lr=5e-4, batch_size=8)


def finetune_of(name: str, seed: int):
    """The SFT (`sft`) or a plain fine-tune of FINETUNES, on the SFT's settings otherwise."""
    return finetune_options(**({**SFT, **FINETUNES[name]} if name != "sft" else SFT), seed=seed)


def variant_options(name: str, sparsity: float, calib: str, seed: int):
    """The merge `name` of VARIANTS at `sparsity`, calibrated on `calib` (a train.jsonl)."""
    return tailor_options(sparsity=sparsity, data=calib, seed=seed, **VARIANTS[name])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sparsity", type=float, default=0.1)
    ap.add_argument("--variants", default="paper,refined,nocomp,dare,ties,task-arithmetic",
                    help="names from VARIANTS, comma-separated")
    ap.add_argument("--finetunes", default="", help="names from FINETUNES, comma-separated")
    ap.add_argument("--validation", type=int, default=0, help="carve this many training images per task")
    ap.add_argument("--split", choices=("heldout", "val"), default="heldout")
    ap.add_argument("--out", default="runs/tailor-study")
    args = ap.parse_args()
    out = Path(args.out)
    data, judge, judged = start(out, args.target)
    if args.validation:
        pairs = [carve(d, out / "fit", out / "val-data", args.validation) for d in data]
        train_data = pairs[-1][0]  # the target without its carved examples
        if args.split == "val":
            data = [v for _, v in pairs]
            judged = [evaluate("tiny", data, out / "val" / "tiny.judged.jsonl", judge)]
    else:
        train_data = data[-1]  # train.jsonl: prepare's validation split is not in it
        if args.split == "val":
            missing = [d for d in data if not (d / "val.jsonl").is_file()]
            if missing:
                ap.error(f"{missing[0]} has no val.jsonl (prepared before mfcli carved one): remove OUT/data")
            data = [d / "val.jsonl" for d in data]
            judged = [evaluate("tiny", data, out / "val" / "tiny.judged.jsonl", judge)]
    scored = out / "val" if args.split == "val" else out
    for seed in [int(s) for s in args.seeds.split(",")]:
        root = out / f"seed-{seed}"
        for name in ["sft", *filter(None, args.finetunes.split(","))]:
            ckpt = root / name / "epoch-1"
            if not ckpt.exists():
                print(f"seed {seed}: fine-tune {name}", file=sys.stderr)
                run_finetune("tiny", [str(train_data)], root / name, finetune_of(name, seed), progress=False)
            judged.append(evaluate(str(ckpt), data, scored / f"seed-{seed}" / f"{name}.judged.jsonl", judge))
        for name in args.variants.split(","):
            d = root / name
            if not d.exists():
                print(f"seed {seed}: {name}", file=sys.stderr)
                run_tailor("tiny", [str(root / "sft" / "epoch-1")], d,
                           variant_options(name, args.sparsity, str(train_data / "train.jsonl"), seed))
            judged.append(evaluate(str(d), data, scored / f"seed-{seed}" / f"{name}.judged.jsonl", judge))
    report(judged, scored)


if __name__ == "__main__":
    main()
