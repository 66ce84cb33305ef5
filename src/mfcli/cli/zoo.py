"""`mfcli zoo NAME --out DIR`: write a built-in model (built offline and cached on first use)."""

from __future__ import annotations

import shutil
import sys
from typing import Annotated

import typer

from mfcli.cli import app
from mfcli.cli.options import Out


@app.command(help="Write the built-in tiny LLaVA ('tiny') or its CLIP ('tiny-clip') to DIR.\n\n"
                  "The first use builds both offline in a few minutes (cached in the user cache dir).\n\n"
                  "Example:  mfcli zoo tiny --out models/tiny")
def zoo(
    name: Annotated[str, typer.Argument(metavar="NAME", help="tiny or tiny-clip")],
    out: Out,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild even if a cached build exists.")] = False,
):
    from mfcli.errors import MfcliError, did_you_mean
    from mfcli.io.checkpoint import read_manifest, refuse_existing, staged_dir
    from mfcli.models.zoo import ZOO, ensure_built

    if name not in ZOO:
        raise MfcliError(f"unknown built-in model '{name}'.", did_you_mean(name, ZOO))
    refuse_existing(out)
    dirs = ensure_built(rebuild=rebuild, progress=sys.stderr.isatty(),
                        log=lambda m: print(m, file=sys.stderr))
    with staged_dir(out) as tmp:
        shutil.copytree(dirs[name], tmp, dirs_exist_ok=True)
    metrics = (read_manifest(out) or {}).get("metrics", {})
    _print_metrics(name, metrics)
    print(str(out))


def _print_metrics(name: str, metrics: dict) -> None:
    roles = metrics.get("roles", {})
    rows = metrics.get("emt_accuracy" if name == "tiny" else "clip_zero_shot_accuracy", {})
    what = "EMT exact-match accuracy (held-out)" if name == "tiny" else "zero-shot accuracy (held-out)"
    print(f"{name}: {what}", file=sys.stderr)
    for task, acc in sorted(rows.items(), key=lambda kv: (roles.get(kv[0], "") != "pretrained", kv[0])):
        print(f"  {task:<10} {roles.get(task, ''):<11} {100 * acc:6.1f} %", file=sys.stderr)
    if "build_seconds" in metrics:
        print(f"  built in {metrics['build_seconds']} s", file=sys.stderr)
