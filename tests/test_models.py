import json

import pytest
import torch

from conftest import run_cli
from mfcli.data.tasks import TASKS
from mfcli.errors import MfcliError
from mfcli.models.families import FAMILIES, family_of


def test_pico_build_reports_and_loads_with_plain_transformers(pico):
    from transformers import AutoModelForImageTextToText, AutoProcessor, CLIPModel

    m = pico["metrics"]
    assert set(m["emt_accuracy"]) == set(TASKS)  # every built-in task, of every kind, is measured
    model = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
    processor = AutoProcessor.from_pretrained(pico["tiny"])
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert type(processor).__name__ == "LlavaProcessor"
    clip = CLIPModel.from_pretrained(pico["tiny-clip"])
    AutoProcessor.from_pretrained(pico["tiny-clip"])
    # the LLaVA vision tower *is* the CLIP vision tower (recipe step b)
    a = model.model.vision_tower.state_dict()
    b = clip.vision_model.state_dict()
    assert all((a[k] == b[k]).all() for k in b)


def test_load_mllm_generates(pico):
    from PIL import Image

    from mfcli.models.chat import generate_answers
    from mfcli.models.load import load_mllm

    loaded = load_mllm("tiny", device="cpu")
    assert loaded.family.name == "llava"
    images = [Image.new("RGB", (24, 24), c) for c in ("white", "black", "red")]
    prompts_ = ["What is the number in the image? <image>"] * 3
    out = generate_answers(loaded.model, loaded.processor, images, prompts_, max_new_tokens=6)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    # batch size must not change greedy outputs
    one = [generate_answers(loaded.model, loaded.processor, [im], prompts_[:1], max_new_tokens=6)[0]
           for im in images]
    assert one == out


def test_family_map_resolves_parts(pico):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
    fam = family_of(model.config)
    assert type(fam.module(model, "vision_tower")).__name__ == "CLIPVisionModel"
    assert type(fam.module(model, "projector")).__name__ == "LlavaMultiModalProjector"
    assert len(fam.module(model, "decoder_layers")) == model.config.text_config.num_hidden_layers
    names = dict(model.named_parameters())
    assert any(n.startswith(fam.prefix("projector")) for n in names)


def test_second_family_qwen2_vl_built_offline():
    from transformers import AutoModelForImageTextToText, Qwen2VLConfig

    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=1,
                         rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
        vision_config=dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2))
    model = AutoModelForImageTextToText.from_config(cfg)
    fam = family_of(model.config)
    assert fam is FAMILIES["qwen2_vl"]
    assert len(fam.module(model, "decoder_layers")) == 2
    assert fam.module(model, "projector") is model.model.visual.merger


def test_unknown_family():
    class Cfg:
        model_type = "bert"

    with pytest.raises(MfcliError, match="not a supported family"):
        family_of(Cfg())


def test_refuses_pickle_and_missing_weights(tmp_path, pico):
    import shutil

    from mfcli.models.load import resolve_model_path

    d = tmp_path / "pickled"
    shutil.copytree(pico["tiny"], d)
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    with pytest.raises(MfcliError, match="pickle"):
        resolve_model_path(str(d))
    assert resolve_model_path(str(d), allow_pickle=True) == str(d)
    (d / "pytorch_model.bin").unlink()
    with pytest.raises(MfcliError, match="no model weights"):
        resolve_model_path(str(d))


def test_hub_id_offline_fails_at_once(no_network):
    from mfcli.models.load import resolve_model_path

    with pytest.raises(MfcliError, match="offline"):
        resolve_model_path("llava-hf/llava-1.5-7b-hf")


