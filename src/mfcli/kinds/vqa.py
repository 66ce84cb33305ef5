"""`vqa`: a short answer to a question, scored by VQA accuracy against the reference answers (the `vqa`
judge). Rows as VQAv2 / OKVQA / VizWiz / TextVQA lay them out (`question`, `answers` as ten strings or
ten {"answer": …} dicts) or GQA (`question`, one `answer`); asked in LLaVA-1.5's short-answer form."""

from __future__ import annotations

from mfcli.data import prompts
from mfcli.kinds.base import (ANSWER_FIELDS, QUESTION_FIELDS, QaFields, QaRow, RecordKind, answer_field,
                              first_field, given_or, question_of, register, texts)


@register
class Vqa(RecordKind):
    name = "vqa"
    summary = "a short answer; VQA accuracy against `references`"
    max_new_tokens = 16  # lmms-eval's cap for short answers
    detect_rank = 30  # after choice and caption, whose rows may also hold a question and an answer
    references = "reference answers"
    from_conversations = True

    def detect(self, row: dict, fields: QaFields) -> bool:
        return bool(first_field(row, given_or(fields.question, QUESTION_FIELDS))
                    or first_field(row, given_or(fields.answers, ANSWER_FIELDS)))

    def parse_row(self, row: dict, fields: QaFields, where: str, csv: bool) -> QaRow:
        question = question_of(row, fields, where, self.name)
        answers = row[answer_field(row, fields, where, self.name)]
        return QaRow(question, texts(answers, where, "reference answers", ("answer",), csv))

    def prompt(self, question: str, options: tuple[str, ...], given: str, default: str) -> str:
        return given.format(question=question) if given else prompts.vqa_prompt(question)
