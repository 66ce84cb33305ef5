"""The `vqa` judge: the official VQA accuracy of each answer against its reference answers
(eval/metrics/vqa.py)."""

from __future__ import annotations

from mfcli.eval.judges.base import CORRECT, EMPTY, ERROR, PARTIAL, WRONG, Item, Judgement
from mfcli.eval.metrics.vqa import normalize, vqa_accuracy
from mfcli.eval.judges.registry import register


class VqaJudge:
    name = "vqa"
    kind = "vqa"
    metric = "vqa_accuracy"

    def judge(self, items: list[Item]) -> list[Judgement]:
        out = []
        for it in items:
            if not it.output.strip():
                out.append(Judgement(EMPTY, None, self.name, score=0.0))
                continue
            acc = vqa_accuracy(it.output, it.references)
            verdict = CORRECT if acc >= 1.0 else (WRONG if acc == 0.0 else PARTIAL)
            out.append(Judgement(verdict, normalize(it.output), self.name, score=acc))
        return out


@register("vqa", summary="VQA accuracy against the reference answers", kind="vqa",
          verdicts=(CORRECT, PARTIAL, WRONG, EMPTY, ERROR))
def build(o, decisive: bool = True) -> VqaJudge:
    return VqaJudge()
