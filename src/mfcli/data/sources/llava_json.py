"""LLaVA's instruction JSON: a JSON array of {"id", "image", "conversations"}."""

from __future__ import annotations

import json
from pathlib import Path

from mfcli.data.qa import llava_pairs
from mfcli.data.sources.base import Example, Request, Source, check_kind, open_image, register
from mfcli.errors import MfcliError


def _is_json_array(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(4096).lstrip()[:1] == "["


@register("llava-json", claims=lambda req: _is_json_array(req.path), summary="LLaVA's instruction JSON (an array)")
def read(req: Request) -> Source:
    """Each human/gpt pair becomes one example, a short-answer question unless --kind says caption."""
    path, kind = req.path, req.kind
    check_kind(kind)
    kind = kind or "vqa"
    if kind not in ("vqa", "caption"):
        raise MfcliError(f"--kind {kind} does not fit LLaVA conversations.", "Use --kind vqa or --kind caption.")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise MfcliError(f"{path}: not valid JSON ({e}).", "Give LLaVA's instruction JSON: an array of records.") from None
    examples = []
    for n, obj in enumerate(records):
        where = f"{path}:record {n}"
        if not isinstance(obj, dict) or "image" not in obj:
            raise MfcliError(f"{where}: needs 'image' and 'conversations'.", "See docs/formats.md.")
        load = open_image(path.parent / str(obj["image"]))
        for k, (question, answer) in enumerate(llava_pairs(obj, where)):
            key = f"{obj.get('id', n)}-{k}" if k else str(obj.get("id", n))
            examples.append(Example(key, answer, load, question, (answer,)))  # a caption's question: its instruction
    if not examples:
        raise MfcliError(f"{path} has no records.", "Give a JSON array of LLaVA records.")
    return Source(path.stem, f"llava:{path.resolve()}", (), examples, kind=kind)
