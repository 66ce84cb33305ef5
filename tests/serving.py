"""A real OpenAI-compatible server for the endpoint tests: `transformers serve` (part of transformers; it
needs fastapi and uvicorn, which the test extra installs) on a model directory, on 127.0.0.1 at a free
port, started and stopped (by its process group) by the test; skipped with its reason where it cannot
start."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TransformersServe:
    """`transformers serve DIR` on 127.0.0.1 at a free port, as a user starts it; stopped by its pid."""

    def __init__(self, model_dir, log_path, startup_seconds: float = 180):
        self.model_dir, self.log_path, self.startup_seconds = str(model_dir), log_path, startup_seconds
        self.url = f"http://127.0.0.1:{free_port()}/v1"

    def __enter__(self):
        pytest.importorskip("fastapi", reason="transformers serve needs fastapi (pip install -e .[test])")
        pytest.importorskip("uvicorn", reason="transformers serve needs uvicorn (pip install -e .[test])")
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        code = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; main()"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-c", code, "serve", self.model_dir, "--host", "127.0.0.1",
                                      "--port", port, "--device", "cpu", "--dtype", "float32"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
        import urllib.request

        deadline = time.time() + self.startup_seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.__exit__()
                pytest.skip(f"transformers serve exited ({self.proc.returncode}): "
                            f"{open(self.log_path).read()[-300:]}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        pytest.skip(f"transformers serve did not answer within {self.startup_seconds:g} s")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


def agreement(local, served) -> float:
    return sum(a["output"] == b["output"] for a, b in zip(local, served)) / len(local)
