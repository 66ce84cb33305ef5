"""`exact`: label-set-aware string matching (METHODS.md §1, EMT §4.2 taxonomy).

Where off_label begins: an answer that names exactly one label is judged on that label, *unless*
it adds more than MAX_EXTRA_WORDS (2) content words beyond the label and a fixed answer frame ("the
object in the image is a ..."). "The object in the image is a large black bird." keeps two extra
words and is correct; "a blue street sign says arkansas on it" adds blue, says, arkansas: extrinsic
hallucination (off_label), as in EMT Appendix C.4.4 (three extra words). Answers naming no label stay undecided
for a cascade's next stage, and judged off_label when exact stands alone — except an answer whose
only label mentions are negated ("This is definitely not a horse."): it claims no label, so it is
off_label at once and never reaches a similarity judge, which would find it close to "horse".
"""

from __future__ import annotations

from mfcli.kinds import CLASSIFICATION

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from mfcli.errors import MfcliError
from mfcli.eval.judges.base import EMPTY, MULTI_LABEL, OFF_LABEL, Item, Judgement, from_match
from mfcli.eval.labels import ARTICLES, label_pattern, mentions, tokens
from mfcli.eval.judges.registry import register
from mfcli.params import Param

MAX_EXTRA_WORDS = 2
# The frame of an answer: words that carry no claim about the image beyond "here is my answer".
FRAME = set(ARTICLES) | set(
    "n object objects number numbers image picture photo photograph in of is it this that there shows show "
    "showing depicts depicted contains answer i think believe would say likely probably appears to be "
    "single only one its it's s with on and".split())


def load_synonyms(path: str | None) -> dict[str, str]:
    """A JSON object {synonym: label}, e.g. {"aeroplane": "airplane", "plane": "airplane"}."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise MfcliError(f"synonyms file {p} not found.", "Give a JSON object mapping synonym to label.")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MfcliError(f"{p}: not valid JSON ({e.msg}).", "Give a JSON object mapping synonym to label.") from None
    if not isinstance(raw, dict):
        raise MfcliError(f"{p}: expected a JSON object {{synonym: label}}.", "Fix the file.")
    return {str(k): str(v) for k, v in raw.items()}


class ExactJudge:
    name = "exact"
    kind = CLASSIFICATION  # a label judge: EMT's classification records, right or wrong
    metric = "accuracy"

    def __init__(self, synonyms: dict[str, str] | None = None, *, decisive: bool = True):
        self.synonyms = synonyms or {}
        self.decisive = decisive  # alone: undecided answers become off_label; in a cascade: None

    def _mentions(self, output: str, labels: Sequence[str]) -> tuple[list[str], list[str]]:
        """(named, only negated), synonyms resolved to their labels, in label-set order."""
        syn = {s: l for s, l in self.synonyms.items() if l in labels}
        found, negated = mentions(output, list(labels) + list(syn))

        def resolve(xs):
            return sorted({syn.get(x, x) for x in xs}, key=list(labels).index)
        named = resolve(found)
        return named, [x for x in resolve(negated) if x not in named]

    def _extra_words(self, output: str, label: str) -> int:
        label_words = set().union(*label_pattern(label)) if label_pattern(label) else set()
        return sum(1 for t in tokens(output) if t not in FRAME and t not in label_words)

    def judge_one(self, item: Item) -> Judgement | None:
        if not item.output or not item.output.strip():
            return Judgement(EMPTY, None, self.name)
        names, negated = self._mentions(item.output, item.labels)
        if not names and negated:  # "not a horse": no label claimed, whatever a later stage would find
            return Judgement(OFF_LABEL, None, self.name, {"negated": negated})
        if len(names) > 1:
            return Judgement(MULTI_LABEL, None, self.name, {"named": names})
        if len(names) == 1:
            extra = self._extra_words(item.output, names[0])
            if extra > MAX_EXTRA_WORDS:
                return Judgement(OFF_LABEL, names[0], self.name, {"extra_words": extra})
            return from_match(names[0], item.label, self.name)
        return Judgement(OFF_LABEL, None, self.name) if self.decisive else None

    def judge(self, items: list[Item]) -> list[Judgement | None]:
        return [self.judge_one(i) for i in items]


@register("exact", summary="the label the answer names (EMT's matching rules)",
          options=(Param("synonyms", Optional[str], None, "JSON {synonym: label} for exact matching."),))
def build(o, decisive: bool = True) -> ExactJudge:
    return ExactJudge(load_synonyms(o.synonyms), decisive=decisive)
