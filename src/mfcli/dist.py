"""Multi-process runs under `accelerate launch` or torchrun, read from the launcher's environment.

Both launchers set RANK / WORLD_SIZE / LOCAL_RANK. We use torch.distributed directly (NCCL on CUDA,
gloo on CPU) rather than accelerate's state object, which reports a single process for CPU runs
that were not launched with `accelerate launch --cpu`.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: str | None = None  # the device this process must use; None: the user's --device

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as td

            td.barrier()

    def broadcast_from_main(self, obj):
        """Rank 0's `obj` on every process (itself where there is one process): one decision, taken
        once, that every process then acts on."""
        if not self.active:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_sum(self, value: float) -> float:
        if not self.active:
            return value
        import torch
        import torch.distributed as td

        t = torch.tensor([value], dtype=torch.float64)
        if td.get_backend() == "nccl":
            t = t.to(self.device)
        td.all_reduce(t)
        return float(t)


    def all_reduce_tensors(self, tensors: list) -> None:
        """Sum a list of tensors over processes in place, as one flat buffer."""
        if not self.active or not tensors:
            return
        import torch
        import torch.distributed as td

        flat = torch.cat([t.reshape(-1) for t in tensors])
        td.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def _close_process_group() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


_STARTED = False  # this process joined a process group (init_dist under torchrun / accelerate launch)


def leave(code: int) -> None:
    """End a process that joined a process group: close the group, flush, and exit at once with `code`,
    skipping the interpreter's teardown. Closing the group at exit alone (atexit) still let rank 1 abort
    now and then after its work was done and written — gloo's threads torn down during finalisation:
    "terminate called without an active exception", exit -6, seen in CI (2026-12-07) — which failed a
    run that had succeeded. A process outside a group returns and exits as usual."""
    if not _STARTED:
        return
    import sys

    _close_process_group()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream: nothing left to flush
            pass
    os._exit(code)


def init_dist() -> Dist:
    global _STARTED
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as td

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if cuda else "gloo")
        # a process group left alive at interpreter exit can abort the process after its work is done
        # (gloo: "terminate called without an active exception", exit -6): close it on the way out
        atexit.register(_close_process_group)
        _STARTED = True
    if cuda:
        torch.cuda.set_device(local)
    return Dist(td.get_rank(), td.get_world_size(), f"cuda:{local}" if cuda else "cpu")
