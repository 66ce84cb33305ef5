"""The built-in tiny LLaVA: the LLaVA recipe in miniature, fully offline and deterministic.

(a) contrastively pre-train a tiny CLIP (vision + text towers) on the image-label data of *all*
    built-in classification tasks and the captions of `scene-objects`, as CLIP saw the web before LLaVA
    existed;
(b) assemble a LlavaForConditionalGeneration from that vision tower, a tiny Llama decoder and a
    byte-level BPE tokenizer trained with `tokenizers` (zoo/vocab.py);
(c) align the projector on image captions (LLaVA stage 1). Unlike LLaVA's, our decoder starts
    random, so this stage trains the decoder too; the vision tower stays frozen throughout;
(d) instruction-tune on the *pre-trained tasks* only — the classification tasks in varied phrasings
    (EMT's fine-tuning question and EMT's prompt, each verbatim or varied: phrasings.py), `scene-vqa` in
    LLaVA-1.5's short-answer form (its examples drawn `vqa_practice` times as often) and `scene-objects`
    with its caption prompt — so target tasks stay unseen and later fine-tuning has something to forget.

The conversation puts the image after the instruction, next to the answer (vocab.CHAT_TEMPLATE says why).

Recipe 2 added the scene tasks (VQA and captioning) and their words to the vocabulary; recipe 3 replaced
the word-level tokenizer with a byte-level BPE, so any text round-trips; recipe 4 added the `icons`
classification task (silhouettes in Animal-MNIST's style) and the varied phrasings; recipe 5 moved the
image next to the answer, added position questions to `scene-vqa` and gave that task more practice;
recipe 6 gave `scene-vqa` four times the scenes (7,200), batched examples by length and spent the time
that saved on more instruction steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mfcli.data import prompts
from mfcli.data.tasks import PRETRAINED, TASKS, split_indices
from mfcli.eval.labels import exact_correct
from mfcli.eval.metrics.caption import tokenize
from mfcli.eval.metrics.vqa import vqa_accuracy
from mfcli.io.checkpoint import Manifest, write_checkpoint
from mfcli.models.clip import image_features, text_features
from mfcli.zoo.fingerprint import BUILD_THREADS, describe_build
from mfcli.kinds import CAPTION, CLASSIFICATION, VQA
from mfcli.models.chat import Encoder, IGNORE_INDEX, collate, generate_answers, mm_token_types
from mfcli.train.schedule import warmup_cosine
from mfcli.zoo.phrasings import Phrasing, distractor_pool
from mfcli.zoo.vocab import BOS, CHAT_TEMPLATE, EOS, IMAGE, PAD, build_tokenizer, english_words


@dataclass(frozen=True)
class TinyRecipe:
    version: str = "6"  # bump on any change below (or to the tasks or the chat template): builds are cached by it
    seed: int = 0
    image_size: int = 24  # 28×28 silhouettes keep their shape at 24; digits/shapes upsample
    patch_size: int = 6  # 4×4 = 16 image tokens: the decoder's sequence stays short
    feature_layer: int = -2  # the projector reads the penultimate vision layer, as LLaVA-1.5 does
    vision_width: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    text_width: int = 64  # CLIP text tower
    text_layers: int = 2
    projection_dim: int = 64
    lm_width: int = 128  # METHODS.md §6: 2 layers × 128 reached 94 % on digits from scratch
    lm_layers: int = 2
    lm_heads: int = 4
    lm_mlp: int = 256
    clip_steps: int = 800
    clip_batch: int = 128
    clip_lr: float = 2e-3
    align_steps: int = 200  # (c) captions
    instruct_steps: int = 3800  # (d) instructions
    # (d) scene-vqa's examples drawn this many times as often as one example of another task: its
    # lookups ("Which shape is red?") bind colour to shape and learn slowest (docs/results.md)
    vqa_practice: int = 2
    batch: int = 32
    length_groups: int = 4  # (c), (d): batches of similar length (train_lm); ungrouped, a third of tokens were padding
    lr: float = 1e-3  # from scratch at this width; AdamW, warm-up then cosine
    warmup: float = 0.05
    eval_fraction: float = 0.2  # held-out split == `prepare`'s default split, so tiny never trained on it
    split_seed: int = 0
    max_eval: int = 0  # cap held-out examples per task when measuring (0 = all)


CAPTION_QUESTION = "Describe the image briefly."

# What `mfcli finetune tiny` uses when no flag says otherwise (mfcli.json "finetune_defaults"). LLaVA's
# 2e-5 barely moves a model this small and randomly initialised; these learn a target task in 3 epochs
# (docs/results.md, "Forgetting"; docs/methods.md, "What a model recommends to `finetune`"). LoRA at
# LLaVA's r 128 would be wider than tiny's layers.
FINETUNE_DEFAULTS = {
    "full": {"lr": 5e-4},
    "lastn": {"lr": 5e-4},
    "linear": {"lr": 1e-3},
    "lora": {"lr": 5e-4, "projector_lr": 5e-4, "lora_r": 16, "lora_alpha": 32},
    "mdgd": {"lr": 5e-4},
    "mdgd-gm": {"lr": 5e-4},
}


def _pixels(image_processor, images: np.ndarray, chunk: int = 2048):
    """One row per image: LLaVA's (3, H, W) pixels, or Qwen2-VL's patches of that image (patches, dims)."""
    import torch
    from PIL import Image

    out = []
    for i in range(0, len(images), chunk):
        batch = [Image.fromarray(a) for a in images[i:i + chunk]]
        pix = image_processor(images=batch, return_tensors="pt")["pixel_values"]
        out.append(pix.reshape(len(batch), -1, pix.shape[-1]) if pix.dim() == 2 else pix)  # Qwen: flat patches
    return torch.cat(out)


def llava_inputs(pixels) -> dict:
    """Model inputs for a batch of `_pixels` rows (the LLaVA layout: the rows as they are)."""
    return {"pixel_values": pixels}


class _Data:
    """Every task's images as pixel tensors, with the fixed train / held-out split; `ids` are label ids
    (classification) or scenes.QA items (vqa, caption)."""

    def __init__(self, recipe, image_processor):
        self.tasks = {}
        for name, task in TASKS.items():
            images, ids = task.load()
            train, held = split_indices(len(ids), recipe.eval_fraction, recipe.split_seed)
            self.tasks[name] = dict(task=task, pixels=_pixels(image_processor, images), ids=ids,
                                    train=train, held=held)

    def of_kind(self, kind: str) -> dict[str, dict]:
        return {n: d for n, d in self.tasks.items() if d["task"].kind == kind}

    def texts(self) -> list[str]:
        """Every text of every built-in task (targets too: their words exist, their tasks are unseen)."""
        out = [CAPTION_QUESTION, "USER", ":", "ASSISTANT", prompts.CAPTION_PROMPT]
        for d in self.tasks.values():
            t = d["task"]
            if t.kind == CLASSIFICATION:
                out += [prompts.emt_prompt(t.labels, t.noun), prompts.train_question(t.noun)]
                for label in t.labels:
                    out += [prompts.train_answer(t.noun, label), prompts.clip_prompt(t.noun, label)]
            else:
                out += [_scene_prompt(t, qa) for qa in d["ids"]] + [r for qa in d["ids"] for r in qa.references]
        return out


def _scene_prompt(task, qa) -> str:
    """The prompt `prepare` writes for a scene record (data/prepare.py): LLaVA-1.5's forms."""
    return prompts.vqa_prompt(qa.question) if task.kind == VQA else task.prompt


def progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="building tiny", unit="step", disable=not enabled, leave=False,
                dynamic_ncols=True)


def train_clip(recipe: TinyRecipe, data: _Data, bar):
    """(a) CLIP pre-training: cross-entropy of each image against every class prompt of every task."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    tok = build_tokenizer(data.texts(), add_bos=True, add_eos=True)
    vision = dict(hidden_size=recipe.vision_width, intermediate_size=recipe.vision_width * 2,
                  num_hidden_layers=recipe.vision_layers, num_attention_heads=recipe.vision_heads,
                  image_size=recipe.image_size, patch_size=recipe.patch_size)
    text = dict(vocab_size=len(tok), hidden_size=recipe.text_width, intermediate_size=recipe.text_width * 2,
                num_hidden_layers=recipe.text_layers, num_attention_heads=4, max_position_embeddings=64,
                pad_token_id=tok.convert_tokens_to_ids(PAD), bos_token_id=tok.convert_tokens_to_ids(BOS),
                eos_token_id=tok.convert_tokens_to_ids(EOS))
    clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=recipe.projection_dim))

    # class prompts: one row per distinct prompt (digits and counting share 'the number: "3"'); a
    # pre-trained caption task's images are matched to their own caption among the captions in the batch
    # (CLIP's in-batch contrast), so a step encodes ~30 class prompts plus a batch's captions, not all
    prompt_of, target_of = {}, {}
    for name, d in data.of_kind(CLASSIFICATION).items():
        t = d["task"]
        prompt_of[name] = [prompts.clip_prompt(t.noun, label) for label in t.labels]
        target_of[name] = lambda d, i, name=name: prompt_of[name][int(d["ids"][i])]
    for name, d in data.of_kind(CAPTION).items():
        if d["task"].role == PRETRAINED:
            prompt_of[name] = sorted({qa.references[0] for qa in d["ids"]})
            target_of[name] = lambda d, i: d["ids"][i].references[0]
    classes = sorted({p for n, ps in prompt_of.items() if data.tasks[n]["task"].kind == CLASSIFICATION for p in ps})
    distinct = classes + sorted({p for ps in prompt_of.values() for p in ps} - set(classes))
    row = {p: i for i, p in enumerate(distinct)}
    enc = tok(distinct, padding=True, return_tensors="pt")

    rng = np.random.default_rng(recipe.seed)
    names = list(prompt_of)
    opt = torch.optim.AdamW(clip.parameters(), lr=recipe.clip_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(recipe.clip_steps, recipe.warmup))
    clip.train()
    for _ in range(recipe.clip_steps):
        task_pick = rng.integers(len(names), size=recipe.clip_batch)
        pix, wanted = [], []
        for k in task_pick:
            d = data.tasks[names[k]]
            i = int(d["train"][rng.integers(len(d["train"]))])
            pix.append(d["pixels"][i])
            wanted.append(row[target_of[names[k]](d, i)])
        rows = list(range(len(classes))) + sorted(set(wanted) - set(range(len(classes))))
        target = [rows.index(w) for w in wanted]
        enc_step = {k: v[rows] for k, v in enc.items()}
        out = clip(input_ids=enc_step["input_ids"], attention_mask=enc_step["attention_mask"],
                   pixel_values=torch.stack(pix))
        loss = torch.nn.functional.cross_entropy(out.logits_per_image, torch.tensor(target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update(1)
        bar.set_postfix(stage="clip", loss=f"{loss.item():.3f}")
    clip.eval()
    return clip, tok, prompt_of


def _subset(held: np.ndarray, max_eval: int) -> np.ndarray:
    """An evenly strided subset, so a cap keeps every class (tasks are stored class by class)."""
    if not max_eval or len(held) <= max_eval:
        return held
    return held[np.linspace(0, len(held) - 1, max_eval).round().astype(int)]


def clip_zero_shot(clip, tok, data: _Data, prompt_of, max_eval: int) -> dict[str, float]:
    import torch

    acc = {}
    with torch.inference_mode():
        for name in prompt_of:
            d = data.tasks[name]
            held = _subset(d["held"], max_eval)
            enc = tok(prompt_of[name], padding=True, return_tensors="pt")
            text = text_features(clip, enc.input_ids, enc.attention_mask)
            image = image_features(clip, d["pixels"][held])
            pred = (image @ text.T).argmax(-1).numpy()
            if d["task"].kind == CLASSIFICATION:
                truth = d["ids"][held]
            else:  # caption retrieval among the task's distinct captions
                truth = np.array([prompt_of[name].index(d["ids"][i].references[0]) for i in held])
            acc[name] = float((pred == truth).mean())
    return acc


def assemble_llava(recipe: TinyRecipe, clip, data: _Data, image_processor):
    """(b) LLaVA from the CLIP vision tower, a fresh Llama decoder and a byte-level BPE tokenizer."""
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok = build_tokenizer(data.texts(), add_bos=True, add_eos=False)
    ids = {t: tok.convert_tokens_to_ids(t) for t in (PAD, BOS, EOS, IMAGE)}
    n_image_tokens = (recipe.image_size // recipe.patch_size) ** 2
    text = LlamaConfig(vocab_size=len(tok), hidden_size=recipe.lm_width, intermediate_size=recipe.lm_mlp,
                       num_hidden_layers=recipe.lm_layers, num_attention_heads=recipe.lm_heads,
                       num_key_value_heads=recipe.lm_heads, max_position_embeddings=256,
                       pad_token_id=ids[PAD], bos_token_id=ids[BOS], eos_token_id=ids[EOS],
                       tie_word_embeddings=False)
    config = LlavaConfig(vision_config=clip.config.vision_config.to_dict(), text_config=text.to_dict(),
                         image_token_index=ids[IMAGE], image_seq_length=n_image_tokens,
                         vision_feature_select_strategy="default", vision_feature_layer=recipe.feature_layer,
                         pad_token_id=ids[PAD])
    config.vision_config.model_type = "clip_vision_model"
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(clip.vision_model.state_dict())
    model.generation_config.pad_token_id = ids[PAD]
    model.generation_config.eos_token_id = ids[EOS]
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, chat_template=CHAT_TEMPLATE,
                               patch_size=recipe.patch_size, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1)
    return model, processor


def _frozen_vision(name: str) -> bool:
    return "vision_tower" not in name  # LLaVA: the CLIP tower stays as CLIP trained it


def length_grouped_batches(examples, enc, batch: int, groups: int, rng):
    """Endless (picks, encoded) batches drawn uniformly from `examples`, a prompt drawn per use.

    With `groups` > 1, `groups` batches are drawn at once, sorted by length, cut into `groups` batches of
    similar length and served in random order — HF Trainer's `group_by_length`. The examples seen are the
    same draws; what changes is which share a batch, and so the padding: a short scene question batched
    with a long label list pads to the list's length (a third of all tokens were padding at `groups` 1)."""
    while True:
        picks = [examples[int(i)] for i in rng.integers(len(examples), size=batch * groups)]
        asked = [p(rng) if callable(p) else p for _, _, p, _ in picks]
        encoded = [enc.encode(p, a) for p, (_, _, _, a) in zip(asked, picks)]
        if groups == 1:
            yield picks, encoded
            continue
        order = sorted(range(len(picks)), key=lambda k: len(encoded[k][0]))
        for g in rng.permutation(groups):
            rows = order[g * batch:(g + 1) * batch]
            yield [picks[k] for k in rows], [encoded[k] for k in rows]


