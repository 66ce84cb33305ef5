"""What a record kind is, and the registry the layers above read (docs/formats.md, "Record kinds").

A kind says what an evaluation record asks and so how its answer is scored: which fields the record
holds (a label set, `references`, options), how a row of public data is recognised and read into one,
what the model is asked and trained to answer, how long its answer may be, and whether it is scored
record by record or as one corpus per task. One module per kind registers a `RecordKind`; the metric
that scores it is a judge registered with `kind=` its name (eval/judges/registry.py).

A leaf: the kinds import only `errors`, `params` and the prompt texts (`data/prompts.py`), so
`io/records.py` can check records against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from mfcli.data.prompts import IMAGE_TOKEN
from mfcli.errors import MfcliError
from mfcli.params import option

LIST_SEPARATOR = "|"  # CSV cells hold a list as "a|b|c"
# Field names tried in order when the user names none (the public data sets' own column names)
QUESTION_FIELDS = ("question",)
ANSWER_FIELDS = ("answers", "answer")


@dataclass(frozen=True)
class QaFields:
    """Where a row keeps what; None = try the usual names of each kind's module."""

    question: str | None = option(None, "Column of questions (default question).", flags=("--question-field",))
    answers: str | None = option(None, "Column of reference answers, or the correct option (default answers, "
                                       "answer).", flags=("--answers-field",))
    captions: str | None = option(None, "Column of reference captions (default captions, caption, sentences).",
                                  flags=("--captions-field",))
    options: str | None = option(None, "Column of options (default options, choices).", flags=("--options-field",))


@dataclass(frozen=True)
class QaRow:
    """What a row of question-answering, caption or option data holds, read."""

    question: str  # "" for a caption row
    references: tuple[str, ...]  # answers, captions, or [letter] for choice
    options: tuple[str, ...] = ()


class RecordKind:
    """One record kind. Subclasses set the facts and override the hooks their kind needs; the defaults
    are a short-answer kind's (one question, reference answers, trained on the most frequent one)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for docs and help: what the answer is, what scores it
    max_new_tokens: ClassVar[int]  # emt's generation cap (lmms-eval's, where it has the kind)
    detect_rank: ClassVar[int] = 50  # detect_kind asks the kinds in this order (lowest first)
    references: ClassVar[str | None] = None  # what a record's `references` hold; None: it has none
    labelled: ClassVar[bool] = False  # one label of a label set, asked with EMT's prompt (classification)
    options: ClassVar[bool] = False  # the record's `labels` are its options, in letter order
    corpus: ClassVar[bool] = False  # scored per task as one corpus: a failed generation stays in it as ""
    from_conversations: ClassVar[bool] = False  # a LLaVA human/gpt pair can be one of its records
    image: ClassVar[bool] = True  # its records show the model an image; False: asked without one (`image` "")

    def detect(self, row: dict, fields: QaFields) -> bool:
        """Does a raw row (a CSV/JSONL line, or a hub dataset's column names) hold this kind?"""
        raise NotImplementedError

    def parse_row(self, row: dict, fields: QaFields, where: str, csv: bool) -> QaRow:
        """The row read; names `where` (file and line) when a field is missing or malformed."""
        raise NotImplementedError

    def check(self, references: tuple[str, ...], labels: tuple[str, ...], where: str) -> None:
        """What a record of this kind must satisfy beyond its fields being there."""

    def prompt(self, question: str, options: tuple[str, ...], given: str, default: str) -> str:
        """What the model is asked (evaluation and training alike). `given`: the user's --prompt; `default`:
        the source's own instruction (built-in caption tasks)."""
        raise NotImplementedError

    def train_answers(self, references: tuple[str, ...]) -> list[str]:
        """The training targets of one example: its most frequent reference (LLaVA-1.5 trains on VQAv2
        this way); ties go to the one given first."""
        return [max(references, key=lambda a: (references.count(a), -references.index(a)))]

    def train_label(self, answer: str) -> str:
        """The `label` a training record carries (the answer, unless the kind's answers are not labels)."""
        return answer

    def bucket(self, question: str, label: str) -> str:
        """What dataset.json counts an example under: per question form (its first word)."""
        return (question.split() or ["?"])[0].lower()


# in the order kinds are listed (help, errors, summaries); `detect_rank` orders detection
KINDS: dict[str, RecordKind] = {}


def register(cls: type[RecordKind]) -> type[RecordKind]:
    """Class decorator: register a record kind under its `name`; a second kind of one name, or a class
    that is not a RecordKind, is refused."""
    if not (isinstance(cls, type) and issubclass(cls, RecordKind)) or not getattr(cls, "name", ""):
        raise TypeError(f"record kind {cls!r}: register a named subclass of kinds.base.RecordKind")
    if KINDS.get(cls.name) is not None:
        raise ValueError(f"record kind '{cls.name}' is registered twice; give the new one another name")
    KINDS[cls.name] = cls()
    return cls


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def kind_of(name: str, where: str | None = None) -> RecordKind:
    """The registered kind `name`; `where` (file and line) names a record's bad kind, else it was --kind."""
    if name not in KINDS:
        what = f"{where}: unknown kind '{name}'." if where else f"unknown --kind '{name}'."
        raise MfcliError(what, f"Use one of {', '.join(KINDS)}.")
    return KINDS[name]


def detect_kind(row: dict, fields: QaFields) -> str:
    """What a raw row holds, from its fields: the first kind (by `detect_rank`) that recognises it."""
    for kind in sorted(KINDS.values(), key=lambda k: k.detect_rank):
        if kind.detect(row, fields):
            return kind.name
    raise MfcliError("a row no record kind recognises.", "Force one with --kind.")  # pragma: no cover


# ---- reading raw rows: shared by the kinds' parse_row ---------------------------------------------

def first_field(row: dict, names: Sequence[str]) -> str | None:
    """The first of `names` the row fills."""
    return next((n for n in names if n in row and row[n] not in (None, "", [])), None)


def given_or(given: str | None, names: Sequence[str]) -> Sequence[str]:
    """The field the user named, else the usual names."""
    return [given] if given else names


def field_name(row: dict, given: str | None, names: Sequence[str], where: str, what: str, flag: str) -> str:
    name = given if given else first_field(row, names)
    if name is None or name not in row or row[name] in (None, "", []):
        looked = f"'{given}'" if given else " / ".join(f"'{n}'" for n in names)
        raise MfcliError(f"{where}: a {what} row needs {looked}.", f"Add it, or name your column with {flag}.")
    return name


def texts(value, where: str, what: str, keys: tuple[str, ...], csv: bool) -> tuple[str, ...]:
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


def question_of(row: dict, fields: QaFields, where: str, kind: str) -> str:
    """A row's question, with any <image> placeholder taken out (mfcli puts the image first itself)."""
    name = field_name(row, fields.question, QUESTION_FIELDS, where, kind, "--question-field")
    return " ".join(str(row[name]).replace(IMAGE_TOKEN, " ").split())


def answer_field(row: dict, fields: QaFields, where: str, kind: str) -> str:
    return field_name(row, fields.answers, ANSWER_FIELDS, where, kind, "--answers-field")
