"""`mfcli judge PREDS --judge NAME --out judged.jsonl`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.params import Group, options
from mfcli.errors import UsageError
from mfcli.eval.judges import JudgeOptions, judge_params, label_judges, make_judge, metric_judges

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


@app.command(help="Score free-text answers by record kind (a label judge, VQA accuracy, CIDEr-D, option "
                  "match); print a per-task summary on stderr.\n\n"
                  "Reads mfcli predictions or any JSONL with an answer and a label set, or references. "
                  "Reads stdin / writes stdout with '-'. The API key for --judge openai comes from "
                  "OPENAI_API_KEY only.\n\n"
                  "Example:  mfcli judge preds.jsonl --judge exact --out judged.jsonl --summary summary.json")
@options(options=JUDGE_OPTIONS)
def judge(
    preds: Annotated[str, typer.Argument(metavar="PREDS", help="Predictions JSONL, or - for stdin.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Judged JSONL, or - for stdout.")] = "-",
    judge_name: JudgeName = "cascade",
    summary: Annotated[Optional[str], typer.Option(help="Also write the summary as JSON here.")] = None,
    output_field: Annotated[str, typer.Option(help="Field holding the answer.")] = "output",
    label_field: Annotated[str, typer.Option(help="Field holding the true label.")] = "label",
    labels_field: Annotated[str, typer.Option(help="Field holding the label set (choice: the options).")] = "labels",
    references_field: Annotated[str, typer.Option(help="Field holding the reference answers or captions.")] = "references",
    options: JudgeOptions = ...,  # every judge's options (cli/params.py)
    json_out: JsonOut = False,
):
    from mfcli.eval.judging import Fields, format_summary, judge_file

    if json_out and out == "-":
        raise UsageError("--json prints the summary on stdout, where --out - already writes the judged records.",
                         "Give --out a file, or use --summary FILE.")
    j = make_judge(judge_name, options)
    result = judge_file(preds, out, j, fields=Fields(output_field, label_field, labels_field, references_field), summary_path=summary)
    print(format_summary(result), file=sys.stderr)
    if json_out:
        print(json.dumps(result.to_json(), indent=1))
