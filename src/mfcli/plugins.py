"""Plug-ins the user names: modules imported before the command line is built, so that what they
register — a fine-tuning method, a judge, a merge method, a record kind, a data source, a report input —
is there for every command, its flags and its `--help`, with no edit to mfcli.

    MFCLI_PLUGINS=my_methods,lab.judges mfcli finetune tiny data/ --method my-method

Modules are named by the user (environment variable `MFCLI_PLUGINS`, comma-separated, importable from
`PYTHONPATH`) or by an installed package's entry point in the group `mfcli.plugins`; nothing is
imported that neither names. A leaf: imports only the standard library and mfcli.errors.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from mfcli.errors import MfcliError

ENV = "MFCLI_PLUGINS"
GROUP = "mfcli.plugins"


def named() -> list[str]:
    """The plug-in modules the user named, in order, each once."""
    from_env = [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()]
    from_packages = [ep.value for ep in entry_points(group=GROUP)]
    return list(dict.fromkeys(from_env + from_packages))


def load_plugins() -> list[str]:
    """Import every named plug-in; one clear error for one that cannot be imported or registers badly."""
    loaded = []
    for module in named():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            raise MfcliError(f"plug-in '{module}' (from {ENV} or an entry point) cannot be imported: {e}.",
                             f"Put its directory on PYTHONPATH, or remove it from {ENV}.") from None
        except (TypeError, ValueError) as e:  # a registration refused: the contract's own line says why
            raise MfcliError(f"plug-in '{module}': {e}.", "Fix the plug-in, or remove it from "
                             f"{ENV}.") from None
        loaded.append(module)
    return loaded
