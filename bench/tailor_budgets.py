"""Every budget in one pass (issue 30): the time and peak memory of `mfcli tailor --sparsity` with five
budgets against one, in one run.

    python bench/tailor_budgets.py [--width 1024] [--layers 4] [--nsamples 128] [--live-rss]

A random LLaVA checkpoint with tiny's vision tower and processor and a Llama decoder of the given width
(bench/tailor_memory.py's), SFT = PRE + noise on every decoder layer, calibrated on a prepared
`counting`. Each run is its own process; peak RSS is read from the kernel. Target: five budgets cost at
most 2.5× one budget's time, and their peak memory exceeds one budget's by at most one layer's weights,
whatever the number of budgets (each budget's shard is written as it is made; what is kept between
budgets is per layer: each tensor's damped inverse Hessian and Eq. 9–11 scores). `--live-rss` has glibc
return every freed block over 64 KiB to the system (MALLOC_MMAP_THRESHOLD_), so peak RSS counts live
memory rather than what the allocator keeps cached (which moves by tens of MB between identical runs).
"""

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tailor_memory import build

RUN = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if r.returncode:
    sys.exit(r.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", RUN, *cmd], capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t0, float(r.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--nsamples", type=int, default=128)  # tailor's default
    ap.add_argument("--live-rss", action="store_true", help="glibc returns freed blocks over 64 KiB at once")
    ap.add_argument("--variants", default="paper,refined")
    args = ap.parse_args()
    import os

    from mfcli.models.load import resolve_model_path

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"} if args.live_rss else None

    root = Path(tempfile.mkdtemp(prefix="mfcli-budgets-"))
    pre, sft = build(root, args.layers, args.width, Path(resolve_model_path("tiny")))
    subprocess.run([sys.executable, "-m", "mfcli", "prepare", "counting", "--out", str(root / "counting"),
                    "--limit", "400"], check=True, capture_output=True)
    from safetensors import safe_open

    layer_bytes = 0
    for f in pre.glob("*.safetensors"):
        with safe_open(str(f), "pt") as h:
            layer_bytes += sum(4 * math.prod(h.get_slice(k).get_shape())
                               for k in h.keys() if ".layers.0." in k and "language_model" in k)
    layer_mb = layer_bytes / 2**20  # one decoder layer's weights in fp32, as tailor holds them
    total_mb = sum(p.stat().st_size for p in pre.glob("*.safetensors")) / 2**20
    print(f"width {args.width}, {args.layers} decoder layers, {args.nsamples} calibration examples"
          f"{', live RSS' if args.live_rss else ''}; "
          f"checkpoint {total_mb:.0f} MB, one decoder layer {layer_mb:.0f} MB (fp32)")
    print("| variant | budgets | seconds | peak RSS (MB) |\n|---|---|---:|---:|")
    for variant in args.variants.split(","):
        base = [sys.executable, "-m", "mfcli", "tailor", str(pre), str(sft), "--variant", variant,
                "--data", str(root / "counting" / "train.jsonl"), "--nsamples", str(args.nsamples)]
        one = timed(base + ["--sparsity", "0.1", "--out", str(root / f"{variant}-one")], env)
        two = timed(base + ["--sparsity", "0.05,0.1", "--out", str(root / f"{variant}-two")], env)
        five = timed(base + ["--sparsity", "0.02,0.05,0.1,0.2,0.3", "--out", str(root / f"{variant}-five")], env)
        for label, (sec, rss) in (("0.1", one), ("0.05,0.1", two), ("0.02,0.05,0.1,0.2,0.3", five)):
            print(f"| {variant} | {label} | {sec:.1f} | {rss:.0f} |")
        print(f"| {variant} | **ratio** | **{five[0] / one[0]:.2f}×** (≤ 2.5×) | "
              f"**+{five[1] - one[1]:.0f} MB** (≤ {layer_mb:.0f}) |")


if __name__ == "__main__":
    main()
