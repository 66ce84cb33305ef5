"""Options declared once, where they are used: an options dataclass's field carries its help text (as
peft's configs and transformers' `HfArgumentParser` dataclasses do), and `cli/params.py` builds the
command-line options from those fields. A leaf with no Typer in it, so the library never imports the CLI.

    @dataclass(frozen=True)
    class TrainOptions:
        epochs: int = option(3, "Epochs (EMT: 3).")
        weight_decay: float = 0.0          # a plain field: a library setting, not a command-line option

A `Param` is one such option, also declared directly by what has no dataclass of its own (a judge's
options, in its registry entry).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str  # the Python name; the flag is --name with dashes unless `flags` says otherwise
    type: Any  # the annotation Typer parses the value as
    default: Any
    help: str
    flags: tuple[str, ...] = ()  # e.g. ("--out", "-o"); empty: --name


def option(default: Any = dataclasses.MISSING, help: str = "", *, flags: tuple[str, ...] = (), cli_type: Any = None) -> Any:
    """A dataclass field that is also a command-line option (help text and flags in its metadata);
    `cli_type` where the command line parses another type than the field holds (a repeated option
    gives a list, the field keeps a tuple)."""
    return dataclasses.field(default=default, metadata={"help": help, "flags": flags, "type": cli_type})


def params_of(cls: type, *, exclude: tuple[str, ...] = ()) -> list[Param]:
    """The command-line options of an options dataclass: its fields made with `option`, in field order."""
    hints = typing.get_type_hints(cls)
    return [Param(f.name, f.metadata.get("type") or hints[f.name], f.default, f.metadata["help"],
                  tuple(f.metadata.get("flags", ())))
            for f in dataclasses.fields(cls) if "help" in f.metadata and f.name not in exclude]


def declaring_class(options: type, field: str) -> type:
    """The class that declares `field` of an options dataclass: itself, or the base it inherits the field
    from. Two plug-ins share an option (one flag) only when they share this class."""
    return next(c for c in reversed(options.__mro__) if field in c.__dict__.get("__annotations__", {}))


def check_plugin_options(what: str, options: type, common: tuple[str, ...], common_owner: str,
                         registered: list[tuple[str, type]], hint: str) -> None:
    """A plug-in's options class against its family (both method registries use it): a dataclass whose
    every field has a default, named apart from the command's shared options (`common`, `common_owner`'s)
    and from the other plug-ins' classes (`registered`: (name, class)) unless the field comes from the
    same declaring class — one flag, one meaning. `what` names the plug-in in the error; `hint` says where
    shared classes live."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"{what}: options must be a dataclass of `option(...)` fields ({hint})")
    origin_of: dict[str, type | None] = {o: None for o in common}
    readers: dict[str, list[str]] = {}
    for plugin, cls in registered:
        for f in dataclasses.fields(cls):
            origin_of.setdefault(f.name, declaring_class(cls, f.name))
            readers.setdefault(f.name, []).append(plugin)
    for f in dataclasses.fields(options):
        if f.name in origin_of and origin_of[f.name] is not declaring_class(options, f.name):
            origin = origin_of[f.name]
            owner = (common_owner if origin is None else
                     f"{origin.__name__}'s (read by {', '.join(readers.get(f.name, []))})")
            raise ValueError(f"{what}: its option '{f.name}' is already {owner}; name it apart, or share the class "
                             f"that declares it ({hint})")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{what}: its option '{f.name}' needs a default")


# options several commands share, defined once (cli/options.py's Seed, Device and Dtype use the same text)
SEED_HELP = "Random seed; same inputs and seed give identical outputs."
DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda, cuda:N."
DTYPE_HELP = "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16."


def seed_option(default: int = 0) -> Any:
    return option(default, SEED_HELP)


def device_option(default: str = "auto") -> Any:
    return option(default, DEVICE_HELP)


def dtype_option(default: str = "auto") -> Any:
    return option(default, DTYPE_HELP)
