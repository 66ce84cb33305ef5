"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcli.params import DEVICE_HELP, DTYPE_HELP, SEED_HELP

Out = Annotated[Path, typer.Option("--out", "-o", help="Output directory (must not exist; written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help=SEED_HELP)]
Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
Dtype = Annotated[str, typer.Option("--dtype", help=DTYPE_HELP)]
AllowPickle = Annotated[bool, typer.Option("--allow-pickle", help="Allow pickle .bin weights (can run code).")]
