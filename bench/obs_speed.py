"""Per-layer Model Tailor compensation time on CPU, as a fraction of this machine's matmul GFLOP/s.

    python bench/obs_speed.py [--shapes 1024x1024,4096x4096,4096x11008] [--refine-steps 10]

A shape is rows x cols of the weight (cols = input features, the Hessian's size). Counted FLOPs:
the three factorisations (4/3 cols³), SparseGPT's lazy updates (rows·cols²), the CG refinement
(2·rows·cols² per step) and the four error evaluations (2·rows·cols² each). Target: >= 0.3.
"""

import argparse
import time

import torch

from mfcli.merge.obs import HessianAccumulator, tailor_linear
from mfcli.merge.methods import tailor_options


def matmul_gflops(rows: int, cols: int) -> float:
    a, b = torch.randn(rows, cols), torch.randn(cols, cols)
    a @ b
    t = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * rows * cols * cols / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="1024x1024,4096x4096,4096x11008")
    ap.add_argument("--refine-steps", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    product = tailor_options(variant="refined")  # the refined decorator's damping and compensation penalty
    print(f"threads: {torch.get_num_threads()}, keep 10 %, block 128, refine {args.refine_steps}")
    print("| rows x cols | seconds | GFLOP | GFLOP/s | matmul GFLOP/s | fraction |")
    print("|---|---:|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        rows, cols = (int(x) for x in shape.split("x"))
        acc = HessianAccumulator(cols)
        acc.add(torch.randn(args.tokens, cols))
        delta = torch.randn(rows, cols) * 0.01
        keep = torch.rand(rows, cols) < 0.1
        t = time.perf_counter()
        tailor_linear(delta, keep, acc.H, refine_steps=args.refine_steps, damp=product.damp,
                      block_size=product.block_size, comp_penalty=product.comp_penalty)
        sec = time.perf_counter() - t
        flop = 4 / 3 * cols**3 + rows * cols**2 * (1 + 2 * args.refine_steps + 2 * 4)
        ref = matmul_gflops(rows, cols)
        print(f"| {rows}x{cols} | {sec:.2f} | {flop / 1e9:.0f} | {flop / sec / 1e9:.1f} | {ref:.1f} | "
              f"{flop / sec / 1e9 / ref:.2f} |")


if __name__ == "__main__":
    main()
