"""Merge methods, one module each, behind the registry in `merge/contract.py` (mergekit's shape). A new
method is one module here that calls `register` (and one line below), plus its test.
"""

from mfcli.merge.contract import REGISTRY, Method, PatchFn, TensorInputs, TensorReport, get, register  # noqa: F401

# importing a method module registers it; the order is the order `--help` lists them in
from mfcli.merge.methods import tailor, dare, grafting, task_arithmetic, ties, regmean, fisher, nps  # noqa: E402,F401
