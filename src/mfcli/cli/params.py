"""Typer parameters built from the options declared on the library's dataclasses (`mfcli/params.py`).

    @app.command()
    @options(opts=TrainOptions)
    def finetune(model: ..., opts: TrainOptions, resume: ... = False):
        run_finetune(model, ..., opts)

`options` replaces each named parameter by the options of its dataclass (or of a `Group`) in the
command's signature, which Typer reads, and hands the command the object built from them: a new option
is one field, with its help, in one place.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from mfcli.params import Param, params_of


@dataclass(frozen=True)
class Group:
    """Options that become one object: their `Param`s, and how the object is built from their values."""

    params: list[Param]
    build: Callable[[dict], Any]
    prefix: str = ""  # a Python-name prefix that keeps the group's names apart from the command's
    flag_prefix: bool = True  # whether the prefix shows in the flags too (--watch-every) or not (--margin)
    # a tag before each option's help ("[endpoint] ..."): which part of a command the option belongs to,
    # where one command holds several (emt: the evaluated model's server, the judge's server)
    panel: str | None = None


def of(cls: type, *, exclude: tuple[str, ...] = (), prefix: str = "", panel: str | None = None, **fixed) -> Group:
    """The group of an options dataclass; `fixed` values are passed to it and not offered as options."""
    def build(values: dict):
        # a repeated option arrives as a list; the options dataclasses hold tuples (frozen, hashable)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}, **fixed)

    return Group(params_of(cls, exclude=tuple(exclude) + tuple(fixed)), build, prefix, panel=panel)


def flag_of(p: Param) -> str:
    """The option's flag as a user types it: its own first flag, else --name with dashes."""
    return p.flags[0].split("/")[0] if p.flags else "--" + p.name.replace("_", "-")


def tagged(help: str, panel: str | None) -> str:
    return f"[{panel}] {help}" if panel else help


def typer_parameter(p: Param, prefix: str = "", flag_prefix: bool = True, panel: str | None = None
                    ) -> inspect.Parameter:
    """Without flags of its own an option is named after its parameter (a flag gets --x / --no-x)."""
    flags = p.flags
    if not flags and prefix and not flag_prefix:
        dash = p.name.replace("_", "-")
        flags = (f"--{dash}/--no-{dash}",) if p.type is bool else (f"--{dash}",)
    return inspect.Parameter(prefix + p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default,
                             annotation=Annotated[p.type, typer.Option(*flags, help=tagged(p.help, panel))])


def options(**groups: type | Group) -> Callable:
    """Decorator: each keyword names a parameter of the command that receives an options object."""
    resolved = {name: g if isinstance(g, Group) else of(g) for name, g in groups.items()}

    def wrap(fn: Callable) -> Callable:
        sig = inspect.signature(fn, eval_str=True)
        missing = set(resolved) - set(sig.parameters)
        if missing:
            raise TypeError(f"{fn.__name__} has no parameter {', '.join(sorted(missing))}")  # pragma: no cover
        params = []
        for p in sig.parameters.values():
            if p.name in resolved:
                g = resolved[p.name]
                params += [typer_parameter(q, g.prefix, g.flag_prefix, g.panel) for q in g.params]
            else:
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        names = [q.name for q in params]
        if len(set(names)) != len(names):
            raise TypeError(f"{fn.__name__}: an option is declared twice")  # pragma: no cover

        @functools.wraps(fn)
        def command(**kwargs):
            for name, g in resolved.items():
                kwargs[name] = g.build({q.name: kwargs.pop(g.prefix + q.name) for q in g.params})
            return fn(**kwargs)

        command.__signature__ = sig.replace(parameters=params)
        return command

    return wrap
