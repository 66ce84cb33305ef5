"""The merge-method contract, a leaf every other merge module may import: what a method sees of one
tensor (`TensorInputs`), what it reports (`TensorReport`), what it declares (`Method`), and the registry
(`register`, `get`). The methods live one per module in `merge/methods/`; the drivers (fuse.py, run.py)
and the options import this module, and it imports none of them.

A method turns one tensor's fine-tuned changes into the patch added to the pre-trained weight:

    Θ_fused = Θ_pre + patch,   patch = M ⊙ (Δ + C)  for the masking methods      (Model Tailor Eq. 3)

and declares what the streaming driver must gather for it: nothing, the calibration Hessian of each
linear layer (`hessian`), the target-task loss gradient (`gradient`) or the diagonal empirical Fisher
(`fisher`) — of each SFT on its own calibration data and, for a method that declares `pre_side`
(RegMean, Fisher merging), of PRE on the pre-trained tasks' data (`--pre-data`) too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class TensorInputs:
    """What a method sees of one tensor: its name and one Δ_i = W_sft_i − W_pre per SFT (fp32),
    with the Hessian of its linear layer and the loss gradient per SFT where the method asked for them."""

    name: str
    deltas: list[torch.Tensor]
    hessians: list[torch.Tensor | None] = field(default_factory=list)
    grads: list[torch.Tensor | None] = field(default_factory=list)
    # the calibration tokens behind each Hessian (H = (2/n) Σ x xᵀ, so the Gram matrix Σ x xᵀ = n·H/2)
    tokens: list[int] = field(default_factory=list)
    fishers: list[torch.Tensor | None] = field(default_factory=list)  # diagonal empirical Fisher per SFT
    # PRE's own statistics on the pre-trained tasks' data (a method with pre_side)
    pre_hessian: torch.Tensor | None = None
    pre_tokens: int = 0
    pre_fisher: torch.Tensor | None = None
    # what a method may keep between budgets of one run (`--sparsity 0.02,0.1`): the same tensor's
    # factorisations and scores, computed once
    cache: dict = field(default_factory=dict)
    # per SFT, the magnitude its whole task vector is trimmed at (a method that trims the whole vector,
    # TIES with --ties-trim global: merge/global_trim.py); None for the others
    cuts: list[float] | None = None


@dataclass
class TensorReport:
    name: str
    changed: int
    kept: int
    path: str  # "hessian" or "salience"
    error_masked: float | None = None
    error_fused: float | None = None
    damp: float | None = None
    retries: int = 0
    seconds: float = 0.0
    # the patch's distance from PRE (Eq. 5's closeness): L1 of the patch against L1 of the (mean)
    # fine-tuned change, and its largest entry over the fine-tuned change's largest
    patch_l1: float = 0.0
    delta_l1: float = 0.0
    max_ratio: float = 0.0


class DeclaredOptions:
    """The run's options (TailorOptions) as one method sees them: what every run reads (COMMON) and the
    parameters the method declared — nothing else. Reading another raises, naming the method and the
    option, so a method cannot depend on an option `mfcli tailor` would let pass unchecked (every test
    that runs a method holds it to its declaration; mergekit's `parameters()`)."""

    __slots__ = ("_options", "_method", "_readable")

    def __init__(self, options: Any, method: "Method"):
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_method", method.name)
        object.__setattr__(self, "_readable", frozenset(COMMON) | frozenset(method.parameters))

    def __getattr__(self, name: str):
        if name in self._readable:
            return getattr(self._options, name)
        raise AttributeError(f"merge method '{self._method}' reads option '{name}', which it does not declare: add it "
                             "to its register(parameters=...) (merge/contract.py)")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("a method's options are read-only")


# (inputs, the run's options as the method declared them, the tensor's report) -> patch
PatchFn = Callable[[TensorInputs, DeclaredOptions, TensorReport], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    patch: PatchFn
    needs: str | None  # None, "hessian", "gradient" or "fisher"
    summary: str
    # keeps round(ρ · changed entries) of each tensor's changes per SFT (the union over several SFTs):
    # the methods compared "at 10 %" (tests/test_budget.py holds every one of them to it)
    budgeted: bool = False
    pre_side: bool = False  # also needs PRE's statistics on the pre-trained tasks' data (--pre-data)
    # the options (TailorOptions fields) the method itself reads, beyond the ones every run shares
    # (COMMON) and the calibration data: `mfcli tailor` refuses the others when they are set, so an
    # option the method would ignore never goes unnoticed (mergekit's `parameters()`)
    parameters: tuple[str, ...] = ()
    # whether, under these options, the method trims each task vector as a whole (it then needs every
    # SFT's magnitude cut before the first tensor: the driver's extra passes, merge/global_trim.py)
    whole_vector: Callable[[Any], bool] = lambda opts: False


# what every method's run reads: the budget, the scope, the layers, the seed, and (for a
# method that needs statistics) the calibration data
COMMON = ("sparsity", "method", "scope", "layers", "seed", "data", "nsamples")

REGISTRY: dict[str, Method] = {}
NEEDS = (None, "hessian", "gradient", "fisher")  # what the streaming driver can gather for a method


def register(name: str, *, needs: str | None = None, summary: str = "", budgeted: bool = False,
             pre_side: bool = False, parameters: tuple[str, ...] = (),
             whole_vector: Callable[[Any], bool] = lambda opts: False):
    def wrap(fn: PatchFn) -> PatchFn:
        if REGISTRY.get(name) is not None:
            raise ValueError(f"merge method '{name}' is registered twice; give the new one another name")
        if not callable(fn) or needs not in NEEDS:
            raise TypeError(f"merge method '{name}': register a patch function (TensorInputs, options, "
                            f"TensorReport) -> tensor that needs one of {', '.join(map(str, NEEDS))}")
        REGISTRY[name] = Method(name, fn, needs, summary, budgeted, pre_side,
                                tuple(parameters) + (("pre_data",) if pre_side else ()), whole_vector)
        return fn

    return wrap


def get(name: str) -> Method:
    """A registered method by name (importing `mfcli.merge.methods` registers the built-in ones)."""
    from mfcli.errors import UsageError, did_you_mean

    if name not in REGISTRY:
        raise UsageError(f"unknown merge method '{name}'.", did_you_mean(name, REGISTRY))
    return REGISTRY[name]
