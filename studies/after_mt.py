"""The methods after Model Tailor beside it on tiny (issue 42; docs/results.md, "After Model Tailor").

    MFCLI_PINNED=1 python studies/after_mt.py --target counting --seeds 0,1,2 --out runs/after-mt

Per seed, on the target's training split (prepare's train.jsonl, no validation image in it): the
fine-tunes that forget less by construction — component tuning (`parts`, both recipes), SPIDER,
LoRASculpt and Model-Dowser-style (`dowser`), with LoRA and MDGD beside them — and "fine-tune, then
tailor": a `full` fine-tune at tiny's recommended lr and Model Tailor at 10 % of its changes (both
decorators), NPS-style at the same budget (its band weights chosen by CMA-ES on the target's validation
records), Fisher merging at the same budget (fisher-budget) and RegMean (unbudgeted). Every method at tiny's
settings where the paper's do not fit a 2-layer model (noted per method below), 3 epochs, the last
epoch scored on every task's held-out split; the table, the kept-against-learned figure and the paired
tests are `mfcli report`'s (OUT/report.md, OUT/report.json). Steps whose outputs exist are skipped.
"""

import argparse
from pathlib import Path

from mfcli.merge import methods as merge_methods
from mfcli.merge.methods import tailor_options
from mfcli.merge.options import updated
from mfcli.merge.run import run_tailor
from mfcli.search import search_band_weights
from mfcli.study import evaluate, report, start
from mfcli.train.loop import run_finetune
from mfcli.train.methods.dowser import DowserOptions
from mfcli.train.methods.lorasculpt import SculptOptions
from mfcli.train.methods.parts import PartsOptions
from mfcli.train.methods import finetune_options

# name → the fine-tune's options; lr 5e-4 is tiny's recommendation for full and lastn (its mfcli.json):
# the papers' rates (5e-6 for parts, 2e-4 for LoRASculpt) are for 7B models and learn nothing on tiny in
# 3 epochs — an equal rate keeps the comparison about which parameters move, not how fast
FINETUNES = {
    "full": dict(method="full"),
    "parts-sa-proj": dict(method="parts", lr=5e-4, method_options=PartsOptions(parts_recipe="sa-proj")),
    "parts-mlp-gate-up": dict(method="parts", lr=5e-4, method_options=PartsOptions(parts_recipe="mlp-gate-up")),
    "spider": dict(method="spider", lr=5e-4, layers=1),  # the projector + the last of tiny's 2 blocks
    # LoRASculpt's r 32 / α 64 at tiny's LoRA lr; the mask after 1 epoch (tiny's 81 steps an epoch, the
    # code's 100 of a longer run)
    "lorasculpt": dict(method="lorasculpt", lr=5e-4, projector_lr=5e-4, lora_r=32, lora_alpha=64,
                       method_options=SculptOptions(sculpt_step=81)),
    "dowser": dict(method="dowser", lr=5e-4, layers=1, method_options=DowserOptions()),
    # the front's references (issue 42, item 6): LoRA and MDGD at tiny's recommended settings (its mfcli.json)
    "lora": dict(method="lora"),
    "mdgd": dict(method="mdgd"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(FINETUNES))
    ap.add_argument("--sparsity", type=float, default=0.1)
    ap.add_argument("--nps-budget", type=int, default=24, help="candidates NPS-style's CMA-ES may score")
    ap.add_argument("--out", default="runs/after-mt")
    args = ap.parse_args()
    out = Path(args.out)
    data, judge, judged = start(out, args.target)
    target = data[-1]
    for seed in (int(s) for s in args.seeds.split(",")):
        root = out / f"seed-{seed}"
        for name in args.methods.split(","):
            run = root / name
            if not (run / "epoch-3").exists():
                run_finetune("tiny", [str(target)], run, finetune_options(**FINETUNES[name], seed=seed, epochs=3),
                             resume=run.exists(), progress=False)
            judged.append(evaluate(str(run / "epoch-3"), data, root / f"{name}.judged.jsonl", judge))
        sft = root / "full" / "epoch-3"
        merges = {"tailor-paper": tailor_options(method="tailor", variant="paper"),
                  "tailor-refined": tailor_options(method="tailor", variant="refined"),
                  "nps": tailor_options(method="nps", nps_search=(str(target),), nps_budget=args.nps_budget),
                  # the data-aware merges of the same SFT: Fisher merging at the same budget (mfcli's
                  # fisher-budget) and RegMean (no budget: every changed entry moves), both weighing PRE by
                  # its own statistics on the pre-trained tasks' training splits, at their product defaults
                  "fisher-budget": tailor_options(method="fisher-budget", pre_data=tuple(map(str, data[:-1]))),
                  "regmean": tailor_options(method="regmean", pre_data=tuple(map(str, data[:-1])))}
        for name, opts in merges.items():
            d = root / name
            if not d.exists():
                opts = updated(opts, sparsity=args.sparsity, seed=seed, data=str(target / "train.jsonl"))
                if name == "nps":
                    weights, _ = search_band_weights("tiny", [str(sft)], opts, args.sparsity)
                    opts = updated(opts, nps_weights=",".join(map(repr, weights)))
                budgeted = merge_methods.get(opts.method).budgeted
                run_tailor("tiny", [str(sft)], d, opts, budgets=[args.sparsity] if budgeted else None,
                           progress=False)
            judged.append(evaluate(str(d), data, root / f"{name}.judged.jsonl", judge))
    report(judged, out)


if __name__ == "__main__":
    main()
