"""MDGD: modality-decoupled gradient descent (Wu et al., EMNLP 2025 Findings; METHODS.md §3).

The paper's equations did not survive extraction; this is the project's reading (docs/methods.md):

    L_t         next-token NLL on answer tokens
    L_v (Eq.5)  mean_i ||h_v(θ; x)_i − h_v(θ_pre; x)_i||²  over image-token positions i of the
                last-layer hidden states, θ_pre a frozen copy of the starting model
    Eq. 6-7     g⊥ = g − (⟨g, v⟩ / ||v||²) v,  g = ∇L_t(θ), v = ∇L_v(θ)
                g⊥_pre = ∇L_t(θ_pre): at θ_pre the drift gradient is exactly zero (L_v ≡ 0 there),
                so nothing is removed from it
    Eq. 8-9     d = (⟨g⊥, g⊥_pre⟩ / ||g⊥_pre||²) g⊥_pre + λ v     (the update handed to AdamW)
    Eq. 10-11   MDGD-GM: M = top-q of g⊥ ⊙ g⊥_pre (agreement, elementwise); d = M ⊙ (g⊥ + λ v),
                and only the masked entries ever change. M is selected at the first step (and every
                `--mask-refresh` steps): "optimiser state is needed only for them" (METHODS.md §3)
                implies a set that stays put, and between selections ∇L_t(θ_pre) is not needed

Inner products run over all trainable parameters (`--projection global`) or per tensor.
"""

from __future__ import annotations

from mfcli.train.methods.full import Full
from mfcli.train.methods.base import last_layer_names, projector_names

EPS = 1e-20


def _dot(a, b, per_tensor: bool):
    import torch

    if per_tensor:
        return [torch.sum(x * y) for x, y in zip(a, b)]
    total = sum(torch.sum(x * y) for x, y in zip(a, b))
    return [total] * len(a)


def project_out(g, v, per_tensor: bool):
    """g − (⟨g, v⟩/||v||²) v, leaving g unchanged where v vanishes (Eq. 6-7)."""
    gv, vv = _dot(g, v, per_tensor), _dot(v, v, per_tensor)
    return [x - (a / b) * y if b > EPS else x for x, y, a, b in zip(g, v, gv, vv)]


def project_onto(g, u, per_tensor: bool):
    """(⟨g, u⟩/||u||²) u (Eq. 8-9); zero where u vanishes."""
    gu, uu = _dot(g, u, per_tensor), _dot(u, u, per_tensor)
    return [(a / b) * y if b > EPS else x * 0 for x, y, a, b in zip(g, u, gu, uu)]


def cosine(a, b) -> float:
    import torch

    num = sum(torch.sum(x * y) for x, y in zip(a, b))
    den = torch.sqrt(sum(torch.sum(x * x) for x in a) * sum(torch.sum(y * y) for y in b))
    return float(num / den) if den > 0 else 0.0


SAMPLE = 65536  # above this many entries the threshold is estimated on an evenly strided sample


