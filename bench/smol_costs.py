"""What `smol` (LLaVA on SmolLM2-135M-Instruct, 30 layers × 576) costs against `tiny` (2 × 128), each
measurement in its own process, in one run: a fine-tuning step's median seconds and the process's peak
RSS for `full`, `lora` and `lastn`; emt's records per second; tailor's seconds per decoder layer and
peak RSS (the streaming merge at a real depth: 30 layers).

    python bench/smol_costs.py [--steps 12] [--batch-size 8]

Needs the cached builds (`mfcli zoo smol` first: about an hour). The build's own time per stage is in
smol's manifest (metrics.build_seconds), printed here too.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FINETUNE = r"""
import json, resource, sys
from pathlib import Path
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
model, method, data, out, steps, bs = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
extra = {"layers": 1 if model == "tiny" else 8} if method == "lastn" else {}
run_finetune(model, [data], out, finetune_options(method=method, max_steps=steps, batch_size=bs, **extra), progress=False)
log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
print(json.dumps({"step_seconds": [r["seconds"] for r in log],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

EMT = r"""
import json, sys, time
from pathlib import Path
from mfcli.eval.emt import EmtOptions, run_emt
model, data, out = sys.argv[1], sys.argv[2:-1], Path(sys.argv[-1])
t = time.perf_counter()
run_emt(model, data, out, EmtOptions(), progress=False)
n = sum(1 for _ in out.open())
print(json.dumps({"records": n, "seconds": time.perf_counter() - t}))
"""

TAILOR = r"""
import json, resource, sys, time
from pathlib import Path
from mfcli.merge.methods import tailor_options
from mfcli.merge.run import run_tailor
pre, sft, data, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
t = time.perf_counter()
run_tailor(pre, [sft], out, tailor_options(method="tailor", sparsity=0.1, nsamples=32, data=data), progress=False)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--models", default="tiny,smol")
    args = ap.parse_args()
    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.io.checkpoint import read_manifest
    from mfcli.models.load import resolve_model_path

    models = args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare("counting", tmp / "counting", PrepareOptions(limit=400))
        prepare("digits", tmp / "digits", PrepareOptions(limit=500))
        prepare("facts", tmp / "facts", PrepareOptions())
        print(f"finetune: batch {args.batch_size}, {args.steps} steps on counting, median after 3 warm-up steps")
        print("| model | method | s/step | peak RSS MB |")
        print("|---|---|---:|---:|")
        for model in models:
            for method in ("full", "lora", "lastn"):
                row = child(FINETUNE, model, method, tmp / "counting", tmp / f"{model}-{method}", args.steps,
                            args.batch_size)
                print(f"| {model} | {method} | {statistics.median(row['step_seconds'][3:]):.2f} | "
                      f"{row['peak_rss_mb']:.0f} |", flush=True)
        print("\nemt (digits' 100 held-out images and facts' 51 questions, batch 64):")
        print("| model | records | seconds | records/s |")
        print("|---|---:|---:|---:|")
        for model in models:
            row = child(EMT, model, tmp / "digits", tmp / "facts", tmp / f"{model}.jsonl")
            print(f"| {model} | {row['records']} | {row['seconds']:.1f} | {row['records'] / row['seconds']:.1f} |",
                  flush=True)
        print("\ntailor (Model Tailor, refined, 10 %, 32 calibration records) of each model's `full` fine-tune above:")
        print("| model | decoder layers | seconds | s/layer | peak RSS MB |")
        print("|---|---:|---:|---:|---:|")
        for model in models:
            layers = json.loads((Path(resolve_model_path(model)) / "config.json").read_text())["text_config"][
                "num_hidden_layers"]
            row = child(TAILOR, model, tmp / f"{model}-full" / f"step-{args.steps}", tmp / "counting" / "train.jsonl",
                        tmp / f"{model}-tailored")
            print(f"| {model} | {layers} | {row['seconds']:.1f} | {row['seconds'] / layers:.2f} | "
                  f"{row['peak_rss_mb']:.0f} |", flush=True)
        for model in models:
            m = read_manifest(Path(resolve_model_path(model)))
            print(f"\n{model}'s build (its manifest): {m.metrics.get('build_seconds')} s")


if __name__ == "__main__":
    main()
