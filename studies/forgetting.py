"""Fine-tune the built-in `tiny` on a target task with several methods and measure, after every epoch,
EMT accuracy on the target and on the pre-trained tasks (docs/results.md, "Forgetting").

    python studies/forgetting.py --target animals --methods lora,lastn,full --epochs 3 --out runs/forgetting

Each (method, epoch) is a real checkpoint evaluated with `emt` + the exact judge on the held-out
splits `prepare` makes; the table, per-epoch curves and paired tests are `mfcli report`'s
(OUT/report.md, OUT/report.json). Steps whose outputs exist are skipped, so a re-run resumes.
"""

import argparse
from pathlib import Path

from mfcli.train.loop import run_finetune
from mfcli.study import evaluate, finetune_options_for, report, start


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="animals")
    ap.add_argument("--methods", default="lora,lastn,full")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=2500, help="target-task examples (about 72 %% train, 8 %% validation, 20 %% held out)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--projector-lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--seeds", default="0", help="fine-tuning seeds; several give mean ± sd")
    ap.add_argument("--out", default="runs/forgetting")
    return ap


def options(args, method: str, seed: int):
    """One fine-tune's options: the study's flags, each method taking those it reads (LoRA's rank is
    nothing to `full`)."""
    return finetune_options_for(method, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                projector_lr=args.projector_lr, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                                layers=args.layers, seed=seed)


def main():
    args = parser().parse_args()
    out = Path(args.out)
    data, judge, judged = start(out, args.target, target_limit=args.limit)
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        root = out / f"seed-{seed}" if len(seeds) > 1 else out
        for method in args.methods.split(","):
            run = root / method
            if not (run / f"epoch-{args.epochs}").exists():  # a partial run resumes from its checkpoint
                run_finetune("tiny", [str(data[-1])], run, options(args, method, seed),
                             resume=run.exists(), progress=False)
            for e in range(1, args.epochs + 1):
                judged.append(evaluate(str(run / f"epoch-{e}"), data, root / f"{method}-{e}.judged.jsonl", judge))
    report(judged, out)


if __name__ == "__main__":
    main()
