"""The embed and clip judges' similarity floor: the least cosine between an answer and its nearest label
at which a judge may credit that label.

Without one, an answer that names no label at all ("The object is a(n) cross." asked for an animal)
lands nearest *some* label and, past the top-2 margin, is credited: EMT's point is to count such
answers as off-label. The floor is chosen per encoder on a labelled set of answers written for mfcli
(`floor_answers.json`: templates × labels, synonyms and outside objects over five label sets) — never on a
task's held-out records: the least floor at which no answer naming an outside object would be credited
by the judge's own rule (nearest label, top-2 margin, negation), plus 0.01. It is computed once per
encoder in a process (a few hundred short strings); `--floor` sets it by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SAFETY = 0.01  # above the highest outside answer's similarity: a new outside word sits a little higher


@dataclass(frozen=True)
class FloorItem:
    labels: tuple[str, ...]
    answer: str
    truth: str | None  # the label the answer names (directly or by a synonym); None: an outside object


def floor_items(path: Path | None = None) -> list[FloorItem]:
    spec = json.loads((path or Path(__file__).with_name("floor_answers.json")).read_text())
    items = []
    for s in spec["sets"]:
        labels = tuple(s["labels"])
        outside = [w for w in spec["outside"] if w not in labels and w not in s.get("not_outside", ())]
        for t in spec["templates"]:
            for label in labels:
                items.append(FloorItem(labels, t.format(label), label))
                items += [FloorItem(labels, t.format(word), label) for word in s.get("synonyms", {}).get(label, ())]
            items += [FloorItem(labels, t.format(word), None) for word in outside]
    return items


@dataclass(frozen=True)
class Calibration:
    floor: float
    outside_max: float  # the highest similarity an outside answer would have been credited at
    on_label_kept: float  # share of the answers naming a label (or a synonym) still judged at this floor
    n_outside: int
    n_on_label: int


def calibrate(judge, items: list[FloorItem] | None = None) -> Calibration:
    """The floor for `judge`'s encoder and label phrasing (an EmbedJudge; its own margin rule applies)."""
    items = items or floor_items()
    scored = judge.nearest(items)  # (best label, similarity, passes the margin and negation rule)
    outside = [sim for item, (best, sim, ok) in zip(items, scored) if item.truth is None and ok]
    outside_max = max(outside, default=0.0)
    floor = round(outside_max + SAFETY, 4)
    on = [(item, s) for item, s in zip(items, scored) if item.truth is not None]
    kept = sum(1 for item, (best, sim, ok) in on if ok and sim >= floor and best == item.truth)
    return Calibration(floor, round(outside_max, 4), kept / len(on), len(items) - len(on), len(on))


_CALIBRATED: dict[str, Calibration] = {}


def floor_for(judge) -> Calibration:
    """The calibration of `judge`'s encoder and phrasing, computed once per encoder in a process."""
    if judge.encoder_key not in _CALIBRATED:
        _CALIBRATED[judge.encoder_key] = calibrate(judge)
    return _CALIBRATED[judge.encoder_key]
