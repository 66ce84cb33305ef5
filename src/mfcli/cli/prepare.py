"""`mfcli prepare SOURCE --out DIR`: labelled images -> train.jsonl, val.jsonl, eval.jsonl, images/, dataset.json."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated

import typer

from mfcli.cli import app
from mfcli.cli.options import Out
from mfcli.cli.params import of, options
from mfcli.data.options import PrepareOptions
from mfcli.kinds import QaFields


@app.command(help="Turn images with labels, questions and answers, captions or options into fine-tuning and "
                  "evaluation files.\n\n"
                  "SOURCE: a built-in task (digits, shapes, icons, animals, counting, scene-vqa, scene-objects, "
                  "scene-exists, scene-caption), a Hugging Face dataset id (mnist, cifar10, cifar100 or "
                  "owner/name; online or cached), an image folder with one sub-folder per class, a CSV/JSONL "
                  "with 'image' and 'label' (or 'question' and 'answers', 'captions', 'options' and 'answer') "
                  "columns, or LLaVA's instruction JSON.\n\n"
                  "Example:  mfcli prepare scene-caption --out data/scene-caption")
@options(opts=of(PrepareOptions, exclude=("fields",)), fields=QaFields)
def prepare(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Built-in task, dataset id, folder, or CSV/JSONL file.")],
    out: Out,
    opts: PrepareOptions = ...,  # its fields become the options (cli/params.py)
    fields: QaFields = ...,
):
    from mfcli.data.prepare import prepare as run

    info = run(source, out, replace(opts, fields=fields))
    n_train, n_eval = sum(info.counts["train"].values()), sum(info.counts["eval"].values())
    n_val = sum(info.counts.get("val", {}).values())
    skipped = info.counts.get("skipped", 0)
    what = f"{len(info.labels)} labels" if info.kind == "classification" else info.kind
    print(f"{info.name}: {n_train} train, {n_val} val, {n_eval} eval, {what}"
          + (f", {skipped} images skipped ("
             + ", ".join(f"{n} {why}" for why, n in info.counts.get("skipped_why", {}).items()) + ")"
             if skipped else "") + f" -> {out}", file=sys.stderr)
    print(str(out))
