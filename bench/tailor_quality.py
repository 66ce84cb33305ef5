"""Tailor a fine-tuned `tiny` back toward `tiny` with every method at the same kept budget and
measure EMT accuracy on the pre-trained and target tasks, with the H-score (Model Tailor App. D.2).

    python bench/tailor_quality.py SFT_DIR --data DIR/data --target counting --sparsity 0.1 --out runs/tailor

DIR/data holds `mfcli prepare` outputs for the pre-trained tasks and the target (bench/forgetting.py
makes them). Prints a markdown table and writes OUT/results.json.
"""

import argparse
import json
from pathlib import Path

from forgetting import accuracy  # bench/ is on sys.path when this script runs

from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.eval.judges import make_judge
from mfcli.report.stats import h_score
from mfcli.merge.options import TailorOptions
from mfcli.merge.run import run_tailor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sft")
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", default="counting")
    ap.add_argument("--sparsity", type=float, default=0.1)
    ap.add_argument("--methods", default="tailor,tailor-nocomp,dare,task-arithmetic,ties,grafting")
    ap.add_argument("--out", default="runs/tailor")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pre_tasks = [t for t, v in TASKS.items() if v.role == PRETRAINED]
    data = {t: Path(args.data) / t for t in pre_tasks + [args.target]}
    judge = make_judge("exact")

    def acc(model, tag):
        return {t: 100 * a for t, a in accuracy(model, data, out / f"emt-{tag}.jsonl", judge).items()}

    rows = {"tiny (PRE)": acc("tiny", "pre"), "fine-tuned (SFT)": acc(args.sft, "sft")}
    for m in args.methods.split(","):
        method, comp = ("tailor", False) if m == "tailor-nocomp" else (m, True)
        d = out / m
        if not d.exists():
            run_tailor("tiny", [args.sft], d, TailorOptions(sparsity=args.sparsity, method=method, compensate=comp,
                                                            data=str(data[args.target] / "train.jsonl")))
        rows[m] = acc(str(d), m)
    print(f"| model (ρ = {args.sparsity}) | " + " | ".join(data) + " | H-score |")
    print("|---|" + "---:|" * (len(data) + 1))
    for name, r in rows.items():
        h = h_score([r[t] for t in pre_tasks], [r[args.target]])
        r["H"] = h
        print(f"| {name} | " + " | ".join(f"{r[t]:.1f}" for t in data) + f" | {h:.1f} |")
    (out / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
