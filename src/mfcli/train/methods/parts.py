"""Component tuning: train a named set of the language model's parameters and nothing else ("How to
Teach Large Multimodal Models New Skills", Zhu, Gong, Xiao, Liu, Hoiem, arXiv 2510.08564; code
jessemelpolio/LMM_CL, llava/train/train.py).

The paper's two recipes, by name (its code unfreezes by name after `model.requires_grad_(False)`):

- `sa-proj` — every decoder layer's self-attention projections q, k, v **and o**, their biases where the
  model has them (Qwen2's q/k/v); the vision tower, the projector, embeddings, lm_head, norms and MLPs
  stay frozen (train.py's `mm_language_model_train_attn_proj_only` branch, l. ~2146).
- `mlp-gate-up` — every decoder layer's `mlp.gate_proj` and `mlp.up_proj`; `down_proj` explicitly frozen
  (the `mm_language_model_train_mlp_gate_up_only` branch, l. ~2057).
- `sa-qkv` — q, k, v without o: the repository's qkv ablation as its name says. Its script
  `tune_parts/sa_proj_qkv.sh` passes the `attn_proj_only` flag and so trains o too; mfcli's `sa-qkv` does
  not copy that slip (docs/methods.md).

Or `--parts GLOB[,GLOB…]`: any parameter whose name matches one of the shell-style patterns (fnmatch),
under the language model's decoder layers or anywhere (`*.self_attn.v_proj.*`). The paper trains with lr
5e-6, one epoch per task, an effective batch of 32, cosine schedule with 3 % warm-up and no weight decay
(`scripts/all_experiments/tune_parts/*.sh`); `default_lr` is its 5e-6, the rest are `mfcli finetune`'s
flags (docs/methods.md gives the command).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from mfcli.errors import MfcliError, UsageError, did_you_mean
from mfcli.params import option
from mfcli.train.methods.base import Method
from mfcli.train.methods.contract import register

# recipe → (module names a trained parameter sits under, within each decoder layer)
RECIPES = {
    "sa-proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    "mlp-gate-up": ("mlp.gate_proj", "mlp.up_proj"),
    "sa-qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
}


@dataclass(frozen=True)
class PartsOptions:
    parts_recipe: str = option("sa-proj", f"parts: which parameters train: {', '.join(RECIPES)} (the paper's "
                                          "recipes; sa-qkv without o_proj), unless --parts names them.")
    parts: str = option("", "parts: comma-separated name patterns (fnmatch, e.g. '*.self_attn.v_proj.*') of the "
                            "parameters to train, in place of the recipe.")

    def __post_init__(self):
        if self.parts_recipe not in RECIPES:
            raise UsageError(f"unknown --parts-recipe '{self.parts_recipe}'.", did_you_mean(self.parts_recipe, RECIPES))


def recipe_names(names: list[str], decoder_prefix: str, recipe: str) -> list[str]:
    """The parameters (weights and biases) of the recipe's modules in every decoder layer."""
    wanted = RECIPES[recipe]
    out = []
    for n in names:
        if not n.startswith(decoder_prefix):
            continue
        rest = n[len(decoder_prefix):].split(".", 1)  # "<layer>", "self_attn.q_proj.weight"
        if len(rest) == 2 and rest[0].isdigit() and rest[1].rsplit(".", 1)[0] in wanted:
            out.append(n)
    return out


def pattern_names(names: list[str], patterns: str) -> list[str]:
    globs = [g.strip() for g in patterns.split(",") if g.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


@register("parts", summary="a named set of the language model's parameters (component tuning: the paper's "
                           "sa-proj or mlp-gate-up recipe, or name patterns)", fsdp=True, options=PartsOptions)
class Parts(Method):
    default_lr = 5e-6  # the paper's (tune_parts/sa_proj.sh, mlp_gate_up.sh)

    def trainable(self, model, family, opts) -> list[str]:
        own = opts.method_options
        names = [n for n, _ in model.named_parameters()]
        if own.parts:
            chosen = pattern_names(names, own.parts)
            what = f"--parts {own.parts}"
        else:
            chosen = recipe_names(names, family.prefix("decoder_layers"), own.parts_recipe)
            what = f"--parts-recipe {own.parts_recipe}"
        if not chosen:
            raise MfcliError(f"{what} matches no parameter of this model.",
                             "Name parameters as the model does (e.g. '*.self_attn.q_proj.*').")
        return chosen
