"""The fine-tuning-method contract, a leaf every method module imports: what the shared loop asks of a
method (`TrainMethod`, every hook and fact it uses, nothing else), what a method declares when it
registers (`Spec`: whether it trains an adapter, may run under FSDP, can be watched, runs on several
processes, and its own options class — every option beyond the loop's `TrainOptions`), and the registry
(`register`, `get`, `names`). Registration refuses a second method of one name and a class that does not
satisfy the contract, with one line saying which.

A new method is one module in train/methods/ with one `@register(...)` class and one import line in
train/methods/__init__.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mfcli.errors import UsageError, did_you_mean
from mfcli.params import check_plugin_options
from mfcli.train.methods.base import Method
from mfcli.train.options import TrainOptions


@runtime_checkable
class TrainMethod(Protocol):
    """What train/loop.py uses of a method: its facts and its hooks (train/methods/base.py documents
    each hook and gives the MLLM defaults)."""

    name: str
    default_lr: float
    weight_decay: float | None
    custom_update: bool

    def check_data(self, files, examples) -> None: ...
    def load(self, path: str, device, dtype): ...
    def batcher(self, processor): ...
    def units(self, batcher, examples) -> int: ...
    def loss_sum(self, ctx, model, batch): ...
    def trainable(self, model, family, opts) -> list[str]: ...
    def prepare(self, model, family, opts, resume_from=None): ...
    def save(self, model, processor, d, parent: str, state_dict: dict | None = None) -> None: ...
    def start(self, ctx) -> None: ...
    def update(self, ctx, micro_batches, n_tokens: int) -> tuple[float, dict]: ...
    def extra_loss(self, ctx): ...
    def after_step(self, params) -> None: ...
    def extra_state(self) -> dict | None: ...
    def load_extra_state(self, extra: dict, device) -> None: ...
    def finish(self, end: "RunEnd") -> None: ...


@dataclass(frozen=True)
class RunEnd:
    """What a method's `finish` hook sees of a run that ended: the trained model, its processor, the run
    directory, whether this process writes, the run's options, and the manifest a checkpoint it writes
    carries (`manifest(command)`)."""

    model: Any
    processor: Any
    out: Any  # pathlib.Path
    main_process: bool
    opts: Any  # TrainOptions
    manifest: Any  # (command: str) -> io.checkpoint.Manifest


def common_options() -> tuple[str, ...]:
    """What every run reads, whatever its method: the loop's options (train/options.py's TrainOptions).
    A method's other options are its options class's fields, and `mfcli finetune` refuses one set for a
    method whose class lacks it."""
    return tuple(o for o in option_names() if o != "method_options")


@dataclass(frozen=True)
class Spec:
    name: str
    cls: type
    summary: str
    adapter: bool = False  # trains a peft adapter: saved as one, re-attached to its parent on resume
    fsdp: bool = False  # may be sharded with FSDP (its update is the loop's own, its weights a full model's)
    watchable: bool = True  # the forgetting watch can score it (an MLLM answering questions)
    multi_process: bool = True  # runs under torchrun / accelerate launch
    # its own options: a dataclass whose `option(...)` fields become `mfcli finetune` flags, refused for
    # every method whose class lacks them; the run hands the method an instance as `opts.method_options`
    # (peft's config_cls). Methods share an option by sharing the class that declares it
    # (train/methods/shared_options.py)
    options: type | None = None

    def make(self) -> TrainMethod:
        return self.cls()

    def own_options(self) -> tuple[str, ...]:
        """The names of this method's own options (its options class's fields)."""
        from dataclasses import fields

        return tuple(f.name for f in fields(self.options)) if self.options else ()


REGISTRY: dict[str, Spec] = {}
_FACTS = ("name", "default_lr", "weight_decay", "custom_update")
_HOOKS = ("check_data", "load", "batcher", "units", "loss_sum", "trainable", "prepare", "save", "start", "update",
          "extra_loss", "after_step", "extra_state", "load_extra_state", "finish")


def register(name: str, *, summary: str, adapter: bool = False, fsdp: bool = False, watchable: bool = True,
             multi_process: bool = True, options: type | None = None):
    """Class decorator: register a fine-tuning method under `name`, with what it declares."""
    def wrap(cls: type) -> type:
        if name in REGISTRY:
            raise ValueError(f"fine-tuning method '{name}' is registered twice ({REGISTRY[name].cls.__name__} and "
                             f"{cls.__name__}); give the new one another name")
        _check_options_class(name, options)

        absent = [a for a in _FACTS + _HOOKS if not hasattr(cls, a)]
        if cls.trainable is Method.trainable and cls.prepare is Method.prepare:  # every method says what trains
            absent.append("trainable (or its own prepare)")
        if getattr(cls, "custom_update", False) and getattr(cls, "update", None) is Method.update:
            absent.append("update (it declares custom_update)")
        if absent:
            raise TypeError(f"fine-tuning method '{name}' ({cls.__name__}) does not satisfy the method contract: "
                            f"it lacks {', '.join(absent)} (train/methods/contract.py)")
        cls.name = name
        REGISTRY[name] = Spec(name, cls, summary, adapter, fsdp and not cls.custom_update, watchable,
                              multi_process, options)
        return cls

    return wrap


def _check_options_class(name: str, options: type | None) -> None:
    """A method's own options: a dataclass whose every field has a default, named apart from every
    TrainOptions field and from every other method's option unless both come from the same class (they
    share `mfcli finetune`'s flags: one flag, one meaning)."""
    if options is not None:
        check_plugin_options(f"fine-tuning method '{name}'", options, option_names(), "one of TrainOptions' fields",
                             [(s.name, s.options) for s in REGISTRY.values() if s.options],
                             "train/methods/shared_options.py")


