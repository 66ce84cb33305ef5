"""The `text` judge, for the `text` kind (a question asked without an image, kinds/text.py): an answer is
correct when it states a reference answer — equal to it, or naming it as whole words ("The capital of
France is Paris." for "Paris") — both normalised as VQA answers are (eval/metrics/vqa.py: case,
punctuation, articles, number words to digits). This is EMT's reading of "exact" (its classification
judge counts an answer that names the true label, not only one equal to it): a small instruction model
answers in sentences however it is asked, and equality alone scored the untouched SmolLM2 0 of 51 on
`facts` while it named the right answer in most (docs/results.md). Where a reference could appear in
its own question, an echo of the question would count; the built-in `facts` hold none such
(tests/test_smol.py)."""

from __future__ import annotations

import re

from mfcli.eval.judges.base import CORRECT, EMPTY, ERROR, WRONG, Item, Judgement
from mfcli.eval.judges.registry import register
from mfcli.eval.metrics.vqa import normalize


def states(answer: str, reference: str) -> bool:
    """Whether the (normalised) answer is the reference or names it as whole words."""
    a, r = normalize(answer), normalize(reference)
    return bool(r) and (a == r or re.search(rf"(?<!\w){re.escape(r)}(?!\w)", a) is not None)


class TextJudge:
    name = "text"
    kind = "text"
    metric = "exact_match"

    def judge(self, items: list[Item]) -> list[Judgement]:
        out = []
        for it in items:
            if not it.output.strip():
                out.append(Judgement(EMPTY, None, self.name, score=0.0))
                continue
            hit = next((r for r in it.references if states(it.output, r)), None)
            out.append(Judgement(CORRECT if hit else WRONG, normalize(hit) if hit else normalize(it.output),
                                 self.name, score=float(hit is not None)))
        return out


@register("text", summary="the answer states a reference answer (equal to it, or naming it as whole words); "
                          "a question asked without an image", kind="text", verdicts=(CORRECT, WRONG, EMPTY, ERROR))
def build(o, decisive: bool = True) -> TextJudge:
    return TextJudge()