def text_batches(conversations, enc, batch: int, rng):
    """Endless batches of (prompt, answer) conversations without an image, drawn uniformly."""
    while True:
        yield [enc.encode_text(*conversations[int(i)]) for i in rng.integers(len(conversations), size=batch)]


def train_lm(model, processor, data: _Data, examples, steps: int, recipe, bar, stage: str, seed: int, *,
             image_inputs=llava_inputs, trainable=_frozen_vision, length_groups: int = 1, log=None,
             log_every: int = 50, texts=(), text_every: int = 0):
    """Teacher-forced training of the `trainable` parameters on (task, index, prompt, answer) examples;
    `log` (a build without a bar) gets a line every `log_every` steps.

    `texts`, (prompt, answer) conversations without an image, add one text-only batch after every
    `text_every` image batches — LLaVA-1.5's mixture, batched by modality as its
    `group_by_modality_length` does — drawn from a generator of their own, so the image batches are
    those of a run without them."""
    import torch
    from PIL import Image

    enc = Encoder(processor, Image.new("RGB", (recipe.image_size, recipe.image_size)))
    pad = processor.tokenizer.pad_token_id
    params = [p for n, p in model.named_parameters() if trainable(n)]
    for n, p in model.named_parameters():
        p.requires_grad_(trainable(n))
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, recipe.warmup))
    rng = np.random.default_rng(seed)
    batches = length_grouped_batches(examples, enc, recipe.batch, length_groups, rng)
    mixed = bool(texts) and text_every > 0
    text_stream = text_batches(texts, enc, recipe.batch, np.random.default_rng([seed, 1])) if mixed else None
    model.train()
    for step in range(steps):
        if mixed and step % (text_every + 1) == text_every:
            input_ids, labels, attention = collate(next(text_stream), pad)
            inputs = {}
        else:
            picks, encoded = next(batches)
            input_ids, labels, attention = collate(encoded, pad)
            inputs = image_inputs(torch.stack([data.tasks[t]["pixels"][i] for t, i, _, _ in picks]))
        hidden = model.model(input_ids=input_ids, attention_mask=attention, **inputs,
                             **mm_token_types(processor, input_ids)).last_hidden_state
        loss = answer_loss(model.lm_head, hidden, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        bar.update(1)
        bar.set_postfix(stage=stage, loss=f"{loss.item():.3f}")
        if log is not None and (step + 1) % log_every == 0:  # a disabled bar does not count: the step does
            log(f"    {stage}: step {step + 1} of {steps}, loss {loss.item():.3f}")
    model.eval()


def answer_loss(lm_head, hidden, labels):
    """The causal-LM loss on the answer tokens (mean over them, as transformers' own), with the head
    applied to those positions only: a prompt is 60-odd tokens, an answer 5-10, and over a 4,096-token
    vocabulary the full logits would double the cost of a step."""
    import torch

    wanted = labels[:, 1:] != IGNORE_INDEX  # position t predicts token t+1
    logits = lm_head(hidden[:, :-1][wanted])
    return torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][wanted])


