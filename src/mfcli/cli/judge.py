"""`mfcli judge PREDS --judge NAME --out judged.jsonl`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import JUDGE_OPTIONS, JsonOut, JudgeName
from mfcli.cli.params import options
from mfcli.errors import UsageError
from mfcli.eval.judges import JudgeOptions, make_judge
from mfcli.eval.judging import Fields, format_summary, judge_file

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
    if json_out and out == "-":
        raise UsageError("--json prints the summary on stdout, where --out - already writes the judged records.",
                         "Give --out a file, or use --summary FILE.")
    j = make_judge(judge_name, options)
    result = judge_file(preds, out, j, fields=Fields(output_field, label_field, labels_field, references_field), summary_path=summary)
    print(format_summary(result), file=sys.stderr)
    if json_out:
        print(json.dumps(result.to_json(), indent=1))
