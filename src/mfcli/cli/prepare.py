"""`mfcli prepare SOURCE --out DIR`: labelled images -> train.jsonl, eval.jsonl, images/, dataset.json."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import Out, Seed


@app.command(help="Turn a labelled image source into fine-tuning and EMT evaluation files.\n\n"
                  "SOURCE: a built-in task (digits, shapes, animals, counting), a Hugging Face dataset id "
                  "(mnist, cifar10, cifar100 or owner/name; online or cached), an image folder with one "
                  "sub-folder per class, or a CSV/JSONL with 'image' and 'label' columns.\n\n"
                  "Example:  mfcli prepare digits --out data/digits")
def prepare(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Built-in task, dataset id, folder, or CSV/JSONL file.")],
    out: Out,
    limit: Annotated[Optional[int], typer.Option(help="Keep at most N examples (a seeded sample).")] = None,
    eval_fraction: Annotated[float, typer.Option(help="Held-out fraction for eval.jsonl (EMT: 0.2).")] = 0.2,
    seed: Seed = 0,
    format: Annotated[str, typer.Option("--format", help="train.jsonl form: llava or sharegpt.")] = "llava",
    label_names: Annotated[Optional[str], typer.Option(help="JSON/CSV mapping raw labels to names.")] = None,
    prompt: Annotated[Optional[str], typer.Option(help="Custom EMT prompt; {labels} and {noun} are filled in.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Dataset split for hub ids (default train).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on a corrupt image instead of skipping it.")] = False,
):
    from mfcli.data.prepare import PrepareOptions, prepare as run

    opts = PrepareOptions(limit=limit, eval_fraction=eval_fraction, seed=seed, format=format,
                          label_names=label_names, prompt=prompt, strict=strict, split=split)
    info = run(source, out, opts)
    n_train, n_eval = sum(info.counts["train"].values()), sum(info.counts["eval"].values())
    skipped = info.counts.get("skipped", 0)
    print(f"{info.name}: {n_train} train, {n_eval} eval, {len(info.labels)} labels"
          + (f", {skipped} corrupt images skipped" if skipped else "") + f" -> {out}", file=sys.stderr)
    print(str(out))
