"""MDGD and its variants against full, lastn and LoRA fine-tuning on `tiny`, over several seeds
(docs/results.md, "MDGD on tiny"; the study issue 12 asks for).

    python studies/mdgd_quality.py --target counting --seeds 0,1,2 --out runs/mdgd-study

Per seed and variant: a fine-tune of tiny on the target (1 epoch unless the variant says otherwise,
lr 5e-4, batch 8, that seed; the
same settings as studies/tailor_quality.py's SFT), then `emt` + the exact judge on the held-out splits of
the pre-trained tasks and the target. The table is `mfcli report`'s (mean ± sd over seeds, H-score as
the mean of each seed's H); OUT/report.md and OUT/report.json are the report. Every step is skipped
when its output exists, so a re-run resumes.
"""

import argparse
import sys
from pathlib import Path

from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
from mfcli.study import evaluate, report, start

# name → finetune_options keywords besides epochs, lr, batch size and seed; spelled out, so a variant means
# the same whatever the product's defaults are. tiny has 2 decoder layers: MDGD's default set
# (6/32 of them, at least 1) is the last layer + projector, the same set as lastn with --layers 1.
# MDGD-GM reads all of them but the variant (it has its own update, Eq. 10-11).
MDGD_GM = dict(lambda_visual=1.0, projection="global", layers=1)
MDGD = dict(MDGD_GM, mdgd_variant="paper")
VARIANTS = {
    "full": dict(method="full"),
    "lastn": dict(method="lastn", layers=1),
    # the control for the MDGD readings on both layers: the same parameter set (both decoder layers +
    # projector; embeddings, final norm and lm_head frozen), trained without MDGD
    "lastn-all-layers": dict(method="lastn", layers=2),
    "lora": dict(method="lora", lora_r=16, lora_alpha=32, projector_lr=5e-4),
    "mdgd": dict(method="mdgd", **MDGD),
    "mdgd-no-align": dict(method="mdgd", **{**MDGD, "lambda_visual": 0.0}),
    "mdgd-pcgrad": dict(method="mdgd", **{**MDGD, "mdgd_variant": "pcgrad"}),
    "mdgd-decoupled": dict(method="mdgd", **{**MDGD, "mdgd_variant": "decoupled"}),
    "mdgd-decoupled-l0.3": dict(method="mdgd", **{**MDGD, "mdgd_variant": "decoupled", "lambda_visual": 0.3}),
    "mdgd-decoupled-l3": dict(method="mdgd", **{**MDGD, "mdgd_variant": "decoupled", "lambda_visual": 3.0}),
    "mdgd-decoupled-all-layers": dict(method="mdgd", **{**MDGD, "mdgd_variant": "decoupled", "layers": 2}),
    "mdgd-gm": dict(method="mdgd-gm", **MDGD_GM, mask_ratio=0.1, mask_refresh=1),
    "mdgd-gm-fixed": dict(method="mdgd-gm", **MDGD_GM, mask_ratio=0.1, mask_refresh=0),
    # the whole language model (tiny's 2 layers) + projector, as `full` trains
    "mdgd-all-layers": dict(method="mdgd", **{**MDGD, "layers": 2}),
    "mdgd-pcgrad-all-layers": dict(method="mdgd", **{**MDGD, "mdgd_variant": "pcgrad", "layers": 2}),
    "mdgd-gm-all-layers": dict(method="mdgd-gm", **{**MDGD_GM, "layers": 2}, mask_ratio=0.1, mask_refresh=1),
    # full and LoRA at a lower learning rate: the same target accuracy as MDGD's best, for a fair forgetting comparison
    "full-lr1e-4": dict(method="full", lr=1e-4),
    "full-lr2e-4": dict(method="full", lr=2e-4),
    "full-lr5e-5": dict(method="full", lr=5e-5),
    "lora-lr1e-4": dict(method="lora", lora_r=16, lora_alpha=32, lr=1e-4, projector_lr=1e-4),
    "lora-lr2.5e-4": dict(method="lora", lora_r=16, lora_alpha=32, lr=2.5e-4, projector_lr=2.5e-4),
    # matched target accuracy: a second epoch
    "mdgd-decoupled-all-layers-2ep": dict(method="mdgd", **{**MDGD, "mdgd_variant": "decoupled", "layers": 2},
                                          epochs=2),
}


def variant_options(name: str, lr: float, seed: int):
    """The fine-tune `name` of VARIANTS at the study's lr, batch size 8 and one epoch unless it says."""
    return finetune_options(**{"lr": lr, "batch_size": 8, "seed": seed, "epochs": 1, **VARIANTS[name]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="names from VARIANTS, comma-separated")
    ap.add_argument("--out", default="runs/mdgd-study")
    args = ap.parse_args()
    out = Path(args.out)
    data, judge, judged = start(out, args.target)
    target_data = data[-1]
    for seed in [int(s) for s in args.seeds.split(",")]:
        root = out / f"seed-{seed}"
        for name in args.variants.split(","):
            opts = variant_options(name, args.lr, seed)
            ckpt = root / name / f"epoch-{opts.epochs}"
            if not ckpt.exists():
                print(f"seed {seed}: {name}", file=sys.stderr)
                run_finetune("tiny", [str(target_data)], root / name, opts, progress=False)
            judged.append(evaluate(str(ckpt), data, root / f"{name}.judged.jsonl", judge))
    report(judged, out)


if __name__ == "__main__":
    main()
