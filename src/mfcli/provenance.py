"""Provenance: what a number was computed with — the libraries, the CPU kernel level, the BLAS mode and the
threads of a process, a checkpoint's weights digest, and the built-in model a checkpoint descends from
(issue 37; zoo/fingerprint.py pins the built-in models' builds). A leaf: every layer records it.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

# What every process computes with (a built-in model's build among them: Pillow and numpy draw the
# synthetic tasks). A build that reads more names it too (smol reads its GGUF with gguf); a fine-tune or a
# merge records RUN_LIBRARIES, since LoRA's adapters are peft's.
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pillow", "scikit-learn")
RUN_LIBRARIES = (*LIBRARIES, "peft")


def library_versions(names: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """The installed versions of `names` (LIBRARIES when None); None for one not installed."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names or LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment(libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """What this process computes with: `libraries`' versions, kernel level, BLAS mode, threads, machine."""
    import torch

    return {"libraries": library_versions(libraries), "python": platform.python_version(),
            "machine": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR"), "threads": torch.get_num_threads()}


def weight_files(model_dir: str | Path) -> list[Path]:
    """A checkpoint's weight files, in name order: its *.safetensors but the trainer's state."""
    return [f for f in sorted(Path(model_dir).glob("*.safetensors")) if f.name != "trainer_state.safetensors"]


def weights_digest(model_dir: str | Path) -> str:
    """sha256 over a checkpoint's tensors — names, dtypes, shapes and bytes, in name order — so it does
    not depend on how safetensors laid the files out or on their metadata."""
    from contextlib import ExitStack

    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with ExitStack() as stack:
        owner = {k: sf for sf in (stack.enter_context(safe_open(str(f), "pt")) for f in weight_files(model_dir))
                 for k in sf.keys()}
        for k in sorted(owner):
            t = owner[k].get_tensor(k).contiguous()
            h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def inherited(parent_manifest) -> dict:
    """A child checkpoint's fingerprint: its parent's built-in model, and this process's environment."""
    base = (getattr(parent_manifest, "fingerprint", None) or {}).get("built_in") if parent_manifest else None
    return {**({"built_in": base} if base else {}), "environment": environment(RUN_LIBRARIES)}


COMPARED = ("weights_sha256", "cpu_capability", "mkl_cbwr", "threads", "machine")


def differences(got: dict, want: dict) -> list[str]:
    """What differs between two built-in fingerprints, each as 'key got vs want'."""
    out = []
    for k in COMPARED:
        if got.get(k) != want.get(k):
            a, b = got.get(k), want.get(k)
            if k == "weights_sha256":
                a, b = (x[:12] + "…" if x else x for x in (a, b))
            out.append(f"{k} {a} vs {b}")
    # a library one side did not record (a build made before its fingerprint named it) cannot be told
    # apart, so only those both record are compared; one recorded as not installed (None) is compared
    libs_a, libs_b = got.get("libraries", {}), want.get("libraries", {})
    out += [f"{lib} {libs_a[lib]} vs {libs_b[lib]}" for lib in sorted(set(libs_a) & set(libs_b))
            if libs_a[lib] != libs_b[lib]]
    return out