def test_zoo_cli_writes_checkpoint_with_manifest(tmp_path, pico):
    r = run_cli("zoo", "tiny", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert "digits" in r.stderr and "%" in r.stderr  # per-task accuracy printed
    assert (tmp_path / "t" / "mfcli.json").is_file() and (tmp_path / "t" / "model.safetensors").is_file()
    r = run_cli("zoo", "tiny", "--out", tmp_path / "t")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run_cli("zoo", "tinyy", "--out", tmp_path / "u")
    assert r.returncode == 2 and "Did you mean 'tiny'" in r.stderr  # a usage error, as click's own


def test_adapter_dir_loads_base_plus_scaled_ba(pico, tmp_path):
    """A LoRA adapter dir loads as W = W_base + (alpha/r)·B·A (peft's LoRA), with B ≠ 0 so an adapter
    that is never applied cannot pass for an untrained one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from mfcli.models.load import load_mllm

    base = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    r, alpha = 4, 12
    peft_model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=r".*language_model.*\.q_proj"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:  # peft starts B at zero; a trained adapter's B is not
                p.copy_(torch.randn(p.shape, generator=g))
    ab = {n.split(".lora_")[0].replace("base_model.model.", ""): {} for n, _ in peft_model.named_parameters() if "lora_" in n}
    for n, p in peft_model.named_parameters():
        if "lora_" in n:
            ab[n.split(".lora_")[0].replace("base_model.model.", "")][n.split(".lora_")[1][0]] = p.detach().clone()
    assert ab
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(pico["tiny"])
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))

    merged = load_mllm(str(tmp_path / "adapter"), device="cpu", dtype="float32").model.state_dict()
    for module, w in ab.items():
        want = base_sd[module + ".weight"] + (alpha / r) * w["B"] @ w["A"]
        assert torch.allclose(merged[module + ".weight"], want, atol=1e-5), module
        assert not torch.allclose(want, base_sd[module + ".weight"])
    untouched = [k for k in base_sd if "q_proj" not in k]
    assert all(torch.equal(merged[k], base_sd[k]) for k in untouched)


def test_tinys_template_puts_the_image_at_one_distance_from_the_answer_whatever_the_instruction(pico):
    """Recipe 5: the image sits between the instruction and the answer, so a fine-tune through EMT's short
    question reads the image at the distance the EMT prompt does (docs/methods.md; vocab.CHAT_TEMPLATE)."""
    from mfcli.data.prompts import emt_prompt, train_question
    from mfcli.models.chat import Encoder
    from mfcli.models.load import load_mllm
    from PIL import Image

    processor = load_mllm("tiny", device="cpu").processor
    enc = Encoder(processor, Image.new("RGB", (24, 24)))
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    labels = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
    answer = "The object is a(n) cow."
    after_image = {}
    for prompt in (train_question("object"), emt_prompt(labels), "Look at the image carefully. " * 5):
        ids, lab = enc.encode(prompt, answer)
        first_answer = next(i for i, t in enumerate(lab) if t != -100)
        last_image = max(i for i, t in enumerate(ids) if t == image_id)
        after_image[prompt] = first_answer - last_image
        assert ids.count(image_id) > 1 and last_image < first_answer
        assert processor.tokenizer.decode(ids[first_answer:]).strip().startswith(answer)
    assert len(set(after_image.values())) == 1, after_image


def test_prompts_keep_their_line_breaks_and_drop_the_image_placeholder(pico):
    from mfcli.data.prompts import vqa_prompt
    from mfcli.models.chat import generation_text, prompt_text
    from mfcli.models.load import load_mllm

    asked = vqa_prompt("What colour is the circle?")
    assert prompt_text("<image>\n" + asked) == "What colour is the circle?\nAnswer the question using a single word or phrase."
    assert prompt_text("What is the number in the image? <image>") == "What is the number in the image?"
    assert prompt_text("  a   b \n\n c ") == "a b\nc"
    # LLaVA-1.5's template carries the line break through, and tiny's byte-level tokenizer (recipe 3) keeps
    # it as a token of its own, as real LLaVA's does: the model sees the break, not a space
    processor = load_mllm("tiny", device="cpu").processor
    text = generation_text(processor, asked)
    assert "circle?\nAnswer the question" in text
    ids = processor.tokenizer(text).input_ids
    assert "circle?\nAnswer the question" in processor.tokenizer.decode(ids)
    one_line = generation_text(processor, asked.replace("\n", " "))
    assert ids != processor.tokenizer(one_line).input_ids


def test_builder_answer_loss_is_transformers_causal_lm_loss(pico):
    """tiny's builder applies the head to answer positions only (zoo/tiny.py answer_loss); the loss
    must be exactly the model's own, shift and masking included."""
    from transformers import AutoModelForImageTextToText

    import torch

    from mfcli.zoo.tiny import answer_loss

    model = AutoModelForImageTextToText.from_pretrained(pico["tiny"]).eval()
    torch.manual_seed(0)
    ids = torch.randint(10, 100, (3, 30))
    ids[:, 2:2 + model.config.image_seq_length] = model.config.image_token_index
    labels = ids.clone()
    labels[:, :22] = -100
    labels[1, 26:] = -100  # a shorter answer
    size = model.config.vision_config.image_size
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=torch.randn(3, 3, size, size))
    with torch.no_grad():
        want = model(**inputs, labels=labels).loss
        got = answer_loss(model.lm_head, model.model(**inputs).last_hidden_state, labels)
    assert torch.allclose(got, want, atol=1e-6), (got, want)
