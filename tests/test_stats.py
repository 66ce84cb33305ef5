"""The report's figures against hand-computed values and the papers' own numbers."""

import math

import pytest
import torch

from mfcli.analysis.erank import effective_rank, effective_rank_from_sigma, singular_values
from mfcli.forgetting import h_score, h_score_mdgd, percent_scale
from mfcli.report.stats import backward_transfer, mcnemar_exact, wilson


def test_h_score_matches_model_tailor_table_4():
    assert h_score([92.94], [94.40]) == pytest.approx(93.67, abs=0.01)  # InstructBLIP "After Decoration" (rounded inputs)


def test_h_score_is_the_harmonic_mean_of_group_averages():
    # origin avg (90 + 60) / 2 = 75, target avg (20 + 40) / 2 = 30: H = 2·75·30 / 105 = 42.857…
    # (the arithmetic mean would be 52.5; the harmonic mean of the four scores 38.4)
    assert h_score([90.0, 60.0], [20.0, 40.0]) == pytest.approx(4500 / 105)
    assert h_score([80.0, 80.0, 80.0], [10.0]) == pytest.approx(1600 / 90)
    assert h_score([0.0], [0.0]) == 0.0


def test_wilson_interval():
    lo, hi = wilson(81, 263)  # Wilson (1927) worked example as commonly quoted: 0.2553 … 0.3662
    assert (lo, hi) == pytest.approx((0.2553, 0.3662), abs=2e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # all 6 discordant pairs one way
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)  # 0.109375
    assert mcnemar_exact(8, 2) == mcnemar_exact(2, 8)
    assert mcnemar_exact(5, 5) == 1.0


def test_backward_transfer():
    acc = {(1, "a"): 90.0, (2, "a"): 70.0, (2, "b"): 80.0, (3, "a"): 60.0, (3, "b"): 50.0, (3, "c"): 85.0}
    assert backward_transfer(acc, ["a", "b", "c"]) == pytest.approx(((60 - 90) + (50 - 80)) / 2)


def test_effective_rank_hand_cases():
    assert effective_rank(torch.eye(7)) == pytest.approx(7.0)
    assert effective_rank(torch.eye(5) * 3.0) == pytest.approx(5.0)  # scale-free
    u, v = torch.randn(40, 1, dtype=torch.float64), torch.randn(1, 9, dtype=torch.float64)
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)
    # σ = (3, 1): p = (¾, ¼), erank = exp(−¾ln¾ − ¼ln¼) = 1.7548…  (σ, not σ²: with σ², 1.384)
    Z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert effective_rank(Z) == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    # no centring: a constant offset is a direction of its own
    assert effective_rank(torch.ones(10, 4)) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank_from_sigma(torch.zeros(3)) == 0.0


def test_singular_values_match_svd_both_orientations():
    g = torch.Generator().manual_seed(0)
    for shape in ((50, 8), (8, 50)):
        Z = torch.randn(*shape, generator=g, dtype=torch.float64)
        assert torch.allclose(singular_values(Z), torch.linalg.svdvals(Z), atol=1e-8)


def test_backward_transfer_uses_every_earlier_task_and_skips_missing_cells():
    # mutation run survivors: the task slice, the `and` of the two lookups, which row is "after
    # learning task i", and the empty case
    acc = {(1, "a"): 90.0, (2, "a"): 70.0, (2, "b"): 80.0, (3, "a"): 60.0, (3, "b"): 40.0, (3, "c"): 85.0}
    assert backward_transfer(acc, ["a", "b", "c"]) == pytest.approx(((60 - 90) + (40 - 80)) / 2)
    no_r2a = {k: v for k, v in acc.items() if k != (2, "a")}  # R[i+1, t_i] is what counts, not R[i+2, t_i]
    assert backward_transfer(no_r2a, ["a", "b", "c"]) == pytest.approx(-35.0)
    no_r2b = {k: v for k, v in acc.items() if k != (2, "b")}  # a missing cell is skipped, not an error
    assert backward_transfer(no_r2b, ["a", "b", "c"]) == pytest.approx(-30.0)
    assert backward_transfer({}, ["a", "b"]) is None


def test_h_score_of_equal_groups_is_their_value():
    assert h_score([50.0], [50.0]) == pytest.approx(50.0)
    assert h_score([0.0], [0.0]) == 0.0


def test_wilson_edges():
    assert wilson(0, 0) == (0.0, 1.0)  # no data: the whole range
    lo, hi = wilson(1, 1)
    assert lo == pytest.approx(0.2065, abs=1e-4) and hi == 1.0  # one success is not "no data"
    assert wilson(40, 40)[1] <= 1.0 and wilson(0, 40)[0] >= 0.0


def test_effective_rank_does_not_depend_on_scale_below_one():
    assert effective_rank(torch.eye(3) * 0.1) == pytest.approx(3.0)  # Σσ = 0.3 is still a matrix
    assert effective_rank(torch.zeros(4, 3)) == 0.0


def test_h_score_mdgd_averages_every_task_on_its_target_side():
    """MDGD Table 1's H: the harmonic mean of the pre-trained average and the average over all tasks."""
    pre, tgt = [90.0, 60.0], [20.0, 40.0]
    a, b = 75.0, (90 + 60 + 20 + 40) / 4
    assert h_score_mdgd(pre, tgt) == pytest.approx(2 * a * b / (a + b))
    assert h_score_mdgd([0.0], [0.0]) == 0.0 and h_score_mdgd([50.0], [50.0]) == pytest.approx(50.0)
    assert h_score_mdgd(pre, tgt) != pytest.approx(h_score(pre, tgt))


def test_percent_scale_names_the_metrics_that_are_percentages():
    assert percent_scale("accuracy") and percent_scale("vqa_accuracy") and percent_scale("exact_match,none")
    assert not any(percent_scale(m) for m in ("cider", "CIDEr", "bleu4", "rouge_l", "score", "loss", "perplexity"))

