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
from typing import TYPE_CHECKING, Any, Callable

from mfcli.errors import UsageError, did_you_mean
from mfcli.params import check_plugin_options

if TYPE_CHECKING:  # annotations only: the contract imports no torch, so `mfcli tailor --help` stays light
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


class MethodOptions:
    """The base of every merge method's options class (merge/options.py holds the built-in ones): each
    subclass is recorded (`option_classes`), so `mfcli tailor` shows its flags without importing the
    registry and torch. A field made with `option(...)` is a flag; every field needs a default."""

    _classes: list[type] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MethodOptions._classes.append(cls)


def option_classes() -> list[type]:
    """Every merge method's options class defined so far (the built-in ones, and plug-ins')."""
    return list(MethodOptions._classes)


# what every merge run reads (merge/options.py's TailorOptions fields, held to this by tests/test_tailor.py):
# a method's own option may not take one of these names
RUN_OPTIONS = ("sparsity", "method", "data", "nsamples", "scope", "layers", "seed", "method_options")
# what the driver reads on a method's behalf, so its options class must have it: --pre-data for a method
# that weighs PRE's statistics, how the Fisher is estimated for one that needs the Fisher
REQUIRED_OPTIONS = {"pre_side": ("pre_data",), "fisher": ("fisher_estimate", "fisher_normalise")}


def with_method_options(opts: Any, method: "Method") -> Any:
    """`opts` (TailorOptions) with the method's own options filled in (its defaults where none were
    given); options of another method's class are refused."""
    from dataclasses import replace

    own = opts.method_options
    if own is None:
        return replace(opts, method_options=method.options()) if method.options else opts
    if method.options is None or not isinstance(own, method.options):
        wanted = method.options.__name__ if method.options else "no options of its own"
        raise UsageError(f"--method {method.name} reads {wanted}; got {type(own).__name__}.")
    return opts


class DeclaredOptions:
    """The run's options as one method sees them: what every run reads (TailorOptions' fields) and its
    own options class's fields, one flat read-only view — nothing else. Reading another raises, naming
    the method and the option, so neither a method nor the driver reading on its behalf can depend on an
    option `mfcli tailor` would let pass unchecked (mergekit's `parameters()`, peft's `config_cls`)."""

    __slots__ = ("_options", "_own", "_method", "_readable")

    def __init__(self, options: Any, method: "Method"):
        from dataclasses import fields

        options = with_method_options(options, method)
        own = options.method_options
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_own", own)
        object.__setattr__(self, "_method", method.name)
        object.__setattr__(self, "_readable", frozenset(f.name for f in fields(own)) if own is not None else frozenset())

    def __getattr__(self, name: str):
        if name in self._readable:
            return getattr(self._own, name)
        if name != "method_options" and name in self._options.__dataclass_fields__:
            return getattr(self._options, name)
        raise AttributeError(f"merge method '{self._method}' reads option '{name}', which it does not declare: add it "
                             "to its options class (register(options=...), merge/options.py)")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("a method's options are read-only")


# (inputs, the run's options as the method declared them, the tensor's report) -> patch
PatchFn = Callable[[TensorInputs, DeclaredOptions, TensorReport], "torch.Tensor"]


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
    # the method's own options: a merge/options.py MethodOptions dataclass whose fields become `mfcli
    # tailor` flags, refused for every method whose class lacks them (mergekit's `parameters()`)
    options: type | None = None
    # whether, under these options, the method trims each task vector as a whole (it then needs every
    # SFT's magnitude cut before the first tensor: the driver's extra passes, merge/global_trim.py)
    whole_vector: Callable[[Any], bool] = lambda opts: False
    # whether, under these options, it takes lm_head through the Hessian path (the driver then gathers
    # lm_head's inputs: Model Tailor's --compensate-head); a pre_side method always gets them
    head_inputs: Callable[[Any], bool] = lambda opts: False


REGISTRY: dict[str, Method] = {}
NEEDS = (None, "hessian", "gradient", "fisher")  # what the streaming driver can gather for a method


def register(name: str, *, needs: str | None = None, summary: str = "", budgeted: bool = False,
             pre_side: bool = False, options: type | None = None,
             whole_vector: Callable[[Any], bool] = lambda opts: False,
             head_inputs: Callable[[Any], bool] = lambda opts: False):
    def wrap(fn: PatchFn) -> PatchFn:
        if REGISTRY.get(name) is not None:
            raise ValueError(f"merge method '{name}' is registered twice; give the new one another name")
        if not callable(fn) or needs not in NEEDS:
            raise TypeError(f"merge method '{name}': register a patch function (TensorInputs, options, "
                            f"TensorReport) -> tensor that needs one of {', '.join(map(str, NEEDS))}")
        _check_options_class(name, options, pre_side, needs)
        REGISTRY[name] = Method(name, fn, needs, summary, budgeted, pre_side, options, whole_vector, head_inputs)
        return fn

    return wrap


def _check_options_class(name: str, options: type | None, pre_side: bool, needs: str | None) -> None:
    """A method's options: a MethodOptions dataclass whose every field has a default, named apart from
    the run's options (RUN_OPTIONS) and from every other method's options unless both come from the same
    class (one flag, one meaning), with the fields the driver reads on its behalf (REQUIRED_OPTIONS)."""
    import dataclasses

    own = {f.name for f in dataclasses.fields(options)} if options and dataclasses.is_dataclass(options) else set()
    for what, required in (("pre_side", pre_side), ("fisher", needs == "fisher")):
        lacking = [o for o in REQUIRED_OPTIONS[what] if required and o not in own]
        if lacking:
            raise TypeError(f"merge method '{name}' {'weighs PRE' + chr(39) + 's statistics' if what == 'pre_side' else 'needs the Fisher'}: "
                            f"its options class must have {', '.join(lacking)} (extend merge/options.py's "
                            f"{'PreDataOptions' if what == 'pre_side' else 'FisherOptions'})")
    if options is None:
        return
    if not (dataclasses.is_dataclass(options) and issubclass(options, MethodOptions)):
        raise TypeError(f"merge method '{name}': options must be a MethodOptions dataclass of `option(...)` fields "
                        "(merge/options.py)")
    check_plugin_options(f"merge method '{name}'", options, RUN_OPTIONS, "one of every run's options",
                         [(m.name, m.options) for m in REGISTRY.values() if m.options], "merge/options.py")


def get(name: str) -> Method:
    """A registered method by name (importing `mfcli.merge.methods` registers the built-in ones)."""
    if name not in REGISTRY:
        raise UsageError(f"unknown merge method '{name}'.", did_you_mean(name, REGISTRY))
    return REGISTRY[name]
