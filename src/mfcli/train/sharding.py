"""How the model's parameters are spread over processes: whole on each (one process, DDP) or sharded
with FSDP (torch's `fully_shard`, FSDP2), for a model whose weights and AdamW state do not fit one
GPU (a 7B full fine-tune: 14 GB of bf16 weights + 56 GB of fp32 moments).

Under FSDP each decoder layer is its own shard group and the root holds the rest; checkpoints are
written in the ordinary unsharded format (a full state dict gathered onto rank 0), so a run saved
under FSDP loads anywhere and resumes under FSDP or without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.train.methods import REGISTRY

def fsdp_requested(flag: bool) -> bool:
    """--fsdp, or `accelerate launch` with an FSDP config (it exports ACCELERATE_USE_FSDP)."""
    return flag or os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes")


@dataclass
class Snapshot:
    """A checkpoint's tensors gathered from every process (None on processes other than rank 0)."""

    model: dict | None
    optimizer: dict | None


class Whole:
    """Every process holds the whole model (one process, or DDP): nothing to gather."""

    fsdp = False

    def shard(self, model, family) -> None:
        pass

    def grad_norm(self, value) -> float:
        return float(value)

    def snapshot(self, model, optimizer, names) -> Snapshot:
        return Snapshot(None, optimizer.state_dict())

    def load_optimizer(self, model, optimizer, names, state: dict) -> None:
        optimizer.load_state_dict(state)


class Fsdp(Whole):
    fsdp = True

    def __init__(self, dist, spec):
        if not spec.fsdp:  # declared at registration (train/methods/contract.py)
            shardable = ", ".join(n for n, s in REGISTRY.items() if s.fsdp)
            raise UsageError(f"--method {spec.name} does not run under FSDP.",
                             f"FSDP shards {shardable}; run {spec.name} without --fsdp (DDP).")
        self.dist = dist

    def _options(self):
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        # gathered to CPU on a GPU; on CPU (gloo) the offload path aborts at exit in torch 2.13
        return StateDictOptions(full_state_dict=True, cpu_offload=torch.cuda.is_available())

    def shard(self, model, family) -> None:
        import torch
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cuda" if torch.cuda.is_available() else "cpu", (self.dist.world,))
        for layer in family.module(model, "decoder_layers"):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)

    def grad_norm(self, value) -> float:
        return float(value.full_tensor() if hasattr(value, "full_tensor") else value)

    def snapshot(self, model, optimizer, names) -> Snapshot:
        """Collective: every process must call it. The optimiser state comes back in
        optimizer.state_dict()'s shape (parameters by position), so the file format does not change."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        opts = self._options()
        weights = get_model_state_dict(model, options=opts)
        full = get_optimizer_state_dict(model, optimizer, options=opts)
        if self.dist.rank != 0:
            return Snapshot(None, None)
        index = {n: i for i, n in enumerate(names)}
        state = {index[n]: st for n, st in full["state"].items()}
        groups = [{**g, "params": [index[n] for n in g["params"]]} for g in full["param_groups"]]
        return Snapshot(weights, {"state": state, "param_groups": groups})

    def load_optimizer(self, model, optimizer, names, state: dict) -> None:
        """Collective: the full state on every process; each keeps its shard."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        full = {"state": {names[i]: st for i, st in state["state"].items()},
                "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]]}
        set_optimizer_state_dict(model, optimizer, full, options=StateDictOptions(full_state_dict=True))


def make_sharding(fsdp: bool, dist, spec) -> Whole:
    """Whole unless FSDP was asked for over several processes; `spec` is the method's registry entry."""
    if not fsdp_requested(fsdp) or not dist.active:
        return Whole()
    return Fsdp(dist, spec)
