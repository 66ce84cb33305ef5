"""Component tuning (issue 42; "How to Teach LMMs New Skills", code jessemelpolio/LMM_CL): exactly the
named parameters change and, bit for bit, nothing else — norms, biases the recipe excludes, down_proj
under mlp-gate-up, the projector and the vision tower included."""

import pytest
from safetensors.torch import load_file

from conftest import run_cli
from mfcli.train.methods.parts import RECIPES, pattern_names, recipe_names

LAYERS = "model.language_model.layers."
QWEN_LIKE = [f"{LAYERS}{i}.{m}.{p}" for i in (0, 1) for m in
             ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm")
             for p in (("weight", "bias") if m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
                       else ("weight",))] + ["model.multi_modal_projector.linear_1.weight", "lm_head.weight"]


def test_the_recipes_name_the_papers_parameters():
    sa = recipe_names(QWEN_LIKE, LAYERS, "sa-proj")
    assert len(sa) == 2 * (3 * 2 + 1)  # q, k, v with their biases (Qwen2), o without one, in both layers
    assert all(".self_attn." in n for n in sa) and any(n.endswith("q_proj.bias") for n in sa)
    gate_up = recipe_names(QWEN_LIKE, LAYERS, "mlp-gate-up")
    assert sorted({n.split(".")[-2] for n in gate_up}) == ["gate_proj", "up_proj"] and len(gate_up) == 4
    qkv = recipe_names(QWEN_LIKE, LAYERS, "sa-qkv")
    assert not any("o_proj" in n for n in qkv) and len(qkv) == 12  # the ablation as named, not as its script ran
    assert pattern_names(QWEN_LIKE, "*.v_proj.*,lm_head.*") == [n for n in QWEN_LIKE if ".v_proj." in n] + ["lm_head.weight"]
    assert set(RECIPES) == {"sa-proj", "mlp-gate-up", "sa-qkv"}


@pytest.fixture(scope="module")
def digits(pico, tmp_path_factory):
    out = tmp_path_factory.mktemp("parts") / "digits"
    assert run_cli("prepare", "digits", "--out", out, "--limit", "40").returncode == 0
    return out


@pytest.mark.parametrize("flags, trained", [
    (["--parts-recipe", "sa-proj"], ("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "self_attn.o_proj.")),
    (["--parts-recipe", "mlp-gate-up"], ("mlp.gate_proj.", "mlp.up_proj.")),
    (["--parts", "*.layers.1.self_attn.v_proj.*"], ("layers.1.self_attn.v_proj.",)),
])
def test_exactly_the_named_parameters_change(pico, digits, tmp_path, flags, trained):
    out = tmp_path / "run"
    r = run_cli("finetune", "tiny", digits, "--method", "parts", *flags, "--lr", "1e-3", "--max-steps", "2",
                "--batch-size", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    base = load_file(pico["tiny"] / "model.safetensors")
    after = load_file(next(out.glob("*/model.safetensors")))
    changed = {k for k in base if not (base[k] == after[k]).all()}
    expected = {k for k in base if k.startswith("language_model.model.layers.") and any(t in k for t in trained)} or \
        {k for k in base if any(t in k for t in trained)}
    assert expected and changed == expected  # every named tensor moved; bit for bit nothing else did


def test_parts_options_are_refused_elsewhere_and_checked(pico, digits, tmp_path):
    r = run_cli("finetune", "tiny", digits, "--method", "full", "--parts-recipe", "mlp-gate-up", "--out", tmp_path / "a")
    assert r.returncode == 2 and "--parts-recipe does nothing with --method full" in r.stderr
    r = run_cli("finetune", "tiny", digits, "--method", "parts", "--parts-recipe", "sa_proj", "--out", tmp_path / "b")
    assert r.returncode == 2 and "unknown --parts-recipe" in r.stderr and "sa-proj" in r.stderr
    r = run_cli("finetune", "tiny", digits, "--method", "parts", "--parts", "*.nothing.*", "--max-steps", "1",
                "--out", tmp_path / "c")
    assert r.returncode == 1 and "matches no parameter" in r.stderr and "Traceback" not in r.stderr