def examples(data: _Data, kinds: tuple[str, ...], vqa_practice: int = 1
             ) -> list[tuple[str, int, str | Callable[..., str], str]]:
    """(task, image index, prompt, answer) of every pre-trained task's training images, in the `kinds`
    asked: "caption" (classification images captioned with their CLIP prompt, scene-objects' captions),
    "emt" and "question" (the two fixed EMT forms), "varied" (phrasings.Phrasing: a prompt drawn at
    every use), "scene" (the scene tasks' own prompts; a VQA task's `vqa_practice` times each)."""
    phrasing = {}
    if "varied" in kinds:  # one Phrasing per (task, family), shared by that task's images
        words = english_words()
        phrasing = {(n, f): Phrasing(f, d["task"].noun, d["task"].labels,
                                     distractor_pool(d["task"].noun, d["task"].labels, words))
                    for n, d in data.of_kind(CLASSIFICATION).items() for f in ("question", "list")}
    out = []
    for name, d in data.tasks.items():
        t = d["task"]
        if t.role != PRETRAINED:
            continue
        for i in d["train"]:
            if t.kind != CLASSIFICATION:
                qa = d["ids"][i]
                if "scene" in kinds or ("caption" in kinds and t.kind == CAPTION):
                    out.append((name, int(i), _scene_prompt(t, qa), qa.references[0]))
                continue
            label = t.labels[int(d["ids"][i])]
            if "caption" in kinds:
                out.append((name, int(i), CAPTION_QUESTION, prompts.clip_prompt(t.noun, label)))
            if "emt" in kinds:
                out.append((name, int(i), prompts.emt_prompt(t.labels, t.noun), prompts.train_answer(t.noun, label)))
            if "question" in kinds:
                out.append((name, int(i), prompts.train_question(t.noun), prompts.train_answer(t.noun, label)))
            if "varied" in kinds:  # one of each family per image, re-drawn at every use (phrasings.py)
                for family in ("question", "list"):
                    out.append((name, int(i), phrasing[name, family], prompts.train_answer(t.noun, label)))
    if "scene" in kinds:
        out += [e for e in out if data.tasks[e[0]]["task"].kind == VQA] * (vqa_practice - 1)
    return out


