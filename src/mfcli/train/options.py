"""Fine-tuning options: one dataclass, every default with the reason for it."""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError


@dataclass(frozen=True)
class TrainOptions:
    method: str = "lora"
    epochs: int = 3  # EMT fine-tunes LLaVA for 3 epochs and evaluates after each
    lr: float | None = None  # None: the method's default (LoRA 2e-4 as LLaVA; others 2e-5)
    projector_lr: float | None = None  # None: LLaVA's mm_projector_lr 2e-5 for lora; else = lr
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
    lora_r: int = 128  # LLaVA-1.5's LoRA defaults
    lora_alpha: int = 256
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
