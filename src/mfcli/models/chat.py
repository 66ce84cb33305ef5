"""Turning (image, prompt[, answer]) into model inputs with the processor's own chat template.

Shared by the tiny build, `finetune` and `emt`, so training and evaluation see the same text.
"""

from __future__ import annotations

from functools import lru_cache

IGNORE_INDEX = -100  # label value the loss skips (prompt and image tokens)
TEXT_ONLY = "text-only"  # Encoder's size key for a conversation without an image


def image_token_of(processor) -> str | None:
    """The image placeholder a model's processor expands (LLaVA's and Qwen2-VL's processors name it;
    else its tokenizer may): the one lookup every caller uses."""
    return getattr(processor, "image_token", None) or getattr(getattr(processor, "tokenizer", None), "image_token", None)


def prompt_text(prompt: str) -> str:
    """The prompt as the user turn's text: any `<image>` dropped (the template places the image itself),
    spaces collapsed, line breaks kept — LLaVA-1.5's VQA and choice prompts put their formatting
    instruction on a line of its own ("What colour is it?\nAnswer the question using …")."""
    lines = (" ".join(line.split()) for line in prompt.replace("<image>", " ").splitlines())
    return "\n".join(line for line in lines if line)


def user_messages(prompt: str, image: bool = True) -> list[dict]:
    """One user turn holding the image (unless `image` is False: a question asked without one, the
    `text` kind) and the prompt."""
    text = {"type": "text", "text": prompt_text(prompt)}
    return [{"role": "user", "content": [{"type": "image"}, text] if image else [text]}]


def generation_text(processor, prompt: str, image: bool = True) -> str:
    return processor.apply_chat_template(user_messages(prompt, image), add_generation_prompt=True)


def training_text(processor, prompt: str, answer: str, image: bool = True) -> tuple[str, str]:
    """(prefix, full): the full conversation and the prefix that ends where the answer begins."""
    prefix = generation_text(processor, prompt, image)
    full = processor.apply_chat_template(
        user_messages(prompt, image) + [{"role": "assistant", "content": [{"type": "text", "text": answer}]}])
    if not full.startswith(prefix):  # templates that do not extend their own generation prompt
        raise ValueError("chat template's full conversation does not start with its generation prompt")
    return prefix, full


