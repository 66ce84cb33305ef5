"""Tests run on CPU, offline, with a temporary HF_HOME and mfcli cache.

The environment is set at import time, before huggingface_hub reads it. A session fixture builds a
"pico" version of the built-in model into the temporary cache, so `tiny` resolves to it in seconds.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

_root = Path(tempfile.mkdtemp(prefix="mfcli-tests-"))
os.environ.update({
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": str(_root / "hf"),
    "MFCLI_CACHE": str(_root / "cache"),
    "TOKENIZERS_PARALLELISM": "false",
})
os.environ.pop("MFCLI_DEBUG", None)

import pytest  # noqa: E402

PICO = dict(clip_steps=30, align_steps=20, instruct_steps=60, vision_width=32, text_width=32,
            projection_dim=32, lm_width=64, lm_mlp=128, batch=16, max_eval=24)


@pytest.fixture(scope="session")
def pico():
    """Build the pico model once, where `tiny` / `tiny-clip` resolve; return the metrics and dirs."""
    from mfcli.zoo import build_dirs
    from mfcli.zoo.tiny import TinyRecipe, build_tiny

    dirs = build_dirs()
    metrics = build_tiny(dirs["tiny"], dirs["tiny-clip"], TinyRecipe(**PICO), progress=False)
    return {"metrics": metrics, **dirs}


def run_cli(*args, input=None, env=None, process=False):
    """Invoke the console entry point (`mfcli.cli.main`, what `mfcli` runs) as a user would: its exit
    code, stdout and stderr. In this process by default — argv, stdin, stdout, stderr and the environment
    swapped for the call, so no interpreter starts per call; `process=True` where a fresh process is the
    point (what `python -m mfcli` imports, the environment at start-up, signals)."""
    if process:
        return subprocess.run([sys.executable, "-m", "mfcli", *map(str, args)], capture_output=True, text=True,
                              input=input, env={**os.environ, **(env or {})}, timeout=600)
    from typer.testing import CliRunner

    from mfcli.cli import main

    argv, code = sys.argv, 0
    with CliRunner().isolation(input=input, env=env) as (out, err, _):
        sys.argv = ["mfcli", *map(str, args)]
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["mfcli", *map(str, args)], code, stdout, stderr)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test: "fails at once offline" means no
    connection is tried (no retry loop against an unreachable hub), whatever the machine's speed."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args[1:] or args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def report_section(text: str, title: str) -> str:
    """One folded section of a Markdown report (`<summary>TITLE…</summary>` up to its `</details>`)."""
    return text.split(f"<summary>{title}", 1)[1].split("</details>", 1)[0]
