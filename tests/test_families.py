"""Issue 10: a second architecture family end to end. The same chain — prepare → emt → judge → finetune
(lora, full, mdgd) → tailor → emt — runs unchanged on the built-in LLaVA and on the built-in Qwen2-VL,
whose projector lives inside its vision module, whose images become merged patches with a grid, and whose
positions are M-RoPE (mm_token_type_ids)."""

import json

import pytest
import torch
from safetensors import safe_open

from conftest import run_cli

QWEN_PICO = dict(steps=60, vision_width=32, lm_width=64, lm_mlp=128, batch=16, max_eval=24)


@pytest.fixture(scope="module")
def qwen(pico):
    """A pico tiny-qwen2vl where `tiny-qwen2vl` resolves (the test cache)."""
    from mfcli.zoo import qwen2vl_dir
    from mfcli.zoo.tiny_qwen2vl import TinyQwen2VLRecipe, build_tiny_qwen2vl

    out = qwen2vl_dir()
    build_tiny_qwen2vl(out, TinyQwen2VLRecipe(**QWEN_PICO), progress=False)
    return out


def _tensors(d):
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            out.update({k: h.get_tensor(k) for k in h.keys()})
    return out


def test_zoo_writes_tiny_qwen2vl(qwen, tmp_path):
    r = run_cli("zoo", "tiny-qwen2vl", "--out", tmp_path / "q")
    assert r.returncode == 0, r.stderr
    assert "tiny-qwen2vl: EMT exact-match accuracy" in r.stderr and "digits" in r.stderr
    manifest = json.loads((tmp_path / "q" / "mfcli.json").read_text())
    assert manifest["command"] == "zoo tiny-qwen2vl" and manifest["finetune_defaults"]["full"]["lr"] == 5e-4


def test_qwen_loads_with_its_own_classes_and_processor(qwen):
    from PIL import Image

    from mfcli.models.chat import Encoder, mm_token_types
    from mfcli.models.families import family_of
    from mfcli.models.load import load_mllm

    loaded = load_mllm("tiny-qwen2vl", device="cpu")
    assert type(loaded.model).__name__ == "Qwen2VLForConditionalGeneration"
    assert family_of(loaded.model.config).name == "qwen2_vl"
    # saved as Qwen2VLProcessor, so transformers' AutoProcessor takes it where torchvision is installed
    assert json.loads((qwen / "processor_config.json").read_text())["processor_class"] == "Qwen2VLProcessor"
    proc = loaded.processor
    # mfcli's own batching (cached ids + derived modality ids) equals the processor's output
    image = Image.new("RGB", (24, 24))
    enc = Encoder(proc, image)
    ids, labels = enc.encode("What is the object in the image?", "The object is a(n) cat.")
    from mfcli.models.chat import training_text

    _, full = training_text(proc, "What is the object in the image?", "The object is a(n) cat.")
    want = proc(text=[full], images=[image], return_tensors="pt")
    assert list(ids) == want["input_ids"][0].tolist()
    assert torch.equal(mm_token_types(proc, want["input_ids"])["mm_token_type_ids"], want["mm_token_type_ids"])
    assert (want["input_ids"] == proc.image_token_id).sum() == 9  # 6×6 patches merged 2×2
    assert proc.tokenizer.decode([t for t, y in zip(ids, labels) if y != -100]).startswith("The object is a(n) cat.")


@pytest.mark.parametrize("model", ["tiny", "tiny-qwen2vl"])
def test_encoder_ids_are_the_processors_for_every_text_and_size(pico, qwen, model):
    # the Encoder reads the image-token count from the processor once per image size and tokenizes the
    # rest itself: every later text, and a size whose count differs (Qwen2-VL), must still give the
    # processor's own ids
    from PIL import Image

    from mfcli.models.chat import Encoder, training_text
    from mfcli.models.load import load_mllm

    proc = load_mllm(model, device="cpu").processor
    enc = Encoder(proc, Image.new("RGB", (24, 24)))
    pairs = [("What is the object in the image?", "The object is a(n) cat."),
             ("What is the object in the image? Answer with one word.", "crème brûlée"),
             ("Which of these is it: golden_retriever, tabby, 7?\nAnswer briefly.", "The object is a(n) tabby."),
             ("How many dots?", "3")]
    sizes = [None, (24, 24), (48, 36)] if model == "tiny-qwen2vl" else [None]
    for size in sizes:
        for prompt, answer in pairs:
            ids, labels = enc.encode(prompt, answer, size)
            prefix, full = training_text(proc, prompt, answer)
            image = Image.new("RGB", size or (24, 24))
            want = proc(text=[full], images=[image], return_tensors="pt")["input_ids"][0].tolist()
            n_prefix = len(proc(text=[prefix], images=[image], return_tensors="pt")["input_ids"][0])
            assert list(ids) == want, (model, size, prompt)
            assert list(labels) == [-100] * n_prefix + want[n_prefix:]
    if model == "tiny-qwen2vl":  # the sizes really do differ in image tokens, so the check above has teeth
        assert enc._expansion[(48, 36)] != enc._expansion[(24, 24)]


