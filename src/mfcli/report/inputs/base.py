"""What every report input reader shares: the input as found on disk (`Found`, which reads a file's
JSON or first JSONL record once, for every reader that asks), the contract a reader declares
(`ReportInput`) and the registry `read_input` walks (`register`). A leaf of report/inputs/.

A reader is two functions: `claims(found)`, cheap (a name, an extension, the first record), and
`read(found, results)`, which adds rows, models, ranks, logs or watches to the `Results`. The first
registered reader that claims an input reads it, so the order of registration is the order of
precedence (report/inputs/__init__.py decides it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.jsonl import iter_jsonl
from mfcli.report.results import Results


@dataclass
class Found:
    """One INPUT of `mfcli report`: a path that exists, read lazily and at most once."""

    spec: str
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.spec)

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    @cached_property
    def json(self) -> object:
        """A .json file's content (None for anything else)."""
        if not (self.path.is_file() and self.suffix == ".json"):
            return None
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise MfcliError(f"{self.path}:{e.lineno}: not valid JSON ({e.msg}).",
                             "Re-create the file, or pass another one.") from None

    @cached_property
    def first(self) -> dict:
        """A .jsonl file's first record ({} for an empty file or anything else)."""
        if not (self.path.is_file() and self.suffix == ".jsonl"):
            return {}

        return next((obj for _, obj in iter_jsonl(self.path)), {})

    @property
    def schema(self) -> str | None:
        """The schema tag the file declares (a JSON object's, or the first JSONL record's)."""
        obj = self.json if self.suffix == ".json" else self.first
        tag = obj.get("schema") if isinstance(obj, dict) else None
        return str(tag) if tag is not None else None


@dataclass(frozen=True)
class ReportInput:
    """A registered input format: its name, what it claims, how it reads, the schema tags it reads (an
    mfcli-tagged file whose tag no reader declares is refused by name) and a line for docs and errors."""

    name: str
    claims: Callable[[Found], bool]
    read: Callable[[Found, Results], None]
    summary: str
    schemas: tuple[str, ...] = ()


# in the order `read_input` asks them: the first reader that claims an input reads it
INPUTS: dict[str, ReportInput] = {}


def register(name: str, *, claims: Callable[[Found], bool], summary: str, schemas: tuple[str, ...] = ()):
    """Decorate a `read(found, results)` function as the reader of one input format."""
    if not callable(claims):
        raise TypeError(f"report input '{name}': claims must be a function of the input")

    def wrap(read: Callable[[Found, Results], None]) -> Callable[[Found, Results], None]:
        if INPUTS.get(name) is not None:
            raise ValueError(f"report input '{name}' is registered twice; give the new reader another name")
        if not callable(read):
            raise TypeError(f"report input '{name}': read must be a function of (input, results)")
        INPUTS[name] = ReportInput(name, claims, read, summary, tuple(schemas))
        return read

    return wrap


def reported_schemas() -> tuple[str, ...]:
    return tuple(s for r in INPUTS.values() for s in r.schemas)
