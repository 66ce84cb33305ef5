"""Calibration for `tailor`: which data, which records, and the batches and gradients made from them."""

from __future__ import annotations

from pathlib import Path

import torch

from mfcli.errors import MfcliError
from mfcli.io.checkpoint import read_manifest
from mfcli.models.chat import IGNORE_INDEX
from mfcli.train.data import Batcher, load_examples


def calibration_data(sft_path: str, opts) -> str:
    """Calibration train.jsonl: --data, or the training data recorded in SFT's manifest."""
    if opts.data:
        return opts.data
    manifest = read_manifest(sft_path)
    files = [d["path"] for d in (manifest.data if manifest else []) if str(d.get("path", "")).endswith(".jsonl")]
    if not files:
        raise MfcliError(f"no calibration data: {sft_path} records no training data in mfcli.json.",
                         "Pass --data path/to/train.jsonl (the target task's training data).")
    if not Path(files[0]).is_file():
        raise MfcliError(f"the calibration data recorded for {sft_path} ({files[0]}) is gone.", "Pass --data.")
    return files[0]


def calibration_sample(n_total: int, n: int, seed: int) -> list[int]:
    """Indices of a seeded random sample of n records (the file's first n could all be one class)."""
    import numpy as np

    if n >= n_total:
        return list(range(n_total))
    return sorted(np.random.default_rng(seed).choice(n_total, size=n, replace=False).tolist())


def calibration_batches(processor, data: str | list[str], n: int, seed: int, batch_size: int = 8):
    """A seeded sample of n examples of `data` (one train.jsonl, or several pooled), in batches."""
    examples, _ = load_examples([data] if isinstance(data, str) else list(data))
    examples = [examples[i] for i in calibration_sample(len(examples), n, seed)]
    batcher = Batcher(processor)
    return [batcher(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]


def loss_gradients(model, batches, names: set[str]) -> dict[str, torch.Tensor]:
    """Grafting's signal: ∇ of the target-task loss at the fine-tuned weights."""
    params = {n: p for n, p in model.named_parameters() if n in names}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    for b in batches:
        model(**b).loss.backward()
    return {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for n, p in params.items()}


FISHER_ESTIMATES = {
    "empirical": "the squared gradient of log p of the data's own answer tokens",
    "sampled": "the true Fisher, as Matena & Raffel's code takes it: the expectation under the model's own "
               "predictions, estimated by one answer token sampled from the model at each answer position",
}


def fisher_diagonal(model, batches, names: set[str], estimate: str = "empirical",
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """Fisher merging's weights (Matena & Raffel, 2022): the diagonal Fisher, the mean over examples of
    (∇θ log p(y | image, prompt))², one example per batch (squares of per-example gradients, not of their
    sum). log p is summed over the answer positions (labels != IGNORE_INDEX). y: the data's answer tokens
    (`empirical`), or at each answer position a token drawn from the model's own distribution there,
    given the true prefix (`sampled`: E_y~p[(∇ log p(y))²], the paper's Fisher, unbiased with one draw —
    the cross terms between positions vanish in expectation since E_y[∇ log p(y)] = 0)."""
    if estimate not in FISHER_ESTIMATES:
        raise ValueError(f"unknown Fisher estimate '{estimate}'")
    gen = torch.Generator().manual_seed(seed)
    params = {n: p for n, p in model.named_parameters() if n in names}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    total = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    count = 0
    for b in batches:
        if b["input_ids"].shape[0] != 1:
            raise ValueError("fisher_diagonal needs one example per batch")
        model.zero_grad(set_to_none=True)
        logits = model(**{k: v for k, v in b.items() if k != "labels"}).logits
        labels = b["labels"][:, 1:]
        if estimate == "sampled":
            probs = torch.softmax(logits[:, :-1].detach().float(), dim=-1)
            drawn = torch.multinomial(probs.reshape(-1, probs.shape[-1]).cpu(), 1, generator=gen).view(labels.shape)
            labels = torch.where(labels != IGNORE_INDEX, drawn.to(labels.device), labels)
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
        nll.backward()  # ∇(−log p): its square is the square of ∇ log p
        for n, p in params.items():
            if p.grad is not None:
                total[n] += p.grad.detach().float() ** 2
        count += 1
    model.zero_grad(set_to_none=True)
    return {n: t / max(count, 1) for n, t in total.items()}


def normalise_fishers(fisher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One model's Fisher divided by its L2 norm over every parameter, as both reference codes do by
    default (Matena & Raffel's `normalize_fishers`, FusionBench's `normalize_fisher_weight`): a model whose
    Fisher is 100× larger overall no longer outweighs the others everywhere; its relative weight per
    parameter is what counts."""
    norm = torch.sqrt(sum((f.double() ** 2).sum() for f in fisher.values()))
    if norm == 0:
        return fisher
    return {k: (f.double() / norm).float() for k, f in fisher.items()}
