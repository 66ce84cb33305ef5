"""Rows of question-answering, captioning and multiple-choice data, as the public data sets lay them out,
turned into `Example`s: VQAv2 / OKVQA / VizWiz / TextVQA (`question`, `answers` as ten strings or ten
{"answer": …} dicts), GQA (`question`, one `answer`), Flickr30k / COCO Karpathy (`captions`, `caption`
or `sentences`, strings or {"raw": …} dicts), ScienceQA / MMBench (`question`, `options` or `choices`,
`answer` as a letter or an index; MMBench's options may sit in columns `A`, `B`, …), and LLaVA's
instruction JSON (`conversations`, one example per
human/gpt pair).

Every reader names the file and line of a row it cannot use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mfcli.errors import MfcliError
from mfcli.io.records import CAPTION, CHOICE, CLASSIFICATION, IMAGE_TOKEN, VQA
from mfcli.params import option

# Field names tried in order when the user names none (the public data sets' own column names)
QUESTION_FIELDS = ("question",)
ANSWER_FIELDS = ("answers", "answer")
CAPTION_FIELDS = ("captions", "caption", "sentences", "references")
OPTION_FIELDS = ("options", "choices")
LIST_SEPARATOR = "|"  # CSV cells hold a list as "a|b|c"


@dataclass(frozen=True)
class QaFields:
    """Where a row keeps what; None = try the usual names above."""

    question: str | None = option(None, "Column of questions (default question).", flags=("--question-field",))
    answers: str | None = option(None, "Column of reference answers, or the correct option (default answers, "
                                       "answer).", flags=("--answers-field",))
    captions: str | None = option(None, "Column of reference captions (default captions, caption, sentences).",
                                  flags=("--captions-field",))
    options: str | None = option(None, "Column of options (default options, choices).", flags=("--options-field",))


def _first(row: dict, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in row and row[n] not in (None, "", [])), None)


def _letter_options(row: dict) -> tuple[str, ...]:
    """MMBench's layout: the options in columns A, B, C, … (the first empty one ends them)."""
    from mfcli.eval.metrics.choice import LETTERS

    out = []
    for letter in LETTERS:
        value = row.get(letter)
        if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
            break
        out.append(" ".join(str(value).split()))
    return tuple(out)


def detect_kind(row: dict, fields: QaFields) -> str:
    """What a row holds, from its fields: options (or MMBench's A, B, … columns) → choice; captions →
    caption; question and answers → vqa; else a labelled image (classification)."""
    if _first(row, [fields.options] if fields.options else OPTION_FIELDS) or \
            (not fields.options and len(_letter_options(row)) >= 2):
        return CHOICE
    if _first(row, [fields.captions] if fields.captions else CAPTION_FIELDS):
        return CAPTION
    if _first(row, [fields.question] if fields.question else QUESTION_FIELDS) or \
            _first(row, [fields.answers] if fields.answers else ANSWER_FIELDS):
        return VQA
    return CLASSIFICATION


def _texts(value, where: str, what: str, keys: tuple[str, ...], csv: bool) -> tuple[str, ...]:
    """A list of strings from a list of strings, of dicts holding one of `keys`, or (CSV) "a|b"."""
    if isinstance(value, str):
        items = value.split(LIST_SEPARATOR) if csv else [value]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [str(value)]
    elif isinstance(value, list):
        items = []
        for v in value:
            if isinstance(v, dict):
                v = next((v[k] for k in keys if k in v), None)
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise MfcliError(f"{where}: {what} must be strings (or dicts with {' / '.join(map(repr, keys))}), "
                                 f"got {type(v).__name__}.", "See docs/formats.md for the accepted layouts.")
            items.append(str(v))
    else:
        raise MfcliError(f"{where}: {what} must be a list of strings, got {type(value).__name__}.",
                         "See docs/formats.md for the accepted layouts.")
    items = [" ".join(s.split()) for s in items]
    if not any(items):
        raise MfcliError(f"{where}: the {what} are empty.", f"Give every row at least one of its {what}.")
    return tuple(s for s in items if s)


def _field(row: dict, given: str | None, names: Sequence[str], where: str, what: str, flag: str) -> str:
    name = given if given else _first(row, names)
    if name is None or name not in row or row[name] in (None, "", []):
        looked = f"'{given}'" if given else " / ".join(f"'{n}'" for n in names)
        raise MfcliError(f"{where}: a {what} row needs {looked}.", f"Add it, or name your column with {flag}.")
    return name


@dataclass(frozen=True)
class QaRow:
    question: str  # "" for a caption row
    references: tuple[str, ...]  # answers, captions, or [letter] for choice
    options: tuple[str, ...] = ()


def parse_row(row: dict, kind: str, fields: QaFields, where: str, csv: bool = False) -> QaRow:
    if kind == CAPTION:
        name = _field(row, fields.captions, CAPTION_FIELDS, where, "caption", "--captions-field")
        return QaRow("", _texts(row[name], where, "reference captions", ("raw", "caption", "text"), csv))
    qname = _field(row, fields.question, QUESTION_FIELDS, where, kind, "--question-field")
    question = " ".join(str(row[qname]).replace(IMAGE_TOKEN, " ").split())
    aname = _field(row, fields.answers, ANSWER_FIELDS, where, kind, "--answers-field")
    if kind == VQA:
        return QaRow(question, _texts(row[aname], where, "reference answers", ("answer",), csv))
    if not fields.options and not _first(row, OPTION_FIELDS) and len(_letter_options(row)) >= 2:
        options = _letter_options(row)
    else:
        oname = _field(row, fields.options, OPTION_FIELDS, where, kind, "--options-field")
        options = _texts(row[oname], where, "options", ("text", "option"), csv)
    return QaRow(question, (choice_letter(row[aname], options, where),), options)


def choice_letter(answer, options: Sequence[str], where: str) -> str:
    """The correct option as a letter: given as a letter, a 0-based index (ScienceQA), or the text."""
    from mfcli.eval.metrics.choice import LETTERS

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


def llava_pairs(obj: dict, where: str) -> list[tuple[str, str]]:
    """LLaVA's instruction JSON: every human turn and the gpt answer after it, with <image> and LLaVA-1.5's
    short-answer suffix taken off the question (mfcli adds the suffix back for the vqa kind)."""
    from mfcli.data.prompts import VQA_SUFFIX

    turns = obj.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        raise MfcliError(f"{where}: a LLaVA record needs 'conversations' with a human and a gpt turn.",
                         "See docs/formats.md.")
    pairs = []
    for human, gpt in zip(turns[0::2], turns[1::2]):
        if not (isinstance(human, dict) and isinstance(gpt, dict)) or human.get("from") != "human" \
                or gpt.get("from") != "gpt":
            raise MfcliError(f"{where}: turns must alternate human and gpt.", "See docs/formats.md.")
        q = str(human.get("value", "")).replace(IMAGE_TOKEN, " ").replace(VQA_SUFFIX, " ")
        a = " ".join(str(gpt.get("value", "")).split())
        if not a:
            raise MfcliError(f"{where}: a gpt answer is empty.", "Give every question its answer.")
        pairs.append((" ".join(q.split()), a))
    return pairs
