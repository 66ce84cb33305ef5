"""The forgetting figures both the report (report/) and the forgetting watch (train/watch/) compute,
in a leaf both may import: the papers' two H-scores, and which metrics are percentages.

Pure functions over numbers, each tested against hand-computed values (tests/test_stats.py).
"""

from __future__ import annotations

from collections.abc import Sequence

CAPTION_METRICS = ("cider", "bleu", "rouge", "meteor", "spice")  # raw 0-1 (CIDEr 0-10) values, printed ×100
OWN_SCALE = ("score", "perplexity", "loss")  # metrics on a scale of their own, printed as they are


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def h_score(origin: Sequence[float], target: Sequence[float]) -> float:
    """Model Tailor App. D.2: the harmonic mean of the two task-group *averages*,
    P_H = 2·Avg(P_origin)·Avg(P_target) / (Avg(P_origin) + Avg(P_target))."""
    a, b = mean(origin), mean(target)
    return 2 * a * b / (a + b) if a + b else 0.0


def h_score_mdgd(origin: Sequence[float], target: Sequence[float]) -> float:
    """MDGD's printed "Hscore" (its Table 1 recomputes exactly this way, METHODS.md §7): the harmonic mean
    of the pre-trained average and the average over *all* tasks, pre-trained and target together,
    P_H = 2·Avg(P_origin)·Avg(P_all) / (Avg(P_origin) + Avg(P_all))."""
    a, b = mean(origin), mean(list(origin) + list(target))
    return 2 * a * b / (a + b) if a + b else 0.0


def h_score_all_target(origin: Sequence[float], target: Sequence[float]) -> float:
    """The form MDGD's Table 2 (MiniCPM-V) rows recompute to, as a session found (issue 38; the table is
    not in the paper text mfcli ships, so not re-checked here): the harmonic mean of the average over
    *all* tasks and the target average, P_H = 2·Avg(P_all)·Avg(P_target) / (Avg(P_all) + Avg(P_target))."""
    a, b = mean(list(origin) + list(target)), mean(target)
    return 2 * a * b / (a + b) if a + b else 0.0


def percent_scale(metric: str) -> bool:
    """Whether a metric's report values are percentages (accuracies): not a caption metric (×100, CIDEr
    to 1000) nor one on its own scale."""
    low = metric.lower()
    return not any(c in low for c in CAPTION_METRICS) and low not in OWN_SCALE


def watch_mixed_scale(metrics: dict, targets) -> list[str]:
    """The forgetting watch's fields that take a score not in % (a caption task's CIDEr ×100) as a number
    beside percentages, marked † wherever they are shown: both H forms whenever a task is off the percent
    scale, and the target average (and its gain) where the targets themselves mix scales."""
    if all(percent_scale(m) for m in metrics.values()):
        return []
    mixed_targets = len({percent_scale(metrics[t]) for t in targets if t in metrics}) > 1
    return ["h", "h_mdgd"] + (["target", "target_gain"] if mixed_targets else [])