def readers(option: str) -> list[str]:
    """The methods whose options class has `option`."""
    return [n for n, s in REGISTRY.items() if option in s.own_options()]


def option_names() -> tuple[str, ...]:
    from dataclasses import fields

    return tuple(f.name for f in fields(TrainOptions))


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> Spec:
    """A registered method by name (importing `mfcli.train.methods` registers the built-in ones)."""
    if name not in REGISTRY:
        raise UsageError(f"unknown method '{name}'.", did_you_mean(name, REGISTRY))
    return REGISTRY[name]


def ignored_options(method: str, given: set[str]) -> list[str]:
    """Of the options a user set, those `method` would ignore: neither read by every run (TrainOptions')
    nor in the method's options class."""
    return sorted(given - set(common_options()) - set(get(method).own_options()))


def finetune_options(method: str = "lora", *, method_options=None, **values):
    """`TrainOptions` for `method` from one set of keyword options: the loop's go to TrainOptions, the
    others to the method's options class (on top of `method_options` when given) — the library's
    counterpart of `mfcli finetune --method M --flag ...`. An option neither reads is a TypeError."""
    from dataclasses import replace

    spec = get(method)
    common = set(common_options())
    own = {k: v for k, v in values.items() if k not in common}
    stray = sorted(set(own) - set(spec.own_options()))
    if stray:
        raise TypeError(f"--method {method} reads no option {', '.join(stray)}"
                        + (f" (read by {', '.join(sorted({r for o in stray for r in readers(o)}))})"
                           if any(readers(o) for o in stray) else ""))
    if own:
        method_options = replace(method_options, **own) if method_options is not None else spec.options(**own)
    return with_method_options(spec, TrainOptions(method=method, method_options=method_options,
                                                  **{k: v for k, v in values.items() if k in common}))


def with_method_options(spec: Spec, opts):
    """`opts` with the method's own options filled in (its defaults where the caller gave none); a
    method without options refuses any."""
    from dataclasses import replace

    given = getattr(opts, "method_options", None)
    if spec.options is None:
        if given is not None:
            raise UsageError(f"--method {spec.name} has no options of its own; got {type(given).__name__}.")
        return opts
    if given is None:
        return replace(opts, method_options=spec.options())
    if not isinstance(given, spec.options):
        raise UsageError(f"--method {spec.name} reads {spec.options.__name__}; got {type(given).__name__}.")
    return opts
