"""tiny's varied classification phrasings (zoo/phrasings.py): what the pre-training sees must hold
EMT's own two forms verbatim, keep every label in a list, and vary the rest."""

import re

import numpy as np

from mfcli.data import prompts
from mfcli.zoo.phrasings import Phrasing, distractor_pool
from mfcli.zoo.vocab import english_words

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
DIGITS = tuple(str(i) for i in range(10))


def listed(prompt: str) -> list[str]:
    return re.search(r"a single \w+ in (.*)\.$", prompt).group(1).split(", ")


def test_list_family_keeps_every_label_and_mixes_in_other_words():
    pool = distractor_pool("object", SHAPES, english_words())
    phrasing, rng = Phrasing("list", "object", SHAPES, pool), np.random.default_rng(0)
    drawn = [phrasing(rng) for _ in range(400)]
    canonical = prompts.emt_prompt(SHAPES, "object")
    assert 0.35 < np.mean([p == canonical for p in drawn]) < 0.65  # EMT's prompt itself, about half the time
    lengths = set()
    for p in drawn:
        assert p.startswith("What is the object in the image? Please only answer a single object in ")
        words = listed(p)
        assert sorted(w for w in words if w in SHAPES) == sorted(SHAPES)  # every label, once
        assert all(w in pool for w in words if w not in SHAPES)
        lengths.add(len(words))
    assert lengths == set(range(len(SHAPES), len(SHAPES) + 7))  # 0 to 6 other words
    orders = {tuple(w for w in listed(p) if w in SHAPES) for p in drawn}
    assert len(orders) > 20  # shuffled, not only the task's order


def test_number_lists_stay_verbatim_and_object_distractors_are_never_labels():
    """Numbers come in order in every EMT prompt; a shuffled number list taught tiny a positional copy
    (after a fine-tune on `counting` it answered one less than it counted)."""
    assert distractor_pool("number", DIGITS, english_words()) == ()
    phrasing, rng = Phrasing("list", "number", DIGITS, ()), np.random.default_rng(2)
    assert {phrasing(rng) for _ in range(50)} == {prompts.emt_prompt(DIGITS, "number")}
    assert not set(distractor_pool("object", SHAPES, english_words())) & set(SHAPES)


def test_question_family_is_emts_question_alone_or_followed_by_an_instruction():
    phrasing, rng = Phrasing("question", "number", DIGITS, ()), np.random.default_rng(1)
    drawn = [phrasing(rng) for _ in range(300)]
    plain = prompts.train_question("number")
    assert 0.35 < np.mean([p == plain for p in drawn]) < 0.65
    assert all(p.startswith("What is the number in the image?") and p.endswith("<image>") for p in drawn)
    assert len(set(drawn)) > 4
    assert not any("Please only answer" in p for p in drawn)  # the list belongs to the other family


def test_same_seed_same_phrasings():
    a = Phrasing("list", "object", SHAPES, distractor_pool("object", SHAPES, english_words()))
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    assert [a(r1) for _ in range(20)] == [a(r2) for _ in range(20)]


def test_vqa_practice_repeats_the_pretrained_vqa_examples_and_nothing_else():
    """Recipe 5 draws scene-vqa's instruction examples `vqa_practice` times as often as another task's:
    each VQA example appears that many times, every other example once, targets never."""
    from types import SimpleNamespace

    from mfcli.data.scenes import QA
    from mfcli.data.tasks import PRETRAINED, TARGET
    from mfcli.kinds import CAPTION, CLASSIFICATION, VQA
    from mfcli.zoo.tiny import examples

    def task(role, kind, **kw):
        return SimpleNamespace(role=role, kind=kind, labels=("0", "1"), noun="number", prompt="Describe it.", **kw)

    data = SimpleNamespace(tasks={
        "vqa": dict(task=task(PRETRAINED, VQA), train=[0, 1], ids=[QA("How many?", ("1",)), QA("Which?", ("red",))]),
        "cap": dict(task=task(PRETRAINED, CAPTION), train=[0], ids=[QA("", ("a red circle",))]),
        "cls": dict(task=task(PRETRAINED, CLASSIFICATION), train=[0, 1], ids=[0, 1]),
        "exists": dict(task=task(TARGET, VQA), train=[0], ids=[QA("Is there?", ("yes",))]),
    })
    for practice in (1, 2, 3):
        got = examples(data, ("emt", "scene"), vqa_practice=practice)
        count = {name: sum(e[0] == name for e in got) for name in data.tasks}
        assert count == {"vqa": 2 * practice, "cap": 1, "cls": 2, "exists": 0}, (practice, count)
        vqa = sorted(e[1:] for e in got if e[0] == "vqa")
        want = [(0, prompts.vqa_prompt("How many?"), "1"), (1, prompts.vqa_prompt("Which?"), "red")]
        assert vqa == sorted(want * practice)
