"""Streaming access for `tailor`: checkpoints read tensor by tensor, a model run one decoder layer
at a time, and the output written shard by shard — so peak memory is one layer plus what does not
belong to any layer (vision tower, embeddings, head), whatever the depth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from mfcli.errors import MfcliError
from mfcli.merge.obs import HessianAccumulator
from mfcli.models.families import canonical_name


class LazyCheckpoint:
    """The tensors of a safetensors checkpoint (single file or sharded), read one at a time."""

    def __init__(self, path: str | Path):
        from safetensors import safe_open

        self.path = Path(path)
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            files = [f.name for f in sorted(self.path.glob("*.safetensors")) if f.name != "trainer_state.safetensors"]
            weight_map = None
        if not files:
            raise MfcliError(f"{self.path} has no safetensors weights.", "Point at a checkpoint directory.")
        if weight_map is None:
            weight_map = {}
            for f in files:
                with safe_open(str(self.path / f), "pt") as h:
                    weight_map.update({k: f for k in h.keys()})
        self.file_of = weight_map
        self._meta: dict[str, tuple] = {}
        self.by_norm = {}
        for k in self.file_of:
            n = canonical_name(k)
            if n in self.by_norm:
                raise MfcliError(f"{self.path}: tensors '{self.by_norm[n]}' and '{k}' cannot be told apart.",
                                 "Report this checkpoint layout as a bug.")
            self.by_norm[n] = k
        self._alias_tied_head()

    def _alias_tied_head(self) -> None:
        """A model that ties its output head to its input embeddings (SmolLM2 and so `smol`; Qwen2-VL-2B)
        stores that tensor once, as the embeddings: the head's name then reads it. `keys()` still lists
        it once, so a merge treats the shared tensor once."""
        config = self.path / "config.json"
        if not config.is_file():
            return
        c = json.loads(config.read_text())
        if not (c.get("tie_word_embeddings") or (c.get("text_config") or {}).get("tie_word_embeddings")):
            return
        heads = [n for n in self.by_norm if n.endswith("lm_head.weight")]
        embeds = [k for n, k in self.by_norm.items() if n.endswith("embed_tokens.weight")]
        if not heads and len(embeds) == 1:
            self.by_norm[canonical_name("lm_head.weight")] = embeds[0]

    def keys(self) -> list[str]:
        return list(self.file_of)

    def key_for(self, module_name: str) -> str:
        try:
            return self.by_norm[canonical_name(module_name)]
        except KeyError:
            raise MfcliError(f"{self.path} has no tensor for parameter '{module_name}'.",
                             "Is it a checkpoint of the same architecture?") from None

    def _open(self, key: str):
        from safetensors import safe_open

        # Opened per read: a handle kept open keeps every page it ever touched mapped (and counted
        # in RSS), so reading a whole checkpoint through one handle would look like loading it.
        return safe_open(str(self.path / self.file_of[key]), "pt")

    def get(self, key: str) -> torch.Tensor:
        with self._open(key) as h:
            return h.get_tensor(key).clone()

    def meta(self, key: str) -> tuple[tuple, str]:
        if key not in self._meta:
            with self._open(key) as h:
                s = h.get_slice(key)
                self._meta[key] = (tuple(s.get_shape()), s.get_dtype())
        return self._meta[key]


class _Stop(Exception):
    pass


_CACHE_KWARGS = ("cache", "past_key_values", "past_key_value", "use_cache")


class _Catcher(torch.nn.Module):
    """Stands in for decoder layer 0: records its inputs, then stops the forward pass."""

    def __init__(self, store: list):
        super().__init__()
        self.store = store

    def forward(self, hidden_states, *args, **kwargs):
        # the head's KV cache holds one layer; replaying layer i with it would index past its end
        # (transformers < 5.24 names it past_key_values, later versions cache)
        kwargs = {k: v for k, v in kwargs.items() if k not in _CACHE_KWARGS}
        self.store.append((hidden_states.detach(), kwargs))
        raise _Stop


def capture_first_layer_inputs(model: torch.nn.Module, layers: torch.nn.ModuleList, batches, store: list,
                               rebuild_first: Callable[[], torch.nn.Module]) -> None:
    """Run `model` on each batch only as far as its first decoder layer, appending that layer's inputs
    (hidden states and keyword arguments, without the KV cache) to `store`; the layer is put back as
    `rebuild_first()` makes it. What the streaming merge replays, one layer at a time."""
    layers[0] = _Catcher(store)
    try:
        with torch.inference_mode():
            for b in batches:
                try:
                    model(**{k: v for k, v in b.items() if k != "labels"}, use_cache=False)
                except _Stop:
                    pass
    finally:
        layers[0] = rebuild_first()


def load_params(module: torch.nn.Module, ckpt: LazyCheckpoint, prefix: str) -> None:
    """Fill a module's parameters from the checkpoint (module names under `prefix`)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            t = ckpt.get(ckpt.key_for(prefix + name))
            if t.shape != p.shape:
                raise MfcliError(f"shape mismatch for {prefix + name}: {tuple(t.shape)} vs {tuple(p.shape)}.",
                                 "Is it a checkpoint of the same architecture?")
            p.copy_(t.to(p.dtype))


def linear_hooks(module: torch.nn.Module, prefix: str, names: set[str], acc: dict):
    """Forward hooks accumulating H for the nn.Linear modules whose full names are in `names`."""
    hooks = []
    for name, mod in module.named_modules():
        full = prefix + name
        if full in names and isinstance(mod, torch.nn.Linear):
            acc.setdefault(full, HessianAccumulator(mod.in_features))

            def hook(m, inp, out, full=full):
                acc[full].add(inp[0].detach())
            hooks.append(mod.register_forward_hook(hook))
    return hooks
