"""SPIDER (Huang, Liang, Shi, Zhu, Wan, Li, Du, Tao, Ye, "Learn from Downstream and Be Yourself in
MLLM Fine-Tuning", ICML 2025): fine-tune the projector and the last N decoder blocks, and after every
optimiser step pull each weight back toward its pre-trained value by how much more it matters to the
downstream task than to the pre-trained one.

The reference code's rule (Code/train/SPIDER.py), per trainable tensor:

    rank(x) = sigmoid((|x| − mean|x|) / std|x|)        std unbiased (n − 1); 0 for an all-zero x (l. 652–658)
    I_pre = rank(W₀)                                     once, before the first step (l. 421–429)
    G ← G + ∇                                            an undecayed running sum of the clipped gradients
    I_ft = rank(G)
    c = I_ft / (I_pre + I_ft) where I_pre < I_ft, else 0; c ← min(c / mean(c ≠ 0), 1)
    W ← W₀ + c ⊙ (W − W₀)                                after each optimiser step (l. 504–560)

An entry with c = 0 is reset to W₀ (frozen), one with c = 1 fine-tunes freely; c is recomputed every
step and shrinks the cumulative change (it compounds, as in the code). No ratio to tune. Which blocks
train is the code's `tune_decoder_layer` (its default 0; the paper's N is not given): mfcli's default is
Model Tailor's share, the last 12 of 32 blocks (`--layers`). W₀ and G are kept in fp32 and saved with
the trainer state, so a resumed run takes the same steps.
"""

from __future__ import annotations

from mfcli.train.methods.base import Method, default_layers, last_layer_names, projector_names
from mfcli.train.methods.contract import register
from mfcli.train.methods.shared_options import LayersOptions


def importance(x):
    """SPIDER's rank: the sigmoid of |x| z-scored over the tensor (unbiased std); 0 for an all-zero x."""
    import torch

    a = x.abs().float()
    if not bool(a.any()):
        return torch.zeros_like(a)
    std = a.std() if a.numel() > 1 else torch.tensor(0.0)
    if float(std) == 0.0:  # every |x| equal: every entry sits at the mean
        return torch.full_like(a, 0.5)
    return torch.sigmoid((a - a.mean()) / std)


def keep_coefficients(i_pre, i_ft):
    """c = I_ft / (I_pre + I_ft) where the fine-tuning importance exceeds the pre-trained one, else 0;
    divided by the mean of its non-zero entries and clipped at 1."""
    import torch

    c = torch.where(i_pre < i_ft, i_ft / (i_pre + i_ft), torch.zeros_like(i_ft))
    nonzero = c != 0
    if bool(nonzero.any()):
        c = (c / c[nonzero].mean()).clamp(max=1.0)
    return c


@register("spider", summary="projector + last N blocks, each step blended back toward the pre-trained weights "
                            "by importance (SPIDER, ICML 2025)", options=LayersOptions)
class Spider(Method):
    default_lr = 2e-5

    def __init__(self):
        self.w0: list = []  # fp32 pre-trained values of the trainable tensors
        self.i_pre: list = []
        self.g_sum: list = []  # the running sum of gradients

    def trainable(self, model, family, opts):
        n = opts.method_options.layers or default_layers(model, family)
        return projector_names(model, family) + last_layer_names(model, family, n)

    def start(self, ctx) -> None:
        import torch

        with torch.no_grad():
            self.w0 = [p.detach().float().clone() for p in ctx.params]
        self.i_pre = [importance(w) for w in self.w0]
        self.g_sum = [torch.zeros_like(w) for w in self.w0]

    def after_step(self, params) -> None:
        import torch

        with torch.no_grad():
            for p, w0, i_pre, g in zip(params, self.w0, self.i_pre, self.g_sum):
                if p.grad is not None:
                    g.add_(p.grad.float())
                c = keep_coefficients(i_pre, importance(g))
                p.copy_((w0 + c * (p.float() - w0)).to(p.dtype))

    def extra_state(self) -> dict | None:
        if not self.w0:
            return None
        return {**{f"spider_w0.{i}": w for i, w in enumerate(self.w0)},
                **{f"spider_g.{i}": g for i, g in enumerate(self.g_sum)}}

    def load_extra_state(self, extra: dict, device) -> None:
        n = sum(1 for k in extra if k.startswith("spider_w0."))
        if n:
            self.w0 = [extra[f"spider_w0.{i}"].to(device) for i in range(n)]
            self.g_sum = [extra[f"spider_g.{i}"].to(device) for i in range(n)]
            self.i_pre = [importance(w) for w in self.w0]
