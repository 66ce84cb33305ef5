"""`--scope paper` counts what Model Tailor counts: on LLaVA-1.5-7B's configuration (built on the meta
device, no weights), fine-tuned on the projector and the last 12 decoder layers (§5.1), the scope holds
the paper's 2.7B tailored parameters and keeps its 273M at ρ = 10 % (Table 2's #Params), within 1 %."""

import pytest
import torch

from mfcli.merge.scope import in_scope, scope_count
from mfcli.models.families import FAMILIES


def llava_15_7b():
    """LLaVA-1.5-7B's configuration values (llava-hf/llava-1.5-7b-hf): CLIP ViT-L/14 at 336 px, a
    two-layer GELU projector, Vicuna-7B (Llama) with a 32,064-entry vocabulary."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768)
    text = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=32064, tie_word_embeddings=False)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=32000,
                         projector_hidden_act="gelu", vision_feature_layer=-2)
    with torch.device("meta"):
        return LlavaForConditionalGeneration(config)


def test_scope_paper_reproduces_the_paper_s_count_on_llava_15_7b():
    model = llava_15_7b()
    family = FAMILIES["llava"]
    # the paper's fine-tune: the projector and the final 12 of 32 layers; embeddings and lm_head counted
    trained = lambda n: ("multi_modal_projector" in n or "embed_tokens" in n or n.startswith("lm_head")  # noqa: E731
                         or any(f"layers.{i}." in n and "language_model" in n for i in range(20, 32)))
    tailored = scope_count(model.named_parameters(), "paper", family, trained)
    assert tailored == pytest.approx(2.7e9, rel=0.01)
    assert round(0.1 * tailored) == pytest.approx(273e6, rel=0.01)
    # the decoder layers and the projector alone are 2.45B: the count the old `--scope paper` gave
    no_ends = scope_count(model.named_parameters(), "paper", family,
                          lambda n: trained(n) and "embed_tokens" not in n and not n.startswith("lm_head"))
    assert no_ends == pytest.approx(2.45e9, rel=0.01) and abs(no_ends / 2.7e9 - 1) > 0.05
    # the vision tower is outside the paper scope, inside `all`
    assert not in_scope("model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", "paper", family)
    assert in_scope("model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", "all", family)
    assert not in_scope("model.language_model.norm.weight", "paper", family)


def test_scope_names_match_checkpoint_keys_of_both_families():
    """Hub checkpoints spell the same parts differently (language_model.model.layers…, visual.merger…)."""
    llava, qwen = FAMILIES["llava"], FAMILIES["qwen2_vl"]
    for key in ("language_model.model.embed_tokens.weight", "language_model.lm_head.weight",
                "multi_modal_projector.linear_2.weight", "language_model.model.layers.3.mlp.up_proj.weight"):
        assert in_scope(key, "paper", llava), key
    for key in ("model.embed_tokens.weight", "lm_head.weight", "visual.merger.mlp.0.weight", "model.layers.0.mlp.up_proj.weight"):
        assert in_scope(key, "paper", qwen), key
    assert not in_scope("visual.blocks.0.mlp.fc1.weight", "paper", qwen)
