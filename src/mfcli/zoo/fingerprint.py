"""Where a number comes from: the built-in model's build, pinned so that it does not depend on the machine,
and its fingerprint, carried by every checkpoint, prediction file and report made from it (issue 37).

What moves a build's weights, measured on one x86 machine with the pico recipe of the tests (weights'
sha256, the same torch 2.13.0 and libraries each time):
- the CPU kernel level torch dispatches to (`ATEN_CPU_CAPABILITY`: AVX-512, AVX2 and the scalar
  default give three different builds);
- the BLAS library's code path (MKL picks one per CPU; `MKL_CBWR` pins it: AVX2 alone, without the
  pin, gave another build than AVX2 with it);
- the number of threads (1, 2, 4 and 8 gave four builds: reductions split by thread count add in
  another order; `MKL_CBWR=…,STRICT` does not remove it, since torch's own kernels split too).
Repeated builds under the same three settings were bit-identical. So a build runs in a child process
whose environment pins all three (`pinned_environment`) — the kernel level and MKL's path must be set
before torch loads, which only a fresh process can do — whatever the parent's settings; its
fingerprint records what the build actually ran with, and the libraries whose versions can still
move it (torch, transformers, tokenizers; Pillow and numpy draw the synthetic tasks).

Shipping the built weights with the package was the alternative (tiny is 5.9 MB); pinning was chosen
because the same pins make every *later* command reproducible too (fine-tunes and evaluations on a
user's machine move with the same three settings), the recipe stays the source of truth, and a
user can rebuild and compare digests. A machine without AVX2 (or not x86) cannot honour the pins: its
build differs and its fingerprint says so.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from mfcli.provenance import LIBRARIES, differences, environment, weights_digest

BUILD_THREADS = 2  # fixed, not the machine's core count: the thread count changes the weights
_X86 = ("x86_64", "amd64", "i686", "x86")


def pinned_environment() -> dict[str, str]:
    """The environment a built-in model is built in: two threads everywhere, and on x86 torch's AVX2
    kernels and MKL's AVX2 code path — the level every x86 machine of the last ten years has."""
    env = {"OMP_NUM_THREADS": str(BUILD_THREADS), "MKL_NUM_THREADS": str(BUILD_THREADS)}
    if platform.machine().lower() in _X86:
        env |= {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
    return env


def built_in(name: str, recipe_version: int, model_dir: Path, recipe: dict,
             libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """The fingerprint of a built-in model just written to `model_dir`; `libraries` are those whose
    versions can move its weights."""
    return {"model": name, "recipe_version": recipe_version, "recipe": recipe,
            "weights_sha256": weights_digest(model_dir), "pinned": is_pinned(), **environment(libraries)}


def _pins_set() -> bool:
    return all(os.environ.get(k) == v for k, v in pinned_environment().items())


def is_pinned() -> bool:
    """Whether this process runs under the pins (and the kernel level took: a CPU without AVX2 cannot)."""
    want = pinned_environment()
    if not _pins_set():
        return False
    if "ATEN_CPU_CAPABILITY" in want:
        import torch

        return torch.backends.cpu.get_cpu_capability().lower() == want["ATEN_CPU_CAPABILITY"]
    return True


def pin_this_process() -> None:
    """Run this command under the build's pins too (`MFCLI_PINNED=1`): fine-tunes and evaluations then
    compute as the build did, whatever the machine's kernel level and core count. The kernel level and
    MKL's path are read when torch loads, so the process replaces itself with a pinned copy (same
    arguments) before anything imports torch; a process already pinned goes on."""
    if _pins_set():
        return
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **pinned_environment()})


def pin_if_asked() -> None:
    """`MFCLI_PINNED=1` (anything but empty or 0): run this process under the pins (`pin_this_process`)."""
    if os.environ.get("MFCLI_PINNED", "") not in ("", "0"):
        pin_this_process()


def describe_build(name: str, recipe_version: int, recipe: dict, libraries: tuple[str, ...] = LIBRARIES):
    """write_checkpoint's `describe` hook: the manifest gets the build's fingerprint from the written files."""
    def describe(tmp: Path, manifest) -> None:
        manifest.fingerprint = {"built_in": built_in(name, recipe_version, tmp, recipe, libraries),
                                "environment": environment(libraries)}

    return describe


# ---- the build that docs/results.md uses ------------------------------------------------------------

def reference(name: str) -> dict | None:
    """The fingerprint of the build docs/results.md's current tables use (zoo/reference_builds.json)."""
    import json

    p = Path(__file__).with_name("reference_builds.json")
    return json.loads(p.read_text()).get(name) if p.is_file() else None


_SAID: set[str] = set()


def check_against_reference(name: str, fingerprint: dict, log=None) -> list[str]:
    """Say once per process, naming the difference, when a cached build of the reference recipe is not
    the build the docs' tables used. A build of another recipe (the tests' pico) is not compared."""
    want = reference(name)
    if not want or not fingerprint or fingerprint.get("recipe") != want.get("recipe"):
        return []
    diff = differences(fingerprint, want)
    if diff and name not in _SAID:
        _SAID.add(name)
        (log or (lambda m: print(m, file=sys.stderr)))(
            f"note: this {name} is not the build docs/results.md measured ({'; '.join(diff)}): its numbers "
            "can differ from the docs' tables. Rebuild it under the pins with `mfcli zoo "
            f"{name} --rebuild`, or compare like with like (docs/results.md, 'Builds').")
    return diff
