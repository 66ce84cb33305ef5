"""CLIP dual-encoder features, normalised, across transformers versions (v5 returns output objects)."""

from __future__ import annotations


def _tensor(out):
    return out if hasattr(out, "norm") else out.pooler_output


def text_features(clip, input_ids, attention_mask=None):
    import torch

    return torch.nn.functional.normalize(_tensor(clip.get_text_features(input_ids=input_ids,
                                                                        attention_mask=attention_mask)), dim=-1)


def image_features(clip, pixel_values):
    import torch

    return torch.nn.functional.normalize(_tensor(clip.get_image_features(pixel_values=pixel_values)), dim=-1)
