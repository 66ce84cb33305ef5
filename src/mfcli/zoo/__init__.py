"""Built-in models, built offline on first use and cached in the user cache directory.

The cache key is the recipe version and the build pins' version (zoo/fingerprint.py): a new recipe or
new pins rebuild, an old build is never reused by mistake. Every build runs in a child process under
the pins (zoo/build.py), and a cached build that is not the one docs/results.md measured is said so,
once, naming the difference.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from mfcli.cache import cache_root
from mfcli.errors import MfcliError, UsageError, did_you_mean
from mfcli.io.checkpoint import read_manifest, refuse_existing, staged_dir
from mfcli.progress import show_progress
from mfcli.zoo.fingerprint import check_against_reference

ZOO = ("tiny", "tiny-clip", "tiny-qwen2vl", "smol", "smol-base")


def _recipe():
    from mfcli.zoo.tiny import TinyRecipe

    return TinyRecipe()


PINS_VERSION = 1  # the build environment's pins (zoo/fingerprint.py); part of the cache key


def build_dirs(recipe=None) -> dict[str, Path]:
    recipe = recipe or _recipe()
    base = cache_root() / f"zoo-r{recipe.version}-p{PINS_VERSION}"
    return {"tiny": base / "tiny", "tiny-clip": base / "tiny-clip"}


def _check_reference(dirs: dict[str, Path], log) -> None:
    """Say once if a cached build of the reference recipe is not the one docs/results.md measured."""
    for name, d in dirs.items():
        m = read_manifest(d)
        check_against_reference(name, (m.fingerprint if m else {}).get("built_in", {}), log)


@contextmanager
def _lock(path: Path):
    """An exclusive file lock, so parallel processes (e.g. `accelerate launch`) build once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_built(*, rebuild: bool = False, progress: bool = True, log=None) -> dict[str, Path]:
    """Return the cached build's directories, building them first if needed."""
    dirs = build_dirs()
    if not rebuild and all((d / "mfcli.json").is_file() for d in dirs.values()):
        _check_reference(dirs, log)
        return dirs
    with _lock(dirs["tiny"].parent / ".build.lock"):
        if rebuild or not all((d / "mfcli.json").is_file() for d in dirs.values()):
            from mfcli.zoo.build import build_pinned

            if log:
                log("Building the built-in tiny LLaVA (once; cached in %s) ..." % dirs["tiny"].parent)
            build_pinned("tiny", dirs, progress=progress)
    _check_reference(dirs, log)
    return dirs


def qwen2vl_dir(recipe=None) -> Path:
    from mfcli.zoo.tiny_qwen2vl import TinyQwen2VLRecipe

    return cache_root() / f"zoo-qwen2vl-r{(recipe or TinyQwen2VLRecipe()).version}-p{PINS_VERSION}" / "tiny-qwen2vl"


def ensure_qwen2vl_built(*, rebuild: bool = False, progress: bool = True, log=None) -> Path:
    """The cached tiny Qwen2-VL, built on first use (separately from tiny: only who asks pays for it)."""
    out = qwen2vl_dir()
    if not rebuild and (out / "mfcli.json").is_file():
        _check_reference({"tiny-qwen2vl": out}, log)
        return out
    with _lock(out.parent / ".build.lock"):
        if rebuild or not (out / "mfcli.json").is_file():
            from mfcli.zoo.build import build_pinned

            if log:
                log("Building the built-in tiny Qwen2-VL (once; cached in %s) ..." % out.parent)
            build_pinned("tiny-qwen2vl", {"tiny-qwen2vl": out}, progress=progress)
    _check_reference({"tiny-qwen2vl": out}, log)
    return out


def smol_dirs(recipe=None) -> dict[str, Path]:
    """Where `smol` and `smol-base` are cached: keyed by smol's recipe, tiny's (its vision tower is
    tiny's) and the pins."""
    from mfcli.zoo.smol import SmolRecipe

    base = cache_root() / f"zoo-smol-r{(recipe or SmolRecipe()).version}-t{_recipe().version}-p{PINS_VERSION}"
    return {"smol": base / "smol", "smol-base": base / "smol-base"}


_WARNED: set[str] = set()


