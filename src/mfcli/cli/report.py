"""`mfcli report INPUTS... --out report.html`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.errors import MfcliError, UsageError
from mfcli.report.stats import H_FORMS
from mfcli.report.table import collect


@app.command(help="A forgetting-first report from any mix of results: accuracy matrix with 95 % intervals, "
                  "change against the pre-trained model with exact McNemar tests, H-score, backward transfer, "
                  "per-epoch curves, verdict breakdown, effective rank and training curves.\n\n"
                  "INPUTS: judged JSONL, summary JSON, rank JSONL, run or checkpoint dirs, train_log.jsonl, a "
                  "model,task,score CSV/JSONL table, lmms-eval *_results.json. --out by extension: .md (default, "
                  "stdout), .html (self-contained), .csv, .json, .tex.\n\n"
                  "Example:  mfcli report runs/*.judged.jsonl runs/lora rank.jsonl --out report.html")
def report(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT", help="Result files and run/checkpoint directories.")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="report.md|.html|.csv|.json|.tex, or - "
                                                                   "(Markdown on stdout).")] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="A fine-tuning target task (repeat); "
                                                                         "other tasks count as pre-trained.")] = None,
    base: Annotated[Optional[str], typer.Option(help="The pre-trained model changes are measured against "
                                                     "(default: found from the manifests).")] = None,
    last_wins: Annotated[bool, typer.Option("--last-wins", help="Two results for one (model, task): keep the "
                                                                "later input's.")] = False,
    per_seed: Annotated[bool, typer.Option("--per-seed", help="Keep models whose names differ only in a seed "
                                                              "part (runs/seed-1/x) apart instead of mean ± sd.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON on stdout.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out (and its figures).")]
            = False,
    cluster: Annotated[str, typer.Option("--cluster", help="The judged records' field whose equal values are one "
                                                           "unit for the paired tests (records resampled and "
                                                           "flipped together).")] = "image",
    hscore: Annotated[str, typer.Option("--hscore", help="Which H-score heads the table: model-tailor (App. D.2: "
                                                         "avg pre with avg target), mdgd (its Table 1: avg pre with "
                                                         "the avg over all tasks), mdgd-table2 (the avg over all "
                                                         "tasks with avg target), both (the first two) or all. "
                                                         "JSON carries every form.")]
            = "model-tailor",
):
    from mfcli.report.render import FORMATS

    h_forms = {"both": ("model-tailor", "mdgd"), "all": tuple(H_FORMS)}.get(hscore, (hscore,))
    if any(f not in H_FORMS for f in h_forms):
        raise UsageError(f"--hscore {hscore}: unknown (use {', '.join(H_FORMS)}, both or all).")
    if out not in (None, "-") and not out.lower().endswith(FORMATS):
        raise UsageError(f"--out {out}: unknown format (use one of {', '.join(FORMATS)}).")
    if out not in (None, "-") and Path(out).exists() and not overwrite:
        raise MfcliError(f"{out} already exists.", "Pass --overwrite to replace it, or choose another --out.")
    from mfcli.report.build import build
    from mfcli.report.render import as_json, write

    rep = build(collect(inputs, targets=target or [], last_wins=last_wins, per_seed=per_seed, cluster=cluster), base=base)
    text = write(rep, None if json_out and out in (None, "-") else out, h_forms)
    if json_out:
        print(json.dumps(as_json(rep), indent=1))
    elif text is not None:
        sys.stdout.write(text)
    else:
        print(out)
