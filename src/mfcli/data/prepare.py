"""`mfcli prepare`: labelled images -> train.jsonl (LLaVA or ShareGPT), eval.jsonl (EMT), images/."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from mfcli.data import prompts
from mfcli.data.sources import iter_loaded, open_source, read_label_names
from mfcli.data.tasks import split_indices
from mfcli.errors import MfcliError, UsageError
from mfcli.io.checkpoint import staged_dir
from mfcli.io.jsonl import write_json_atomic, write_jsonl_atomic
from mfcli.io.records import DatasetInfo, EvalRecord, TrainRecord


@dataclass(frozen=True)
class PrepareOptions:
    limit: int | None = None  # keep at most this many examples (a seeded sample), for quick runs
    eval_fraction: float = 0.2  # EMT evaluates on 20 % randomly selected samples (Appendix D.1)
    seed: int = 0  # same inputs and seed => byte-identical outputs
    format: str = "llava"  # train.jsonl form: "llava" (conversations) or "sharegpt" (messages/images)
    label_names: str | None = None  # JSON/CSV mapping raw labels to readable names (miniImageNet wnids)
    prompt: str | None = None  # override the EMT prompt; "{labels}" and "{noun}" are filled in
    strict: bool = False  # a corrupt image is fatal instead of skipped and counted
    split: str | None = None  # dataset split for hub ids

    def __post_init__(self):
        if not 0.0 < self.eval_fraction < 1.0:
            raise UsageError(f"--eval-fraction must be in (0, 1), got {self.eval_fraction}.")
        if self.format not in ("llava", "sharegpt"):
            raise UsageError(f"--format must be 'llava' or 'sharegpt', got '{self.format}'.")
        if self.limit is not None and self.limit < 2:
            raise UsageError(f"--limit must be at least 2, got {self.limit}.")


def _png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)  # PIL writes no timestamp: deterministic bytes
    return buf.getvalue()


def prepare(source: str, out: str | Path, opts: PrepareOptions = PrepareOptions()) -> DatasetInfo:
    src = open_source(source, opts.split)
    names = read_label_names(opts.label_names)
    rename = lambda label: names.get(label, label)  # noqa: E731
    labels = tuple(rename(x) for x in src.labels)
    for label in labels:
        if prompts.LABEL_SEPARATOR.strip() in label:
            raise MfcliError(f"label '{label}' contains the label separator ','.",
                             "Rename it (e.g. with --label-names), since EMT joins labels with ', '.")
    if len(set(labels)) != len(labels):
        raise MfcliError("two raw labels map to the same name.", "Fix the --label-names mapping.")
    noun = src.noun or prompts.noun_for(labels)
    prompt = (opts.prompt.format(labels=prompts.LABEL_SEPARATOR.join(labels), noun=noun)
              if opts.prompt else prompts.emt_prompt(labels, noun))

    examples = src.examples
    if opts.limit is not None and opts.limit < len(examples):
        import numpy as np
        keep = np.sort(np.random.default_rng(opts.seed).permutation(len(examples))[: opts.limit])
        examples = [examples[i] for i in keep]
    train_idx, eval_idx = split_indices(len(examples), opts.eval_fraction, opts.seed)
    is_eval = set(eval_idx.tolist())

    train_rows, eval_rows = [], []
    counts = {"train": Counter(), "eval": Counter()}
    skipped: list[str] = []
    with staged_dir(out) as tmp:
        (tmp / "images").mkdir()
        for i, (ex, image, err) in enumerate(iter_loaded(examples)):
            split = "eval" if i in is_eval else "train"
            rid = f"{src.name}-{ex.key}"
            if err is not None:
                if opts.strict:
                    raise MfcliError(f"corrupt image for '{rid}': {err}", "Remove it, or drop --strict to skip.")
                skipped.append(rid)
                continue
            rel = f"images/{rid}.png"
            (tmp / rel).write_bytes(_png_bytes(image))
            label = rename(ex.label)
            counts[split][label] += 1
            if split == "eval":
                eval_rows.append(EvalRecord(rid, src.name, rel, label, labels, prompt).to_json())
            else:
                turns = ({"from": "human", "value": prompts.train_question(noun)},
                         {"from": "gpt", "value": prompts.train_answer(noun, label)})
                train_rows.append(TrainRecord(rid, rel, turns, src.name, label).to_json(opts.format))
        if not train_rows or not eval_rows:
            raise MfcliError(f"'{source}' gave too few readable images to split ({len(train_rows) + len(eval_rows)}).",
                             "Add images, or raise --eval-fraction / --limit.")
        # rows in a seeded random order, not grouped by label: `head -n` of either file (and any
        # consumer that takes the first N records) is then a fair sample of the classes
        import numpy as np

        rng = np.random.default_rng([opts.seed, 1])
        write_jsonl_atomic(tmp / "train.jsonl", [train_rows[i] for i in rng.permutation(len(train_rows))])
        write_jsonl_atomic(tmp / "eval.jsonl", [eval_rows[i] for i in rng.permutation(len(eval_rows))])
        info = DatasetInfo(
            name=src.name, source=src.description, labels=labels, noun=noun,
            counts={"train": dict(sorted(counts["train"].items())), "eval": dict(sorted(counts["eval"].items())),
                    "skipped": len(skipped), "skipped_ids": skipped},
            seed=opts.seed, eval_fraction=opts.eval_fraction, format=opts.format, role=src.role, prompt=prompt)
        d = asdict(info)
        d["labels"] = list(labels)
        write_json_atomic(tmp / "dataset.json", d)
    return info
