"""LoRASculpt (Liang, Huang, Wan, Yang, Ye, CVPR 2025): LoRA made sparse, with a regulariser that keeps
its update off the pre-trained weights that matter (code LiangJian24/LoRASculpt,
llava/train/LoRASculpt_Trainer.py; defaults there from STEP_THRESHOLD=100, AB_PRESERVE_RATIO=0.1,
CMR_LAMBDA=1e-3, OMEGA=1.0, l. 214–217).

- **Sparse updates** (l. 528–561): after `--sculpt-step` optimiser steps, every LoRA tensor (each A and
  each B on its own) keeps its top `int(numel · keep)` entries by magnitude and zeroes the rest; from then
  on the masked entries are reset to zero at every step — the mask is fixed, nothing regrows.
- **Conflict-mitigation regulariser** (`comput_custom_reg`, l. 790–823), on the LoRA modules of q_proj,
  k_proj and v_proj only: with W the frozen base weight, M = tanh(ω · |1 / log(|W / ‖W‖_F| + 1e-15)|)
  (no gradient; it grows with |W|), and

      L_CMR = λ · mean over those modules of ‖M ⊙ (B A)‖_F        (not squared; B A without α/r)

  added to the task loss once per step.

Departures, stated: the reference re-masks *before* each step, so its last step leaves non-zero updates
in masked places and its saved adapter is not exactly sparse; mfcli re-masks after every step, so the
saved adapter is. M is computed once (W is frozen) where the code recomputes it every step — the same
values. The paper's connector "soft sparsity" and its β·L_CMR on the connector are not in the released
code, whose projector is fully fine-tuned with LoRA's `--projector-lr` as here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.params import option
from mfcli.train.methods.contract import register
from mfcli.train.methods.lora import Lora
from mfcli.train.methods.shared_options import LoraOptions

CMR_MODULES = ("q_proj", "k_proj", "v_proj")  # the reference's filter (l. 797)


@dataclass(frozen=True)
class SculptOptions(LoraOptions):
    sculpt_step: int = option(100, "lorasculpt: after this many optimiser steps, keep each LoRA tensor's top "
                                   "entries by magnitude (STEP_THRESHOLD).")
    sculpt_keep: float = option(0.1, "lorasculpt: the fraction of each LoRA A and B tensor kept (AB_PRESERVE_RATIO).")
    cmr_lambda: float = option(1e-3, "lorasculpt: weight λ of the conflict-mitigation regulariser (CMR_LAMBDA).")
    cmr_omega: float = option(1.0, "lorasculpt: ω in M = tanh(ω·|1/log|W/‖W‖||) (OMEGA).")

    def __post_init__(self):
        super().__post_init__()
        if self.sculpt_step < 0:
            raise UsageError(f"--sculpt-step must be >= 0, got {self.sculpt_step}.")
        if not 0.0 < self.sculpt_keep <= 1.0:
            raise UsageError(f"--sculpt-keep must be in (0, 1], got {self.sculpt_keep}.")
        if self.cmr_lambda < 0 or self.cmr_omega < 0:
            raise UsageError("--cmr-lambda and --cmr-omega must be >= 0.")


def magnitude_guide(w, omega: float):
    """M = tanh(ω · |1 / log(|W / ‖W‖_F| + 1e-15)|): near 1 where |W| is large, near 0 where it is small."""
    import torch

    normed = w.float() / torch.linalg.vector_norm(w.float())
    return torch.tanh(omega * (1.0 / torch.log(normed.abs() + 1e-15)).abs())


def cmr(pairs, lam: float):
    """λ · the mean over (M, A, B) of ‖M ⊙ (B A)‖_F."""
    import torch

    terms = [torch.linalg.vector_norm(m * (b @ a)) for m, a, b in pairs]
    return lam * torch.stack(terms).mean() if terms else None


def top_magnitude_mask(t, keep: float):
    """The `int(numel · keep)` largest entries of |t| (torch.topk, as the code), as a boolean mask."""
    import torch

    k = int(t.numel() * keep)
    mask = torch.zeros(t.numel(), dtype=torch.bool, device=t.device)
    if k:
        mask[torch.topk(t.detach().abs().flatten(), k).indices] = True
    return mask.view_as(t)


@register("lorasculpt", summary="LoRA kept sparse after a set step, with a regulariser guided by the pre-trained "
                                "weights' magnitude (LoRASculpt, CVPR 2025)", adapter=True,
          options=SculptOptions)
class LoraSculpt(Lora):
    def __init__(self):
        self.lora_tensors: list = []  # every LoRA A and B weight, in model order
        self.masks: list | None = None  # after --sculpt-step: what each keeps
        self.guided: list = []  # (M, A, B) per q/k/v LoRA module

    def start(self, ctx) -> None:
        import torch

        self.ctx, self.own = ctx, ctx.opts.method_options
        self.lora_tensors = [p for n, p in ctx.model.named_parameters() if p.requires_grad and
                             (".lora_A." in n or ".lora_B." in n)]
        self.guided = []
        for name, module in ctx.model.named_modules():
            if not hasattr(module, "lora_A") or not any(f".{m}" in f".{name}" for m in CMR_MODULES):
                continue
            base = module.get_base_layer() if hasattr(module, "get_base_layer") else module.base_layer
            for key in module.lora_A:
                with torch.no_grad():
                    m = magnitude_guide(base.weight, self.own.cmr_omega)
                self.guided.append((m, module.lora_A[key].weight, module.lora_B[key].weight))

    def extra_loss(self, ctx):
        return cmr(self.guided, self.own.cmr_lambda) if self.own.cmr_lambda > 0 else None

    def after_step(self, params) -> None:
        import torch

        with torch.no_grad():
            if self.masks is None and self.ctx.step + 1 >= self.own.sculpt_step:  # steps done, this one included
                self.masks = [top_magnitude_mask(t, self.own.sculpt_keep) for t in self.lora_tensors]
            if self.masks is not None:
                for t, m in zip(self.lora_tensors, self.masks):
                    t.mul_(m)

    def extra_state(self) -> dict | None:
        return {f"sculpt_mask.{i}": m for i, m in enumerate(self.masks)} if self.masks is not None else None

    def load_extra_state(self, extra: dict, device) -> None:
        n = sum(1 for k in extra if k.startswith("sculpt_mask."))
        if n:
            self.masks = [extra[f"sculpt_mask.{i}"].to(device) for i in range(n)]
