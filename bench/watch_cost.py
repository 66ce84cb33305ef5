"""What the forgetting watch adds to a fine-tune (issue 29's bound: ≤ 15 % at the defaults).

    python bench/watch_cost.py [--repeats 3] [--root /tmp/watch-bench]

`mfcli finetune tiny DATA/counting --method full` (3 epochs, tiny's recommended lr), whole, in its own
process, with and without `--watch` over every pre-trained task of tiny and the target at the watch's
defaults (`--watch-n` records per task, at each epoch's end). Runs alternate, so a slow spell of the
machine hits both. The step-0 scores are cached by model and sample: the first watched run pays them
(reported apart as "cold"), the timed ones find them.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mfcli.data.tasks import PRETRAINED, TASKS

TARGET = "counting"


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", default="/tmp/watch-bench")
    ap.add_argument("--every", default=None, help="also time --watch-every this (e.g. 0.5ep)")
    args = ap.parse_args()
    root = Path(args.root)
    data = root / "data"
    tasks = [t for t, v in TASKS.items() if v.role == PRETRAINED] + [TARGET]
    for t in tasks:
        if not (data / t / "dataset.json").exists():
            subprocess.run([sys.executable, "-m", "mfcli", "prepare", t, "--out", str(data / t)], check=True,
                           capture_output=True)
    base = [sys.executable, "-m", "mfcli", "finetune", "tiny", str(data / TARGET), "--method", "full"]
    watch = [a for t in tasks for a in ("--watch", str(data / t))]
    variants = {"plain": [], "watch": watch}
    if args.every:
        variants[f"watch every {args.every}"] = watch + ["--watch-every", args.every]
    import shutil

    from mfcli.cache import cache_root

    shutil.rmtree(cache_root() / "watch", ignore_errors=True)  # the first watched run is cold
    shutil.rmtree(root / "cold", ignore_errors=True)
    cold = run(base + watch + ["--out", str(root / "cold")])
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(args.repeats):
        for name, extra in variants.items():
            out = root / f"{name.replace(' ', '-')}-{i}"
            subprocess.run(["rm", "-rf", str(out)])
            times[name].append(run(base + extra + ["--out", str(out)]))
    evals = [json.loads(x) for x in (root / "watch-0" / "watch.jsonl").read_text().splitlines()]
    plain = statistics.median(times["plain"])
    print(f"tasks watched: {len(tasks)}, records per evaluation: {sum(evals[0]['n'].values())}, "
          f"evaluations: {len(evals) - 1} (+ step 0 from the cache)")
    print(f"median seconds over {args.repeats} runs (alternating):")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<22} {med:7.2f} s  ({', '.join(f'{t:.2f}' for t in ts)})  "
              f"{'' if name == 'plain' else f'+{100 * (med / plain - 1):.1f} %'}")
    print(f"  {'watch, cold cache':<22} {cold:7.2f} s  (once; step 0 scored, then cached)")
    print(f"seconds per evaluation (watch-0): {', '.join(str(e['seconds']) for e in evals[1:])}")


if __name__ == "__main__":
    main()
