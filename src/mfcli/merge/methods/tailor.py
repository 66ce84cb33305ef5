"""Model Tailor (Zhu et al., ICML 2024): a sparse patch of the fine-tuned changes, chosen by salience
and Hessian sensitivity, compensated by the decorator.

- Linear weights whose inputs were captured on calibration data take the Hessian path: score
  (Eq. 11) = ω·norm(|Δ|) + (1 − ω)·norm(Δ²/(2[H⁻¹]_mm)) (Eq. 9–10), keep the top ρ of the changed
  entries, then the decorator compensates what was reverted: `--variant paper` is Thm 4.5 in
  SparseGPT's column order and nothing else (obs.paper_linear); `--variant refined` is mfcli's
  (obs.tailor_linear: per-row fallback to the plain mask, CG, a squared closeness penalty).
- Every other tensor (norms, biases, embeddings, lm_head unless --compensate-head, tensors without
  captured inputs) takes salience only: keep the top ρ by |Δ| (Eq. 10), no compensation.
- Several SFTs (Appendix B.2): union of the masks, mean deltas, mean compensation.
"""

from __future__ import annotations

import torch

from mfcli.merge import obs
from mfcli.merge.masks import normalise, top_mask, union_patch
from mfcli.merge.contract import TensorInputs, register
from mfcli.merge.options import ModelTailorOptions


@register("tailor", needs="hessian", budgeted=True,
          options=ModelTailorOptions, head_inputs=lambda opts: opts.compensate_head,
          summary="salience + Hessian sensitivity mask, OBS compensation (--variant)")
def patch(t: TensorInputs, opts, rep) -> torch.Tensor:
    masks, fused = [], []
    for i, (d, H) in enumerate(zip(t.deltas, t.hessians or [None] * len(t.deltas))):
        if H is not None and d.dim() == 2:
            rep.path = "hessian"
            if ("score", i) not in t.cache:  # once per tensor, whatever the number of budgets
                inv = obs.damped_inverse(H, opts.damp)
                t.cache[("score", i)] = inv, opts.omega * normalise(d.abs(), opts.score_norm) + (
                    1 - opts.omega) * normalise(obs.sensitivity(d, inv), opts.score_norm)  # Eq. 9-11
            inv, score = t.cache[("score", i)]
            m = top_mask(score, d != 0, opts.sparsity, opts.mask_scope)
            if opts.compensate and opts.variant == "paper":
                res = obs.paper_linear(d, m, H, damp=opts.damp, block_size=opts.block_size, inv=inv)
            else:  # mfcli's refined decorator, or --no-compensate (the plain mask, Table 4's ablation)
                res = obs.tailor_linear(d, m, H, damp=opts.damp, block_size=opts.block_size,
                                        refine_steps=opts.refine_steps or 0, compensate_=opts.compensate, inv=inv,
                                        comp_penalty=opts.comp_penalty or 0.0)
            fused.append(res.delta)
            rep.error_masked = (rep.error_masked or 0.0) + res.error_masked
            rep.error_fused = (rep.error_fused or 0.0) + res.error_fused
            rep.damp, rep.retries = res.damp, max(rep.retries, res.retries)
        else:
            m = top_mask(d.abs(), d != 0, opts.sparsity, opts.mask_scope)  # Eq. 10, salience only
            fused.append(torch.where(m, d, torch.zeros_like(d)))
        masks.append(m)
    p, union = union_patch(t.deltas, masks, fused)
    rep.kept = int(union.sum())
    return p
