"""Which labels of a label set does a free-text answer name? The core of the `exact` judge.

Matching is label-set aware: case, punctuation, articles, simple plurals, `_` vs space and digits vs
number words are ignored, and *every* label named is found, so a list of labels is recognised as
a list (EMT's intrinsic hallucination) rather than scored as a hit.

A negated mention is not a naming: "This is definitely not a horse." and "no cat here" name no
label, and "a dog, not a cat" names only dog. A mention is negated when the nearest word before it,
skipping articles and adverbs of degree or certainty, is a negation ("not", "no", "never", "nor",
"neither", "without", or the "t" of "n't"). Negation further away ("I don't think it is a horse")
is not read: that would need a parser, and a judge that guesses wrong there would hide hallucination.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                "fifteen sixteen seventeen eighteen nineteen twenty").split()
_WORD_TO_DIGIT = {w: str(i) for i, w in enumerate(NUMBER_WORDS)}
ARTICLES = {"a", "an", "the"}
NEGATIONS = {"not", "no", "never", "nor", "neither", "without", "t"}  # "t": the tokeniser splits "isn't" into isn, t
# words that may sit between a negation and the label it negates: "not really a cat", "definitely not a horse"
_BETWEEN = ARTICLES | set("definitely certainly really actually clearly exactly quite surely even just any likely "
                          "probably necessarily".split())
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens; number words become digits; `_`, `-` and punctuation split
    (anything outside [a-z0-9] separates tokens)."""
    return [_WORD_TO_DIGIT.get(t, t) for t in _TOKEN.findall(text.lower())]


def _forms(word: str) -> set[str]:
    """A label word and its simple plurals (cat/cats, bus/buses, butterfly/butterflies)."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("y") and len(word) > 2:
        forms.add(word[:-1] + "ies")
    return forms


def label_pattern(label: str) -> list[set[str]]:
    return [_forms(t) for t in tokens(label) if t not in ARTICLES] or [_forms(t) for t in tokens(label)]


def _negated(words: list[str], start: int) -> bool:
    i = start - 1
    while i >= 0 and words[i] in _BETWEEN:
        i -= 1
    return i >= 0 and words[i] in NEGATIONS


def mentions(answer: str, labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """(labels `answer` names, labels it mentions only under a negation), each in label-set order. A
    longer label that contains a shorter one ("aquarium fish" vs "fish") claims its words, so only the
    longer one counts — negated or not."""
    words = tokens(answer)
    patterns = sorted(((label, label_pattern(label)) for label in labels), key=lambda lp: -len(lp[1]))
    used = [False] * len(words)
    found: set[str] = set()
    negated: set[str] = set()
    for label, pattern in patterns:
        n = len(pattern)
        if n == 0:
            continue
        for i in range(len(words) - n + 1):
            if all(words[i + j] in pattern[j] for j in range(n)) and not any(used[i:i + n]):
                (negated if _negated(words, i) else found).add(label)
                for j in range(n):
                    used[i + j] = True
    return [lb for lb in labels if lb in found], [lb for lb in labels if lb in negated and lb not in found]


def named_labels(answer: str, labels: Sequence[str]) -> list[str]:
    """Labels of `labels` that `answer` names (not under a negation), in label-set order."""
    return mentions(answer, labels)[0]


def exact_correct(answer: str, label: str, labels: Sequence[str]) -> bool:
    """Correct only when the answer names exactly one label and it is the true one."""
    return named_labels(answer, labels) == [label]
