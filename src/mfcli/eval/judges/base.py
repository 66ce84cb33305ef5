"""What every judge returns, and the verdict vocabulary (EMT §4.2's failure taxonomy for labels; a
score for the other record kinds)."""

from __future__ import annotations

from dataclasses import dataclass

CORRECT = "correct"  # names the true label, and only it
WRONG_LABEL = "wrong_label"  # names one other label: an incorrect prediction
MULTI_LABEL = "multi_label"  # names several labels: intrinsic hallucination
OFF_LABEL = "off_label"  # names no label, or buries one in unverifiable extra content: extrinsic hallucination
EMPTY = "empty"  # says nothing
ERROR = "error"  # no answer to judge (the image could not be read, ...)
PARTIAL = "partial"  # vqa: some annotators gave the answer (0 < VQA accuracy < 1)
WRONG = "wrong"  # vqa: no annotator gave it
SCORED = "scored"  # caption: scored on a continuous scale (CIDEr-D), neither right nor wrong
VERDICTS = (CORRECT, WRONG_LABEL, MULTI_LABEL, OFF_LABEL, EMPTY, ERROR)  # classification and choice


@dataclass(frozen=True)
class Item:
    """One answer to judge."""

    output: str
    label: str
    labels: tuple[str, ...]  # classification: the label set; choice: the options
    task: str = ""
    kind: str = "classification"
    references: tuple[str, ...] = ()  # vqa answers, caption references, or the choice letter


@dataclass(frozen=True)
class Judgement:
    verdict: str
    matched: str | None  # the label the answer resolved to, if any
    stage: str  # which judge decided (cascade records its stages)
    detail: dict | None = None  # judge-specific evidence (margin, LLM reply, ...)
    score: float | None = None  # the record's score on its metric; None = 1 if correct else 0

    @property
    def correct(self) -> bool:
        return self.verdict == CORRECT

    @property
    def value(self) -> float:
        return float(self.correct) if self.score is None else self.score


def from_match(matched: str | None, label: str, stage: str, detail: dict | None = None) -> Judgement:
    if matched is None:
        return Judgement(OFF_LABEL, None, stage, detail)
    return Judgement(CORRECT if matched == label else WRONG_LABEL, matched, stage, detail)
