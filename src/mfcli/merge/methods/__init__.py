"""Merge methods, one module each, behind a small registry (mergekit's shape).

A method turns one tensor's fine-tuned changes into the patch added to the pre-trained weight:

    Θ_fused = Θ_pre + patch,   patch = M ⊙ (Δ + C)  for the masking methods      (Model Tailor Eq. 3)

and declares what the streaming driver must gather for it: nothing, the calibration Hessian of each
linear layer (`hessian`), or the target-task loss gradient (`gradient`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from mfcli.merge.fuse import TensorReport
    from mfcli.merge.options import TailorOptions


@dataclass
class TensorInputs:
    """What a method sees of one tensor: its name and one Δ_i = W_sft_i − W_pre per SFT (fp32),
    with the Hessian of its linear layer and the loss gradient per SFT where the method asked for them."""

    name: str
    deltas: list[torch.Tensor]
    hessians: list[torch.Tensor | None] = field(default_factory=list)
    grads: list[torch.Tensor | None] = field(default_factory=list)


PatchFn = Callable[[TensorInputs, "TailorOptions", "TensorReport"], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    patch: PatchFn
    needs: str | None  # None, "hessian" or "gradient"
    summary: str
    # keeps round(ρ · changed entries) of each tensor's changes per SFT (the union over several SFTs):
    # the methods compared "at 10 %" (tests/test_budget.py holds every one of them to it)
    budgeted: bool = False


REGISTRY: dict[str, Method] = {}


def register(name: str, *, needs: str | None = None, summary: str = "", budgeted: bool = False):
    def wrap(fn: PatchFn) -> PatchFn:
        REGISTRY[name] = Method(name, fn, needs, summary, budgeted)
        return fn

    return wrap


def get(name: str) -> Method:
    from mfcli.errors import MfcliError, did_you_mean

    if name not in REGISTRY:
        raise MfcliError(f"unknown merge method '{name}'.", did_you_mean(name, REGISTRY))
    return REGISTRY[name]


# importing a method module registers it; the order is the order `--help` lists them in
from mfcli.merge.methods import tailor, dare, grafting, task_arithmetic, ties  # noqa: E402,F401
