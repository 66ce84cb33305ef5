"""Procedural scenes of a few coloured shapes, for the built-in question-answering and captioning tasks.

A scene is a 24×24 picture split into a 2×2 grid of 12×12 cells; each object (a shape in a named
colour) sits in its own cell, so "left of" and "above" are unambiguous, and no two objects of a scene
share a colour or a shape, so "the triangle" and "the red shape" each name one object. Everything is
drawn from a fixed seed: a task is part of the built-in model's recipe and must not change.

Four tasks use them (registered in tasks.py):
- scene-vqa (pre-trained, VQA): "What colour is the triangle?", "Which shape is red?", "Where is the red
  circle?" ("top left", … "bottom right"), "How many shapes are there?";
- scene-objects (pre-trained, captioning): the objects from left to right, "a red circle and a blue square";
- scene-exists (target, VQA): "Is there a green square in the image?" — yes/no, POPE's question in
  miniature, with negatives that reuse a colour or a shape the scene holds;
- scene-caption (target, captioning): two objects side by side or one above the other, "a red circle
  above a blue square" (also "a blue square below a red circle": every true phrasing is a reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCENE_SIZE = 24
CELL = 12
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 235), "yellow": (235, 210, 40)}
SCENE_SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class Thing:
    colour: str
    shape: str
    cell: int  # 0 1 / 2 3: row = cell // 2, column = cell % 2

    @property
    def phrase(self) -> str:
        return f"a {self.colour} {self.shape}"


@dataclass(frozen=True)
class QA:
    """One image's question (empty for a caption task) and its reference answers or captions."""

    question: str
    references: tuple[str, ...]


def _mask(shape: str, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SCENE_SIZE, 0:SCENE_SIZE].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    if shape == "triangle":  # apex up
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
    raise ValueError(shape)  # pragma: no cover - SCENE_SHAPES is closed


def draw(things: list[Thing], rng: np.random.Generator) -> np.ndarray:
    img = rng.uniform(0, 45, size=(SCENE_SIZE, SCENE_SIZE, 3))
    for t in things:
        r = rng.uniform(3.6, 4.6)
        cy = (t.cell // 2) * CELL + CELL / 2 + rng.uniform(-1, 1)
        cx = (t.cell % 2) * CELL + CELL / 2 + rng.uniform(-1, 1)
        colour = np.clip(np.array(COLOURS[t.colour]) + rng.normal(0, 12, size=3), 0, 255)
        img[_mask(t.shape, cy, cx, r)] = colour
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def random_things(n: int, rng: np.random.Generator, cells=None) -> list[Thing]:
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    shapes = rng.choice(SCENE_SHAPES, size=n, replace=False)
    cells = rng.choice(4, size=n, replace=False) if cells is None else cells
    return [Thing(str(c), str(s), int(k)) for c, s, k in zip(colours, shapes, cells)]


def left_to_right(things: list[Thing]) -> list[Thing]:
    return sorted(things, key=lambda t: (t.cell % 2, t.cell // 2))


def objects_caption(things: list[Thing]) -> str:
    return " and ".join(t.phrase for t in left_to_right(things))


def relation_captions(a: Thing, b: Thing) -> tuple[str, ...]:
    """Both true phrasings of two objects in neighbouring cells, the upper or left one first."""
    first, second = sorted((a, b), key=lambda t: t.cell)
    if first.cell // 2 == second.cell // 2:  # same row
        return (f"{first.phrase} left of {second.phrase}", f"{second.phrase} right of {first.phrase}")
    return (f"{first.phrase} above {second.phrase}", f"{second.phrase} below {first.phrase}")


NEIGHBOURS = ((0, 1), (2, 3), (0, 2), (1, 3))  # side by side, then one above the other


def _scenes(n: int, rng: np.random.Generator, ask, things_of=None) -> tuple[np.ndarray, list[QA]]:
    """n scenes: the objects (1-3 at random, or `things_of(i)`), the picture, then `ask(i, things, rng)`
    — in that order from one generator, so a task is fixed by its seed."""
    images, items = [], []
    for i in range(n):
        things = things_of(i) if things_of else random_things(int(rng.integers(1, 4)), rng)
        images.append(draw(things, rng))
        items.append(ask(i, things, rng))
    return np.stack(images), items


VQA_SCENES = 7200  # scene-vqa's scenes; recipe 6 drew 4× recipe 5's 1,800 (docs/methods.md)
CELL_NAMES = ("top left", "top right", "bottom left", "bottom right")  # by cell, as Thing.cell numbers them


def _vqa_question(i: int, things: list[Thing], rng: np.random.Generator) -> QA:
    t = things[int(rng.integers(len(things)))]
    form = i % 4  # colour, shape, position and count in equal shares (issue 10: "colour, count, position")
    if form == 0:
        return QA(f"What colour is the {t.shape}?", (t.colour,))
    if form == 1:
        return QA(f"Which shape is {t.colour}?", (t.shape,))
    if form == 2:
        return QA(f"Where is the {t.colour} {t.shape}?", (CELL_NAMES[t.cell],))
    return QA("How many shapes are there?", (str(len(things)),))


def _exists_question(i: int, things: list[Thing], rng: np.random.Generator) -> QA:
    if i % 2 == 0:  # yes and no in equal shares
        t = things[int(rng.integers(len(things)))]
        colour, shape, answer = t.colour, t.shape, "yes"
    else:  # an absent pair that shares its colour or its shape with an object present (POPE's hard negatives)
        present = {(t.colour, t.shape) for t in things}
        absent = [(c, s) for c in COLOURS for s in SCENE_SHAPES if (c, s) not in present
                  and any(c == t.colour or s == t.shape for t in things)]
        colour, shape = absent[int(rng.integers(len(absent)))]
        answer = "no"
    return QA(f"Is there a {colour} {shape} in the image?", (answer,))


def load_scene_vqa(n: int = VQA_SCENES, seed: int = 2024):
    return _scenes(n, np.random.default_rng(seed), _vqa_question)


def scene_vqa_objects(n: int = VQA_SCENES, seed: int = 2024) -> list[list[Thing]]:
    """The objects in each of load_scene_vqa's scenes, in its order (for answers broken down by scene)."""
    objects = []

    def ask(i, things, rng):
        objects.append(things)
        return _vqa_question(i, things, rng)

    _scenes(n, np.random.default_rng(seed), ask)
    return objects


def load_scene_objects(n: int = 1800, seed: int = 2025):
    return _scenes(n, np.random.default_rng(seed), lambda i, things, rng: QA("", (objects_caption(things),)))


def load_scene_exists(n: int = 1800, seed: int = 2026):
    return _scenes(n, np.random.default_rng(seed), _exists_question)


def load_scene_caption(n: int = 1800, seed: int = 2027):
    rng = np.random.default_rng(seed)
    # two objects in neighbouring cells, every relation in equal shares
    return _scenes(n, rng, lambda i, things, rng: QA("", relation_captions(*things)),
                   things_of=lambda i: random_things(2, rng, cells=list(NEIGHBOURS[i % len(NEIGHBOURS)])))
