"""`cascade` (the default): exact decides what it can; undecided answers go to embed, and to openai
only when it is configured (`--openai`). Each judgement records the stage that decided it."""

from __future__ import annotations

from mfcli.kinds import CLASSIFICATION

from mfcli.eval.judges.base import OFF_LABEL, Item, Judgement
from mfcli.eval.judges.registry import make_judge, register
from mfcli.params import Param


class CascadeJudge:
    name = "cascade"
    kind = CLASSIFICATION  # a label judge: EMT's classification records, right or wrong
    metric = "accuracy"

    def __init__(self, stages: list):
        self.stages = stages  # each returns None for what it cannot decide; the last one is decisive

    def judge(self, items: list[Item]) -> list[Judgement]:
        result: list[Judgement | None] = [None] * len(items)
        pending = list(range(len(items)))
        for stage in self.stages:
            if not pending:
                break
            got = stage.judge([items[i] for i in pending])
            for i, j in zip(pending, got):
                result[i] = j
            pending = [i for i in pending if result[i] is None]
        return [r if r is not None else Judgement(OFF_LABEL, None, "cascade") for r in result]


@register("cascade", summary="exact, then embed, then (with --openai) the openai judge on what is left",
          options=(Param("openai", bool, False, "cascade: send undecided answers to the openai judge.", ("--openai",)),))
def build(o, decisive: bool = True) -> CascadeJudge:
    stages = [make_judge("exact", o, decisive=False)]
    if o.openai:
        stages += [make_judge("embed", o, decisive=False), make_judge("openai", o)]
    else:
        stages += [make_judge("embed", o)]
    return CascadeJudge(stages)
