"""MDGD: modality-decoupled gradient descent (Wu et al., EMNLP 2025 Findings; METHODS.md §3).

The paper's equations did not survive extraction; this is the project's reading (docs/methods.md):

    h_v(θ; x)   the language model's last hidden layer (after its final norm) at the image tokens
    L_t         next-token NLL on answer tokens
    L_v (Eq.5)  ||h_v(θ) − h_v(θ_pre)||² as a MEAN PER ELEMENT (over the step's image tokens × hidden
                size): the paper fixes neither norm nor λ, and a sum over hidden dimensions makes
                ∇L_v ~40× ∇L_t on tiny, so the update is only a pull back to θ_pre
    v, v_pre    ∇_θ L_v with h_v(θ_pre) held constant; ∇_{θ_pre} L_v with h_v(θ) held constant
                (the frozen copy's own drift gradient: zero at the first step, non-zero once θ moved)
    Eq. 6-7     g⊥ = g − (⟨g, v⟩/||v||²) v,  g = ∇_θ L_t(θ)
                g⊥_pre = g_pre − (⟨g_pre, v_pre⟩/||v_pre||²) v_pre,  g_pre = ∇_{θ_pre} L_t(θ_pre)
    Eq. 8-9     g̃ = (⟨g⊥, g⊥_pre⟩/||g⊥_pre||²) g⊥_pre;  the update handed to AdamW is g̃ + λ v
    Eq. 10-11   MDGD-GM: M = top-q of g⊥ ⊙ g⊥_pre (agreement, per entry), re-selected every step
                (Fig. 3b tracks the cosine through training); update M ⊙ (g⊥ + λ v)

`--mdgd-variant` (ours, not the paper's): `pcgrad` removes from g⊥ only its component that conflicts
with g⊥_pre (PCGrad, Yu et al. 2020) instead of projecting onto it; `decoupled` keeps g⊥ as it is.
Eq. 8's projection throws away everything of g⊥ outside one direction, which works only while
cos(g⊥, g⊥_pre) stays high (paper: > 0.7; on tiny 0.05-0.35).

Inner products run over all trainable parameters (`--projection global`) or per tensor. Under data
parallelism the four gradients are summed over processes before any projection.

The method owns its state: the frozen copy θ_pre, MDGD-GM's mask (saved with the trainer state) and
the snapshot that keeps unmasked entries fixed; the shared loop only calls the hooks of base.Method.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.models.load import load_mllm
from mfcli.params import option
from mfcli.train.methods.base import last_layer_names, mdgd_default_layers, projector_names
from mfcli.train.methods.contract import register
from mfcli.train.methods.full import Full
from mfcli.train.methods.shared_options import LayersOptions

EPS = 1e-20
# the update: the paper's Eq. 8 projection, and two of mfcli's readings
VARIANTS = ("paper", "pcgrad", "decoupled")


@dataclass(frozen=True)
class MdgdSharedOptions(LayersOptions):
    """What MDGD and MDGD-GM both read."""

    # Eq. 8-9's weight; 0 = the paper's "w/o visual align"
    lambda_visual: float = option(1.0, "mdgd, mdgd-gm: weight λ of the visual alignment gradient (L_v is a mean "
                                       "per element).")
    projection: str = option("global", "mdgd, mdgd-gm: global or per-tensor projections.")

    def __post_init__(self):
        super().__post_init__()
        if self.projection not in ("global", "per-tensor"):
            raise UsageError(f"--projection must be global or per-tensor, got '{self.projection}'.")


@dataclass(frozen=True)
class MdgdOptions(MdgdSharedOptions):
    mdgd_variant: str = option("paper", "mdgd: paper (Eq. 8, project onto g⊥_pre), pcgrad (remove only the "
                                        "conflicting part) or decoupled (g⊥ as is).")  # pcgrad, decoupled: ours

    def __post_init__(self):
        super().__post_init__()
        if self.mdgd_variant not in VARIANTS:
            raise UsageError(f"--mdgd-variant must be one of {', '.join(VARIANTS)}, got '{self.mdgd_variant}'.")


@dataclass(frozen=True)
class MdgdGmOptions(MdgdSharedOptions):
    mask_ratio: float = option(0.1, "mdgd-gm: fraction of parameters updated per step.")  # Eq. 10-11; MDGD-GM ~10 %
    # Fig. 3b re-selects every step; 0 selects once, at the first
    mask_refresh: int = option(1, "mdgd-gm: re-select the mask every N steps (1: every step, 0: once).")

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.mask_ratio <= 1.0:
            raise UsageError(f"--mask-ratio must be in (0, 1], got {self.mask_ratio}.")
        if self.mask_refresh < 0:
            raise UsageError("--mask-refresh must be 0 (select once) or a positive step count.")


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


def remove_conflict(g, u, per_tensor: bool):
    """PCGrad: g − (min(0, ⟨g, u⟩)/||u||²) u — only a component pointing against u is removed."""
    gu, uu = _dot(g, u, per_tensor), _dot(u, u, per_tensor)
    return [x - (a / b) * y if (b > EPS and a < 0) else x for x, y, a, b in zip(g, u, gu, uu)]


def cosine(a, b) -> float:
    import torch

    num = sum(torch.sum(x * y) for x, y in zip(a, b))
    den = torch.sqrt(sum(torch.sum(x * x) for x in a) * sum(torch.sum(y * y) for y in b))
    return float(num / den) if den > 0 else 0.0


def norm(a) -> float:
    return float(sum(float((x.double() ** 2).sum()) for x in a) ** 0.5)


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


@dataclass
class Gradients:
    """One optimiser step's four gradients, one tensor per trainable parameter. g_pre and v_pre are
    None on steps that do not need the frozen copy's backward pass (MDGD-GM between selections)."""

    g: list  # ∇_θ L_t(θ)
    v: list  # ∇_θ L_v
    g_pre: list | None = None  # ∇_{θ_pre} L_t(θ_pre)
    v_pre: list | None = None  # ∇_{θ_pre} L_v


