"""How much of the task gradient MDGD's step keeps, from the train logs of a studies/mdgd_quality.py study
(docs/results.md, "MDGD on tiny": why the paper's projection learns little here).

    python studies/mdgd_gradients.py runs/r4-mdgd --variants mdgd,mdgd-gm

MDGD Eq. 8 steps along g⊥_pre scaled by ⟨g⊥, g⊥_pre⟩/‖g⊥_pre‖², so the task part of its step has norm
|cos(g⊥, g⊥_pre)|·‖g⊥‖: where the two gradients disagree the step nearly vanishes. Per variant, mean ± sd
over seeds of: the step's norm over the task gradient's (`grad_norm` / `task_grad_norm`; the step
includes λ·v), cos(g⊥, g⊥_pre) and its absolute value — after the first fifth of the epoch, when the
fine-tune has left θ_pre — and the last logged loss.
"""

import argparse
import json
import statistics
from pathlib import Path


def summary(log: Path) -> dict[str, float]:
    rows = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("task_grad_norm")]
    late = rows[len(rows) // 5:]
    return {"step / task gradient": statistics.mean(r["grad_norm"] / r["task_grad_norm"] for r in late),
            "cos(g⊥, g⊥_pre)": statistics.mean(r["cos_gperp_pre"] for r in late),
            "abs cos(g⊥, g⊥_pre)": statistics.mean(abs(r["cos_gperp_pre"]) for r in late),
            "last loss": rows[-1]["loss"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--variants", default="mdgd,mdgd-gm")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cols = None
    for variant in args.variants.split(","):
        per_seed = [summary(Path(args.study) / f"seed-{s}" / variant / "train_log.jsonl") for s in seeds]
        if cols is None:
            cols = list(per_seed[0])
            print("| variant | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
        cells = []
        for c in cols:
            xs = [p[c] for p in per_seed]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            cells.append(f"{statistics.mean(xs):.3f} ± {sd:.3f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
