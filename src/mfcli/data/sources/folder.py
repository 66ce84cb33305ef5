"""An image folder, one sub-folder per class: ROOT/<label>/<image>."""

from __future__ import annotations

from mfcli.data.sources.base import IMAGE_EXTENSIONS, Example, Request, Source, open_image, register
from mfcli.errors import MfcliError
from mfcli.kinds import kind_of


@register("folder", claims=lambda req: req.path.is_dir(), summary="an image folder, one sub-folder per class")
def read(req: Request) -> Source:
    root = req.path
    if req.kind is not None and not kind_of(req.kind).labelled:
        raise MfcliError(f"an image folder holds labelled images, not {req.kind} data.",
                         "Give questions, answers or captions in a JSONL/CSV file; see docs/formats.md.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise MfcliError(f"{root} has no class sub-folders.",
                         "Lay it out as ROOT/<label>/<image>, one sub-folder per class.")
    examples = []
    for label in classes:
        for f in sorted((root / label).rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                examples.append(Example(f"{label}-{f.stem}", label, open_image(f)))
    if not examples:
        raise MfcliError(f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).",
                         "Put the images into the class sub-folders.")
    return Source(root.name, f"folder:{root.resolve()}", tuple(classes), examples)
