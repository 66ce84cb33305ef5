"""LLaVA's instruction JSON: a JSON array of {"id", "image", "conversations"}."""

from __future__ import annotations

import json
from pathlib import Path

from mfcli.data.prompts import IMAGE_TOKEN, VQA_SUFFIX
from mfcli.data.sources.base import Example, Request, Source, open_image, register
from mfcli.errors import MfcliError
from mfcli.kinds import VQA, KINDS, kind_of


def _is_json_array(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(4096).lstrip()[:1] == "["


@register("llava-json", claims=lambda req: _is_json_array(req.path), summary="LLaVA's instruction JSON (an array)")
def read(req: Request) -> Source:
    """Each human/gpt pair becomes one example, a short-answer question unless --kind says caption."""
    path, kind = req.path, req.kind or VQA
    if not kind_of(kind).from_conversations:
        fit = [k.name for k in KINDS.values() if k.from_conversations]
        raise MfcliError(f"--kind {kind} does not fit LLaVA conversations.",
                         f"Use {' or '.join(f'--kind {k}' for k in fit)}.")
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
            examples.append(Example(key, answer, load, question, (answer,), image=str(obj["image"])))  # a caption's question: its instruction
    if not examples:
        raise MfcliError(f"{path} has no records.", "Give a JSON array of LLaVA records.")
    return Source(path.stem, f"llava:{path.resolve()}", (), examples, kind=kind)


def llava_pairs(obj: dict, where: str) -> list[tuple[str, str]]:
    """LLaVA's instruction JSON: every human turn and the gpt answer after it, with <image> and LLaVA-1.5's
    short-answer suffix taken off the question (mfcli adds the suffix back for the vqa kind)."""
    turns = obj.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        raise MfcliError(f"{where}: a LLaVA record needs 'conversations' with a human and a gpt turn.",
                         "See docs/formats.md.")
    pairs = []
    for human, gpt in zip(turns[0::2], turns[1::2]):
        if not (isinstance(human, dict) and isinstance(gpt, dict)) or human.get("from") != "human" \
                or gpt.get("from") != "gpt":
            raise MfcliError(f"{where}: turns must alternate human and gpt.", "See docs/formats.md.")
        q = str(human.get("value", "")).replace(IMAGE_TOKEN, " ").replace(VQA_SUFFIX, " ")
        a = " ".join(str(gpt.get("value", "")).split())
        if not a:
            raise MfcliError(f"{where}: a gpt answer is empty.", "Give every question its answer.")
        pairs.append((" ".join(q.split()), a))
    return pairs