def emt_accuracy(model, processor, data: _Data, max_eval: int, batch: int = 64, image_inputs=llava_inputs
                 ) -> dict[str, float]:
    """Each task's held-out score: exact-match accuracy with the EMT prompt (classification), VQA
    accuracy (vqa), the share of captions equal to a reference after tokenisation (caption; `mfcli
    judge` scores captions with CIDEr-D, which needs the optional pycocoevalcap)."""
    acc = {}
    for name, d in data.tasks.items():
        t = d["task"]
        held = _subset(d["held"], max_eval)
        answers = []
        for s in range(0, len(held), batch):
            idx = held[s:s + batch]
            if t.kind == CLASSIFICATION:
                asked = [prompts.emt_prompt(t.labels, t.noun)] * len(idx)
            else:
                asked = [_scene_prompt(t, d["ids"][i]) for i in idx]
            answers += generate_answers(model, processor, None, asked, max_new_tokens=24 if t.kind == CAPTION else 12,
                                        pixel_values=image_inputs(d["pixels"][idx]))
        if t.kind == CLASSIFICATION:
            hits = sum(exact_correct(a, t.labels[int(d["ids"][i])], t.labels) for a, i in zip(answers, held))
            acc[name] = hits / max(1, len(held))
        elif t.kind == VQA:
            acc[name] = float(np.mean([vqa_accuracy(a, d["ids"][i].references) for a, i in zip(answers, held)]))
        else:
            acc[name] = float(np.mean([tokenize(a) in {tokenize(r) for r in d["ids"][i].references}
                                       for a, i in zip(answers, held)]))
    return acc


