"""Where each architecture family keeps its parts. Adding a family is one entry in FAMILIES.

Everything downstream (finetune, tailor, rank) asks this map for the vision tower, the projector and
the decoder layers instead of hard-coding attribute paths, so one table covers every family.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mfcli.errors import MfcliError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # config.model_type values this entry covers
    vision_tower: str  # attribute path from the *ForConditionalGeneration model
    projector: str  # vision -> language connector (LLaVA's "adapter")
    decoder_layers: str  # the language model's ModuleList of decoder layers
    final_norm: str = "model.language_model.norm"  # applied after the last decoder layer
    embeddings: str = "model.language_model.embed_tokens"  # the token embeddings
    lm_head: str = "lm_head"

    def module(self, model, part: str):
        obj = model
        for attr in getattr(self, part).split("."):
            obj = getattr(obj, attr)
        return obj

    def prefix(self, part: str) -> str:
        """The parameter-name prefix of a part, as it appears in state_dict / safetensors keys."""
        return getattr(self, part) + "."


FAMILIES: dict[str, Family] = {f.name: f for f in (
    # LLaVA-1.5 and the tiny built-in model (transformers >= 4.52 nests parts under `model.`)
    Family("llava", ("llava",), "model.vision_tower", "model.multi_modal_projector",
           "model.language_model.layers"),
    Family("llava_next", ("llava_next",), "model.vision_tower", "model.multi_modal_projector",
           "model.language_model.layers"),
    # Qwen2-VL: the "projector" is the patch merger inside the visual module
    Family("qwen2_vl", ("qwen2_vl",), "model.visual", "model.visual.merger", "model.language_model.layers"),
)}


def family_of(config) -> Family:
    model_type = getattr(config, "model_type", None)
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    known = sorted(t for f in FAMILIES.values() for t in f.model_types)
    raise MfcliError(f"model type '{model_type}' is not a supported family (known: {', '.join(known)}).",
                     "Add an entry to mfcli.models.families.FAMILIES.")


# Wrapper names that differ between a model's module paths and its checkpoint keys: transformers 5 nests
# LLaVA's parts under `model.` (model.language_model.layers.0...) while hub checkpoints keep the older
# `language_model.model.layers.0...`; Qwen2-VL's hub files say `model.layers` and `visual.`, transformers
# 5 `model.language_model.layers` and `model.visual.`; peft adds `base_model.`.
WRAPPERS = frozenset({"model", "language_model", "base_model"})


def canonical_name(name: str) -> str:
    """A parameter name both module paths and checkpoint keys agree on (the wrappers dropped)."""
    return ".".join(p for p in name.split(".") if p not in WRAPPERS)


def one_layer_model(config):
    """The model with a single decoder layer: vision tower, projector, embeddings, norms, head, and
    rotary/position buffers built for real; `tailor` streams the real layers through layer 0's place."""
    from transformers import AutoModelForImageTextToText

    cfg = copy.deepcopy(config)
    cfg.text_config.num_hidden_layers = 1
    return AutoModelForImageTextToText.from_config(cfg).eval()
