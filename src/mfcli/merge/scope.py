"""Which changed tensors `tailor --scope` tailors, and what that scope counts on a model's configuration.

Model Tailor's budget is a share of the parameters it tailors: for LLaVA-1.5-7B it reports 2.7B
tailored and 273M (10 %) kept, having fine-tuned "the MLP mapper and the final 12 layers" (§5.1).
Those two add up to 2.45B; the 2.7B is reached only with the token embeddings and lm_head counted
too (2.71B), so `--scope paper` is the projector, the embeddings, the decoder layers and lm_head —
whose 10 % is 271.2M, not the printed 273M: the paper's two figures do not add up exactly.
`tests/test_scope.py` rebuilds the count from LLaVA-1.5-7B's configuration on the meta device.
"""

from __future__ import annotations

from mfcli.models.families import Family, canonical_name


def scope_parts(family: Family) -> tuple[str, ...]:
    """The canonical name prefixes `--scope paper` tailors."""
    return tuple(canonical_name(family.prefix(p)) for p in ("projector", "embeddings", "decoder_layers", "lm_head"))


def in_scope(name: str, scope: str, family: Family) -> bool:
    """Whether a parameter (checkpoint key or module path) is tailored under `scope`."""
    return scope == "all" or canonical_name(name).startswith(scope_parts(family))


def scope_count(named_shapes, scope: str, family: Family, changed=lambda name: True) -> int:
    """Parameters tailored under `scope`: those in it that the fine-tune changed. named_shapes yields
    (name, shape or tensor) pairs, e.g. model.named_parameters() of a model built on the meta device."""
    import math

    return sum(math.prod(tuple(s.shape) if hasattr(s, "shape") else tuple(s))
               for n, s in named_shapes if in_scope(n, scope, family) and changed(n))
