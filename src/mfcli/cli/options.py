"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Out = Annotated[Path, typer.Option("--out", "-o", help="Output directory (must not exist; written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; same inputs and seed give identical outputs.")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda when available, else cpu), cpu, cuda, cuda:N.")]
Dtype = Annotated[str, typer.Option("--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16.")]
AllowPickle = Annotated[bool, typer.Option("--allow-pickle", help="Allow pickle .bin weights (can run code).")]