def build_tiny(llava_out: Path, clip_out: Path, recipe: TinyRecipe = TinyRecipe(), *, progress: bool = True,
               log=None) -> dict:
    """Build both checkpoints and return the measured figures (also stored in each manifest)."""
    import torch
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar (or stage lines) is the progress report
    t0 = time.time()
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(BUILD_THREADS)  # fixed: the thread count changes the weights (zoo/fingerprint.py)
    s = recipe.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": s, "width": s})
    data = _Data(recipe, image_processor)

    total = recipe.clip_steps + recipe.align_steps + recipe.instruct_steps
    stage = (lambda text: None) if progress or log is None else log  # stage lines when no bar is shown
    with progress_bar(total, progress) as bar:
        stage(f"  (a) CLIP pre-training, {recipe.clip_steps} steps")
        clip, clip_tok, prompt_of = train_clip(recipe, data, bar)
        clip_acc = clip_zero_shot(clip, clip_tok, data, prompt_of, recipe.max_eval)
        model, processor = assemble_llava(recipe, clip, data, image_processor)
        stage(f"  (c) projector alignment, {recipe.align_steps} steps")
        train_lm(model, processor, data, examples(data, ("caption",)), recipe.align_steps, recipe, bar,
                 "align", recipe.seed + 1, length_groups=recipe.length_groups)
        stage(f"  (d) instruction tuning, {recipe.instruct_steps} steps")
        train_lm(model, processor, data, examples(data, ("varied", "scene"), recipe.vqa_practice),
                 recipe.instruct_steps, recipe, bar, "instruct", recipe.seed + 2, length_groups=recipe.length_groups)
    stage("  measuring held-out EMT accuracy")
    acc = emt_accuracy(model, processor, data, recipe.max_eval)
    seconds = time.time() - t0
    roles = {n: t.role for n, t in TASKS.items()}
    metrics = {"emt_accuracy": acc, "clip_zero_shot_accuracy": clip_acc, "roles": roles,
               "build_seconds": round(seconds, 1)}

    clip_processor = CLIPProcessor(image_processor=image_processor, tokenizer=clip_tok)
    options = asdict(recipe)
    write_checkpoint(clip_out, lambda d: (clip.save_pretrained(d), clip_processor.save_pretrained(d)),
                     Manifest("zoo tiny-clip", options=options, seed=recipe.seed,
                              metrics={"clip_zero_shot_accuracy": clip_acc, "roles": roles}), overwrite=True,
                     describe=describe_build("tiny-clip", recipe.version, options))
    write_checkpoint(llava_out, lambda d: (model.save_pretrained(d), processor.save_pretrained(d)),
                     Manifest("zoo tiny", options=options, seed=recipe.seed, metrics=metrics,
                              finetune_defaults=FINETUNE_DEFAULTS), overwrite=True,
                     describe=describe_build("tiny", recipe.version, options))
    return metrics
