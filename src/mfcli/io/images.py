"""Opening an image file as every stage reads it: decoded now (not lazily, so the file can close) and
in RGB. One function, so prepare, emt, the watch, rank and the trainer read pixels the same way."""

from __future__ import annotations

from pathlib import Path


def load_rgb(path: str | Path):
    """The image at `path` as an RGB PIL image; PIL's own exception on an unreadable file."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")
