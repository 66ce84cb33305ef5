"""Peak memory of `mfcli tailor` for a 4-layer and a 16-layer model of equal width, in one run.

    python bench/tailor_memory.py [--width 1024] [--layers 4,16]

Builds random LLaVA checkpoints with tiny's vision tower and processor and a Llama decoder of the
given width; SFT = PRE + noise on every decoder layer; tailors each in its own process and reads the
peak RSS. Streaming (one decoder layer at a time) should keep the ratio within 1.3x.

Beside it, the floor of any non-streaming merge: a process that holds PRE and SFT in memory at once
and writes the patched state dict (safetensors load_file → Θ_pre + (Θ_sft − Θ_pre) → save_file),
with nothing else. Pick a width where that floor's ratio clearly exceeds 1.3x, so the figure shows
the streaming, not the process overhead.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def build(root: Path, layers: int, width: int, tiny: Path) -> tuple[Path, Path]:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    cfg = AutoConfig.from_pretrained(tiny)
    t = cfg.text_config
    t.hidden_size, t.intermediate_size, t.num_hidden_layers = width, int(width * 2.6875), layers
    t.num_attention_heads = t.num_key_value_heads = width // 64
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(cfg)
    proc = AutoProcessor.from_pretrained(tiny)
    pre, sft = root / f"pre{layers}", root / f"sft{layers}"
    model.save_pretrained(pre)
    proc.save_pretrained(pre)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".layers." in n and "language_model" in n:
                p.add_(torch.randn_like(p) * 0.01)
    model.save_pretrained(sft)
    proc.save_pretrained(sft)
    return pre, sft


NON_STREAMING = """
import sys, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
import mfcli  # the same imports as the CLI, so the process baseline matches
pre, sft, out = (Path(a) for a in sys.argv[1:4])
a, b = {}, {}
for f in sorted(pre.glob("*.safetensors")):
    a.update(load_file(f))
for f in sorted(sft.glob("*.safetensors")):
    b.update(load_file(f))
save_file({k: (a[k] + (b[k] - a[k])).contiguous() for k in a}, str(out))
"""


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    t = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return int(r.stderr.strip().splitlines()[-1]) / 1024, time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--layers", default="4,16")
    ap.add_argument("--nsamples", type=int, default=32)
    args = ap.parse_args()
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.zoo import builtin_path

    tiny = builtin_path("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare("counting", tmp / "data", PrepareOptions(limit=80))
        rows = []
        for n in (int(x) for x in args.layers.split(",")):
            pre, sft = build(tmp, n, args.width, tiny)
            size = sum(f.stat().st_size for f in pre.glob("*.safetensors")) / 2**20
            rss, sec = peak_rss_mb([sys.executable, "-m", "mfcli", "tailor", str(pre), str(sft),
                                    "--data", str(tmp / "data" / "train.jsonl"), "--nsamples", str(args.nsamples),
                                    "--out", str(tmp / f"out{n}")])
            floor, _ = peak_rss_mb([sys.executable, "-c", NON_STREAMING, str(pre), str(sft), str(tmp / "whole.safetensors")])
            rows.append((n, size, rss, floor, sec))
            shutil.rmtree(pre), shutil.rmtree(sft), shutil.rmtree(tmp / f"out{n}")
            (tmp / "whole.safetensors").unlink()
    print(f"width {args.width}, {args.nsamples} calibration samples, torch threads {torch.get_num_threads()}")
    print("| decoder layers | checkpoint MB | mfcli tailor peak RSS MB | seconds | non-streaming floor peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    for n, size, rss, floor, sec in rows:
        print(f"| {n} | {size:.0f} | {rss:.0f} | {sec:.0f} | {floor:.0f} |")
    first, last = rows[0], rows[-1]
    print(f"ratio {last[0]} / {first[0]} layers: mfcli {last[2] / first[2]:.2f}x (target <= 1.3x), "
          f"non-streaming floor {last[3] / first[3]:.2f}x")


if __name__ == "__main__":
    main()
