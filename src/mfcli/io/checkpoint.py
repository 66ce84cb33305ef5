"""Self-describing checkpoint directories: Hugging Face layout plus an `mfcli.json` manifest.

Every directory is assembled under a hidden temporary name beside its destination and renamed
into place only when complete, so an interrupted write never leaves a directory that looks done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfcli import __version__
from mfcli.errors import MfcliError
from mfcli.io.jsonl import write_json_atomic
from mfcli.io.records import MANIFEST_SCHEMA

MANIFEST = "mfcli.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Manifest:
    """What made a checkpoint, so any later command can trace and reproduce it."""

    command: str  # e.g. "zoo tiny", "finetune"
    options: dict = field(default_factory=dict)  # resolved options, defaults included
    parents: list = field(default_factory=list)  # checkpoints this one derives from
    data: list = field(default_factory=list)  # [{"path": ..., "sha256": ...}] of input data files
    seed: int | None = None
    metrics: dict = field(default_factory=dict)  # figures measured while producing it
    # {method: {option: value}} the model recommends to `finetune` (train/options.py); children inherit it
    finetune_defaults: dict = field(default_factory=dict)
    # where the numbers come from (zoo/fingerprint.py): `built_in`, the built-in model this checkpoint is or
    # descends from (its weights' digest, recipe, libraries, CPU kernel level, BLAS mode, threads), and
    # `environment`, the libraries and kernel level of the process that wrote it
    fingerprint: dict = field(default_factory=dict)
    argv: list = field(default_factory=lambda: list(sys.argv))
    mfcli_version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    schema: str = MANIFEST_SCHEMA

    def add_data(self, path: str | Path) -> None:
        self.data.append({"path": str(Path(path).resolve()), "sha256": sha256_file(path)})

    @classmethod
    def from_json(cls, obj: dict, where: str) -> "Manifest":
        """A manifest as read: its own fields (any other key is left out), the schema checked."""
        if not isinstance(obj, dict) or obj.get("schema", MANIFEST_SCHEMA) != MANIFEST_SCHEMA or "command" not in obj:
            raise MfcliError(f"{where}: not a {MANIFEST_SCHEMA} manifest.",
                             "Remove it, or re-create the checkpoint with this version of mfcli.")
        return cls(**{k: v for k, v in obj.items() if k in cls.__dataclass_fields__})


def read_manifest(ckpt: str | Path) -> Manifest | None:
    """The checkpoint's mfcli.json, or None where it has none (a checkpoint from another tool)."""
    import json

    p = Path(ckpt) / MANIFEST
    if not p.is_file():
        return None
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise MfcliError(f"{p}: not valid JSON ({e}).", "Remove it, or re-create the checkpoint.") from None
    return Manifest.from_json(obj, str(p))


def refuse_existing(out: str | Path, what: str = "output directory") -> Path:
    out = Path(out)
    if out.exists():
        raise MfcliError(f"{what} {out} already exists.", "Choose a new --out, or remove it first.")
    return out


@contextmanager
def staged_dir(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `out`; on success rename it to `out`, else delete it."""
    out = Path(out)
    if out.exists() and not overwrite:
        refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():  # overwrite: move the old one aside first so the swap is near-atomic
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_checkpoint(out: str | Path, save: Callable[[Path], None], manifest: Manifest,
                     *, overwrite: bool = False, describe: Callable[[Path, Manifest], None] | None = None) -> Path:
    """Run `save(tmpdir)` (e.g. model.save_pretrained), add the manifest, then publish atomically.
    `describe(tmpdir, manifest)` may complete the manifest from the written files first (a build's digest)."""
    with staged_dir(out, overwrite=overwrite) as tmp:
        save(tmp)
        if not any(tmp.glob("*.safetensors")):
            raise MfcliError(f"internal: no safetensors written for {out}.", "Report this as a bug.")
        if describe is not None:
            describe(tmp, manifest)
        write_json_atomic(tmp / MANIFEST, asdict(manifest))
    return Path(out)
