"""Fine-tuning options: one dataclass, every default with the reason for it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mfcli.errors import UsageError

# Options a model may recommend for itself (its mfcli.json "finetune_defaults", per method): the ones whose
# good value depends on the model's size and pre-training, not on the user's data or machine.
RECOMMENDABLE = ("lr", "projector_lr", "lora_r", "lora_alpha", "layers")
LLAVA_LORA = {"lora_r": 128, "lora_alpha": 256}  # LLaVA-1.5's LoRA rank and alpha


@dataclass(frozen=True)
class TrainOptions:
    method: str = "lora"
    epochs: int = 3  # EMT fine-tunes LLaVA for 3 epochs and evaluates after each
    # None below: the model's recommendation (with_model_defaults), else LLaVA-1.5's value
    lr: float | None = None  # LLaVA: LoRA 2e-4, others 2e-5 (the method's default_lr)
    projector_lr: float | None = None  # LLaVA: mm_projector_lr 2e-5 for lora; else = lr
    batch_size: int = 16
    grad_accum: int = 1
    max_steps: int | None = None  # stop after this many optimiser steps (overrides epochs)
    warmup_ratio: float = 0.03  # LLaVA's warm-up ratio
    weight_decay: float = 0.0  # LLaVA trains without weight decay
    max_grad_norm: float = 1.0
    seed: int = 0
    save_steps: int | None = None  # also checkpoint every N optimiser steps
    gradient_checkpointing: bool = False
    layers: int | None = None  # lastn/mdgd: train the last N decoder layers (Tailor: 12/32, MDGD: 6/32)
    train_vision: bool = False  # full: also train the vision tower
    lora_r: int | None = None  # LLaVA: 128
    lora_alpha: int | None = None  # LLaVA: 256
    lora_dropout: float = 0.05
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"  # every LLM linear
    merge: bool = False  # lora: also write a merged full checkpoint
    lambda_visual: float = 1.0  # mdgd: weight of the visual alignment gradient (Eq. 8-9); 0 = "w/o visual align"
    mdgd_variant: str = "paper"  # mdgd: Eq. 8's projection onto g⊥_pre, or ours: pcgrad | decoupled
    mask_ratio: float = 0.1  # mdgd-gm: fraction of parameters updated (Eq. 10-11; MDGD-GM ~10 %)
    projection: str = "global"  # mdgd: inner products over all trainable parameters, or per tensor
    mask_refresh: int = 1  # mdgd-gm: re-select the mask every N steps (Fig. 3b: every step; 0: once, at the first)
    fsdp: bool = False  # shard weights, gradients and AdamW state over processes (also: accelerate's FSDP config)
    device: str = "auto"
    dtype: str = "auto"  # bf16 on CUDA, fp32 on CPU

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise UsageError("--epochs, --batch-size and --grad-accum must be at least 1.")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError("--max-steps must be at least 1.")
        if self.projection not in ("global", "per-tensor"):
            raise UsageError(f"--projection must be global or per-tensor, got '{self.projection}'.")
        from mfcli.train.methods.mdgd import VARIANTS

        if self.mdgd_variant not in VARIANTS:
            raise UsageError(f"--mdgd-variant must be one of {', '.join(VARIANTS)}, got '{self.mdgd_variant}'.")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise UsageError(f"--mask-ratio must be in (0, 1], got {self.mask_ratio}.")
        if self.mask_refresh < 0:
            raise UsageError("--mask-refresh must be 0 (select once) or a positive step count.")
        if self.layers is not None and self.layers < 1:
            raise UsageError("--layers must be at least 1.")


def with_model_defaults(opts: TrainOptions, manifest: dict | None) -> tuple[TrainOptions, dict]:
    """Fill the options the user left unset from the model's recommendation for `opts.method`, then
    LLaVA's LoRA rank/alpha; return the options and what the model supplied (for the log line).

    A checkpoint carries its recommendation in mfcli.json as {"finetune_defaults": {method: {option:
    value}}}; the built-in tiny does (models/zoo/tiny.py), so `mfcli finetune tiny DATA --method full`
    learns with no flags while real checkpoints keep LLaVA's values.
    """
    table = (manifest or {}).get("finetune_defaults") or {}
    wanted = table.get(opts.method) or {}
    unknown = sorted(set(wanted) - set(RECOMMENDABLE))
    if unknown:
        raise UsageError(f"the model's mfcli.json recommends unknown option(s) {', '.join(unknown)} for "
                         f"{opts.method}.", f"finetune_defaults may set {', '.join(RECOMMENDABLE)}.")
    supplied = {k: v for k, v in wanted.items() if getattr(opts, k) is None}
    opts = replace(opts, **supplied)
    return replace(opts, **{k: v for k, v in LLAVA_LORA.items() if getattr(opts, k) is None}), supplied
