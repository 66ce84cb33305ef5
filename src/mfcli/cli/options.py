"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcli.cli.params import Group
from mfcli.eval.judges import JudgeOptions, judge_params, label_judges, metric_judges
from mfcli.params import DEVICE_HELP, DTYPE_HELP, SEED_HELP

Out = Annotated[Path, typer.Option("--out", "-o", help="Output directory (must not exist; written atomically).")]
Seed = Annotated[int, typer.Option("--seed", help=SEED_HELP)]
Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
Dtype = Annotated[str, typer.Option("--dtype", help=DTYPE_HELP)]
AllowPickle = Annotated[bool, typer.Option("--allow-pickle", help="Allow pickle .bin weights (can run code).")]

_LABEL, _METRIC = label_judges(), metric_judges()  # from the registry: a new judge is listed here by itself
JudgeName = Annotated[str, typer.Option("--judge", help=f"Classification records: {', '.join(_LABEL[:-1])}, or "
                                                         f"{_LABEL[-1]} (exact, then embed, then openai with "
                                                         f"--openai); {', '.join(_METRIC[:-1])} and {_METRIC[-1]} "
                                                         "records are always scored on their metric. --judge "
                                                         f"{'|'.join(_METRIC)} scores every record so (for JSONL "
                                                         "with output and references).")]
# every registered judge's options (eval/judges/), under their own flags: --margin, --model, --openai, ...
JUDGE_OPTIONS = Group(judge_params(), lambda values: JudgeOptions(**values), prefix="judge_", flag_prefix=False)
JsonOut = Annotated[bool, typer.Option("--json", help="Print the summary record as JSON on stdout.")]
