"""The figures a forgetting report is made of: both H-scores, intervals, paired tests, backward transfer.

Pure functions over numbers, so each is tested against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mfcli.forgetting import h_score, h_score_all_target, h_score_mdgd, mean


# The two H-scores in the literature, by the paper that defines each; Model Tailor's is the default.
H_FORMS = {"model-tailor": h_score, "mdgd": h_score_mdgd, "mdgd-table2": h_score_all_target}
H_LABELS = {"model-tailor": "H (Model Tailor)", "mdgd": "H (MDGD)", "mdgd-table2": "H (MDGD Table 2)"}
H_KEYS = {"model-tailor": ("h_score", "h_spread"), "mdgd": ("h_mdgd", "h_mdgd_spread"),
          "mdgd-table2": ("h_all_target", "h_all_target_spread")}  # report summary keys
H_FORMULAS = {"model-tailor": "H (Model Tailor, App. D.2) = 2·avg(pre)·avg(target) / (avg(pre) + avg(target))",
              "mdgd": "H (MDGD, Table 1) = 2·avg(pre)·avg(all) / (avg(pre) + avg(all)), avg(all) over pre-trained "
                      "and target tasks together",
              "mdgd-table2": "H (MDGD, Table 2) = 2·avg(all)·avg(target) / (avg(all) + avg(target))"}


def pareto(points: dict) -> set:
    """The keys of the Pareto-optimal points of {key: (x, y)}, both to maximise: no other point is at
    least as good on both and better on one."""
    return {k for k, (x, y) in points.items()
            if not any(x2 >= x and y2 >= y and (x2 > x or y2 > y) for k2, (x2, y2) in points.items() if k2 != k)}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (well behaved at 0 and n, unlike the Wald one)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired outcomes: b = right before / wrong after, c = the
    reverse. Under H0 the b + c discordant pairs split Binomial(b + c, ½)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def backward_transfer(acc: dict[tuple[int, str], float], tasks: Sequence[str]) -> float | None:
    """Lopez-Paz & Ranzato 2017: BWT = mean over i < T of (R[T, task_i] − R[i, task_i]), where R[k, t] is
    the score on task t after the k-th fine-tune of a sequence (1-based) trained on tasks[0..T-1]."""
    T = len(tasks)
    diffs = [acc[(T, t)] - acc[(i + 1, t)] for i, t in enumerate(tasks[:-1])
             if (T, t) in acc and (i + 1, t) in acc]
    return mean(diffs) if diffs else None
