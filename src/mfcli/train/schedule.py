"""The one learning-rate schedule: linear warm-up, then cosine decay to zero (LLaVA's recipe).

Used by the fine-tuning loop, the CLIP fine-tune and the built-in model's builder, so a "warm-up
ratio" means the same number of steps everywhere.
"""

from __future__ import annotations

import math


def warmup_steps(total: int, warmup_ratio: float) -> int:
    # rounded first: 60 × 0.05 is 3.0000000000000004 in floating point, and 3 warm-up steps are meant
    return max(1, math.ceil(round(total * warmup_ratio, 9)))


def warmup_cosine(total: int, warmup_ratio: float):
    """LambdaLR's multiplier for step s (0-based): (s + 1)/w while warming up, then ½(1 + cos(π·t))
    with t the fraction of the remaining steps done."""
    warm = warmup_steps(total, warmup_ratio)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    return f
