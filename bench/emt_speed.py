"""emt throughput on the built-in `tiny`: samples/s at batch 1 vs batch 32, in one run.

    python bench/emt_speed.py [--n 256]

The LLaVA repository's evaluator generates one image at a time; the target is batch 32 >= 5x batch 1.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

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
        outputs = [{r["id"]: r["output"] for r in map(json.loads, open(tmp / f"b{bs}.jsonl"))} for bs in (1, 32)]
        assert outputs[0].keys() == outputs[1].keys(), "batch 1 and batch 32 judged different records"
        differ = sum(outputs[0][k] != outputs[1][k] for k in outputs[0])
        print(f"images: {n}  (torch threads: {torch.get_num_threads()})")
        for bs, r in rates.items():
            print(f"batch {bs:>2}: {r:7.1f} samples/s")
        print(f"ratio batch 32 / batch 1: {rates[32] / rates[1]:.2f}x (target >= 5x)  "
              f"[outputs that differ between batch 1 and 32: {differ} of {len(outputs[0])}]")


if __name__ == "__main__":
    main()
