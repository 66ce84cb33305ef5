"""The one error type mfcli raises for bad input: what is wrong, then what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MfcliError(Exception):
    """A user-facing error. The CLI prints `error: {what} {remedy}` on one line and exits 1."""

    def __init__(self, what: str, remedy: str = "", *, exit_code: int = 1):
        self.what = what.rstrip()
        self.remedy = remedy.strip()
        self.exit_code = exit_code
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.what if not self.remedy else f"{self.what.rstrip('.')}. {self.remedy}"
        return " ".join(text.split())  # never more than one line


class UsageError(MfcliError):
    """Bad combination of options: exit code 2, like click's own usage errors."""

    def __init__(self, what: str, remedy: str = ""):
        super().__init__(what, remedy, exit_code=2)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'Did you mean 'x'?' for the nearest known name, or a list of what exists."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"Did you mean '{close[0]}'? Known: {', '.join(choices)}."
    return f"Known: {', '.join(choices)}."
