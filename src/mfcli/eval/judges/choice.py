"""The `choice` judge: which option a free-text answer picks (eval/metrics/choice.py), right or wrong."""

from __future__ import annotations

from mfcli.eval.judges.base import CORRECT, EMPTY, OFF_LABEL, WRONG_LABEL, Item, Judgement
from mfcli.eval.metrics.choice import LETTERS, picked
from mfcli.eval.judges.registry import register


class ChoiceJudge:
    name = "choice"
    kind = "choice"
    metric = "accuracy"

    def judge(self, items: list[Item]) -> list[Judgement]:
        out = []
        for it in items:
            if not it.output.strip():
                out.append(Judgement(EMPTY, None, self.name))
                continue
            k = picked(it.output, it.labels)
            if k is None:  # neither a letter nor exactly one option's text
                out.append(Judgement(OFF_LABEL, None, self.name))
            else:
                right = LETTERS[k] == it.references[0].strip().upper()
                out.append(Judgement(CORRECT if right else WRONG_LABEL, LETTERS[k], self.name))
        return out


@register("choice", summary="the option letter the answer picks", kind="choice")
def build(o, decisive: bool = True) -> ChoiceJudge:
    return ChoiceJudge()