@dataclass
class Step:
    update: list  # what .grad is set to
    g_perp: list
    g_perp_pre: list | None
    mask: list | None = None


@register("mdgd", summary="MDGD Eq. 5-9: gradients decoupled from visual-representation drift",
          options=MdgdOptions)
class Mdgd(Full):
    default_lr = 2e-5
    custom_update = True

    def __init__(self):
        self.ref_model = None
        self.ref_params: list = []

    def trainable(self, model, family, opts):
        # the paper's LLaVA setting, the last 6 of 32 decoder layers + the projector, scaled to the model
        n = opts.method_options.layers or mdgd_default_layers(model, family)
        return projector_names(model, family) + last_layer_names(model, family, n)

    # ---- the combination (pure: hand-made vectors in the tests) ----

    def combine(self, grads: Gradients, opts: MdgdOptions) -> Step:
        per_tensor = opts.projection == "per-tensor"
        g_perp = project_out(grads.g, grads.v, per_tensor)  # Eq. 6
        g_perp_pre = project_out(grads.g_pre, grads.v_pre, per_tensor)  # Eq. 7
        if opts.mdgd_variant == "paper":
            g_tilde = project_onto(g_perp, g_perp_pre, per_tensor)  # Eq. 8
        elif opts.mdgd_variant == "pcgrad":
            g_tilde = remove_conflict(g_perp, g_perp_pre, per_tensor)
        else:  # decoupled
            g_tilde = g_perp
        update = [a + opts.lambda_visual * b for a, b in zip(g_tilde, grads.v)]  # Eq. 9
        return Step(update, g_perp, g_perp_pre)

    # ---- hooks the loop calls ----

    def start(self, ctx) -> None:
        """Load θ_pre, a frozen copy of the starting model, with gradients for the trained names only."""
        ref = load_mllm(ctx.parent, device=ctx.device, dtype=ctx.opts.dtype).model
        ref.eval()
        named = dict(ref.named_parameters())
        for p in ref.parameters():
            p.requires_grad_(False)
        self.ref_params = [named[n] for n in ctx.names]
        for p in self.ref_params:
            p.requires_grad_(True)  # for ∇_{θ_pre}; never stepped
        self.ref_model = ref

    def needs_pre_gradient(self, ctx) -> bool:
        return True

    def gradients(self, ctx, micro_batches, n_tokens: int) -> tuple[Gradients, dict]:
        """Accumulate the step's gradients over its micro-batches (and processes)."""
        import torch

        params, ref_params = ctx.params, self.ref_params
        with_pre = self.needs_pre_gradient(ctx)

        def zeros():
            return [torch.zeros_like(p) for p in params]

        acc = {"g": zeros(), "v": zeros(), **({"g_pre": zeros(), "v_pre": zeros()} if with_pre else {})}
        img_local = sum(int((b["input_ids"] == ctx.image_token_id).sum()) for b in micro_batches)
        img_total = max(1, round(ctx.dist.all_reduce_sum(float(img_local))))
        task_total = vis_total = 0.0
        for batch in micro_batches:
            out = ctx.model(**ctx.inputs(batch), output_hidden_states=True)
            with torch.set_grad_enabled(with_pre):  # the frozen copy needs a graph only for its gradients
                ref = self.ref_model(**ctx.inputs(batch), output_hidden_states=True)
            task = ctx.nll_sum(out.logits, batch["labels"]) / n_tokens
            img = batch["input_ids"] == ctx.image_token_id
            h, h_pre = out.hidden_states[-1][img], ref.hidden_states[-1][img]
            # Eq. 5 as a mean per element over the whole step (this micro-batch's share of it)
            vis = ((h - h_pre) ** 2).sum() / (img_total * h.shape[-1])
            new = {"g": torch.autograd.grad(task, params, retain_graph=True, allow_unused=True)}
            if with_pre:  # v and v_pre in one pass: each side's graph holds the other side constant
                both = torch.autograd.grad(vis, list(params) + list(ref_params), retain_graph=True, allow_unused=True)
                new["v"], new["v_pre"] = both[:len(params)], both[len(params):]
                ref_task = ctx.nll_sum(ref.logits, batch["labels"]) / n_tokens
                new["g_pre"] = torch.autograd.grad(ref_task, ref_params, allow_unused=True)
            else:
                new["v"] = torch.autograd.grad(vis, params, allow_unused=True)
            for key, grads in new.items():
                for a, b in zip(acc[key], grads):
                    if b is not None:
                        a.add_(b)
            task_total += float(task.detach())
            vis_total += float(vis.detach())
        for tensors in acc.values():  # data parallel: sum over processes before projecting
            ctx.dist.all_reduce_tensors(tensors)
        return Gradients(**acc), {"task_loss": task_total, "visual_loss": ctx.dist.all_reduce_sum(vis_total)}

    def update(self, ctx, micro_batches, n_tokens: int) -> tuple[float, dict]:
        """Set each trainable parameter's .grad to the MDGD update; return this process's task loss
        and the step's log fields."""
        grads, losses = self.gradients(ctx, micro_batches, n_tokens)
        step = self.combine(grads, ctx.opts.method_options)
        for p, u in zip(ctx.params, step.update):
            p.grad = u
        lam = ctx.opts.method_options.lambda_visual
        extras = {"visual_loss": losses["visual_loss"], "task_grad_norm": norm(grads.g),
                  "visual_grad_norm": lam * norm(grads.v)}  # the two terms the update adds up
        if grads.g_pre is not None:
            extras.update(cos_grad_pre=cosine(grads.g, grads.g_pre),
                          cos_gperp_pre=cosine(step.g_perp, step.g_perp_pre))
        if step.mask is not None:
            extras["masked_fraction"] = float(sum(m.sum() for m in step.mask) / sum(m.numel() for m in step.mask))
        self.on_step(ctx, step)
        return losses["task_loss"], extras

    def on_step(self, ctx, step: Step) -> None:
        pass


