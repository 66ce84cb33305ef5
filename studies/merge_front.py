"""Data-aware merging beside Model Tailor on `tiny`, every method over its budgets (issue 30;
docs/results.md, "Data-aware merging").

    python studies/merge_front.py --study runs/r6-tailor --target counting --seeds 0,1,2
    python studies/merge_front.py --study runs/r6-caption-tailor --target scene-caption --seeds 0,1,2

Reuses a Model Tailor study's SFTs (studies/tailor_quality.py with --validation 200: per seed a `full`
fine-tune of tiny on the target's training split less 200 carved images, STUDY/seed-S/sft/epoch-1) and
its prepared data. Per seed, from one calibration pass each: Model Tailor (paper and refined), TIES,
DARE, task arithmetic and mfcli's fisher-budget at --budgets; RegMean and Fisher merging (no budget),
their PRE side calibrated on the pre-trained tasks' training splits (STUDY/fit/TASK, the carved images
left out). Calibration: 128 records, as Model Tailor's code. Every model is scored on every task's
held-out split; the table and the front are `mfcli report`'s (OUT/report.md, OUT/report.json).
Steps whose outputs exist are skipped.
"""

import argparse
import sys
from pathlib import Path

from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.merge.run import budget_dir, run_tailor
from mfcli.study import evaluate, report, tailor_options_for

from mfcli.eval.judges import make_judge

# every setting spelled out, so a name means what it meant when its table was measured, whatever the
# product's defaults become: the rows of docs/results.md (2026-12-06) used RegMean's token-summed Grams,
# raw Fishers, TIES's per-tensor trim and task arithmetic's mean; the "-ref" rows are the references'
BUDGETED = {"tailor-paper": dict(method="tailor", variant="paper"),
            "tailor-refined": dict(method="tailor", variant="refined", refine_steps=10, comp_penalty=0.1),
            "ties": dict(method="ties", ties_trim="tensor"), "ties-ref": dict(method="ties", ties_trim="global"),
            "dare": dict(method="dare"), "task-arithmetic": dict(method="task-arithmetic", ta_combine="mean"),
            "fisher-budget": dict(method="fisher-budget", fisher_normalise=False)}
UNBUDGETED = {"regmean": dict(method="regmean", regmean_gram="sum"),
              "regmean-ref": dict(method="regmean", regmean_gram="mean"),
              "fisher": dict(method="fisher", fisher_normalise=False),
              "fisher-ref": dict(method="fisher", fisher_normalise=True, fisher_estimate="sampled")}


def merge_options(name: str, *, sparsity: float, calib: str, seed: int, pre_data: tuple[str, ...]):
    """The merge `name` (BUDGETED or UNBUDGETED) calibrated on `calib`; the pre-trained tasks' data goes
    to the methods that read it (RegMean, Fisher, fisher-budget)."""
    return tailor_options_for(sparsity=sparsity, data=calib, seed=seed, pre_data=pre_data,
                              **{**BUDGETED, **UNBUDGETED}[name])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, type=Path, help="a studies/tailor_quality.py study dir")
    ap.add_argument("--target", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="0.02,0.05,0.1,0.2")
    ap.add_argument("--methods", default=",".join([*BUDGETED, *UNBUDGETED]))
    ap.add_argument("--out", type=Path, default=None, help="default: STUDY/front")
    args = ap.parse_args()
    study, out = args.study, args.out or args.study / "front"
    pretrained = [t for t, v in TASKS.items() if v.role == PRETRAINED]
    data = [study / "data" / t for t in pretrained + [args.target]]
    # the training splits the SFTs saw: a --validation study's carved fit/ dirs, else the prepared data
    # (whose train.jsonl holds no validation image since issue 38)
    fit = study / "fit" if (study / "fit").is_dir() else study / "data"
    pre_data = tuple(str(fit / t) for t in pretrained)
    calib = str(fit / args.target / "train.jsonl")
    budgets = [float(b) for b in args.budgets.split(",")]
    judge = make_judge("exact")
    judged = [evaluate("tiny", data, out / "tiny.judged.jsonl", judge)]
    for seed in (int(s) for s in args.seeds.split(",")):
        sft = study / f"seed-{seed}" / "sft" / "epoch-1"
        judged.append(evaluate(str(sft), data, out / f"seed-{seed}" / "sft.judged.jsonl", judge))
        for name in args.methods.split(","):
            d = out / f"seed-{seed}" / name
            sweep = name in BUDGETED
            if not d.exists():
                print(f"seed {seed}: {name}", file=sys.stderr, flush=True)
                run_tailor("tiny", [str(sft)], d, merge_options(name, sparsity=budgets[0], calib=calib, seed=seed,
                                                                pre_data=pre_data),
                           budgets=budgets if sweep else None)
            # one budget is written in place, several each in its own OUT/sparsity-ρ (merge/run.py)
            for ckpt, tag in ([(d / budget_dir(b) if len(budgets) > 1 else d, f"{name}@{b:g}") for b in budgets]
                              if sweep else [(d, name)]):
                judged.append(evaluate(str(ckpt), data, out / f"seed-{seed}" / f"{tag}.judged.jsonl", judge))
    report(judged, out)


if __name__ == "__main__":
    main()
