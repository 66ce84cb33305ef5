"""`choice`: an option letter, scored by which option the answer picks (the `choice` judge). The record's
`labels` are the options in letter order and its `references` the correct letter. Rows as ScienceQA /
MMBench lay them out (`question`, `options` or `choices`, `answer` as a letter, a 0-based index or the
option's text; MMBench's options may sit in columns `A`, `B`, …); asked in LLaVA-1.5's form."""

from __future__ import annotations

from collections.abc import Sequence

from mfcli.data import prompts
from mfcli.data.prompts import LETTERS
from mfcli.errors import MfcliError
from mfcli.kinds.base import (QaFields, QaRow, RecordKind, answer_field, field_name, first_field, given_or,
                              question_of, register, texts)

OPTION_FIELDS = ("options", "choices")


@register
class Choice(RecordKind):
    name = "choice"
    summary = "an option letter; `labels` are the options in letter order, `references` = [letter]"
    max_new_tokens = 16  # lmms-eval's cap for option letters
    detect_rank = 10  # first: a choice row also holds a question and an answer
    references = "the correct option letter"
    options = True

    def detect(self, row: dict, fields: QaFields) -> bool:
        return bool(first_field(row, given_or(fields.options, OPTION_FIELDS))) or \
            (not fields.options and len(letter_options(row)) >= 2)

    def parse_row(self, row: dict, fields: QaFields, where: str, csv: bool) -> QaRow:
        question = question_of(row, fields, where, self.name)
        aname = answer_field(row, fields, where, self.name)
        if not fields.options and not first_field(row, OPTION_FIELDS) and len(letter_options(row)) >= 2:
            options = letter_options(row)
        else:
            oname = field_name(row, fields.options, OPTION_FIELDS, where, self.name, "--options-field")
            options = texts(row[oname], where, "options", ("text", "option"), csv)
        return QaRow(question, (choice_letter(row[aname], options, where),), options)

    def check(self, references: tuple[str, ...], labels: tuple[str, ...], where: str) -> None:
        if len(labels) < 2:
            raise MfcliError(f"{where}: a choice record needs at least two options in 'labels'.",
                             "List the options in letter order under 'labels'.")
        letters = LETTERS[:len(labels)]
        if len(references) != 1 or references[0].strip().upper() not in letters:
            raise MfcliError(f"{where}: a choice record's 'references' must be one letter of {letters}, "
                             f"got {list(references)}.", "Give the correct option's letter, e.g. [\"B\"].")

    def prompt(self, question: str, options: tuple[str, ...], given: str, default: str) -> str:
        return prompts.choice_prompt(question, options)


def letter_options(row: dict) -> tuple[str, ...]:
    """MMBench's layout: the options in columns A, B, C, … (the first empty one ends them)."""
    out = []
    for letter in LETTERS:
        value = row.get(letter)
        if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
            break
        out.append(" ".join(str(value).split()))
    return tuple(out)


def choice_letter(answer, options: Sequence[str], where: str) -> str:
    """The correct option as a letter: given as a letter, a 0-based index (ScienceQA), or the text."""
    letters = LETTERS[:len(options)]
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options):
        return letters[answer]
    text = str(answer).strip()
    if len(text) == 1 and text.upper() in letters:
        return text.upper()
    if text.isdigit() and int(text) < len(options):
        return letters[int(text)]
    if text in options:
        return letters[list(options).index(text)]
    raise MfcliError(f"{where}: answer {answer!r} is none of the options' letters {letters} or texts.",
                     "Give the correct option as a letter, a 0-based index or its text.")
