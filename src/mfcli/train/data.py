"""Training examples from train.jsonl files (LLaVA or ShareGPT form), batched for the loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.images import load_rgb
from mfcli.io.records import read_train, resolve_data_file
from mfcli.models.chat import Encoder, collate, mm_token_types


@dataclass(frozen=True)
class Example:
    id: str
    image: Path
    question: str
    answer: str
    task: str = ""
    label: str = ""  # classification records: the label (the CLIP method's target)


def load_examples(data: list[str]) -> tuple[list[Example], list[Path]]:
    examples, files = [], []
    for spec in data:
        path = resolve_data_file(spec, "train.jsonl")
        files.append(path)
        for rec in read_train(path):
            examples.append(Example(rec.id, path.parent / rec.image, rec.question, rec.answer, rec.task, rec.label))
    if not examples:
        raise MfcliError("the training data holds no records.", "Run `mfcli prepare` to make some.")
    return examples, files


def open_image(ex: Example):
    try:
        return load_rgb(ex.image)
    except Exception as e:  # PIL raises many types for unreadable files
        raise MfcliError(f"cannot read image {ex.image} of record '{ex.id}' ({type(e).__name__}).",
                         "Fix or remove that record.") from None


class Batcher:
    """Turns examples into model inputs with the processor (chat template, image tokens, masks)."""

    def __init__(self, processor):
        from PIL import Image

        self.processor = processor
        self.encoder = Encoder(processor, Image.new("RGB", (32, 32)))
        self.pad = processor.tokenizer.pad_token_id

    def __call__(self, examples: list[Example]) -> dict:
        images = [open_image(ex) for ex in examples]
        # everything the image processor returns: LLaVA's pixel_values; Qwen2-VL's patches + image_grid_thw
        image_inputs = dict(self.processor.image_processor(images=images, return_tensors="pt"))
        input_ids, labels, attention = collate(
            [self.encoder.encode(ex.question, ex.answer, im.size) for ex, im in zip(examples, images)], self.pad)
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention, **image_inputs,
                **mm_token_types(self.processor, input_ids)}
