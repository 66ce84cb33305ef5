"""Built-in offline tasks: real images with nameable labels, and procedural scenes with questions and
captions; no network needed.

*Pre-trained* tasks are the ones the built-in tiny LLaVA learns: `digits`, `shapes`, `icons` (classification),
`scene-vqa` (short-answer VQA) and `scene-objects` (captioning). *Target* tasks it never sees, so
fine-tuning on them causes forgetting: `animals`, `counting` (classification), `scene-exists` (VQA) and
`scene-caption` (captioning). Roles and splits are fixed so that results stay comparable across versions.
"""

from __future__ import annotations

import gzip
import pickletools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

from mfcli.data import icons, scenes
from mfcli.data.prompts import BRIEF_PROMPT, CAPTION_PROMPT
from mfcli.errors import MfcliError
from mfcli.kinds import CAPTION, CLASSIFICATION, VQA

PRETRAINED = "pretrained"
TARGET = "target"


@dataclass(frozen=True)
class Task:
    name: str
    role: str  # PRETRAINED or TARGET
    labels: tuple[str, ...]  # classification only
    noun: str  # "number" or "object" (EMT's prompt noun); classification only
    # classification: () -> (uint8 images N×H×W×3, int label ids N);
    # vqa / caption: () -> (uint8 images, [scenes.QA] N)
    load: Callable[[], tuple[np.ndarray, object]]
    about: str
    kind: str = CLASSIFICATION
    prompt: str = ""  # caption tasks: the instruction every record carries


def _gray_to_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, axis=-1)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()  # 1,797 8×8 images, ink 0..16, shipped inside scikit-learn
    img = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return _gray_to_rgb(img), d.target.astype(np.int64)


