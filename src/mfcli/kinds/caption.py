"""`caption`: a description of the image, scored by CIDEr-D (with BLEU-4 and ROUGE-L) against the
reference captions, per task as one corpus (the `caption` judge: CIDEr's document frequencies come from
all the references evaluated together). Rows as Flickr30k / COCO Karpathy lay them out (`captions`,
`caption` or `sentences`, strings or {"raw": …} dicts); every reference caption is a training target."""

from __future__ import annotations

from mfcli.data import prompts
from mfcli.kinds.base import QaFields, QaRow, RecordKind, field_name, first_field, given_or, register, texts

CAPTION_FIELDS = ("captions", "caption", "sentences", "references")


@register
class Caption(RecordKind):
    name = "caption"
    summary = "a description; CIDEr-D (with BLEU-4, ROUGE-L) against `references`, per task"
    max_new_tokens = 64  # lmms-eval's cap for Flickr30k and COCO captions
    detect_rank = 20
    references = "reference captions"
    corpus = True
    from_conversations = True

    def detect(self, row: dict, fields: QaFields) -> bool:
        return bool(first_field(row, given_or(fields.captions, CAPTION_FIELDS)))

    def parse_row(self, row: dict, fields: QaFields, where: str, csv: bool) -> QaRow:
        name = field_name(row, fields.captions, CAPTION_FIELDS, where, "caption", "--captions-field")
        return QaRow("", texts(row[name], where, "reference captions", ("raw", "caption", "text"), csv))

    def prompt(self, question: str, options: tuple[str, ...], given: str, default: str) -> str:
        """The user's --prompt, else the row's own instruction (LLaVA's JSON), the source's, LLaVA-1.5's."""
        return given or question or default or prompts.CAPTION_PROMPT

    def train_answers(self, references: tuple[str, ...]) -> list[str]:
        """Every distinct reference caption (one training record each)."""
        return list(dict.fromkeys(references))

    def train_label(self, answer: str) -> str:
        return ""  # a caption is not a label

    def bucket(self, question: str, label: str) -> str:
        return "all"  # per first reference would be noise
