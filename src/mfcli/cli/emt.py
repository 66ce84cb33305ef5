"""`mfcli emt MODEL DATA... --out preds.jsonl` and `mfcli merge-preds`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.options import JUDGE_OPTIONS, JsonOut
from mfcli.cli.params import of, options
from mfcli.errors import UsageError
from mfcli.eval.emt import EmtOptions, merge_predictions
from mfcli.eval.endpoint import EndpointOptions
from mfcli.eval.judges import JudgeOptions, label_judges, make_judge
from mfcli.eval.judging import format_summary
from mfcli.eval.pipeline import evaluate_and_judge, is_main_process


ENDPOINT_PANEL = "endpoint"  # the served model's options: each help line starts "[endpoint]"
JUDGE_PANEL = "judge"


@app.command(help="Evaluate a model as an image classifier with the EMT prompt (or a CLIP zero-shot), and on "
                  "VQA, caption and multiple-choice records.\n\n"
                  "MODEL: a LLaVA-family dir or hub id, tiny, a LoRA adapter dir, or a CLIP (tiny-clip) for "
                  "the vision-encoder baseline; with --endpoint, the name an OpenAI-compatible server (vLLM, "
                  "SGLang, llama.cpp, transformers serve, a hosted API) serves. DATA: eval.jsonl files or the "
                  "dirs `prepare` made. Re-running the same command resumes an interrupted run (and, with "
                  "--endpoint, asks again only the requests that failed).\n\n"
                  "Options marked [endpoint] belong to the served model, those marked [judge] to --judge "
                  "(the judge's --model and --base-url name the judge's server, not the evaluated one).\n\n"
                  "Example:  mfcli emt tiny data/digits data/animals --out preds.jsonl --judge exact\n\n"
                  "Example:  mfcli emt llava-hf/llava-1.5-7b-hf data/ --endpoint http://localhost:8000/v1 "
                  "--judge exact --out p.jsonl")
@options(opts=EmtOptions, endpoint=of(EndpointOptions, prefix="endpoint_", panel=ENDPOINT_PANEL),
         judge_options=replace(JUDGE_OPTIONS, panel=JUDGE_PANEL))
def emt(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model dir, hub id, tiny, tiny-clip, adapter dir; "
                                                                "with --endpoint, the served model's name.")],
    data: Annotated[list[str], typer.Argument(metavar="DATA", help="eval.jsonl files or prepared dirs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions JSONL (a .meta.json sidecar goes beside it).")],
    opts: EmtOptions = ...,  # its fields become the options (cli/params.py)
    endpoint: EndpointOptions = ...,  # the served model's options, under their own heading
    judge: Annotated[Optional[str], typer.Option("--judge", help=f"[{JUDGE_PANEL}] Judge inline with "
                                                                  f"{', '.join(label_judges()[:-1])} or "
                                                                  f"{label_judges()[-1]} (as `mfcli judge`): writes "
                                                                  "OUT-stem.judged.jsonl and .summary.json.")] = None,
    judge_options: JudgeOptions = ...,  # every judge's options (cli/params.py)
    summary: Annotated[Optional[str], typer.Option(help=f"[{JUDGE_PANEL}] Also write the summary JSON here."
                                                   )] = None,
    json_out: JsonOut = False,
):
    if (summary or json_out) and not judge:
        raise UsageError("--summary and --json describe the judged run: add --judge NAME.")
    # the judge first: a missing API key or an unknown name fails before any generation
    j = make_judge(judge, judge_options) if judge else None
    result = evaluate_and_judge(model, data, out, opts, endpoint=endpoint, judge=j, summary=summary,
                                log=lambda line: print(line, file=sys.stderr))
    if not is_main_process():
        return
    if result is not None:
        print(format_summary(result), file=sys.stderr)
        if json_out:
            print(json.dumps(result.to_json(), indent=1))
            return
    print(str(out))


@app.command("merge-preds", help="Merge the shard outputs of `mfcli emt --shard I/N` into one file.\n\n"
                                 "Example:  mfcli merge-preds p0.jsonl p1.jsonl --out preds.jsonl")
def merge_preds(
    parts: Annotated[list[Path], typer.Argument(metavar="PART", help="Shard prediction files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Merged predictions JSONL.")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
):
    n = merge_predictions(parts, out, overwrite=overwrite)
    print(f"merged {n} predictions from {len(parts)} shards -> {out}", file=sys.stderr)
    print(str(out))
