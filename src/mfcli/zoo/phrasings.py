"""Varied phrasings of a classification instruction, for tiny's instruction tuning (recipe 4).

Why: a decoder pre-trained on one fixed question and one fixed label list per task learns the prompt's
*wording* as part of the task. Recipe 3 did: fine-tuned on `animals` through EMT's question it picked
the right animal 88 % of the time asked that question and 36 % asked the EMT prompt; with the 6
pre-trained shape words listed in the animals' place it read 79 %, with any 10 words 34-36 %
(docs/results-history.md, "Why animals stays low"). The papers' models were instruction-tuned on many
phrasings; so is tiny now. Every draw of a classification example picks one
phrasing at random:

- the question family — EMT's fine-tuning question (Appendix D.1), alone or followed by a neutral
  instruction of varying length;
- the list family — EMT's prompt (Appendix C.1) with the task's labels in their order, or (an `object`
  task) shuffled and mixed with up to MAX_DISTRACTORS other words, so the list is a constraint of any
  length, not the task's fingerprint. The true label is always in the list. A `number` task keeps its
  list verbatim: numbers come in order, and shuffled number lists taught tiny to copy from the list by
  position — fine-tuned on `counting` it then answered one less than it counted under the EMT prompt
  (44 % against 99.7 % asked the question; docs/results-history.md).

The answer is EMT's fine-tuning answer in every case. Evaluation keeps the verbatim EMT prompt.
"""

from __future__ import annotations

import numpy as np

from mfcli.data import prompts

FILLERS = (
    "Answer briefly.",
    "Look at the image carefully.",
    "Give a short answer.",
    "Name what you see.",
    "Answer in one sentence.",
    "Take a careful look at the picture before you answer the question.",
    "Please look at the whole image and then say what it shows in a single short sentence.",
)
MAX_DISTRACTORS = 6


class Phrasing:
    """A classification instruction drawn anew at every use: `phrasing(rng)` → prompt text."""

    def __init__(self, family: str, noun: str, labels: tuple[str, ...], pool: tuple[str, ...]):
        self.family, self.noun, self.labels, self.pool = family, noun, labels, pool

    def __call__(self, rng: np.random.Generator) -> str:
        if self.family == "question":
            if rng.random() < 0.5:
                return prompts.train_question(self.noun)
            filler = FILLERS[int(rng.integers(len(FILLERS)))]
            return f"What is the {self.noun} in the image? {filler} <image>"
        if not self.pool or rng.random() < 0.5:
            return prompts.emt_prompt(self.labels, self.noun)
        k = int(rng.integers(MAX_DISTRACTORS + 1))
        extra = [str(w) for w in rng.choice(self.pool, size=k, replace=False)] if k else []
        listed = [str(w) for w in rng.permutation(list(self.labels) + extra)]
        return prompts.emt_prompt(listed, self.noun)


def distractor_pool(noun: str, labels: tuple[str, ...], words: list[str], size: int = 1000) -> tuple[str, ...]:
    """Other words an `object` task's list may hold: common English words (the tokenizer's word list, most
    frequent first), never one of the task's labels. None for a `number` task: its list stays verbatim."""
    if noun == "number":
        return ()
    return tuple(w for w in words[:size] if w.isalpha() and w not in labels)