@pytest.mark.slow  # the whole chain, in subprocesses, on both families
@pytest.mark.parametrize("model", ["tiny", "tiny-qwen2vl"])
def test_the_whole_chain_runs_unchanged_on_both_families(pico, qwen, tmp_path, model):
    from mfcli.models.families import canonical_name, family_of
    from mfcli.models.load import load_config, resolve_model_path

    base = resolve_model_path(model)
    family = family_of(load_config(base))
    data = tmp_path / "data"
    for task, limit in (("digits", 40), ("shapes", 20)):
        r = run_cli("prepare", task, "--out", data / task, "--limit", limit)
        assert r.returncode == 0, r.stderr
    r = run_cli("emt", model, data / "digits", data / "shapes", "--out", tmp_path / "base.jsonl", "--batch-size", "8")
    assert r.returncode == 0, r.stderr
    r = run_cli("judge", tmp_path / "base.jsonl", "--judge", "exact", "--out", tmp_path / "base.judged.jsonl")
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "base.judged.jsonl").read_text().splitlines()) == 12

    pre = _tensors(__import__("pathlib").Path(base))
    vision, projector = canonical_name(family.prefix("vision_tower")), canonical_name(family.prefix("projector"))
    decoder = canonical_name(family.prefix("decoder_layers"))
    for method in ("lora", "full", "mdgd"):
        run = tmp_path / method
        r = run_cli("finetune", model, data / "digits", "--method", method, "--epochs", "1", "--batch-size", "8",
                    "--out", run)
        assert r.returncode == 0, (method, r.stderr)
        if method == "lora":
            keys = list(_tensors(run / "epoch-1"))
            assert any("lora_A" in k for k in keys)
            assert all(canonical_name(k.replace("base_model.model.", "")).startswith((decoder, projector))
                       for k in keys if "lora_" in k)  # adapters only in the language model's layers
            continue
        after = _tensors(run / "epoch-1")
        changed = {canonical_name(k) for k in pre if not torch.equal(pre[k], after[k])}
        # the vision tower stays frozen, the projector and the decoder train — for Qwen2-VL the projector
        # (the merger) sits inside the vision module, so a LLaVA-shaped rule would freeze it
        assert any(n.startswith(projector) for n in changed), method
        assert any(n.startswith(decoder) for n in changed), method
        assert not any(n.startswith(vision) and not n.startswith(projector) for n in changed), method

    r = run_cli("tailor", model, tmp_path / "full" / "epoch-1", "--sparsity", "0.1", "--nsamples", "8",
                "--out", tmp_path / "tailored")
    assert r.returncode == 0, r.stderr
    tailored = _tensors(tmp_path / "tailored")
    assert set(map(canonical_name, tailored)) == set(map(canonical_name, pre))
    for method in ("regmean", "fisher"):  # the data-aware merges, PRE's side on a task it knows
        r = run_cli("tailor", model, tmp_path / "full" / "epoch-1", "--method", method, "--pre-data", data / "shapes",
                    "--nsamples", "8", "--out", tmp_path / method)
        assert r.returncode == 0, (method, r.stderr)
        merged = _tensors(tmp_path / method)
        assert set(map(canonical_name, merged)) == set(map(canonical_name, pre))
        moved = [k for k in merged if not torch.equal(merged[k], pre[k])]
        assert moved and all(torch.isfinite(merged[k]).all() for k in moved), method
    r = run_cli("emt", tmp_path / "tailored", data / "digits", "--out", tmp_path / "t.jsonl", "--batch-size", "8",
                "--judge", "exact")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "t.summary.json").read_text())
    assert summary["tasks"]["digits"]["n"] == 8
