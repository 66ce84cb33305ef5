"""`mfcli zoo NAME --out DIR`: write a built-in model (built offline and cached on first use)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mfcli.cli import app
from mfcli.cli.options import Out
from mfcli.progress import show_progress
from mfcli.zoo import write_builtin


@app.command(help="Write a built-in model to DIR: the tiny LLaVA ('tiny'), its CLIP ('tiny-clip') or the tiny "
                  "Qwen2-VL ('tiny-qwen2vl').\n\n"
                  "The first use builds it offline in a few minutes (cached in the user cache dir).\n\n"
                  "Example:  mfcli zoo tiny --out models/tiny")
def zoo(
    name: Annotated[str, typer.Argument(metavar="NAME", help="tiny, tiny-clip or tiny-qwen2vl")],
    out: Out,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild even if a cached build exists.")] = False,
):
    metrics, cached_at = write_builtin(name, out, rebuild=rebuild, progress=show_progress(),
                                       log=lambda m: print(m, file=sys.stderr))
    _print_metrics(name, metrics, cached_at=cached_at)
    print(str(out))


def _print_metrics(name: str, metrics: dict, cached_at: Path | None = None) -> None:
    roles = metrics.get("roles", {})
    clip = name == "tiny-clip"
    rows = metrics.get("clip_zero_shot_accuracy" if clip else "emt_accuracy", {})
    what = "zero-shot accuracy (held-out)" if clip else "EMT exact-match accuracy (held-out)"
    print(f"{name}: {what}", file=sys.stderr)
    for task, acc in sorted(rows.items(), key=lambda kv: (roles.get(kv[0], "") != "pretrained", kv[0])):
        print(f"  {task:<10} {roles.get(task, ''):<11} {100 * acc:6.1f} %", file=sys.stderr)
    if cached_at is not None:
        took = f" (its build took {metrics['build_seconds']} s)" if "build_seconds" in metrics else ""
        print(f"  copied from the cache, {cached_at}{took}", file=sys.stderr)
    elif "build_seconds" in metrics:
        print(f"  built in {metrics['build_seconds']} s", file=sys.stderr)
