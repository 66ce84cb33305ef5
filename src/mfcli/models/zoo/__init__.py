"""Built-in models, built offline on first use and cached in the user cache directory.

The cache key is the recipe version: a new recipe rebuilds, an old build is never reused by mistake.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from mfcli.errors import MfcliError, did_you_mean

ZOO = ("tiny", "tiny-clip")


def cache_root() -> Path:
    """$MFCLI_CACHE, else the platform's user cache dir (e.g. ~/.cache/mfcli)."""
    env = os.environ.get("MFCLI_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mfcli"))


def _recipe():
    from mfcli.models.zoo.tiny import TinyRecipe

    return TinyRecipe()


def build_dirs(recipe=None) -> dict[str, Path]:
    recipe = recipe or _recipe()
    base = cache_root() / f"zoo-r{recipe.version}"
    return {"tiny": base / "tiny", "tiny-clip": base / "tiny-clip"}


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
        return dirs
    with _lock(dirs["tiny"].parent / ".build.lock"):
        if rebuild or not all((d / "mfcli.json").is_file() for d in dirs.values()):
            from mfcli.models.zoo.tiny import build_tiny

            if log:
                log("Building the built-in tiny LLaVA (once; cached in %s) ..." % dirs["tiny"].parent)
            build_tiny(dirs["tiny"], dirs["tiny-clip"], progress=progress, log=log)
    return dirs


def builtin_path(name: str) -> Path:
    if name not in ZOO:
        raise MfcliError(f"unknown built-in model '{name}'.", did_you_mean(name, ZOO))
    import sys

    return ensure_built(log=lambda m: print(m, file=sys.stderr), progress=sys.stderr.isatty())[name]
