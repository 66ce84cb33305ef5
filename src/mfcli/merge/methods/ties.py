"""TIES-Merging (Yadav et al., 2023) at the same kept budget, scaled by λ.

Trim: each task vector keeps the top ρ of its *changed* entries by magnitude —
- `--ties-trim global` (the paper's §3 and its code's `topk_values_mask`): over the whole task vector,
  so a tensor whose changes are large keeps more of them and a quiet one fewer
  (merge/global_trim.py finds each vector's cut in two streaming passes);
- `--ties-trim tensor` (the default, mfcli's): over each tensor on its own, the budget every other
  budgeted method here keeps (Model Tailor's ρ per tensor), so methods compared "at 10 %" keep the
  same entries' count in every tensor.
(peft's `prune` counts every entry, changed or not, so on a partly changed tensor it keeps more than ρ
of the changes: mfcli counts the changed ones, in both forms.)
Elect: the sign of the summed trimmed deltas; disjoint merge: the mean of the entries that agree
with it (peft's `calculate_majority_sign_mask` and `disjoint_merge`), times λ.
"""

from __future__ import annotations

import torch

from mfcli.merge.masks import top_mask
from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import TiesOptions


def _trim(t: TensorInputs, i: int, d: torch.Tensor, opts) -> torch.Tensor:
    if opts.ties_trim == "global":
        return (d != 0) & (d.abs() >= t.cuts[i])  # the whole vector's cut; ties at it kept, as the code's >=
    return top_mask(d.abs(), d != 0, opts.sparsity, "layer")


@register("ties", budgeted=True, options=TiesOptions, whole_vector=lambda opts: opts.ties_trim == "global",
          summary="trim to rho of the changes, elect signs, disjoint mean, times lambda")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    from peft.utils import merge_utils

    trimmed = torch.stack([torch.where(_trim(t, i, d, opts), d, torch.zeros_like(d)) for i, d in enumerate(t.deltas)])
    agree = merge_utils.calculate_majority_sign_mask(trimmed, method="total") & (trimmed != 0)
    p = opts.lam * merge_utils.disjoint_merge(trimmed, agree)
    rep.kept = int(agree.any(0).sum())
    return p
