"""A built-in model built in a child process under the pins (zoo/fingerprint.py): the CPU kernel level
and MKL's code path are read when torch loads, so only a fresh process can pin them; the parent's own
settings (its kernel level, its threads) never reach the build.

    python -m mfcli.zoo.build '{"model": "tiny", "out": {"tiny": DIR, "tiny-clip": DIR}, "recipe": {}}'

prints the build's measured figures as one JSON line on stdout; its progress and messages go to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.zoo.fingerprint import pinned_environment


def build_pinned(model: str, out: dict[str, Path], recipe: dict | None = None, *, progress: bool = True) -> dict:
    """Build `model` ("tiny": out holds "tiny" and "tiny-clip"; "tiny-qwen2vl"; "smol": out holds "smol" and
    the tiny build whose vision tower it takes) with `recipe`'s fields
    changed from the model's recipe (the tests' shortened ones), under the pins; its figures."""
    spec = {"model": model, "out": {k: str(v) for k, v in out.items()}, "recipe": recipe or {}, "progress": progress}
    env = {**os.environ, **pinned_environment()}
    r = subprocess.run([sys.executable, "-m", "mfcli.zoo.build", json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        raise MfcliError(f"building the built-in {model} failed (exit code {r.returncode}); its messages are above.",
                         "Run it again with MFCLI_DEBUG=1 for the traceback, or report it.")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _main(spec: dict) -> dict:
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    out = {k: Path(v) for k, v in spec["out"].items()}
    if spec["model"] == "tiny":
        from mfcli.zoo.tiny import TinyRecipe, build_tiny

        return build_tiny(out["tiny"], out["tiny-clip"], TinyRecipe(**spec["recipe"]), progress=spec["progress"],
                          log=log)
    if spec["model"] == "tiny-qwen2vl":
        from mfcli.zoo.tiny_qwen2vl import TinyQwen2VLRecipe, build_tiny_qwen2vl

        return build_tiny_qwen2vl(out["tiny-qwen2vl"], TinyQwen2VLRecipe(**spec["recipe"]), progress=spec["progress"],
                                  log=log)
    if spec["model"] in ("smol", "smol-base"):
        from mfcli.zoo.smol import SmolRecipe, build_smol, build_smol_base

        recipe = SmolRecipe(**spec["recipe"])
        if spec["model"] == "smol-base":
            return build_smol_base(out["smol-base"], out["tiny"], recipe)
        return build_smol(out["smol"], out["tiny"], recipe, progress=spec["progress"], log=log,
                          base_out=out.get("smol-base"))
    raise SystemExit(f"unknown built-in model {spec['model']!r}")


if __name__ == "__main__":
    metrics = _main(json.loads(sys.argv[1]))
    print(json.dumps(metrics, default=float))
