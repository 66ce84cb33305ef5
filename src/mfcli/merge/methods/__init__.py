"""Merge methods, one module each, behind the registry in `merge/contract.py` (mergekit's shape). A new
method is one module here that calls `register` (and one line below), plus its test.
"""

from mfcli.merge.contract import REGISTRY, Method, PatchFn, TensorInputs, TensorReport, get, register  # noqa: F401

# importing a method module registers it; the order is the order `--help` lists them in
from mfcli.merge.contract import with_method_options
from mfcli.merge.methods import tailor, dare, grafting, task_arithmetic, ties, regmean, fisher, nps  # noqa: E402,F401
from mfcli.merge.options import TailorOptions, common_options


def own_options(method: str) -> tuple[str, ...]:
    """The names of `method`'s own options (its options class's fields)."""
    from dataclasses import fields

    cls = get(method).options
    return tuple(f.name for f in fields(cls)) if cls else ()


def readers(option_name: str) -> list[str]:
    """The merge methods whose options class has `option_name`."""
    return [n for n in REGISTRY if option_name in own_options(n)]


def ignored_options(method: str, given: set[str]) -> list[str]:
    """Of the options a user set, those `method` would ignore: neither read by every run (TailorOptions')
    nor in the method's options class."""
    return sorted(given - set(common_options()) - set(own_options(method)))


def tailor_options(method: str = "tailor", *, method_options=None, **values):
    """`TailorOptions` for `method` from one set of keyword options: the run's go to TailorOptions, the
    others to the method's options class (on top of `method_options` when given), its defaults filled —
    the library's counterpart of `mfcli tailor --method M --flag ...`. An option neither reads is a
    TypeError, naming the methods that read it."""
    from dataclasses import replace

    spec = get(method)
    common = set(common_options())
    own = {k: v for k, v in values.items() if k not in common}
    stray = sorted(set(own) - set(own_options(method)))
    if stray:
        who = sorted({r for o in stray for r in readers(o)})
        raise TypeError(f"merge method {method} reads no option {', '.join(stray)}"
                        + (f" (read by {', '.join(who)})" if who else ""))
    if own:
        method_options = replace(method_options, **own) if method_options is not None else spec.options(**own)
    opts = TailorOptions(method=method, method_options=method_options,
                         **{k: v for k, v in values.items() if k in common})
    return with_method_options(opts, spec)
