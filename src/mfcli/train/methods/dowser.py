"""Model-Dowser-style sparse fine-tuning (after Hwang, Nguyen Dinh Son, Kim, ICML 2026, arXiv 2602.04509;
no reference code exists, so every choice the paper leaves open is an option with a stated default).

Before training, every weight of the tuned linear layers is scored by how much the model's output would
move if it changed (the paper's first-order argument, with |W_ij| standing in for the unknown change):

    S_ij = mean over prompts and positions of ‖J_i‖₂ · |W_ij| · |h_j|,    J_i = ∂f/∂z_i,  z = W h

‖J_i‖² is estimated with Hutchinson's estimator — E_ξ[(∂(ξᵀf)/∂z_i)²] = ‖J_i‖² for Rademacher ξ, one
backward of the scalar ξᵀf per draw — over prompts the pre-trained model writes itself (the method is
data-free). In each weight matrix the lowest `--dowser-ratio` of the scores are trained and the rest
frozen, the mask fixed before the first step: θ ← θ − λ·(M ⊙ ∇L).

mfcli's choices where the paper is silent (methods-after-mt.md §1(a), items 1–8), each an option or a
stated default: f = the final logits at every position of the prompt, one ξ over all of them (so ‖J_i‖
at a position counts its effect on every later output); positions and prompts averaged; "layer" = each
weight matrix; the tuned matrices = every linear weight of the last `--layers` decoder blocks (default
Model Tailor's share, 12 of 32), nothing else (no projector, norms or biases); prompts = greedy
continuations, `--dowser-length` tokens long, of BOS and one random token, with no image;
`--dowser-prompts` N and `--dowser-draws` R (16 each: "tens" in the paper). Frozen entries are put back
after every step, so weight decay cannot move them either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.params import option
from mfcli.train.methods.base import Method, default_layers
from mfcli.train.methods.contract import register
from mfcli.train.methods.shared_options import LayersOptions


@dataclass(frozen=True)
class DowserOptions(LayersOptions):
    dowser_ratio: float = option(0.1, "dowser: the fraction of each tuned weight matrix trained (the lowest "
                                      "scores; the paper's ρ on NVILA-Lite: 0.1).")
    dowser_prompts: int = option(16, "dowser: self-generated prompts the scores average over (N).")
    dowser_draws: int = option(16, "dowser: Rademacher draws per prompt for the Jacobian norms (R).")
    dowser_length: int = option(24, "dowser: tokens generated per prompt.")

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.dowser_ratio <= 1.0:
            raise UsageError(f"--dowser-ratio must be in (0, 1], got {self.dowser_ratio}.")
        if min(self.dowser_prompts, self.dowser_draws, self.dowser_length) < 1:
            raise UsageError("--dowser-prompts, --dowser-draws and --dowser-length must be at least 1.")


def dowser_scores(linears: dict, run: Callable, signs: Callable) -> dict:
    """S per linear layer (name → tensor shaped like its weight) for one input: `run()` computes the output
    f with the layers' inputs and outputs captured; `signs(f)` yields the ξ to draw (each shaped like f).
    S_ij = mean over positions of sqrt(mean_ξ (∂ξᵀf/∂z_i)²) · |W_ij| · |h_j|."""
    import torch

    inputs, outputs, hooks = {}, {}, []
    for name, lin in linears.items():
        def hook(module, args, out, name=name):
            inputs[name], outputs[name] = args[0].detach(), out
        hooks.append(lin.register_forward_hook(hook))
    try:
        f = run()
    finally:
        for h in hooks:
            h.remove()
    names = list(linears)
    sq = {n: torch.zeros_like(outputs[n], dtype=torch.float32) for n in names}
    draws = 0
    for xi in signs(f):
        grads = torch.autograd.grad((xi * f).sum(), [outputs[n] for n in names], retain_graph=True, allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                sq[n] += g.float() ** 2
        draws += 1
    scores = {}
    for n in names:
        a = (sq[n] / max(draws, 1)).sqrt().reshape(-1, sq[n].shape[-1])  # ‖J_i‖ per position
        b = inputs[n].float().abs().reshape(-1, inputs[n].shape[-1])  # |h_j| per position
        scores[n] = linears[n].weight.detach().float().abs() * (a.T @ b) / a.shape[0]
    return scores


def lowest_mask(scores, ratio: float):
    """The trainable entries of one matrix: its round(ratio · numel) lowest scores (ties by position)."""
    import torch

    k = int(round(ratio * scores.numel()))
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k:
        order = torch.sort(scores.flatten(), stable=True).indices
        mask[order[:k]] = True
    return mask.view_as(scores)


def all_signs(shape):
    """Every ξ ∈ {±1}^shape (exhaustive Hutchinson: the exact Jacobian norms; for the hand test)."""
    import itertools

    import torch

    n = int(torch.Size(shape).numel())
    for bits in itertools.product((1.0, -1.0), repeat=n):
        yield torch.tensor(bits).view(shape)


@register("dowser", summary="the lowest-scored weights of the last N blocks' linears, scored by self-generated "
                            "prompts' Jacobian norms (Model-Dowser-style)", fsdp=False,
          options=DowserOptions)
class Dowser(Method):
    default_lr = 2e-5

    def __init__(self):
        self.masks: list = []  # per trained tensor: True where it trains
        self.frozen: list = []  # the tensors' starting values (frozen entries are put back after each step)

    def trainable(self, model, family, opts):
        import torch

        n = opts.method_options.layers or default_layers(model, family)
        layers = family.module(model, "decoder_layers")
        prefix = family.prefix("decoder_layers")
        return [f"{prefix}{i}.{name}.weight" for i in range(len(layers) - n, len(layers))
                for name, m in layers[i].named_modules() if isinstance(m, torch.nn.Linear)]

    def start(self, ctx) -> None:
        import torch

        own = ctx.opts.method_options
        named = dict(ctx.model.named_modules())
        linears = {n[:-len(".weight")]: named[n[:-len(".weight")]] for n in ctx.names}
        total = {n: torch.zeros_like(m.weight, dtype=torch.float32) for n, m in linears.items()}
        gen = torch.Generator().manual_seed(ctx.opts.seed)
        was_training = ctx.model.training
        ctx.model.eval()
        try:  # autograd.grad asks for ∂/∂z only: the weights' .grad stay untouched
            for prompt in self.prompts(ctx, own, gen):
                def run(prompt=prompt):
                    return ctx.model(input_ids=prompt).logits.float()

                def signs(f):
                    for _ in range(own.dowser_draws):
                        yield (torch.randint(0, 2, f.shape, generator=gen).float() * 2 - 1).to(f.device)

                with torch.enable_grad():
                    for n, s in dowser_scores(linears, run, signs).items():
                        total[n] += s / own.dowser_prompts
        finally:
            ctx.model.train(was_training)
        self.masks = [lowest_mask(total[n[:-len(".weight")]], own.dowser_ratio).to(p.device)
                      for n, p in zip(ctx.names, ctx.params)]
        self.frozen = [p.detach().clone() for p in ctx.params]
        for i, p in enumerate(ctx.params):  # θ ← θ − λ·(M ⊙ ∇L): the frozen entries get no gradient
            p.register_hook(lambda g, i=i: g * self.masks[i])

    def prompts(self, ctx, own, gen):
        """N prompts the pre-trained model writes itself: greedy continuations of BOS and one random token."""
        import torch

        tok = ctx.processor.tokenizer
        vocab = ctx.model.get_output_embeddings().weight.shape[0]
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        for _ in range(own.dowser_prompts):
            seed = int(torch.randint(0, vocab, (1,), generator=gen))
            ids = torch.tensor([[bos, seed] if bos is not None else [seed]], device=ctx.device)
            with torch.no_grad():
                out = ctx.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=own.dowser_length, min_new_tokens=own.dowser_length,
                                         pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else bos)
            yield out

    def after_step(self, params) -> None:
        import torch

        with torch.no_grad():
            for p, m, w in zip(params, self.masks, self.frozen):
                p.copy_(torch.where(m, p, w))

    def extra_state(self) -> dict | None:
        return {f"dowser_mask.{i}": m for i, m in enumerate(self.masks)} if self.masks else None

    def load_extra_state(self, extra: dict, device) -> None:
        n = sum(1 for k in extra if k.startswith("dowser_mask."))
        if n:  # the masks scored on the pre-trained model, not on the checkpoint resumed from
            for i in range(n):
                self.masks[i] = extra[f"dowser_mask.{i}"].to(device)
