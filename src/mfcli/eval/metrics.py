"""Summary figures over per-task accuracies."""

from __future__ import annotations

from collections.abc import Sequence


def h_score(origin: Sequence[float], target: Sequence[float]) -> float:
    """Model Tailor App. D.2: P_H = 2·Avg(P_origin)·Avg(P_target) / (Avg(P_origin) + Avg(P_target))."""
    a, b = sum(origin) / len(origin), sum(target) / len(target)
    return 2 * a * b / (a + b) if a + b else 0.0