def _check_libraries(name: str, d: Path, log) -> None:
    """Say once, naming them, when a cached build was made with other libraries than this process has:
    its weights would differ if built here (zoo/fingerprint.py), so its numbers are another build's."""
    from mfcli.provenance import differences, library_versions

    m = read_manifest(d)
    built = ((m.fingerprint if m else {}).get("built_in") or {}).get("libraries") or {}
    diff = differences({"libraries": built}, {"libraries": library_versions(tuple(built) or None)})  # "lib built vs now"
    if diff and name not in _WARNED:
        _WARNED.add(name)
        (log or (lambda m: print(m, file=sys.stderr)))(
            f"note: the cached {name} was built with other libraries ({'; '.join(diff)}); numbers measured on it "
            f"are that build's. Rebuild it here with `mfcli zoo {name} --rebuild`.")


def ensure_smol_built(name: str = "smol", *, rebuild: bool = False, progress: bool = True, log=None) -> Path:
    """The cached `smol` or `smol-base` (zoo/smol.py), built on first use on tiny's vision tower (tiny
    built first if needed): `smol` builds both; `smol-base` alone is the assembly, seconds."""
    from mfcli.zoo.smol import gguf_path

    dirs = smol_dirs()
    out = dirs[name]
    if not rebuild and (out / "mfcli.json").is_file():
        _check_libraries(name, out, log)
        _check_reference({name: out}, log)
        return out
    gguf_path()  # the wheel and gguf are there, before anything is built
    tiny = ensure_built(progress=progress, log=log)["tiny"]
    with _lock(out.parent / f".build-{name}.lock"):
        if rebuild or not (out / "mfcli.json").is_file():
            from mfcli.zoo.build import build_pinned

            if log:
                log("Building the built-in smol: LLaVA on SmolLM2-135M-Instruct (once, about 40 minutes on 2 cores; "
                    f"cached in {out.parent}) ..." if name == "smol" else
                    f"Assembling the built-in smol-base (once; cached in {out.parent}) ...")
            build_pinned(name, {**dirs, "tiny": tiny}, progress=progress)
    _check_reference({name: out}, log)
    return out


def is_built(name: str) -> bool:
    """Whether the cache already holds a complete build of the built-in `name` (tiny and tiny-clip are
    built together)."""
    if name == "tiny-qwen2vl":
        return (qwen2vl_dir() / "mfcli.json").is_file()
    if name in ("smol", "smol-base"):
        return (smol_dirs()[name] / "mfcli.json").is_file()
    return all((d / "mfcli.json").is_file() for d in build_dirs().values())


def ensure_zoo(name: str, *, rebuild: bool = False, progress: bool = True, log=None) -> Path:
    if name not in ZOO:
        raise MfcliError(f"unknown built-in model '{name}'.", did_you_mean(name, ZOO))
    if name == "tiny-qwen2vl":
        return ensure_qwen2vl_built(rebuild=rebuild, progress=progress, log=log)
    if name in ("smol", "smol-base"):
        return ensure_smol_built(name, rebuild=rebuild, progress=progress, log=log)
    return ensure_built(rebuild=rebuild, progress=progress, log=log)[name]


def builtin_path(name: str) -> Path:
    return ensure_zoo(name, log=lambda m: print(m, file=sys.stderr), progress=show_progress())


def write_builtin(name: str, out: Path, *, rebuild: bool = False, progress: bool = True,
                  log=None) -> tuple[dict, Path | None]:
    """`mfcli zoo NAME --out OUT`: the built-in model `name` (built once and cached; `rebuild` builds it
    again) copied to OUT, which must not exist and is written whole or not at all. Returns its manifest's
    metrics and, when it came from the cache, where the cached build is."""
    import shutil

    if name not in ZOO:
        raise UsageError(f"unknown built-in model '{name}'.", did_you_mean(name, ZOO))
    refuse_existing(out)
    cached = is_built(name) and not rebuild
    built = ensure_zoo(name, rebuild=rebuild, progress=progress, log=log)
    with staged_dir(out) as tmp:
        shutil.copytree(built, tmp, dirs_exist_ok=True)
    manifest = read_manifest(out)
    return (manifest.metrics if manifest else {}), (built if cached else None)

