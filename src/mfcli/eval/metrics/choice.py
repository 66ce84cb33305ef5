"""Multiple-choice answers (ScienceQA / MMBench shape: a question, options A, B, C…, one correct
letter): which option does a free-text answer pick?

An answer picks option k when it is the letter itself ("B", "(B)", "B.", "B) a cat", "Answer: B",
"The answer is B.") or, failing that, names exactly one option's text and no other (the label
matcher of the `exact` judge, negation included). Anything else picks nothing and is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mfcli.data.prompts import LETTERS
from mfcli.eval.labels import named_labels

# "B", "(B)", "B)", "B.", "B:" at the start — but not "A cat" or "I think", where the letter is a word
_BARE = re.compile(r"^\s*\(?([A-Z])(?:\)|[.:,]|\s*$)", re.IGNORECASE)
# "The answer is B", "Answer: (B)", "Option B"
_AFTER = re.compile(r"^\s*(?:the\s+(?:correct\s+)?answer\s+is|answer\s*:|option)\s*\(?([A-Z])\b", re.IGNORECASE)


def picked(answer: str, options: Sequence[str]) -> int | None:
    """The index of the option the answer picks, or None."""
    answer = answer or ""
    m = _BARE.match(answer) or _AFTER.match(answer)
    if m and m.group(1).upper() in LETTERS[:len(options)]:
        return LETTERS.index(m.group(1).upper())
    named = named_labels(answer, list(options))
    return list(options).index(named[0]) if len(named) == 1 else None


def choice_correct(answer: str, options: Sequence[str], correct: str) -> bool:
    """`correct` is the right option's letter."""
    k = picked(answer, options)
    return k is not None and LETTERS[k] == correct.strip().upper()
