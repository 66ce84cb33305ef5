"""Processors for image-only use where transformers' own would need more than images do.

transformers 5's Qwen2VLProcessor takes a video processor, and AutoProcessor builds it eagerly; the video
processor needs torchvision even when no video is ever passed (huggingface/transformers#48558). mfcli feeds
images only, so it loads Qwen2-VL's processor without the video part: the same image processor, tokenizer,
chat template and image-token expansion, so the token ids are exactly those of the full processor.
"""

from __future__ import annotations

from transformers import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2VLProcessor minus its video processor (the attributes ProcessorMixin loads and saves follow
    __init__'s signature, so this one loads `image_processor` and `tokenizer` only)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self) -> dict:
        # saved as the full processor's class, so a machine with torchvision loads it with AutoProcessor
        out = super().to_dict()
        out["processor_class"] = "Qwen2VLProcessor"
        return out


# model_type -> the image-only stand-in used when AutoProcessor cannot build the full processor
IMAGE_ONLY = {"qwen2_vl": ImageOnlyQwen2VLProcessor}