def _threshold(flat, q: float):
    """The score above which a fraction q of entries lies. Exact top-k on small sets; on large ones,
    the same on an evenly strided sample (deterministic, so resume stays bit-identical) — a full
    top-k over every trainable entry would cost more than the step it selects for."""
    import torch

    if flat.numel() > SAMPLE:
        flat = flat[:: flat.numel() // SAMPLE]
    k = max(1, int(round(q * flat.numel())))
    return torch.topk(flat, k).values[-1]


def topq_mask(score, q: float, per_tensor: bool):
    """Keep the fraction q of entries with the highest score (over all tensors, or per tensor)."""
    import torch

    if per_tensor:
        return [s >= _threshold(s.flatten(), q) for s in score]
    thresh = _threshold(torch.cat([s.flatten() for s in score]), q)
    return [s >= thresh for s in score]


class Mdgd(Full):
    name = "mdgd"
    default_lr = 2e-5
    custom_update = True
    needs_reference = True

    def trainable(self, model, family, opts):
        if opts.layers:  # the paper's LLaVA setting: last 6 layers + adapter
            return projector_names(model, family) + last_layer_names(model, family, opts.layers)
        return super().trainable(model, family, opts)

    def combine(self, g, v, g_pre, ctx):
        opts = ctx.opts
        per_tensor = opts.projection == "per-tensor"
        g_perp = project_out(g, v, per_tensor)
        d = project_onto(g_perp, g_pre, per_tensor)
        return [a + opts.lambda_visual * b for a, b in zip(d, v)], None, g_perp

    def needs_pre_gradient(self, ctx) -> bool:
        return True

    def update(self, ctx, micro_batches, n_tokens: int) -> tuple[float, dict]:
        """Accumulate g, v and g_pre over the step's micro-batches, then set .grad to the update."""
        import torch

        params, ref_params = ctx.params, ctx.ref_params
        with_pre = self.needs_pre_gradient(ctx)
        g = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        g_pre = [torch.zeros_like(p) for p in params]
        task_total, vis_total = 0.0, 0.0
        for batch in micro_batches:
            out = ctx.model(**ctx.inputs(batch), output_hidden_states=True)
            with torch.set_grad_enabled(with_pre):  # the frozen copy needs a graph only for ∇L_t(θ_pre)
                ref = ctx.ref_model(**ctx.inputs(batch), output_hidden_states=True)
            task = ctx.nll_sum(out.logits, batch["labels"]) / n_tokens
            img = batch["input_ids"] == ctx.image_token_id
            h, h_pre = out.hidden_states[-1][img], ref.hidden_states[-1][img].detach()
            # Eq. 5, weighted by this micro-batch's share of image tokens
            vis = ((h - h_pre) ** 2).sum(-1).sum() / max(1, ctx.image_tokens_total(micro_batches))
            gt = torch.autograd.grad(task, params, retain_graph=True, allow_unused=True)
            gv = torch.autograd.grad(vis, params, allow_unused=True)
            gp = [None] * len(ref_params)
            if with_pre:
                ref_task = ctx.nll_sum(ref.logits, batch["labels"]) / n_tokens
                gp = torch.autograd.grad(ref_task, ref_params, allow_unused=True)
            for acc, new in ((g, gt), (v, gv), (g_pre, gp)):
                for a, b in zip(acc, new):
                    if b is not None:
                        a.add_(b)
            task_total += float(task.detach())
            vis_total += float(vis.detach())
        update, mask, g_perp = self.combine(g, v, g_pre if with_pre else None, ctx)
        for p, u in zip(params, update):
            p.grad = u
        extras = {"visual_loss": vis_total}
        if with_pre:
            extras.update(cos_grad_pre=cosine(g, g_pre), cos_gperp_pre=cosine(g_perp, g_pre))
        if mask is not None:
            ctx.step_mask = mask
            extras["masked_fraction"] = float(sum(m.sum() for m in mask) / sum(m.numel() for m in mask))
        return task_total, extras


class MdgdGm(Mdgd):
    name = "mdgd-gm"

    def needs_pre_gradient(self, ctx) -> bool:
        refresh = ctx.opts.mask_refresh
        return ctx.gm_mask is None or bool(refresh and ctx.step % refresh == 0)

    def combine(self, g, v, g_pre, ctx):
        opts = ctx.opts
        per_tensor = opts.projection == "per-tensor"
        g_perp = project_out(g, v, per_tensor)
        if g_pre is not None:  # (re)select the mask
            ctx.gm_mask = topq_mask([a * b for a, b in zip(g_perp, g_pre)], opts.mask_ratio, per_tensor)
        mask = ctx.gm_mask
        update = [(a + opts.lambda_visual * b) * m for a, b, m in zip(g_perp, v, mask)]
        return update, mask, g_perp
