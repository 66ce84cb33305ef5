"""`classification`: one label of the record's label set, asked with EMT's prompt (EMT Appendix C.1)
and judged by a label judge (exact, embed, clip, openai, cascade). Its rows are labelled images, which
the sources read themselves (a folder per class, a label column), so it recognises any row the other
kinds do not."""

from __future__ import annotations

from mfcli.kinds.base import QaFields, RecordKind, register


@register
class Classification(RecordKind):
    name = "classification"
    summary = "one label of `labels` (EMT); judged by a label judge: exact, embed, clip, openai or cascade"
    max_new_tokens = 32  # EMT's answers are one short sentence ("The object is a(n) cat.")
    detect_rank = 100  # the fallback: a row with none of the other kinds' fields is a labelled image
    labelled = True

    def detect(self, row: dict, fields: QaFields) -> bool:
        return True

    def train_answers(self, references: tuple[str, ...]) -> list[str]:  # pragma: no cover - EMT's turns instead
        raise TypeError("classification trains on EMT's question and answer turns (data/prepare.py)")

    def bucket(self, question: str, label: str) -> str:
        return label
