"""`mfcli prepare SOURCE --out DIR`: labelled images -> train.jsonl, eval.jsonl, images/, dataset.json."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import Out


@app.command(help="Turn images with labels, questions and answers, captions or options into fine-tuning and "
                  "evaluation files.\n\n"
                  "SOURCE: a built-in task (digits, shapes, icons, animals, counting, scene-vqa, scene-objects, "
                  "scene-exists, scene-caption), a Hugging Face dataset id (mnist, cifar10, cifar100 or "
                  "owner/name; online or cached), an image folder with one sub-folder per class, a CSV/JSONL "
                  "with 'image' and 'label' (or 'question' and 'answers', 'captions', 'options' and 'answer') "
                  "columns, or LLaVA's instruction JSON.\n\n"
                  "Example:  mfcli prepare scene-caption --out data/scene-caption")
def prepare(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Built-in task, dataset id, folder, or CSV/JSONL file.")],
    out: Out,
    limit: Annotated[Optional[int], typer.Option(help="Keep at most N examples: a --seed-ed sample of each split, "
                                                      "in proportion; never changes which are held out.")] = None,
    eval_fraction: Annotated[float, typer.Option(help="Held-out fraction for eval.jsonl (EMT: 0.2); held out by "
                                                      "the example's identity (docs/formats.md).")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="The --limit sample and the rows' order; never which "
                                                     "examples are held out.")] = 0,
    format: Annotated[str, typer.Option("--format", help="train.jsonl form: llava or sharegpt.")] = "llava",
    label_names: Annotated[Optional[str], typer.Option(help="JSON/CSV mapping raw labels to names.")] = None,
    prompt: Annotated[Optional[str], typer.Option(help="Custom EMT prompt; {labels} and {noun} are filled in.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Dataset split for hub ids (default train).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on a corrupt image instead of skipping it.")] = False,
    kind: Annotated[Optional[str], typer.Option(help="What the rows hold: classification, vqa, caption or choice "
                                                     "(default: from their fields).")] = None,
    image_field: Annotated[str, typer.Option(help="CSV/JSONL column of image paths.")] = "image",
    label_field: Annotated[str, typer.Option(help="CSV/JSONL column of labels.")] = "label",
    question_field: Annotated[Optional[str], typer.Option(help="Column of questions (default question).")] = None,
    answers_field: Annotated[Optional[str], typer.Option(help="Column of reference answers, or the correct option "
                                                              "(default answers, answer).")] = None,
    captions_field: Annotated[Optional[str], typer.Option(help="Column of reference captions (default captions, "
                                                               "caption, sentences).")] = None,
    options_field: Annotated[Optional[str], typer.Option(help="Column of options (default options, choices).")] = None,
):
    from mfcli.data.prepare import PrepareOptions, prepare as run
    from mfcli.data.qa import QaFields

    opts = PrepareOptions(limit=limit, eval_fraction=eval_fraction, seed=seed, format=format,
                          label_names=label_names, prompt=prompt, strict=strict, split=split, kind=kind,
                          fields=QaFields(question_field, answers_field, captions_field, options_field),
                          image_field=image_field, label_field=label_field)
    info = run(source, out, opts)
    n_train, n_eval = sum(info.counts["train"].values()), sum(info.counts["eval"].values())
    skipped = info.counts.get("skipped", 0)
    what = f"{len(info.labels)} labels" if info.kind == "classification" else info.kind
    print(f"{info.name}: {n_train} train, {n_eval} eval, {what}"
          + (f", {skipped} corrupt images skipped" if skipped else "") + f" -> {out}", file=sys.stderr)
    print(str(out))
