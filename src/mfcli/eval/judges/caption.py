"""The `caption` judge: CIDEr-D of each caption within its task's corpus (eval/metrics/caption.py).

CIDEr's document frequencies come from all the references being evaluated together, so records are
scored task by task, never one by one; the task's CIDEr is the mean of its records' scores. BLEU-4 and
ROUGE-L of the same corpus go into the summary (`corpus`)."""

from __future__ import annotations

from mfcli.eval.judges.base import EMPTY, ERROR, SCORED, Item, Judgement
from mfcli.eval.metrics.caption import caption_scores
from mfcli.eval.judges.registry import register


class CaptionJudge:
    name = "caption"
    kind = "caption"
    metric = "cider"

    def judge(self, items: list[Item]) -> list[Judgement]:
        by_task: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            by_task.setdefault(it.task, []).append(i)
        out: list[Judgement | None] = [None] * len(items)
        for task, idx in by_task.items():
            s = caption_scores([items[i].output for i in idx], [items[i].references for i in idx])
            for i, cider, rouge in zip(idx, s["cider_each"], s["rouge_l_each"]):
                verdict = EMPTY if not items[i].output.strip() else SCORED
                out[i] = Judgement(verdict, None, self.name, {"rouge_l": rouge}, score=cider)
        return out  # type: ignore[return-value]

    def corpus(self, outputs: list[str], references: list[list[str]]) -> dict:
        """One task's corpus figures for its summary: CIDEr-D, BLEU-4, ROUGE-L."""
        s = caption_scores(outputs, references)
        return {k: s[k] for k in ("cider", "bleu4", "rouge_l")}


@register("caption", summary="CIDEr-D (with BLEU-4, ROUGE-L) against the reference captions", kind="caption",
          verdicts=(SCORED, EMPTY, ERROR))
def build(o, decisive: bool = True) -> CaptionJudge:
    return CaptionJudge()
