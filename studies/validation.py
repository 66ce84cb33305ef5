"""A validation split carved from a prepared task's *training* examples, for choosing a setting without
looking at the held-out split it is scored on (issue 26: the refined decorator's penalty μ).

    fit, val = carve(Path("runs/x/data/counting"), Path("runs/x/fit"), Path("runs/x/val-data"), n=300)

`fit/counting` is the prepared dir without the carved examples (fine-tune and calibrate on it);
`val-data/counting` asks the carved examples exactly as the held-out split asks its own (the same
prompt, labels and kind; VQA and caption references are the training answers of that image). Carved
by image, so every caption of an image goes to the same side; a seeded sample, balanced as the file is.
For a pre-trained task of tiny the carved examples are ones tiny was trained on: on them "kept"
measures how much of its training-set skill a model keeps, not held-out skill.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np

from mfcli.io.jsonl import iter_jsonl, write_jsonl_atomic
from mfcli.data.prompts import IMAGE_TOKEN
from mfcli.io.records import EvalRecord
from mfcli.kinds import CLASSIFICATION


def _question(turn: str) -> str:
    """The prompt of a human turn without LLaVA's image placeholder (prepare wrote `<image>\\n` first)."""
    return turn.replace(f"{IMAGE_TOKEN}\n", "", 1).strip()


def carve(prepared: Path, fit_root: Path, val_root: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """(fit dir, validation dir) for one prepared task; skipped when both exist."""
    fit, val = fit_root / prepared.name, val_root / prepared.name
    if fit.exists() and val.exists():
        return fit, val
    info = json.loads((prepared / "dataset.json").read_text())
    rows = [r for _, r in iter_jsonl(prepared / "train.jsonl")]
    images = sorted({r["image"] for r in rows})
    if n >= len(images):
        raise SystemExit(f"{prepared}: cannot carve {n} of {len(images)} training images")
    carved = {images[i] for i in np.random.default_rng([seed, 26]).permutation(len(images))[:n]}
    records, by_image = [], {}
    for r in rows:
        if r["image"] in carved:
            by_image.setdefault(r["image"], []).append(r)
    for image in sorted(by_image):
        first, kind = by_image[image][0], info.get("kind", CLASSIFICATION)
        answers = [r["conversations"][1]["value"] for r in by_image[image]]
        if kind == CLASSIFICATION:
            rec = EvalRecord(first["id"], info["name"], image, first["label"], tuple(info["labels"]), info["prompt"])
        else:
            rec = EvalRecord(first["id"], info["name"], image, answers[0], (),
                             _question(first["conversations"][0]["value"]), kind=kind, references=tuple(answers))
        records.append(rec.to_json())
    for d, train, evals in ((fit, [r for r in rows if r["image"] not in carved], None), (val, [], records)):
        tmp = d.with_name(d.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        os.symlink((prepared / "images").resolve(), tmp / "images")
        (tmp / "dataset.json").write_text((prepared / "dataset.json").read_text())
        if evals is None:  # the fit dir: its training records less the carved ones, the held-out split as it was
            write_jsonl_atomic(tmp / "train.jsonl", train)
            shutil.copy(prepared / "eval.jsonl", tmp / "eval.jsonl")
        else:
            write_jsonl_atomic(tmp / "eval.jsonl", evals)
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
    return fit, val
