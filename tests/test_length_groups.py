"""tiny's training batches (zoo/tiny.py, `length_grouped_batches`): grouping by length must serve
the very examples it drew — none dropped, none twice — in full batches of similar length, and with one
group must be the plain uniform draw the earlier recipes trained on."""

from collections import Counter

import numpy as np

from mfcli.zoo.tiny import length_grouped_batches


class LengthEncoder:
    """`Encoder.encode`'s shape: (ids, labels), here as long as the prompt's words plus the answer."""

    def encode(self, prompt, answer):
        ids = tuple(range(len(prompt.split()) + 1))
        return ids, ids


def make_examples(n=40):
    # short and long prompts mixed, as a scene question and a label list are
    return [("t", i, " ".join(["w"] * (3 if i % 2 else 30 + i % 7)), str(i)) for i in range(n)]


def padded_tokens(batch):
    _, encoded = batch
    return max(len(ids) for ids, _ in encoded) * len(encoded)


def test_grouped_batches_serve_exactly_the_drawn_examples_in_full_batches_of_similar_length():
    examples, groups, size = make_examples(), 4, 8
    for seed in range(5):
        grouped = length_grouped_batches(examples, LengthEncoder(), size, groups, np.random.default_rng(seed))
        served = [next(grouped) for _ in range(groups)]
        # one group of the same size from the same generator state: the same examples, as drawn
        drawn, _ = next(length_grouped_batches(examples, LengthEncoder(), size * groups, 1,
                                               np.random.default_rng(seed)))
        assert all(len(picks) == size for picks, _ in served)
        assert Counter(e[1] for picks, _ in served for e in picks) == Counter(e[1] for e in drawn)
        for picks, encoded in served:  # each encoding belongs to its example
            assert [len(ids) for ids, _ in encoded] == [len(p.split()) + 1 for _, _, p, _ in picks]
        # sorted into groups: short prompts share batches, so padding falls well below an ungrouped draw
        ungrouped = [(drawn[k:k + size], [LengthEncoder().encode(p, a) for _, _, p, a in drawn[k:k + size]])
                     for k in range(0, len(drawn), size)]
        assert sum(map(padded_tokens, served)) < 0.8 * sum(map(padded_tokens, ungrouped))


def test_one_group_is_the_uniform_draw_with_a_prompt_drawn_per_use():
    examples = [("t", 0, lambda rng: " ".join(["w"] * int(rng.integers(1, 9))), "a")] + make_examples(3)
    rng, reference = np.random.default_rng(11), np.random.default_rng(11)
    picks, encoded = next(length_grouped_batches(examples, LengthEncoder(), 32, 1, rng))
    assert [e[1:] for e in picks] == [examples[int(i)][1:] for i in reference.integers(len(examples), size=32)]
    drawn = [len(ids) for (_, _, p, _), (ids, _) in zip(picks, encoded) if callable(p)]
    assert len(drawn) > 3 and len(set(drawn)) > 1  # a phrasing is drawn anew at each use, not once
