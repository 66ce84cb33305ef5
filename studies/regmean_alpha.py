"""Choose RegMean's α on validation data (issue 38: the default must be chosen there or follow a named
reference; docs/results.md, "RegMean's α, chosen on validation data").

    MFCLI_PINNED=1 python studies/regmean_alpha.py --target counting --seeds 0,1,2 --out runs/regmean-alpha

Per seed: a `full` fine-tune of tiny on the target's train.jsonl (1 epoch, lr 5e-4, batch 8: the Model
Tailor study's SFT), then RegMean with each α of --alphas (the references' per-model mean Grams, PRE's
side calibrated on the pre-trained tasks' training splits, 128 records each side), every model scored
on each task's **validation split** (`mfcli prepare`'s val.jsonl, which neither the fine-tune nor the
calibration sees). Prints, per α, mean ± sd over seeds of kept (% of tiny's validation scores), the
target and mfcli's scale-free H of kept — the figure the choice maximises — and the α it chooses.
Steps whose outputs exist are skipped.
"""

import argparse
import statistics
from pathlib import Path

from mfcli.merge.methods import tailor_options
from mfcli.merge.run import run_tailor
from mfcli.report.build import build
from mfcli.report.table import collect
from mfcli.study import evaluate, mean_sd, start
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options

SFT = dict(method="full", epochs=1, lr=5e-4, batch_size=8)



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--alphas", default="0.1,0.3,0.6,0.9,0.95")
    ap.add_argument("--out", default="runs/regmean-alpha")
    args = ap.parse_args()
    out = Path(args.out)
    data, judge, _ = start(out, args.target)
    val = [d / "val.jsonl" for d in data]
    base = evaluate("tiny", val, out / "val" / "tiny.judged.jsonl", judge)
    pre_data = tuple(str(d) for d in data[:-1])  # the pre-trained tasks' training splits, for PRE's side
    alphas = [float(a) for a in args.alphas.split(",")]
    got = {a: [] for a in alphas}
    for seed in (int(s) for s in args.seeds.split(",")):
        sft = out / f"seed-{seed}" / "sft"
        if not (sft / "epoch-1").exists():
            run_finetune("tiny", [str(data[-1])], sft, finetune_options(**SFT, seed=seed), progress=False)
        for a in alphas:
            d = out / f"seed-{seed}" / f"regmean-{a:g}"
            if not d.exists():
                run_tailor("tiny", [str(sft / "epoch-1")], d, tailor_options(
                    method="regmean", regmean_alpha=a, regmean_gram="mean", pre_data=pre_data,
                    data=str(data[-1] / "train.jsonl"), seed=seed))
            judged = evaluate(str(d), val, out / "val" / f"seed-{seed}" / f"regmean-{a:g}.judged.jsonl", judge)
            rep = build(collect([str(base), str(judged)], targets=[args.target], per_seed=True), base="tiny")
            s = rep.summary[next(m for m in rep.models if m != "tiny")]
            got[a].append((s["kept_pretrained"], s["avg_target"], s["h_kept"]))
    print(f"| α | kept (%) | {args.target} (val) | H of kept |\n|---:|---:|---:|---:|")
    for a in alphas:
        print(f"| {a:g} | {mean_sd([x[0] for x in got[a]])} | {mean_sd([x[1] for x in got[a]])} | "
              f"{mean_sd([x[2] for x in got[a]])} |")
    best = max(alphas, key=lambda a: statistics.mean(x[2] for x in got[a]))
    print(f"chosen on validation data: α {best:g} (highest mean H of kept)")


if __name__ == "__main__":
    main()
