"""VQA accuracy and multiple-choice matching against the benchmarks' own definitions."""

import pytest

from mfcli.eval.metrics.choice import choice_correct, picked
from mfcli.eval.metrics.vqa import normalize, vqa_accuracy


@pytest.mark.parametrize("annotators, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_vqa_accuracy_is_the_official_leave_one_out_ladder(annotators, expected):
    """VQA (Antol et al.): with 10 human answers, an answer given by 1, 2, 3, ≥ 4 of them scores
    0.3, 0.6, 0.9, 1 — min(1, matches/3) averaged over the 10 subsets of 9."""
    refs = ["yes"] * annotators + ["no"] * (10 - annotators)
    assert vqa_accuracy("yes", refs) == pytest.approx(expected)


@pytest.mark.parametrize("raw, normal", [
    ("Two.", "2"), ("the dog", "dog"), ("A red-and-white sign", "red and white sign"), ("black/white", "black white"),
    ("1,000", "1000"), ("3.5", "3.5"), ("yes!", "yes"), ("dont", "don't"), ("Ill", "ill"), ("  Yes \n", "yes"),
    # the official rule, per mark: removed outright wherever it is once it touches a space in the answer
    ("black-white -", "blackwhite"), ("black- white-ish", "black whiteish"), ("black-white", "black white"),
    ("x/-y", "x y"),
    ("1,000 red-white", "1000 redwhite"),
])
def test_vqa_normalisation(raw, normal):
    assert normalize(raw) == normal


def test_vqa_single_reference_is_exact_match_after_normalisation():
    assert vqa_accuracy("Two", ["2"]) == 1.0 and vqa_accuracy("three", ["2"]) == 0.0
    assert vqa_accuracy("The cat.", ["cat"] * 10) == 1.0  # always normalised (the official script would not)
    with pytest.raises(ValueError, match="^VQA accuracy needs at least one reference answer$"):
        vqa_accuracy("x", [])


OPTIONS = ["cat", "dog", "horse", "cow", "pig", "hen", "fox", "owl", "yak"]


@pytest.mark.parametrize("answer, index", [
    ("B", 1), ("(B)", 1), ("B.", 1), ("B) dog", 1), ("Answer: C", 2), ("The answer is A.", 0), ("Option B is right", 1),
    ("(c) horse", 2), ("a", 0),
    ("dog", 1), ("a dog", 1), ("A cat.", 0),  # option text; "A" here is an article
    ("I think it is a dog", 1),  # "I" is a pronoun, not option I
    ("It is a horse, not a cat.", 2),  # the negated option is not picked
    ("cat or dog", None), ("J", None), ("", None),
])
def test_choice_picks_the_letter_or_the_one_option_named(answer, index):
    assert picked(answer, OPTIONS) == index


def test_choice_correct_compares_letters():
    assert choice_correct("(b)", OPTIONS, "B") and choice_correct("dog", OPTIONS, " b ")
    assert not choice_correct("cat", OPTIONS, "B") and not choice_correct("no idea", OPTIONS, "B")
