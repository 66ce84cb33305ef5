"""What every judge returns, and the verdict vocabulary (EMT §4.2's failure taxonomy)."""

from __future__ import annotations

from dataclasses import dataclass

CORRECT = "correct"  # names the true label, and only it
WRONG_LABEL = "wrong_label"  # names one other label: an incorrect prediction
MULTI_LABEL = "multi_label"  # names several labels: intrinsic hallucination
OFF_LABEL = "off_label"  # names no label, or buries one in unverifiable extra content: extrinsic hallucination
EMPTY = "empty"  # says nothing
ERROR = "error"  # no answer to judge (the image could not be read, ...)
VERDICTS = (CORRECT, WRONG_LABEL, MULTI_LABEL, OFF_LABEL, EMPTY, ERROR)


@dataclass(frozen=True)
class Item:
    """One answer to judge."""

    output: str
    label: str
    labels: tuple[str, ...]
    task: str = ""


@dataclass(frozen=True)
class Judgement:
    verdict: str
    matched: str | None  # the label the answer resolved to, if any
    stage: str  # which judge decided (cascade records its stages)
    detail: dict | None = None  # judge-specific evidence (margin, LLM reply, ...)

    @property
    def correct(self) -> bool:
        return self.verdict == CORRECT


UNDECIDED = None  # a stage of a cascade may return this for an item it cannot decide


def from_match(matched: str | None, label: str, stage: str, detail: dict | None = None) -> Judgement:
    if matched is None:
        return Judgement(OFF_LABEL, None, stage, detail)
    return Judgement(CORRECT if matched == label else WRONG_LABEL, matched, stage, detail)
