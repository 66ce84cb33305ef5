"""Hub access that fails fast: offline, a hub id (a model's or a dataset's) is answered from the local
cache or refused at once. A leaf."""

from __future__ import annotations

import os
import socket
from functools import lru_cache

from mfcli.errors import MfcliError

HUB_HOST = "huggingface.co"


def hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect with a short timeout, instead of the libraries' long retry loops."""
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def is_cached(repo_id: str, kind: str) -> bool:
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, repo_type=kind, local_files_only=True)
        return True
    except Exception:  # LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, ...
        return False


def ensure_hub_reachable(repo_id: str, kind: str = "model") -> None:
    """Raise one clear line when `repo_id` cannot be had: offline and not cached."""
    if is_cached(repo_id, kind):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # cached: no need to touch the network at all
        return
    if hub_offline():
        if kind == "dataset":
            return  # `datasets` answers offline from its own cache, or fails at once
        raise MfcliError(f"{kind} '{repo_id}' is not in the local cache and the hub is offline "
                         "(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set).",
                         "Download it on a connected machine, or pass a local directory.")
    if not hub_reachable():
        raise MfcliError(f"{kind} '{repo_id}' is not a local path and the Hugging Face hub is unreachable.",
                         "Check the path, connect to the network, or pass a local directory.")
