"""`mfcli prepare`: images with labels, questions and answers, captions or options -> train.jsonl (LLaVA
or ShareGPT), eval.jsonl (EMT's prompt, or LLaVA-1.5's for the other kinds), val.jsonl (asked as
eval.jsonl is: the split to choose on), images/."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

from mfcli.data import prompts
from mfcli.data.prompts import IMAGE_TOKEN
from mfcli.data.options import PrepareOptions
from mfcli.data.sources import Example, Source, iter_loaded, open_source, read_label_names
from mfcli.data.splits import BUILTIN_EVAL_FRACTION, group_keys, held_out, limited, validation
from mfcli.errors import MfcliError, UsageError
from mfcli.io.checkpoint import staged_dir
from mfcli.io.jsonl import write_json_atomic, write_jsonl_atomic
from mfcli.io.records import DatasetInfo, EvalRecord, TrainRecord
from mfcli.kinds import kind_of


def _png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)  # PIL writes no timestamp: deterministic bytes
    return buf.getvalue()


def _classification_prompt(src: Source, labels: tuple[str, ...], opts: PrepareOptions) -> tuple[str, str]:
    for label in labels:
        if prompts.LABEL_SEPARATOR.strip() in label:
            raise MfcliError(f"label '{label}' contains the label separator ','.",
                             "Rename it (e.g. with --label-names), since EMT joins labels with ', '.")
    if len(set(labels)) != len(labels):
        raise MfcliError("two raw labels map to the same name.", "Fix the --label-names mapping.")
    noun = src.noun or prompts.noun_for(labels)
    prompt = (opts.prompt.format(labels=prompts.LABEL_SEPARATOR.join(labels), noun=noun)
              if opts.prompt else prompts.emt_prompt(labels, noun))
    return noun, prompt


def _records(src: Source, ex: Example, rid: str, rel: str, label: str, labels, noun: str, prompt: str,
             opts: PrepareOptions) -> tuple[EvalRecord, list[TrainRecord]]:
    """The evaluation record of an example and the training records it gives: EMT's turns for a labelled
    kind; else the kind's prompt and one record per training answer (a caption gives one per reference
    caption, with the id suffixed)."""
    kind = kind_of(src.kind)
    if kind.labelled:
        turns = ({"from": "human", "value": prompts.train_question(noun)},
                 {"from": "gpt", "value": prompts.train_answer(noun, label)})
        return (EvalRecord(rid, src.name, rel, label, labels, prompt, kind=kind.name),
                [TrainRecord(rid, rel, turns, src.name, label)])
    prompt = kind.prompt(ex.question, ex.options, opts.prompt or "", src.prompt)
    record = EvalRecord(rid, src.name, rel, ex.references[0], ex.options, prompt, kind=src.kind,
                        references=ex.references)
    # LLaVA's layout: the image first; a kind asked without an image has no placeholder
    human = {"from": "human", "value": f"{IMAGE_TOKEN}\n{prompt}" if kind.image else prompt}
    train = [TrainRecord(rid if k == 0 else f"{rid}-{k}", rel, (human, {"from": "gpt", "value": a}), src.name,
                         kind.train_label(a))
             for k, a in enumerate(kind.train_answers(ex.references))]
    return record, train


def _split(src: Source, opts: PrepareOptions) -> tuple[list[Example], dict[int, str]]:
    """The examples prepare keeps, in source order, and the split of each ("train", "eval", "val"):
    membership first, from the examples' identity (by image where several share one); --limit then
    samples within each split (data/splits.py)."""
    keys = group_keys([ex.key for ex in src.examples], [ex.image for ex in src.examples])
    mask = held_out(src.name, keys, [ex.split for ex in src.examples], opts.eval_fraction, src.builtin)
    val = validation(src.name, keys, mask, opts.val_fraction)
    train_idx, eval_idx, val_idx = limited(mask, opts.limit, opts.seed, val)
    split_of = {**{i: "train" for i in train_idx.tolist()}, **{i: "eval" for i in eval_idx.tolist()},
                **{i: "val" for i in val_idx.tolist()}}
    keep = sorted(split_of)
    return [src.examples[i] for i in keep], {n: split_of[i] for n, i in enumerate(keep)}


def prepare(source: str, out: str | Path, opts: PrepareOptions = PrepareOptions()) -> DatasetInfo:
    src = open_source(source, opts.split, kind=opts.kind, fields=opts.fields, image_field=opts.image_field,
                      label_field=opts.label_field)
    names = read_label_names(opts.label_names)
    rename = lambda label: names.get(label, label)  # noqa: E731
    labels = tuple(rename(x) for x in src.labels)
    kind = kind_of(src.kind)
    noun, prompt = _classification_prompt(src, labels, opts) if kind.labelled else ("", "")

    examples, split_of = _split(src, opts)  # held out by the source's own name: --task never moves the split
    if opts.task and opts.task != src.name:
        if src.builtin:
            raise UsageError(f"--task renames a task read from a folder, file or dataset; '{src.name}' is built in.",
                             "Drop --task: a built-in task keeps its name (its role and split depend on it).")
        src = replace(src, name=opts.task)
    if src.builtin and opts.eval_fraction > BUILTIN_EVAL_FRACTION:
        import sys
        print(f"warning: --eval-fraction {opts.eval_fraction} > {BUILTIN_EVAL_FRACTION} puts some of the built-in "
              f"models' training images of '{src.name}' into eval.jsonl.", file=sys.stderr)

    train_rows, eval_rows, val_rows = [], [], []
    counts = {"train": Counter(), "eval": Counter(), "val": Counter()}
    skipped: list[str] = []
    reasons: Counter = Counter()  # why images were skipped: missing files, unreadable ones
    with staged_dir(out) as tmp:
        (tmp / "images").mkdir()
        for i, (ex, image, err) in enumerate(iter_loaded(examples)):
            split = split_of[i]
            rid = f"{src.name}-{ex.key}"
            if err is not None:
                why = "missing" if err.startswith("FileNotFoundError") else "unreadable"
                if opts.strict:
                    raise MfcliError(f"{why} image for '{rid}': {err}", "Remove it, or drop --strict to skip.")
                skipped.append(rid)
                reasons[why] += 1
                continue
            rel = ""  # a kind asked without an image: its records name none
            if kind.image:
                rel = f"images/{rid}.png"
                (tmp / rel).write_bytes(_png_bytes(image))
            label = rename(ex.label) if kind.labelled else ex.label
            counts[split][kind.bucket(ex.question, label)] += 1  # per label, question form, …
            record, train = _records(src, ex, rid, rel, label, labels, noun, prompt, opts)
            if split == "eval":
                eval_rows.append(record.to_json())
            elif split == "val":  # asked exactly as the held-out split is asked
                val_rows.append(record.to_json())
            else:
                train_rows += [t.to_json(opts.format) for t in train]
        if not train_rows or not eval_rows:
            raise MfcliError(f"'{source}' gave too few readable images to split ({len(train_rows) + len(eval_rows)}).",
                             "Add images, or raise --eval-fraction / --limit.")
        # rows in a seeded random order, not grouped by label: `head -n` of either file (and any
        # consumer that takes the first N records) is then a fair sample of the classes
        import numpy as np

        rng = np.random.default_rng([opts.seed, 1])
        write_jsonl_atomic(tmp / "train.jsonl", [train_rows[i] for i in rng.permutation(len(train_rows))])
        write_jsonl_atomic(tmp / "eval.jsonl", [eval_rows[i] for i in rng.permutation(len(eval_rows))])
        if val_rows:
            write_jsonl_atomic(tmp / "val.jsonl", [val_rows[i] for i in rng.permutation(len(val_rows))])
        info = DatasetInfo(
            name=src.name, source=src.description, labels=labels, noun=noun,
            counts={"train": dict(sorted(counts["train"].items())), "eval": dict(sorted(counts["eval"].items())),
                    "val": dict(sorted(counts["val"].items())), "skipped": len(skipped), "skipped_ids": skipped, "skipped_why": dict(sorted(reasons.items()))},
            seed=opts.seed, eval_fraction=opts.eval_fraction, format=opts.format, role=src.role or None, prompt=prompt,
            kind=src.kind, val_fraction=opts.val_fraction if val_rows else 0.0)
        d = asdict(info)
        d["labels"] = list(labels)
        write_json_atomic(tmp / "dataset.json", d)
    return info
