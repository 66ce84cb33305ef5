"""Fine-tuning methods, one per module, each registered with what it declares (train/methods/
contract.py); the shared loop in mfcli.train.loop does the rest. A new method is one module and one
import line below.
"""

from __future__ import annotations

from mfcli.train.methods.contract import (REGISTRY, Spec, finetune_options, get, ignored_options, names,  # noqa: F401
                                         readers, register)

# importing a method registers it, in the order `--help` lists them
from mfcli.train.methods import linear, lora, lorasculpt, lastn, full, parts, spider, dowser, mdgd, clip  # noqa: E402,F401


def get_method(name: str):
    """A fresh instance of the method registered as `name` (its state is its run's)."""
    return get(name).make()