def _ndarray_from_numpy_pickle(raw: bytes) -> np.ndarray:
    """Read a pickled numpy array *without unpickling*: walk the opcodes and take shape, dtype and
    the raw buffer. Executing a pickle would run arbitrary code; this only parses it."""
    ints: list[int] = []
    dtype = None
    buffer = None
    for op, arg, _ in pickletools.genops(raw):
        if op.name in ("BININT1", "BININT2", "BININT") and buffer is None:
            ints.append(arg)
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE") and arg in ("u1", "i8", "f4", "f8", "i4"):
            dtype = arg
            shape_ints = list(ints)
        elif op.name in ("BINBYTES", "BINBYTES8", "SHORT_BINBYTES") and arg is not None and len(arg) > 16:
            buffer = arg
    if dtype is None or buffer is None:
        raise MfcliError("animal-mnist data file has an unexpected layout.", "Reinstall animal-mnist==0.4.")
    # opcodes before dtype: 0 (the empty-shape arg), 1 (version), then the shape
    shape = tuple(shape_ints[2:])
    return np.frombuffer(buffer, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


ANIMALS = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")


def _load_animals() -> tuple[np.ndarray, np.ndarray]:
    try:
        root = resources.files("animal_mnist") / "data" / "Animal_MNIST"
    except ModuleNotFoundError:
        raise MfcliError("the 'animals' task needs the animal-mnist package.",
                         "Install it with `pip install --no-deps animal-mnist==0.4`.") from None
    with gzip.open(root / "animal_data_version_3.gz", "rb") as f:
        images = _ndarray_from_numpy_pickle(f.read())  # 10,000 × 28 × 28, white silhouettes
    with gzip.open(root / "animal_label_version_3.gz", "rb") as f:
        labels = _ndarray_from_numpy_pickle(f.read())  # ids 0..9, classes in alphabetical order
    return _gray_to_rgb(images.astype(np.uint8)), labels.astype(np.int64)


SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SIZE = 16  # procedural tasks are drawn at the tiny model's input size


def _draw_shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    r = rng.uniform(3.5, 6.0)
    cy, cx = rng.uniform(r + 0.5, SIZE - r - 0.5, size=2)
    dy, dx = yy - cy, xx - cx
    if kind == "circle":
        mask = dy**2 + dx**2 <= r**2
    elif kind == "ring":
        d2 = dy**2 + dx**2
        mask = (d2 <= r**2) & (d2 >= (r - 1.6) ** 2)
    elif kind == "square":
        mask = (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    elif kind == "diamond":
        mask = np.abs(dy) + np.abs(dx) <= r
    elif kind == "cross":
        w = max(1.0, r * 0.3)
        mask = ((np.abs(dy) <= w) & (np.abs(dx) <= r)) | ((np.abs(dx) <= w) & (np.abs(dy) <= r))
    elif kind == "triangle":  # apex up
        mask = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(kind)
    colour = rng.uniform(120, 255, size=3)
    background = rng.uniform(0, 50, size=3)
    img = np.where(mask[..., None], colour, background) + rng.normal(0, 8, size=(SIZE, SIZE, 3))
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _load_shapes(n_per_class: int = 300, seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)  # fixed: the task is part of the recipe
    ids = np.arange(len(SHAPES)).repeat(n_per_class)
    return np.stack([_draw_shape(SHAPES[i], rng) for i in ids]), ids


COUNTS = ("1", "2", "3", "4", "5", "6")


def _draw_dots(k: int, rng: np.random.Generator) -> np.ndarray:
    img = rng.uniform(0, 40, size=(SIZE, SIZE, 3))
    cells = rng.choice(16, size=k, replace=False)  # a 4×4 grid of 4×4 cells, one 2×2 dot per cell
    colour = rng.uniform(150, 255, size=3)
    for c in cells:
        y = (c // 4) * 4 + rng.integers(0, 3)
        x = (c % 4) * 4 + rng.integers(0, 3)
        img[y:y + 2, x:x + 2] = colour
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _load_counting(n_per_class: int = 300, seed: int = 4321) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(len(COUNTS)).repeat(n_per_class)
    return np.stack([_draw_dots(int(COUNTS[i]), rng) for i in ids]), ids


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("digits", PRETRAINED, tuple(str(i) for i in range(10)), "number", _load_digits,
         "scikit-learn's 1,797 8×8 handwritten digits (UCI), the paper's MNIST in miniature"),
    Task("shapes", PRETRAINED, SHAPES, "object", _load_shapes,
         "procedurally drawn coloured shapes on noise, 1,800 images 16×16"),
    Task("icons", PRETRAINED, icons.ICONS, "object", icons.load_icons,
         "procedurally drawn silhouettes of 10 everyday things, 2,000 images 28×28 in Animal-MNIST's style"),
    Task("animals", TARGET, ANIMALS, "object", _load_animals,
         "Animal-MNIST (PyPI animal-mnist 0.4, MIT): 10,000 28×28 animal silhouettes"),
    Task("counting", TARGET, COUNTS, "number", _load_counting,
         "procedurally drawn 1-6 dots, 1,800 images 16×16"),
    Task("scene-vqa", PRETRAINED, (), "", scenes.load_scene_vqa,
         "1-3 coloured shapes, 7,200 images 24×24: colour, shape, position and count questions", kind=VQA),
    Task("scene-objects", PRETRAINED, (), "", scenes.load_scene_objects,
         "1-3 coloured shapes, 1,800 images 24×24, captioned left to right", kind=CAPTION, prompt=CAPTION_PROMPT),
    Task("scene-exists", TARGET, (), "", scenes.load_scene_exists,
         "1-3 coloured shapes, 1,800 images 24×24: is there a <colour> <shape>? (yes/no)", kind=VQA),
    Task("scene-caption", TARGET, (), "", scenes.load_scene_caption,
         "two coloured shapes, 1,800 images 24×24, captioned with their relation", kind=CAPTION,
         prompt=BRIEF_PROMPT),
)}


def split_indices(n: int, eval_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split (EMT evaluates on 20 % randomly selected samples, Appendix D.1)."""
    order = np.random.default_rng(seed).permutation(n)
    n_eval = int(round(n * eval_fraction))
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])
