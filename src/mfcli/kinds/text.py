"""`text`: a short answer to a question asked without an image, scored by exact match against the
reference answers (the `text` judge): what a language model knows on its own — capitals, opposites,
plurals, arithmetic — which fine-tuning an MLLM on images may destroy (issue 40; the built-in `facts`
task). Rows as a VQA row without an image (`question`, `answers` or `answer`); never detected from a
row (a question-and-answer row is `vqa` unless `--kind text` says otherwise). Asked in LLaVA-1.5's
short-answer form, with no image in the conversation."""

from __future__ import annotations

from mfcli.data import prompts
from mfcli.kinds.base import QaFields, QaRow, RecordKind, answer_field, question_of, register, texts


@register
class Text(RecordKind):
    name = "text"
    summary = "a short answer to a question asked without an image; exact match against `references`"
    max_new_tokens = 16  # lmms-eval's cap for short answers
    detect_rank = 90  # never detected (detect is False): chosen by --kind text or a built-in task
    references = "reference answers"
    image = False

    def detect(self, row: dict, fields: QaFields) -> bool:
        return False

    def parse_row(self, row: dict, fields: QaFields, where: str, csv: bool) -> QaRow:
        question = question_of(row, fields, where, self.name)
        answers = row[answer_field(row, fields, where, self.name)]
        return QaRow(question, texts(answers, where, "reference answers", ("answer",), csv))

    def bucket(self, question: str, label: str) -> str:
        """The question's form: the built-in facts' five (capital, opposite, plural, arithmetic), else its
        first word."""
        q = question.lower()
        for form, cue in (("capital", "the capital of"), ("opposite", "the opposite of"), ("plural", "the plural of")):
            if cue in q:
                return form
        if any(f" {op} " in q for op in ("plus", "minus", "times")):
            return "arithmetic"
        return super().bucket(question, label)

    def prompt(self, question: str, options: tuple[str, ...], given: str, default: str) -> str:
        return given.format(question=question) if given else prompts.vqa_prompt(question)
