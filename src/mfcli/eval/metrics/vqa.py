"""VQA accuracy as the official VQA evaluator defines it (Antol et al. 2015; GT-Vision-Lab/VQA,
`vqaEval.py`), used by VQAv2, OKVQA, VizWiz and TextVQA.

An answer is normalised (punctuation, number words → digits, articles dropped, common contractions
spelled with their apostrophe), then

    acc = mean over the n leave-one-out subsets of the references of min(1, #matches in the subset / 3)

so with 10 references an answer given by 1, 2, 3 or ≥ 4 annotators scores 0.3, 0.6, 0.9 or 1.0. With
a single reference (GQA's shape) it is exact match after normalisation.

One departure, named: the official script normalises only when the references disagree, so with ten
identical references "Two" scores 0 against "2"; mfcli always normalises both sides (as lmms-eval
normalises every prediction).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# punctuation the official evaluator strips: a mark is replaced by a space ("black/white" → "black
# white"), but removed outright — everywhere in the answer — when that mark touches a space anywhere in
# the original answer, or the answer holds a number like "1,000" (its rule, quirks included:
# "black-white -" → "blackwhite")
_PUNCT = ";/[]\"{}()=+\\_-><@`,?!"
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_DECIMAL = re.compile(r"\.(?!\d)")  # "3.5" keeps its point
_NUMBER_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_NUMBER_WORDS["none"] = "0"
_ARTICLES = {"a", "an", "the"}
# answers typed without the apostrophe (the official table's common entries; spellings that are words
# themselves — ill, well, shed, its, … — are left alone)
_CONTRACTIONS = {w.replace("'", ""): w for w in (
    "ain't aren't can't could've couldn't didn't doesn't don't hadn't hasn't haven't he'd he'll he's how'd how'll "
    "how's i'd i'll i'm i've isn't it'd it'll let's ma'am mightn't might've mustn't must've needn't o'clock "
    "oughtn't shan't she'd she'll she's should've shouldn't that's there'd there's they'd they'll they're "
    "they've wasn't we'd we'll we're we've weren't what'll what're what's what've when's where'd where's "
    "who'd who'll who's who've why'll why're why's won't would've wouldn't y'all you'd you'll you're "
    "you've").split() if w.replace("'", "") not in {"hell", "id", "ill", "its", "shed", "shell", "wed", "well",
                                                      "were"}}


def normalize(answer: str) -> str:
    text = original = " ".join(answer.split())
    keep_tight = bool(_COMMA_IN_NUMBER.search(original))
    for p in _PUNCT:
        tight = keep_tight or (p + " ") in original or (" " + p) in original
        text = text.replace(p, "" if tight else " ")
    text = _PERIOD_NOT_DECIMAL.sub("", text)
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def vqa_accuracy(answer: str, references: Sequence[str]) -> float:
    """The official VQA accuracy of one answer against its reference answers, in [0, 1]."""
    if not references:
        raise ValueError("VQA accuracy needs at least one reference answer")
    ans = normalize(answer)
    refs = [normalize(r) for r in references]
    if len(refs) == 1:
        return float(ans == refs[0])
    hits = sum(r == ans for r in refs)
    # leaving out reference i leaves hits − [refs[i] == ans] matches among the others
    return sum(min(1.0, (hits - (r == ans)) / 3.0) for r in refs) / len(refs)
