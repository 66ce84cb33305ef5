"""Fine-tuning options: one dataclass, every default with the reason for it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mfcli.errors import UsageError
from mfcli.params import device_option, dtype_option, option, seed_option

# Options a model may recommend for itself (its mfcli.json "finetune_defaults", per method): the ones whose
# good value depends on the model's size and pre-training, not on the user's data or machine.
RECOMMENDABLE = ("lr", "projector_lr", "lora_r", "lora_alpha", "layers")
LLAVA_LORA = {"lora_r": 128, "lora_alpha": 256}  # LLaVA-1.5's LoRA rank and alpha
# MDGD's update (train/methods/mdgd.py): the paper's Eq. 8 projection, and two of mfcli's readings
MDGD_VARIANTS = ("paper", "pcgrad", "decoupled")


@dataclass(frozen=True)
class TrainOptions:
    """Every fine-tuning option; a field made with `option` is also `mfcli finetune`'s --flag, with this help."""

    method: str = option("lora", "The fine-tuning method: one of those listed above, each with what it trains and "
                                 "the options it reads.")
    epochs: int = option(3, "Epochs (EMT: 3).")  # EMT fine-tunes LLaVA for 3 epochs and evaluates after each
    # None below: the model's recommendation (with_model_defaults), else LLaVA-1.5's value
    lr: float | None = option(None, "Learning rate (default: the model's recommendation, else LLaVA's: lora 2e-4, "
                                    "others 2e-5).")
    projector_lr: float | None = option(None, "lora: projector lr (default: the model's recommendation, else "
                                              "LLaVA's 2e-5).")  # LLaVA's mm_projector_lr; other methods: = lr
    batch_size: int = option(16, "Examples per micro-batch per process.")
    grad_accum: int = option(1, "Micro-batches per optimiser step.")
    max_steps: int | None = option(None, "Stop after N optimiser steps.")  # overrides epochs
    warmup_ratio: float = option(0.03, "Warm-up share of the steps (LLaVA: 0.03).")
    weight_decay: float = 0.0  # LLaVA trains without weight decay
    max_grad_norm: float = 1.0
    seed: int = seed_option()
    save_steps: int | None = option(None, "Also checkpoint every N steps.")
    gradient_checkpointing: bool = option(False, "Trade compute for activation memory.")
    layers: int | None = option(None, "lastn/mdgd: train the last N decoder layers (default: lastn 12/32, mdgd 6/32 "
                                      "of them, at least 1).")  # Model Tailor: 12/32, MDGD: 6/32
    train_vision: bool = option(False, "full: also train the vision tower.")
    lora_r: int | None = option(None, "LoRA rank (default: the model's recommendation, else LLaVA's 128).")
    lora_alpha: int | None = option(None, "LoRA alpha (default: the model's recommendation, else LLaVA's 256).")
    lora_dropout: float = option(0.05, "LoRA dropout (LLaVA: 0.05).")
    lora_targets: str = option("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                               "Comma-separated module names, matched only inside the language model.")  # every LLM linear
    merge: bool = option(False, "lora: also write DIR/merged, a full checkpoint.")
    # mdgd: Eq. 8-9's weight; 0 = the paper's "w/o visual align"
    lambda_visual: float = option(1.0, "mdgd: weight λ of the visual alignment gradient (L_v is a mean per element).")
    mdgd_variant: str = option("paper", "mdgd: paper (Eq. 8, project onto g⊥_pre), pcgrad (remove only the "
                                        "conflicting part) or decoupled (g⊥ as is).")  # pcgrad, decoupled: ours
    mask_ratio: float = option(0.1, "mdgd-gm: fraction of parameters updated per step.")  # Eq. 10-11; MDGD-GM ~10 %
    projection: str = option("global", "mdgd: global or per-tensor projections.")
    # Fig. 3b re-selects every step; 0 selects once, at the first
    mask_refresh: int = option(1, "mdgd-gm: re-select the mask every N steps (1: every step, 0: once).")
    fsdp: bool = option(False, "Shard weights, gradients and optimiser state over the processes of torchrun / "
                               "accelerate launch (full, lastn, linear); accelerate's FSDP config turns it on too.")
    device: str = device_option()
    dtype: str = dtype_option()
    # the method's own options (its registered options class, train/methods/contract.py): filled with its
    # defaults at the start of a run where the caller gave none
    method_options: object = None

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise UsageError("--epochs, --batch-size and --grad-accum must be at least 1.")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError("--max-steps must be at least 1.")
        if self.projection not in ("global", "per-tensor"):
            raise UsageError(f"--projection must be global or per-tensor, got '{self.projection}'.")
        if self.mdgd_variant not in MDGD_VARIANTS:
            raise UsageError(f"--mdgd-variant must be one of {', '.join(MDGD_VARIANTS)}, got '{self.mdgd_variant}'.")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise UsageError(f"--mask-ratio must be in (0, 1], got {self.mask_ratio}.")
        if self.mask_refresh < 0:
            raise UsageError("--mask-refresh must be 0 (select once) or a positive step count.")
        if self.layers is not None and self.layers < 1:
            raise UsageError("--layers must be at least 1.")


def with_model_defaults(opts: TrainOptions, recommended: dict | None) -> tuple[TrainOptions, dict]:
    """Fill the options the user left unset from the model's recommendation for `opts.method`, then
    LLaVA's LoRA rank/alpha; return the options and what the model supplied (for the log line).

    A checkpoint carries its recommendation in mfcli.json as "finetune_defaults": {method: {option:
    value}} (`recommended`, io/checkpoint.py's Manifest); the built-in tiny does (zoo/tiny.py), so
    `mfcli finetune tiny DATA --method full` learns with no flags while real checkpoints keep LLaVA's values.
    """
    wanted = (recommended or {}).get(opts.method) or {}
    unknown = sorted(set(wanted) - set(RECOMMENDABLE))
    if unknown:
        raise UsageError(f"the model's mfcli.json recommends unknown option(s) {', '.join(unknown)} for "
                         f"{opts.method}.", f"finetune_defaults may set {', '.join(RECOMMENDABLE)}.")
    supplied = {k: v for k, v in wanted.items() if getattr(opts, k) is None}
    opts = replace(opts, **supplied)
    return replace(opts, **{k: v for k, v in LLAVA_LORA.items() if getattr(opts, k) is None}), supplied
