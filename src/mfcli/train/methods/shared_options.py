"""Option groups several fine-tuning methods read, each declared once: a method's options class is one
of these or extends one (`class DowserOptions(LayersOptions)`), so `--layers` is one flag, read by every
method whose class has it and refused for the others (train/methods/contract.py lets two methods share
an option only when it comes from the same class).
"""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.params import option


@dataclass(frozen=True)
class LayersOptions:
    """The methods that train the last N decoder blocks (lastn, spider, dowser, mdgd)."""

    # None: the model's recommendation, else the method's share of the blocks (Model Tailor 12/32, MDGD 6/32)
    layers: int | None = option(None, "lastn, spider, dowser, mdgd: train the last N decoder layers (default: the "
                                      "model's recommendation, else lastn, spider, dowser 12/32 and mdgd 6/32 of "
                                      "them, at least 1).")

    def __post_init__(self):
        if self.layers is not None and self.layers < 1:
            raise UsageError("--layers must be at least 1.")


@dataclass(frozen=True)
class LoraOptions:
    """LoRA's options (lora and every method built on it)."""

    projector_lr: float | None = option(None, "lora: projector lr (default: the model's recommendation, else "
                                              "LLaVA's 2e-5).")  # LLaVA's mm_projector_lr
    lora_r: int | None = option(None, "LoRA rank (default: the model's recommendation, else LLaVA's 128).")
    lora_alpha: int | None = option(None, "LoRA alpha (default: the model's recommendation, else LLaVA's 256).")
    lora_dropout: float = option(0.05, "LoRA dropout (LLaVA: 0.05).")
    lora_targets: str = option("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                               "Comma-separated module names, matched only inside the language model.")  # every LLM linear
    merge: bool = option(False, "lora: also write DIR/merged, a full checkpoint.")

    def __post_init__(self):
        if (self.lora_r is not None and self.lora_r < 1) or (self.lora_alpha is not None and self.lora_alpha <= 0):
            raise UsageError("--lora-r must be at least 1 and --lora-alpha positive.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise UsageError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}.")
