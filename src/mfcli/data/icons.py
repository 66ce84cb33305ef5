"""Procedural silhouettes of everyday things, for the built-in `icons` classification task (pre-trained).

Drawn like Animal-MNIST (white silhouettes on black, 28×28) so that tiny is pre-trained on the *kind* of
image its `animals` target shows, with different classes — as LLaVA met natural photos before anyone
fine-tuned it on CIFAR. Each picture is drawn at 4× size with PIL (polygons and ellipses), turned by a
small random angle, moved and scaled at random, then reduced to 28×28 with antialiasing. Everything comes
from a fixed seed: the task is part of the built-in model's recipe and must not change.
"""

from __future__ import annotations

import numpy as np

ICONS = ("house", "tree", "star", "heart", "moon", "umbrella", "boat", "cup", "arrow", "car")
SIZE = 28
SCALE = 4  # drawn at 112×112, then reduced
_S = SIZE * SCALE


def _shape(kind: str, draw, rng: np.random.Generator) -> None:
    """Draw one silhouette in white on a black 112×112 canvas, roughly centred, ~70 % of the frame."""
    j = lambda: float(rng.uniform(-4, 4))  # noqa: E731 - a few pixels of jitter per vertex
    w = 255
    if kind == "house":
        draw.rectangle([30 + j(), 52 + j(), 82 + j(), 92 + j()], fill=w)
        draw.polygon([(22 + j(), 54), (56 + j(), 18 + j()), (90 + j(), 54)], fill=w)
        draw.rectangle([50, 70 + j(), 62, 92], fill=0)  # the door
    elif kind == "tree":
        draw.polygon([(56 + j(), 14 + j()), (24 + j(), 74 + j()), (88 + j(), 74 + j())], fill=w)
        draw.rectangle([50 + j() / 2, 74, 62 + j() / 2, 98 + j()], fill=w)
    elif kind == "star":
        r_out, r_in = 44 + j(), 18 + j() / 2
        turn = rng.uniform(-0.2, 0.2)
        points = [(56 + (r_out if k % 2 == 0 else r_in) * np.sin(turn + k * np.pi / 5),
                   58 - (r_out if k % 2 == 0 else r_in) * np.cos(turn + k * np.pi / 5)) for k in range(10)]
        draw.polygon(points, fill=w)
    elif kind == "heart":
        t = np.linspace(0, 2 * np.pi, 60)
        x, y = 16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        s = 2.6 + rng.uniform(-0.3, 0.2)
        draw.polygon(list(zip(56 + s * x, 52 - s * y)), fill=w)
    elif kind == "moon":
        r = 38 + j()
        draw.ellipse([56 - r, 56 - r, 56 + r, 56 + r], fill=w)
        shift = 22 + j()
        draw.ellipse([56 - r + shift, 56 - r - 8, 56 + r + shift, 56 + r - 8], fill=0)
    elif kind == "umbrella":
        draw.pieslice([14 + j(), 18 + j(), 98 + j(), 90 + j()], 180, 360, fill=w)
        draw.rectangle([53, 52, 59, 92 + j()], fill=w)
        draw.arc([38, 82, 58, 100], 0, 180, fill=w, width=6)
    elif kind == "boat":
        draw.polygon([(14 + j(), 70 + j()), (98 + j(), 70 + j()), (82 + j(), 94), (30 + j(), 94)], fill=w)
        draw.polygon([(58, 16 + j()), (58, 64), (90 + j(), 64)], fill=w)
        draw.rectangle([53, 16, 58, 70], fill=w)
    elif kind == "cup":
        draw.polygon([(24 + j(), 28 + j()), (76 + j(), 28 + j()), (70 + j(), 92), (30 + j(), 92)], fill=w)
        draw.ellipse([64, 40 + j(), 96, 76 + j()], outline=w, width=8)
    elif kind == "arrow":
        y = 56 + j()
        draw.rectangle([14 + j(), y - 8, 66, y + 8], fill=w)
        draw.polygon([(62, y - 28 + j()), (100 + j(), y), (62, y + 28 + j())], fill=w)
    elif kind == "car":
        draw.rectangle([10 + j(), 52 + j(), 102 + j(), 80 + j()], fill=w)
        draw.polygon([(30 + j(), 52), (40 + j(), 30 + j()), (74 + j(), 30 + j()), (86 + j(), 52)], fill=w)
        for cx in (32 + j(), 80 + j()):
            draw.ellipse([cx - 12, 72, cx + 12, 96], fill=w)
    else:  # pragma: no cover - ICONS is closed
        raise ValueError(kind)


def draw_icon(kind: str, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (_S, _S), 0)
    _shape(kind, ImageDraw.Draw(canvas), rng)
    canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    scale = rng.uniform(0.75, 1.0)
    side = int(round(_S * scale))
    small = canvas.resize((side, side), Image.BILINEAR)
    out = Image.new("L", (_S, _S), 0)
    out.paste(small, tuple(int(v) for v in rng.integers(0, _S - side + 1, size=2)))
    img = np.asarray(out.resize((SIZE, SIZE), Image.LANCZOS))
    return np.repeat(img[..., None], 3, axis=-1)


def load_icons(n_per_class: int = 200, seed: int = 2028) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)  # fixed: the task is part of the recipe
    ids = np.arange(len(ICONS)).repeat(n_per_class)
    return np.stack([draw_icon(ICONS[i], rng) for i in ids]), ids
