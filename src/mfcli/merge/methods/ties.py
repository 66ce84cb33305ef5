"""TIES-Merging (Yadav et al., 2023) at the same kept budget, scaled by λ.

Trim: each Δ keeps the top ρ of its *changed* entries by magnitude (peft's `prune` counts every entry
of the tensor, changed or not, so on a partly changed tensor it keeps more than ρ of the changes).
Elect: the sign of the summed trimmed deltas; disjoint merge: the mean of the entries that agree
with it (peft's `calculate_majority_sign_mask` and `disjoint_merge`), times λ.
"""

from __future__ import annotations

import torch

from mfcli.merge.masks import top_mask
from mfcli.merge.contract import TensorInputs, register


@register("ties", budgeted=True, parameters=("lam",), summary="trim to rho of the changes, elect signs, disjoint mean, times lambda")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    from peft.utils import merge_utils

    trimmed = torch.stack([torch.where(top_mask(d.abs(), d != 0, opts.sparsity, "layer"), d, torch.zeros_like(d))
                           for d in t.deltas])
    agree = merge_utils.calculate_majority_sign_mask(trimmed, method="total") & (trimmed != 0)
    p = opts.lam * merge_utils.disjoint_merge(trimmed, agree)
    rep.kept = int(agree.any(0).sum())
    return p
