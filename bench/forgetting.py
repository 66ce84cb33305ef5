"""Fine-tune the built-in `tiny` on a target task with several methods and measure, after every epoch,
EMT accuracy on the target and on the pre-trained tasks (docs/results.md, "Forgetting").

    python bench/forgetting.py --target animals --methods lora,lastn,full --epochs 3 --out runs/forgetting

Prints a markdown table and writes OUT/results.json. Each (method, epoch) row is a real checkpoint
evaluated with `mfcli emt` + the exact judge on the held-out splits `mfcli prepare` makes.
"""

import argparse
import json
import time
from pathlib import Path

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file
from mfcli.train.loop import run_finetune
from mfcli.train.options import TrainOptions


def accuracy(model: str, data: dict[str, Path], out: Path, judge) -> dict[str, float]:
    run_emt(model, [str(p) for p in data.values()], out, EmtOptions(batch_size=64, max_new_tokens=16), progress=False)
    summary = judge_file(str(out), str(out.with_suffix(".judged.jsonl")), judge)
    return {task: summary["tasks"][task]["accuracy"] for task in data}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="animals")
    ap.add_argument("--methods", default="lora,lastn,full")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=2500, help="target-task examples (80 %% train)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--projector-lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--out", default="runs/forgetting")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {}
    for task in [t for t, v in TASKS.items() if v.role == PRETRAINED] + [args.target]:
        d = out / "data" / task
        if not d.exists():
            prepare(task, d, PrepareOptions(limit=args.limit if task == args.target else None))
        data[task] = d
    judge = make_judge("exact")
    results = {"tiny": {0: accuracy("tiny", data, out / "emt-tiny.jsonl", judge)}}
    for method in args.methods.split(","):
        run = out / method
        t = time.time()
        if not run.exists():
            run_finetune("tiny", [str(data[args.target])], run,
                         TrainOptions(method=method, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                      projector_lr=args.projector_lr,
                                      lora_r=args.lora_r, lora_alpha=args.lora_alpha, layers=args.layers),
                         progress=False)
        seconds = time.time() - t
        results[method] = {}
        for e in range(1, args.epochs + 1):
            results[method][e] = accuracy(str(run / f"epoch-{e}"), data, out / f"emt-{method}-{e}.jsonl", judge)
        results[method]["seconds"] = round(seconds, 1)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    tasks = list(data)
    print("| method | epoch | " + " | ".join(f"{t} ({TASKS[t].role})" for t in tasks) + " |")
    print("|---|---:|" + "---:|" * len(tasks))
    for method, rows in results.items():
        for e, acc in rows.items():
            if e == "seconds":
                continue
            print(f"| {method} | {e} | " + " | ".join(f"{100 * acc[t]:.1f}" for t in tasks) + " |")


if __name__ == "__main__":
    main()
