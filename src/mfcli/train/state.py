"""Resumable trainer state in safetensors + JSON: no pickle is ever loaded on --resume."""

from __future__ import annotations

import json
from pathlib import Path

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"


def save_state(d: Path, opt_state: dict, scheduler, progress: dict, extra: dict | None = None) -> None:
    """opt_state: optimizer.state_dict()'s shape (parameters by position; FSDP gathers it so).
    extra: method tensors that must survive a resume (MDGD-GM's mask), stored as `extra.NAME`."""
    import torch
    from safetensors.torch import save_file

    tensors, scalars = {}, {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"opt.{idx}.{k}"] = v
    tensors["rng.torch"] = torch.get_rng_state()
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v.detach().contiguous().cpu()
    meta = {"progress": progress, "scheduler": scheduler.state_dict(), "opt_scalars": scalars,
            "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]}
    save_file(tensors, str(d / STATE_TENSORS))
    (d / STATE_JSON).write_text(json.dumps(meta, indent=1, default=float))


def load_state(d: Path, optimizer, scheduler, load_optimizer=None) -> dict:
    """Restore the scheduler and the RNG; hand the optimiser state to load_optimizer (default:
    optimizer.load_state_dict; under FSDP a collective that keeps each process's shard)."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(d / STATE_TENSORS))
    meta = json.loads((d / STATE_JSON).read_text())
    sd = optimizer.state_dict()
    state: dict = {}
    for key, v in list(tensors.items()) + list(meta["opt_scalars"].items()):
        if not key.startswith("opt."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    for g, saved in zip(sd["param_groups"], meta["param_groups"]):
        g.update(saved)
    (load_optimizer or optimizer.load_state_dict)({"state": state, "param_groups": sd["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return {**meta["progress"], "extra": extra}


def has_state(d: Path) -> bool:
    return (d / STATE_TENSORS).is_file() and (d / STATE_JSON).is_file()
