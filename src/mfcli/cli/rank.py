"""`mfcli rank MODEL [MODEL ...] --data DATA... --out rank.jsonl`."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import Device, Dtype


@app.command(help="Effective rank of each model's visual representation per task (MDGD Eq. 4, Fig. 4).\n\n"
                  "The representation is the language model's last hidden layer after its final norm, at the "
                  "image-token positions; by default one matrix per (model, task) stacks the image tokens of "
                  "--nsamples images drawn at random (seeded). Fine-tuning tends to lower it.\n\n"
                  "Example:  mfcli rank tiny runs/lora/epoch-3 --data data/digits data/animals --out rank.jsonl")
def rank(
    models: Annotated[list[str], typer.Argument(metavar="MODEL", help="Model dirs, hub ids, tiny, or adapter dirs.")],
    data: Annotated[list[str], typer.Option("--data", "-d", help="Prepared dirs or eval.jsonl files (repeat).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Rank records JSONL, or - for stdout.")] = "-",
    nsamples: Annotated[int, typer.Option(help="Images per task.")] = 256,
    per_image: Annotated[bool, typer.Option("--per-image", help="Mean of per-image eranks instead of one "
                                                                "stacked matrix per task.")] = False,
    layers: Annotated[str, typer.Option(help="last (after the final norm), all, or hidden-state indices "
                                             "like 0,2 (0 = embeddings).")] = "last",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 16,
    seed: Annotated[int, typer.Option(help="Which images are sampled.")] = 0,
    tsne: Annotated[Optional[str], typer.Option("--tsne", help="Also draw t-SNE of the visual features, models "
                                                               "side by side, coloured by class (PNG).")] = None,
    device: Device = "auto", dtype: Dtype = "auto",
):
    from mfcli.analysis.rank import RankOptions, run_rank

    opts = RankOptions(nsamples=nsamples, per_image=per_image, layers=layers, batch_size=batch_size, seed=seed,
                       device=device, dtype=dtype)
    run_rank(models, data, out, opts, tsne_png=tsne, log=lambda s: print(s, file=sys.stderr))
    if out != "-":
        print(out)
