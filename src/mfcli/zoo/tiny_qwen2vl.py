"""The built-in tiny Qwen2-VL: a second architecture family, built offline like `tiny`.

Qwen2-VL differs from LLaVA where mfcli must not assume LLaVA: its vision module (`model.visual`) holds
the projector (the patch merger), images become a variable number of merged patches (`image_grid_thw`)
and positions are 3-D (M-RoPE). The recipe is one stage: vision tower, merger and decoder trained
together from scratch on the pre-trained tasks' instructions, in the same forms `tiny` sees (no CLIP
stage: Qwen2-VL's ViT is not CLIP's, so tiny's CLIP cannot seed it). Target tasks stay unseen.

Its processor is Qwen2-VL's own (image processor, tokenizer, ChatML template), saved so that a machine
with torchvision loads it with AutoProcessor; without torchvision mfcli loads the image-only stand-in
(models/processors.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mfcli.io.checkpoint import Manifest, write_checkpoint
from mfcli.data.tasks import TASKS
from mfcli.models.processors import ImageOnlyQwen2VLProcessor
from mfcli.zoo.fingerprint import BUILD_THREADS, describe_build
from mfcli.zoo.tiny import FINETUNE_DEFAULTS, _Data, emt_accuracy, examples, progress_bar, train_lm
from mfcli.zoo.vocab import PAD, build_tokenizer

# Qwen2-VL's markers, by the attribute names its processor reads
QWEN_SPECIALS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                 "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>",
                 "im_start_token": "<|im_start|>", "im_end_token": "<|im_end|>"}

# Qwen2-VL's ChatML conversation form, without its default system turn (the sequence stays short)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyQwen2VLRecipe:
    version: str = "4"  # bump on any change below (or to the tasks it trains on): cached builds are keyed by it
    seed: int = 0
    image_size: int = 24
    patch_size: int = 4  # 6×6 patches of 4×4 …
    merge_size: int = 2  # … merged 2×2 (Qwen2-VL's merger) into 9 image tokens
    vision_width: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    lm_width: int = 128
    lm_layers: int = 2
    lm_heads: int = 4
    lm_mlp: int = 256
    steps: int = 2400
    batch: int = 32
    lr: float = 1e-3
    warmup: float = 0.05
    eval_fraction: float = 0.2  # == `prepare`'s default split: never trained on what it is measured on
    split_seed: int = 0
    max_eval: int = 0


def image_processor(recipe: TinyQwen2VLRecipe):
    from transformers import Qwen2VLImageProcessorPil

    pixels = recipe.image_size ** 2  # min = max: every image becomes image_size² (the tasks are that size)
    return Qwen2VLImageProcessorPil(min_pixels=pixels, max_pixels=pixels, patch_size=recipe.patch_size,
                                    merge_size=recipe.merge_size, temporal_patch_size=2)


def qwen_inputs(recipe: TinyQwen2VLRecipe):
    """Model inputs for a batch of per-image patch rows: Qwen2-VL takes them flat, with each image's grid."""
    import torch

    grid = recipe.image_size // recipe.patch_size

    def inputs(pixels) -> dict:
        return {"pixel_values": pixels.reshape(-1, pixels.shape[-1]),
                "image_grid_thw": torch.tensor([[1, grid, grid]] * len(pixels))}
    return inputs


def assemble(recipe: TinyQwen2VLRecipe, data: _Data, ip):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    tok = build_tokenizer(data.texts(), add_bos=False, add_eos=False, extra_specials=QWEN_SPECIALS)
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in QWEN_SPECIALS.items()}
    pad, freqs = tok.convert_tokens_to_ids(PAD), recipe.lm_width // recipe.lm_heads // 2
    hw = (freqs - freqs // 4) // 2  # M-RoPE's split of the rotary frequencies: Qwen2-VL's 16/24/24 of 64
    text = dict(vocab_size=len(tok), hidden_size=recipe.lm_width, intermediate_size=recipe.lm_mlp,
                num_hidden_layers=recipe.lm_layers, num_attention_heads=recipe.lm_heads,
                num_key_value_heads=recipe.lm_heads, max_position_embeddings=256, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                 "mrope_section": [freqs - 2 * hw, hw, hw]},
                pad_token_id=pad, bos_token_id=None, eos_token_id=ids["im_end_token"])
    vision = dict(depth=recipe.vision_layers, embed_dim=recipe.vision_width, hidden_size=recipe.lm_width,
                  num_heads=recipe.vision_heads, mlp_ratio=2, patch_size=recipe.patch_size,
                  spatial_merge_size=recipe.merge_size, temporal_patch_size=2, in_channels=3)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["image_token"],
                           video_token_id=ids["video_token"], vision_start_token_id=ids["vision_start_token"],
                           vision_end_token_id=ids["vision_end_token"], tie_word_embeddings=False)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = pad
    model.generation_config.eos_token_id = ids["im_end_token"]
    model.generation_config.bos_token_id = None
    processor = ImageOnlyQwen2VLProcessor(image_processor=ip, tokenizer=tok, chat_template=CHAT_TEMPLATE)
    return model, processor


def build_tiny_qwen2vl(out: Path, recipe: TinyQwen2VLRecipe = TinyQwen2VLRecipe(), *, progress: bool = True,
                       log=None) -> dict:
    """Build the checkpoint and return its measured figures (also stored in its manifest)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    t0 = time.time()
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(BUILD_THREADS)  # fixed: the thread count changes the weights (zoo/fingerprint.py)
    ip = image_processor(recipe)
    data = _Data(recipe, ip)
    model, processor = assemble(recipe, data, ip)
    inputs = qwen_inputs(recipe)
    stage = (lambda text: None) if progress or log is None else log
    with progress_bar(recipe.steps, progress) as bar:
        stage(f"  instruction tuning from scratch, {recipe.steps} steps")
        train_lm(model, processor, data, examples(data, ("caption", "emt", "question", "scene")), recipe.steps,
                 recipe, bar, "instruct", recipe.seed + 2, image_inputs=inputs, trainable=lambda n: True)
    stage("  measuring held-out EMT accuracy")
    acc = emt_accuracy(model, processor, data, recipe.max_eval, image_inputs=inputs)
    roles = {n: t.role for n, t in TASKS.items()}
    metrics = {"emt_accuracy": acc, "roles": roles, "build_seconds": round(time.time() - t0, 1)}
    write_checkpoint(out, lambda d: (model.save_pretrained(d), processor.save_pretrained(d)),
                     Manifest("zoo tiny-qwen2vl", options=asdict(recipe), seed=recipe.seed, metrics=metrics,
                              finetune_defaults=FINETUNE_DEFAULTS), overwrite=True,
                     describe=describe_build("tiny-qwen2vl", recipe.version, asdict(recipe)))
    return metrics
