"""Effective rank of the visual representation across a study's seeds (MDGD Eq. 4, Fig. 4; docs/results.md,
"Effective rank").

    python studies/rank_study.py runs/r4-mdgd --models full,lastn,lora,mdgd,mdgd-gm --checkpoint epoch-1

For tiny and, per seed, each named fine-tune (STUDY/seed-S/MODEL/CHECKPOINT), `mfcli rank` over the
study's prepared classification tasks (STUDY/data/*): one stacked matrix of --nsamples images' image
tokens per (model, task), the same images for every model. Writes STUDY/rank.jsonl (every record) and
prints a Markdown table of erank, mean ± sd over seeds, with each fine-tune's change against tiny.
Ranked models are skipped on a re-run (mfcli rank's own resume).
"""

import argparse
import statistics
from pathlib import Path

from mfcli.analysis.rank import RankOptions, run_rank
from mfcli.data.tasks import TASKS
from mfcli.io.jsonl import iter_jsonl


def mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study", help="a study dir of studies/forgetting.py, mdgd_quality.py, … (seed-S/MODEL/…)")
    ap.add_argument("--models", default="full,lastn,lora,mdgd,mdgd-gm")
    ap.add_argument("--checkpoint", default="epoch-1", help="the checkpoint inside each model's run dir")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--nsamples", type=int, default=256)
    ap.add_argument("--png", default=None, help="also draw the means as grouped bars (mfcli report's style)")
    ap.add_argument("--layer", default="last",
                    help="last: the last decoder layer's image tokens (they see the instruction before them); "
                         "0: the embeddings at the image positions, i.e. the projector's output, which sees no text")
    args = ap.parse_args()
    study = Path(args.study)
    tasks = [d for d in sorted((study / "data").iterdir())
             if d.name in TASKS and TASKS[d.name].kind == "classification"]
    names = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = {("tiny", None): "tiny"}
    for seed in seeds:
        for name in names:
            specs[(name, seed)] = str(study / f"seed-{seed}" / name / args.checkpoint)
    layer = args.layer if args.layer == "last" else int(args.layer)
    out = study / ("rank.jsonl" if layer == "last" else f"rank-layer{layer}.jsonl")
    if not out.exists():
        run_rank(list(specs.values()), [str(d) for d in tasks], out,
                 RankOptions(nsamples=args.nsamples, layers=str(layer)), log=print)
    erank = {(r["model"], r["task"]): r["erank"] for _, r in iter_jsonl(out) if r.get("layer", "last") == layer}
    task_names = [d.name for d in tasks]
    print("| model | " + " | ".join(task_names) + " |")
    print("|---|" + "---:|" * len(task_names))
    base = {t: erank[("tiny", t)] for t in task_names}
    print("| tiny | " + " | ".join(f"{base[t]:.2f}" for t in task_names) + " |")
    for name in names:
        cells = []
        for t in task_names:
            xs = [erank[(specs[(name, s)], t)] for s in seeds]
            change = [100 * (x - base[t]) / base[t] for x in xs]
            cells.append(f"{mean_sd(xs)} ({statistics.mean(change):+.0f} %)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.png:
        from mfcli.report.plots import grouped_bars

        means = {"tiny": base} | {name: {t: statistics.mean(erank[(specs[(name, s)], t)] for s in seeds)
                                         for t in task_names} for name in names}
        grouped_bars(means, Path(args.png), "effective rank",
                     f"Effective rank of the visual features (mean of seeds {args.seeds})")
    where = ("the last layer's image tokens (after the final norm)" if layer == "last"
             else f"the image tokens of hidden state {layer}" + (" (the projector's output)" if layer == 0 else ""))
    print(f"\nerank of {where}, {args.nsamples} images per task, "
          f"mean ± sd over seeds {args.seeds}; in brackets the mean change against tiny.")


if __name__ == "__main__":
    main()
