"""emt throughput on the built-in `tiny`: samples/s at batch 1 vs batch 32, in one run.

    python bench/emt_speed.py [--n 256]

The LLaVA repository's evaluator generates one image at a time; the target is batch 32 >= 5x batch 1.
"""

import argparse
import tempfile
import time
from pathlib import Path

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.eval.emt import EmtOptions, run_emt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256, help="eval images (digits + shapes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = []
        for task in ("digits", "shapes"):
            prepare(task, tmp / task, PrepareOptions(limit=args.n * 5 // 2, eval_fraction=0.2))
            data.append(str(tmp / task))
        run_emt("tiny", data, tmp / "warm.jsonl", EmtOptions(batch_size=8, limit=8), progress=False)  # load, warm
        rates = {}
        for bs in (1, 32):
            t = time.perf_counter()
            run_emt("tiny", data, tmp / f"b{bs}.jsonl", EmtOptions(batch_size=bs), progress=False)
            n = sum(1 for _ in open(tmp / f"b{bs}.jsonl"))
            rates[bs] = n / (time.perf_counter() - t)
        same = open(tmp / "b1.jsonl").read().count('"output"') == open(tmp / "b32.jsonl").read().count('"output"')
        print(f"images: {n}")
        for bs, r in rates.items():
            print(f"batch {bs:>2}: {r:7.1f} samples/s")
        print(f"ratio batch 32 / batch 1: {rates[32] / rates[1]:.2f}x (target >= 5x)  [same records: {same}]")


if __name__ == "__main__":
    main()