@register("mdgd-gm", summary="MDGD-GM Eq. 10-11: MDGD on a gradient-masked subset",
          options=MdgdGmOptions)
class MdgdGm(Mdgd):

    def __init__(self):
        super().__init__()
        self.mask = None  # the selected mask, kept across steps and resumes
        self._before = None  # parameters before the optimiser step, where entries outside the mask must not move

    def needs_pre_gradient(self, ctx) -> bool:
        refresh = ctx.opts.method_options.mask_refresh
        return self.mask is None or bool(refresh and ctx.step % refresh == 0)

    def combine(self, grads: Gradients, opts: MdgdGmOptions) -> Step:
        per_tensor = opts.projection == "per-tensor"
        g_perp = project_out(grads.g, grads.v, per_tensor)  # Eq. 6
        g_perp_pre = None
        if grads.g_pre is not None:  # (re)select the mask: Eq. 10
            g_perp_pre = project_out(grads.g_pre, grads.v_pre, per_tensor)  # Eq. 7
            self.mask = topq_mask([a * b for a, b in zip(g_perp, g_perp_pre)], opts.mask_ratio, per_tensor)
        update = [(a + opts.lambda_visual * b) * m for a, b, m in zip(g_perp, grads.v, self.mask)]  # Eq. 11
        return Step(update, g_perp, g_perp_pre, self.mask)

    def on_step(self, ctx, step: Step) -> None:
        # with a fixed mask and no weight decay, entries outside it have zero gradients and zero Adam
        # moments from the first step, so AdamW cannot move them; otherwise remember them
        if ctx.opts.method_options.mask_refresh != 0 or ctx.opts.weight_decay:
            self._before = [p.detach().clone() for p in ctx.params]

    def after_step(self, params) -> None:
        import torch

        if self._before is not None:  # only masked entries change this step
            with torch.no_grad():
                for p, b0, m in zip(params, self._before, self.mask):
                    p.copy_(torch.where(m, p, b0))
            self._before = None

    def extra_state(self) -> dict | None:
        return {f"gm_mask.{i}": m for i, m in enumerate(self.mask)} if self.mask is not None else None

    def load_extra_state(self, extra: dict, device) -> None:
        if "gm_mask.0" in extra:
            self.mask = [extra[f"gm_mask.{i}"].to(device) for i in range(len(extra))]
