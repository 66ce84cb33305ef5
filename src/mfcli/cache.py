"""Where mfcli keeps what it can rebuild (the built-in models, the watch's step-0 scores, the openai
judge's replies): $MFCLI_CACHE, else the platform's user cache directory. A leaf."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$MFCLI_CACHE, else the platform's user cache dir (e.g. ~/.cache/mfcli)."""
    env = os.environ.get("MFCLI_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mfcli"))
