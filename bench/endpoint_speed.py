"""`emt --endpoint` throughput against a real server, beside the local batched path, in one run.

    python bench/endpoint_speed.py [--model tiny] [--n 256] [--in-flight 1,4,16]

Starts `transformers serve MODEL` (needs fastapi and uvicorn: `pip install -e .[serve]`) on 127.0.0.1,
asks N held-out records (digits + scene-vqa, half each) through `emt --endpoint` at each number of
requests in flight, then the same records through the local path at the same batch size. Prints
records/s for each, their ratio, and how many answers differ from the local path's at batch 16.
transformers serve generates one request at a time unless started with --continuous-batching, which
serves LLMs only: the requests in flight overlap the client's image encoding and HTTP with the
server's generation, no more. vLLM and SGLang batch the requests they hold, which is what --in-flight
is for (docs/formats.md, "Evaluating a served model").
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mfcli.data.prepare import PrepareOptions, prepare
from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.endpoint import EndpointOptions
from mfcli.models.load import resolve_model_path


def serve(model_dir: str, log: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", model_dir, "--host", "127.0.0.1", "--port",
                             str(port), "--device", "cpu", "--dtype", "float32"], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(360):
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    sys.exit(f"transformers serve did not start: {log.read_text()[-500:]}")


def outputs(path: Path) -> dict:
    return {r["id"]: r["output"] for r in map(json.loads, open(path))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny", help="a LLaVA-family dir, or tiny (built on first use)")
    ap.add_argument("--n", type=int, default=256, help="held-out records, half digits, half scene-vqa")
    ap.add_argument("--in-flight", default="1,4,16")
    args = ap.parse_args()
    levels = [int(x) for x in args.in_flight.split(",")]
    model_dir = resolve_model_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = []
        for task in ("digits", "scene-vqa"):  # each holds out 1 record in 5
            prepare(task, tmp / task, PrepareOptions(limit=args.n // 2 * 5))
            data.append(str(tmp / task))
        limit = args.n // 2
        run_emt(model_dir, data, tmp / "warm.jsonl", EmtOptions(batch_size=8, limit=8), progress=False)
        proc, url = serve(model_dir, tmp / "serve.log")
        try:
            run_emt(model_dir, data, tmp / "warm-e.jsonl", EmtOptions(limit=8), progress=False,
                    endpoint=EndpointOptions(url=url))  # the server's first requests load and warm it
            served, local = {}, {}
            for k in levels:
                t = time.perf_counter()
                run_emt(model_dir, data, tmp / f"e{k}.jsonl", EmtOptions(limit=limit), progress=False,
                        endpoint=EndpointOptions(url=url, in_flight=k))
                served[k] = sum(1 for _ in open(tmp / f"e{k}.jsonl")) / (time.perf_counter() - t)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for k in levels:
            t = time.perf_counter()
            run_emt(model_dir, data, tmp / f"l{k}.jsonl", EmtOptions(batch_size=k, limit=limit), progress=False)
            local[k] = sum(1 for _ in open(tmp / f"l{k}.jsonl")) / (time.perf_counter() - t)
        ref = outputs(tmp / f"l{levels[-1]}.jsonl")
        n = len(ref)
        print(f"records: {n} (digits + scene-vqa), model: {args.model}")
        print(f"{'in flight / batch':>18} {'endpoint rec/s':>15} {'local rec/s':>12} {'endpoint/local':>15} "
              f"{'answers != local':>17}")
        for k in levels:
            got = outputs(tmp / f"e{k}.jsonl")
            differ = sum(got[i] != ref[i] for i in ref)
            print(f"{k:>18} {served[k]:>15.1f} {local[k]:>12.1f} {served[k] / local[k]:>14.2f}x {differ:>12} of {n}")


if __name__ == "__main__":
    main()
