"""What every source reader shares: the examples it returns (`Example`, `Source`), what it is asked
for (`Request`), and the registry `open_source` walks (`register`). A leaf of `data/sources/`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mfcli.io.images import load_rgb
from mfcli.kinds import CLASSIFICATION, QaFields

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Example:
    key: str  # stable id stem: index in the source, or the source's own id
    label: str  # classification: the label; else the first reference
    load: object  # () -> PIL.Image, may raise on a corrupt file; None: no image (the `text` kind)
    question: str = ""  # vqa / choice
    references: tuple[str, ...] = ()  # vqa: answers; caption: captions; choice: (letter,)
    options: tuple[str, ...] = ()  # choice
    split: str | None = None  # the source's own split ("train" / "eval"), where it has one
    # the image's identity where the source knows it (a path): examples sharing one are split together
    image: str | None = None


@dataclass
class Source:
    name: str  # task name written into the records
    description: str  # what dataset.json records as the source
    labels: tuple[str, ...]
    examples: list[Example]
    noun: str | None = None  # forced prompt noun (built-in tasks); else derived from labels
    role: str = ""
    kind: str = CLASSIFICATION
    prompt: str = ""  # caption sources: the instruction (built-in tasks); else prepare's default
    builtin: bool = False  # a built-in task: its fixed held-out split (data/splits.py)


@dataclass(frozen=True)
class Request:
    """`mfcli prepare SOURCE`'s argument and the options a reader may use."""

    spec: str
    split: str | None = None  # a hub dataset's split
    kind: str | None = None  # forced record kind (else detected from the rows)
    fields: QaFields = field(default_factory=QaFields)
    image_field: str = "image"
    label_field: str = "label"

    @property
    def path(self) -> Path:
        return Path(self.spec)


@dataclass(frozen=True)
class Reader:
    name: str
    claims: Callable[[Request], bool]  # is SOURCE this reader's? (cheap: names and file headers only)
    read: Callable[[Request], Source]
    summary: str


# in the order `open_source` asks them: the first reader that claims SOURCE reads it
READERS: dict[str, Reader] = {}


def register(name: str, *, claims: Callable[[Request], bool], summary: str):
    """Decorate `read(Request) -> Source` as the reader `name`; a second reader of one name is refused."""
    if READERS.get(name) is not None:
        raise ValueError(f"data source reader '{name}' is registered twice; give the new one another name")
    if not callable(claims):
        raise TypeError(f"data source reader '{name}': claims must be a function of the request")

    def wrap(read: Callable[[Request], Source]) -> Callable[[Request], Source]:
        READERS[name] = Reader(name, claims, read, summary)
        return read

    return wrap


def looks_like_path(spec: str) -> bool:
    """SOURCE written as a path (./x, /x, ~/x, a/b/c, x.csv), never to be taken for a dataset id."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or bool(Path(spec).suffix)


def open_image(path: Path):
    """A loader for one image file, opened only when prepare reaches it."""
    return lambda: load_rgb(path)


def iter_loaded(examples: list[Example]) -> Iterator[tuple[Example, Image.Image | None, str | None]]:
    for ex in examples:
        if ex.load is None:  # a record asked without an image (the `text` kind)
            yield ex, None, None
            continue
        try:
            yield ex, ex.load(), None
        except Exception as e:  # PIL raises several types for truncated/corrupt files
            yield ex, None, f"{type(e).__name__}: {e}"
