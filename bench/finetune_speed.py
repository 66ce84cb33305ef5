"""Fine-tuning cost per method on the built-in `tiny`, each in its own process, in one run:
median seconds per optimiser step, peak RSS, and how many numbers the optimiser state holds.

    python bench/finetune_speed.py [--steps 30] [--batch-size 8]

Targets: an mdgd step <= 2.5x a step on the same trainable set (lastn: MDGD's default set is the
last 6/32 of the layers, as lastn with --layers 1 on tiny); mdgd-gm below mdgd when its mask is
re-selected less often than every step (`mdgd-gm@N`: --mask-refresh N); lora's optimiser state covers
only the adapter and the projector.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
from pathlib import Path
from safetensors.torch import load_file
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
spec, data, out, steps, bs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
method, _, refresh = spec.partition("@")
extra = {"mask_refresh": int(refresh)} if refresh else {}
layers = {"lastn": 1, "mdgd": 1, "mdgd-gm": 1}.get(method)  # one set for the ratio: the last layer + projector
run_finetune("tiny", [data], out, finetune_options(method=method, max_steps=steps, batch_size=bs, lora_r=16, lora_alpha=32,
                                               layers=layers, **extra), progress=False)
ck = out / f"step-{steps}"
state = load_file(str(ck / "trainer_state.safetensors"))
opt = sum(v.numel() for k, v in state.items() if k.startswith("opt.") and k.endswith("exp_avg"))
log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
print(json.dumps({"step_seconds": [r["seconds"] for r in log], "peak_rss_mb": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "optimizer_numbers": opt}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--methods", default="linear,lora,lastn,full,mdgd,mdgd-gm,mdgd-gm@10")
    args = ap.parse_args()
    from mfcli.data.prepare import PrepareOptions, prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare("animals", tmp / "animals", PrepareOptions(limit=600))
        rows = {}
        for m in args.methods.split(","):
            r = subprocess.run([sys.executable, "-c", CHILD, m, str(tmp / "animals"), str(tmp / m), str(args.steps),
                                str(args.batch_size)], capture_output=True, text=True, check=True)
            rows[m] = json.loads(r.stdout.strip().splitlines()[-1])
            rows[m]["median"] = statistics.median(rows[m]["step_seconds"][5:])  # after warm-up
        print(f"batch {args.batch_size}, {args.steps} steps, median after 5 warm-up steps")
        print("| method | s/step | steps/s | vs full | vs lastn | peak RSS MB | optimiser state (numbers, exp_avg) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for m, r in rows.items():
            rel = {b: r["median"] / rows[b]["median"] if b in rows else float("nan") for b in ("full", "lastn")}
            print(f"| {m} | {r['median']:.4f} | {1 / r['median']:.1f} | {rel['full']:.2f}x | {rel['lastn']:.2f}x | "
                  f"{r['peak_rss_mb']:.0f} | {r['optimizer_numbers']:,} |")


if __name__ == "__main__":
    main()
