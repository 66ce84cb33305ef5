"""`mfcli judge PREDS --judge NAME --out judged.jsonl`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.errors import UsageError

JudgeName = Annotated[str, typer.Option("--judge", help="Classification records: exact, embed, clip, openai, or "
                                                         "cascade (exact, then embed, then openai with --openai); "
                                                         "vqa, caption and choice records are always scored on their "
                                                         "metric. --judge vqa|caption|choice scores every record so "
                                                         "(for JSONL with output and references).")]


def judge_options(synonyms, margin, clip_model, model, base_url, concurrency, cache, openai):
    from mfcli.eval.judges import JudgeOptions

    return JudgeOptions(synonyms=synonyms, margin=margin, clip_model=clip_model, model=model, base_url=base_url,
                        concurrency=concurrency, cache=cache, openai=openai)


Synonyms = Annotated[Optional[str], typer.Option(help="JSON {synonym: label} for exact matching.")]
Margin = Annotated[float, typer.Option(help="embed/clip: abstain below this top-2 similarity gap.")]
ClipModel = Annotated[str, typer.Option(help="clip judge's CLIP: dir, hub id, or tiny-clip.")]
LlmModel = Annotated[str, typer.Option("--model", help="openai judge model (EMT: gpt-3.5-turbo).")]
BaseUrl = Annotated[Optional[str], typer.Option(help="OpenAI-compatible server URL (default OPENAI_BASE_URL).")]
Concurrency = Annotated[int, typer.Option(help="openai requests in flight.")]
Cache = Annotated[Optional[str], typer.Option(help="openai reply cache file (default in the mfcli cache dir).")]
UseOpenai = Annotated[bool, typer.Option("--openai", help="cascade: send undecided answers to the openai judge.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the summary record as JSON on stdout.")]


@app.command(help="Score free-text answers by record kind (a label judge, VQA accuracy, CIDEr-D, option "
                  "match); print a per-task summary on stderr.\n\n"
                  "Reads mfcli predictions or any JSONL with an answer and a label set, or references. "
                  "Reads stdin / writes stdout with '-'. The API key for --judge openai comes from "
                  "OPENAI_API_KEY only.\n\n"
                  "Example:  mfcli judge preds.jsonl --judge exact --out judged.jsonl --summary summary.json")
def judge(
    preds: Annotated[str, typer.Argument(metavar="PREDS", help="Predictions JSONL, or - for stdin.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Judged JSONL, or - for stdout.")] = "-",
    judge_name: JudgeName = "cascade",
    summary: Annotated[Optional[str], typer.Option(help="Also write the summary as JSON here.")] = None,
    output_field: Annotated[str, typer.Option(help="Field holding the answer.")] = "output",
    label_field: Annotated[str, typer.Option(help="Field holding the true label.")] = "label",
    labels_field: Annotated[str, typer.Option(help="Field holding the label set (choice: the options).")] = "labels",
    references_field: Annotated[str, typer.Option(help="Field holding the reference answers or captions.")] = "references",
    synonyms: Synonyms = None, margin: Margin = 0.02, clip_model: ClipModel = "tiny-clip",
    model: LlmModel = "gpt-3.5-turbo", base_url: BaseUrl = None, concurrency: Concurrency = 16,
    cache: Cache = None, openai: UseOpenai = False,
    json_out: JsonOut = False,
):
    from mfcli.eval.judges import make_judge
    from mfcli.eval.judging import Fields, format_summary, judge_file

    if json_out and out == "-":
        raise UsageError("--json prints the summary on stdout, where --out - already writes the judged records.",
                         "Give --out a file, or use --summary FILE.")
    j = make_judge(judge_name, judge_options(synonyms, margin, clip_model, model, base_url, concurrency, cache, openai))
    result = judge_file(preds, out, j, fields=Fields(output_field, label_field, labels_field, references_field), summary_path=summary)
    print(format_summary(result), file=sys.stderr)
    if json_out:
        print(json.dumps(result.to_json(), indent=1))
