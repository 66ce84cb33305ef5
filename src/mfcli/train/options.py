"""The fine-tuning loop's options: one dataclass, every default with the reason for it. A method's own
options (LoRA's rank, MDGD's λ, ...) are its options class's, registered with it (train/methods/); the
run carries them as `method_options`."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from mfcli.errors import UsageError
from mfcli.params import device_option, dtype_option, option, seed_option

# Options a model may recommend for itself (its mfcli.json "finetune_defaults", per method): the ones whose
# good value depends on the model's size and pre-training, not on the user's data or machine. `lr` is the
# loop's; the others belong to the methods whose options class has them.
RECOMMENDABLE = ("lr", "projector_lr", "lora_r", "lora_alpha", "layers")
# LLaVA-1.5's LoRA rank and alpha: where neither the user nor the model says
LLAVA_LORA = {"lora_r": 128, "lora_alpha": 256}


@dataclass(frozen=True)
class TrainOptions:
    """What every fine-tuning run reads; a field made with `option` is also `mfcli finetune`'s --flag,
    with this help."""

    method: str = option("lora", "The fine-tuning method: one of those listed above, each with what it trains and "
                                 "the options it reads.")
    epochs: int = option(3, "Epochs (EMT: 3).")  # EMT fine-tunes LLaVA for 3 epochs and evaluates after each
    # None below: the model's recommendation (with_model_defaults), else LLaVA-1.5's value
    lr: float | None = option(None, "Learning rate (default: the model's recommendation, else LLaVA's: lora 2e-4, "
                                    "others 2e-5).")
    batch_size: int = option(16, "Examples per micro-batch per process.")
    grad_accum: int = option(1, "Micro-batches per optimiser step.")
    max_steps: int | None = option(None, "Stop after N optimiser steps.")  # overrides epochs
    warmup_ratio: float = option(0.03, "Warm-up share of the steps (LLaVA: 0.03).")
    weight_decay: float = 0.0  # LLaVA trains without weight decay
    max_grad_norm: float = 1.0
    seed: int = seed_option()
    save_steps: int | None = option(None, "Also checkpoint every N steps.")
    gradient_checkpointing: bool = option(False, "Trade compute for activation memory.")
    fsdp: bool = option(False, "Shard weights, gradients and optimiser state over the processes of torchrun / "
                               "accelerate launch (full, lastn, linear); accelerate's FSDP config turns it on too.")
    device: str = device_option()
    dtype: str = dtype_option()
    # the method's own options (its registered options class, train/methods/contract.py): filled with its
    # defaults at the start of a run where the caller gave none; `finetune_options(method, **values)`
    # builds both from one set of keywords
    method_options: object = None

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise UsageError("--epochs, --batch-size and --grad-accum must be at least 1.")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError("--max-steps must be at least 1.")


def with_model_defaults(opts: TrainOptions, recommended: dict | None) -> tuple[TrainOptions, dict]:
    """Fill the options the user left unset from the model's recommendation for `opts.method`, then
    LLaVA's LoRA rank/alpha; return the options and what the model supplied (for the log line).
    `opts.method_options` is the method's options class, filled (contract.with_method_options).

    A checkpoint carries its recommendation in mfcli.json as "finetune_defaults": {method: {option:
    value}} (`recommended`, io/checkpoint.py's Manifest); the built-in tiny does (zoo/tiny.py), so
    `mfcli finetune tiny DATA --method full` learns with no flags while real checkpoints keep LLaVA's values.
    """
    wanted = (recommended or {}).get(opts.method) or {}
    unknown = sorted(set(wanted) - set(RECOMMENDABLE))
    own = opts.method_options
    own_names = {f.name for f in fields(own)} if own is not None else set()
    unread = sorted(set(wanted) - {"lr"} - own_names - set(unknown))
    if unknown or unread:
        raise UsageError(f"the model's mfcli.json recommends {', '.join(unknown + unread)} for {opts.method}, which "
                         "it does not read.", f"finetune_defaults may set {', '.join(RECOMMENDABLE)}, each for "
                                              "the methods that read it.")
    current = lambda k: opts.lr if k == "lr" else getattr(own, k)  # noqa: E731
    supplied = {k: v for k, v in wanted.items() if current(k) is None}
    fill = {k: v for k, v in LLAVA_LORA.items() if k in own_names and getattr(own, k) is None}
    fill.update({k: v for k, v in supplied.items() if k != "lr"})
    if fill:
        own = replace(own, **fill)
    return replace(opts, lr=supplied.get("lr", opts.lr), method_options=own), supplied
