"""`mfcli finetune tiny-clip DATA --method clip`: fine-tune a CLIP vision encoder (EMT §3.2, App. B.2).

Each image is scored against the CLIP prompts of its task's labels (`a photo of a {object}.`,
`a photo of the number: "{digit}".`) and trained with cross-entropy; the text tower stays frozen, so
the class embeddings are computed once. EMT used Adam, lr 1e-5, weight decay 0.001, batch 128 on
ViT-L/14; the same loop reproduces its CLIP forgetting table on `tiny-clip` (evaluate each epoch with
`mfcli emt CKPT DATA`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.io.checkpoint import Manifest, write_checkpoint
from mfcli.io.records import read_dataset_info, read_train, resolve_data_file
from mfcli.train.options import TrainOptions


def _label_sets(paths: list[Path]) -> dict[str, tuple[str, ...]]:
    """task -> label set, from dataset.json beside each train.jsonl, else the labels seen."""
    sets: dict[str, tuple[str, ...]] = {}
    for p in paths:
        info = read_dataset_info(p)
        if info is not None:
            sets[info.name] = info.labels
    return sets


def run_clip_finetune(model_spec: str, data: list[str], out: str | Path, opts: TrainOptions, *,
                      progress: bool = False) -> Path:
    import torch

    from mfcli.data.prompts import clip_prompt, noun_for
    from mfcli.models.clip import image_features, text_features
    from mfcli.models.load import load_clip, resolve_model_path
    from mfcli.train.data import Example, open_image
    from mfcli.train.log import LOG
    from mfcli.train.schedule import warmup_cosine

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MfcliError(f"{out} already holds a run.", "Choose a new --out (the clip method does not resume).")
    files = [resolve_data_file(d, "train.jsonl") for d in data]
    sets = _label_sets(files)
    examples = []
    for f in files:
        for r in read_train(f):
            labels = sets.get(r.task)
            if not labels or r.label not in labels:
                raise MfcliError(f"{f}: record '{r.id}' has no known label set (task '{r.task}').",
                                 "Use files made by `mfcli prepare` (they carry dataset.json).")
            examples.append((Example(r.id, f.parent / r.image, r.question, r.answer), r.task, labels.index(r.label)))
    torch.manual_seed(opts.seed)
    parent = resolve_model_path(model_spec)
    loaded = load_clip(parent, device=opts.device, dtype=opts.dtype)
    clip, processor = loaded.model, loaded.processor
    with torch.no_grad():
        class_emb = {}
        for task, labels in sets.items():
            noun = noun_for(labels)
            enc = processor.tokenizer([clip_prompt(noun, x) for x in labels], padding=True, return_tensors="pt")
            class_emb[task] = text_features(clip, enc["input_ids"].to(loaded.device),
                                            enc["attention_mask"].to(loaded.device))
    trainable = [p for n, p in clip.named_parameters() if n.startswith(("vision_model.", "visual_projection."))]
    for n, p in clip.named_parameters():
        p.requires_grad_(n.startswith(("vision_model.", "visual_projection.")))
    opt = torch.optim.AdamW(trainable, lr=opts.lr or 1e-5, weight_decay=0.001)  # EMT App. B.2
    steps_per_epoch = math.ceil(len(examples) / opts.batch_size)
    total = opts.max_steps or steps_per_epoch * opts.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, opts.warmup_ratio))
    scale = clip.logit_scale.exp().detach()
    out.mkdir(parents=True, exist_ok=True)
    step = 0
    clip.train()
    for epoch in range(opts.epochs):
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(opts.seed * 100003 + epoch))
        for s in range(steps_per_epoch):
            if step >= total:
                break
            t0 = time.perf_counter()
            batch = [examples[i] for i in order[s * opts.batch_size:(s + 1) * opts.batch_size].tolist()]
            pix = processor.image_processor(images=[open_image(e) for e, _, _ in batch], return_tensors="pt")
            feats = image_features(clip, pix["pixel_values"].to(loaded.device, clip.dtype))
            loss = sum(torch.nn.functional.cross_entropy(scale * feats[i:i + 1] @ class_emb[t].T,
                                                         torch.tensor([y], device=loaded.device))
                       for i, (_, t, y) in enumerate(batch)) / len(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not math.isfinite(float(loss.detach())):
                raise MfcliError(f"the loss became {float(loss.detach())} at step {step + 1}.", "Lower --lr.")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, opts.max_grad_norm))
            lr_now = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            step += 1
            with open(out / LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, "epoch": round(step / steps_per_epoch, 4),
                                    "loss": round(float(loss.detach()), 6), "lr": lr_now,
                                    "grad_norm": round(grad_norm, 6), "seconds": round(time.perf_counter() - t0, 4)})
                        + "\n")
        m = Manifest("finetune", options={"method": "clip", **asdict(opts)}, parents=[parent], seed=opts.seed,
                     metrics={"global_step": step, "epoch": epoch + 1})
        for f in files:
            m.add_data(f)
        write_checkpoint(out / f"epoch-{epoch + 1}", lambda d: (clip.save_pretrained(d), processor.save_pretrained(d)), m)
        if step >= total:
            break
    return out
