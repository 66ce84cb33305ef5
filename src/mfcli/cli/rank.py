"""`mfcli rank MODEL [MODEL ...] --data DATA... --out rank.jsonl`."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from mfcli.analysis.rank import RankOptions, run_rank
from mfcli.cli import app
from mfcli.cli.params import options
from mfcli.report.plots import tsne_grid


@app.command(help="Effective rank of each model's visual representation per task (MDGD Eq. 4, Fig. 4).\n\n"
                  "The representation is the language model's last hidden layer after its final norm, at the "
                  "image-token positions; by default one matrix per (model, task) stacks the image tokens of "
                  "--nsamples images drawn at random (seeded). Fine-tuning tends to lower it.\n\n"
                  "Example:  mfcli rank tiny runs/lora/epoch-3 --data data/digits --data data/animals --out rank.jsonl")
@options(opts=RankOptions)
def rank(
    models: Annotated[list[str], typer.Argument(metavar="MODEL", help="Model dirs, hub ids, tiny, or adapter dirs.")],
    data: Annotated[list[str], typer.Option("--data", "-d", help="A prepared dir or eval.jsonl file; repeat --data for each.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Rank records JSONL, or - for stdout.")] = "-",
    opts: RankOptions = ...,  # its fields become the options (cli/params.py)
    tsne: Annotated[Optional[str], typer.Option("--tsne", help="Also draw t-SNE of the visual features, models "
                                                               "side by side, coloured by class (PNG).")] = None,
):
    features = {} if tsne else None
    run_rank(models, data, out, opts, features=features, log=lambda s: print(s, file=sys.stderr))
    if tsne:
        tsne_grid(features, tsne, seed=opts.seed)
    if out != "-":
        print(out)