class Encoder:
    """Caches token ids per distinct (prompt, answer, image size): a task has few distinct strings.

    The size matters where the image-token count follows the image (Qwen2-VL's dynamic resolution); a
    LLaVA processor resizes every image to one size, so its count is the same for all."""

    def __init__(self, processor, dummy_image):
        self.processor = processor
        self.dummy = dummy_image
        self._encode = lru_cache(maxsize=4096)(self._encode_uncached)
        self._expansion: dict = {}  # image size → image-token count (None: the fast path does not match)

    def _processor_ids(self, text: str, size: tuple[int, int] | None) -> list[int]:
        # Through the processor, so the image placeholder expands to the model's image-token count.
        from PIL import Image

        image = self.dummy if size is None or size == self.dummy.size else Image.new("RGB", size)
        out = self.processor(text=[text], images=[image], return_tensors=None)
        ids = out["input_ids"][0]
        return list(ids.tolist() if hasattr(ids, "tolist") else ids)

    def _tokenizer_ids(self, text: str, n: int) -> list[int]:
        token = image_token_of(self.processor)
        return list(self.processor.tokenizer(text.replace(token, token * n))["input_ids"])

    def _ids(self, text: str, size: tuple[int, int] | None) -> list[int]:
        """The processor's ids without processing an image each time: LLaVA's and Qwen2-VL's processors
        expand the placeholder to `image_token × n` and tokenize, and n depends only on the image's size —
        so n is read once per size from the processor and the result checked against it on that first
        text; where it differs (another processor), every text goes through the processor."""
        if size not in self._expansion:
            ids = self._processor_ids(text, size)
            token = image_token_of(self.processor)
            n = None
            if token is not None and getattr(self.processor, "tokenizer", None) is not None and text.count(token) == 1:
                n = ids.count(self.processor.tokenizer.convert_tokens_to_ids(token))
                if n < 1 or self._tokenizer_ids(text, n) != ids:
                    n = None
            self._expansion[size] = n
            return ids
        n = self._expansion[size]
        return self._processor_ids(text, size) if n is None else self._tokenizer_ids(text, n)

    def _encode_uncached(self, prompt: str, answer: str, size) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if size == TEXT_ONLY:  # no image in the conversation: the tokenizer alone
            prefix, full = training_text(self.processor, prompt, answer, image=False)
            tok = self.processor.tokenizer
            ids, n_prefix = list(tok(full)["input_ids"]), len(tok(prefix)["input_ids"])
        else:
            prefix, full = training_text(self.processor, prompt, answer)
            ids, n_prefix = self._ids(full, size), len(self._ids(prefix, size))
        labels = [IGNORE_INDEX] * n_prefix + ids[n_prefix:]  # loss on the answer tokens only
        return tuple(ids), tuple(labels)

    def encode(self, prompt: str, answer: str, size: tuple[int, int] | None = None
               ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(ids, labels) for an image of `size` (width, height; None: the dummy image's)."""
        return self._encode(prompt, answer, size)

    def encode_text(self, prompt: str, answer: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(ids, labels) of a conversation without an image (smol's text-only instruction turns)."""
        return self._encode(prompt, answer, TEXT_ONLY)


def collate(batch: list[tuple[tuple[int, ...], tuple[int, ...]]], pad_id: int):
    """Right-pad ids/labels of one batch into tensors for teacher-forced training."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        attention[row, : len(ids)] = 1
    return input_ids, labels, attention


def mm_token_types(processor, input_ids) -> dict:
    """The per-token modality ids a processor adds beside input_ids (Qwen2-VL's `mm_token_type_ids`, which
    its M-RoPE needs), for ids mfcli batched itself; {} for processors that add none (LLaVA)."""
    if not getattr(processor, "return_mm_token_type_ids", False):
        return {}
    import torch

    return {"mm_token_type_ids": torch.tensor(processor.create_mm_token_type_ids(input_ids.tolist()))}


def generation_inputs(processor, images, prompts, *, pixel_values=None) -> dict:
    """The processor's left-padded inputs for a batch of (image, prompt) (CPU tensors); `images` None
    and no `pixel_values`: the prompts are asked without an image (the `text` kind).

    `pixel_values` (already processed) replaces `images`; the processor still expands the image
    placeholders, from small stand-in images."""
    from PIL import Image

    tok = processor.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"
    text_only = images is None and pixel_values is None
    if pixel_values is not None:
        images = [Image.new("RGB", (8, 8))] * len(prompts)
    try:
        texts = [generation_text(processor, p, image=not text_only) for p in prompts]
        inputs = (processor(text=texts, return_tensors="pt", padding=True) if text_only else
                  processor(text=texts, images=list(images), return_tensors="pt", padding=True))
    finally:
        tok.padding_side = side
    if pixel_values is not None:  # a tensor, or the image processor's outputs (Qwen2-VL: + image_grid_thw)
        inputs.update(pixel_values if isinstance(pixel_values, dict) else {"pixel_values": pixel_values})
    return dict(inputs)


def generate_from_inputs(model, processor, inputs: dict, *, max_new_tokens: int = 16,
                         **generate_kwargs) -> list[str]:
    """Greedy answers from `generation_inputs`' batch; every row continues from its own last token.
    `generate_kwargs` go to `model.generate` (the watch's `synced_gpus` under FSDP)."""
    import torch

    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    tok = processor.tokenizer
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, **generate_kwargs)
    new = out[:, inputs["input_ids"].shape[1]:]
    return [s.strip() for s in tok.batch_decode(new, skip_special_tokens=True)]


def generate_answers(model, processor, images, prompts, *, max_new_tokens: int = 16, pixel_values=None,
                     **generate_kwargs) -> list[str]:
    """Greedy answers for a batch, left-padded so every row continues from its own last token
    (generation_inputs, then generate_from_inputs)."""
    inputs = generation_inputs(processor, images, prompts, pixel_values=pixel_values)
    return generate_from_inputs(model, processor, inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
