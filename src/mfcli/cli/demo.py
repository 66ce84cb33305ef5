"""`mfcli demo --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import Device, Seed


@app.command(help="The three papers' experiments end to end on the built-in tiny model and offline tasks: EMT of "
                  "the base model and its vision encoder; linear, LoRA and full fine-tuning on a target with EMT "
                  "after every epoch; Model Tailor at 10 % against DARE and task arithmetic, and the fusion of two "
                  "targets' fine-tunes; MDGD and MDGD-GM; effective rank; a Markdown and an HTML report.\n\n"
                  "Progress goes to stderr; a run stopped at any point (Ctrl-C, kill) finishes only what is "
                  "missing when run again with the same --out.\n\n"
                  "Example:  mfcli demo --out runs/demo && xdg-open runs/demo/report.html")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for everything the demo makes (reused "
                                                          "to resume).")] = Path("demo"),
    quick: Annotated[bool, typer.Option("--quick", help="One epoch on 40 examples per task: every step in "
                                                        "a minute or two, the figures meaningless.")] = False,
    target: Annotated[str, typer.Option(help="The fine-tuning target task.")] = "counting",
    second_target: Annotated[str, typer.Option(help="A second target, fine-tuned to fuse with the first.")] = "animals",
    epochs: Annotated[Optional[int], typer.Option(help="Fine-tuning epochs [default: 3; --quick: 1].")] = None,
    sparsity: Annotated[float, typer.Option(help="Fraction of the fine-tuned changes kept by Model Tailor, "
                                                 "DARE and task arithmetic.")] = 0.1,
    seed: Seed = 0,
    device: Device = "auto",
):
    from mfcli.demo import QUICK, DemoOptions, run_demo

    base = dict(QUICK) if quick else {}
    if epochs is not None:
        base["epochs"] = epochs
    opts = DemoOptions(target=target, second_target=second_target, sparsity=sparsity, seed=seed, device=device,
                       **base)
    md, html = run_demo(out, opts)
    print(f"report: {html} (and {md}; the fusion of two targets: {out / 'fusion.html'})")
