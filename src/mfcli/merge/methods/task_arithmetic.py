"""Task arithmetic (Ilharco et al., 2023) at the same kept budget: each Δ trimmed to the top ρ of its
changed entries by magnitude (the paper does not trim: `--sparsity 1` is the untrimmed method), then
combined:
- `--ta-combine sum` (the paper's θ = θ_pre + λ Σ_i τ_i, λ chosen on validation data there);
- `--ta-combine mean` (the default, mfcli's): λ times the mean, so λ 1 is each fine-tune's own scale
  whatever their number (the sum at λ 1/k); with one fine-tune the two are the same.
"""

from __future__ import annotations

import torch

from mfcli.merge.masks import top_mask, union_patch
from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import TaskArithmeticOptions


@register("task-arithmetic", budgeted=True, options=TaskArithmeticOptions,
          summary="magnitude-trimmed to rho of the changes, then lambda times the mean (or the sum)")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    masks = [top_mask(d.abs(), d != 0, opts.sparsity, "layer") for d in t.deltas]
    p, union = union_patch(t.deltas, masks, [torch.where(m, d, torch.zeros_like(d)) for m, d in zip(masks, t.deltas)])
    rep.kept = int(union.sum())
    scale = len(t.deltas) if opts.ta_combine == "sum" else 1  # union_patch is the mean of the trimmed Δ_i
    return opts.lam * scale * p
