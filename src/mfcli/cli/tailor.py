"""`mfcli tailor PRE SFT... --sparsity 0.1 --out DIR`."""

from __future__ import annotations

import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.cli.params import Group, flag_of, options
from mfcli.errors import UsageError
from mfcli.io.checkpoint import refuse_existing
from mfcli.merge.options import TailorOptions, option_classes, updated
from mfcli.params import params_of
from mfcli.search import search_band_weights, validation_files


def _tailor_options(values: dict) -> TailorOptions:
    """TailorOptions (and the chosen method's own options) from the flags; an option the chosen method
    would ignore is an error, not a no-op (each method's options class says what it reads: merge/options.py)."""
    from mfcli.merge.methods import get, ignored_options, readers

    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    defaults = {p.name: p.default for p in TAILOR_PARAMS + OWN_PARAMS}
    ignored = ignored_options(values["method"], {k for k, v in values.items() if v != defaults[k]})
    if ignored:
        flags = {p.name: flag_of(p) for p in TAILOR_PARAMS + OWN_PARAMS}
        who = "; ".join(f"{flags[k]}: {', '.join(readers(k))}" for k in ignored)
        raise UsageError(f"{', '.join(flags[k] for k in ignored)} {'does' if len(ignored) == 1 else 'do'} nothing "
                         f"with --method {values['method']}.", f"Drop it, or use a method that reads it ({who}).")
    spec = get(values["method"])
    own = {p.name: values.pop(p.name) for p in OWN_PARAMS}
    chosen = spec.options(**{f.name: own[f.name] for f in fields(spec.options)}) if spec.options else None
    return TailorOptions(**values, method_options=chosen)


def _nps_search(pre: str, sft: list[str], out: Path, opts: TailorOptions, budgets: list[float]) -> TailorOptions:
    """NPS-style: the band weights by CMA-ES on the validation records (mfcli/search.py), before the merge."""
    own = opts.method_options  # NpsOptions
    if len(budgets) > 1:
        raise UsageError("--nps-search finds the band weights for one budget.", "Give one --sparsity.")
    validation_files(own.nps_search)  # a held-out or missing file stops here, before any merge
    refuse_existing(out)
    weights, score = search_band_weights(pre, sft, opts, budgets[0], log=lambda m: print(m, file=sys.stderr))
    print(f"nps: chose weights {', '.join(f'{w:.3f}' for w in weights)} (validation score {100 * score:.1f})",
          file=sys.stderr)
    return updated(opts, nps_weights=",".join(map(repr, weights)))


# the flags: TailorOptions' fields, then every merge method's own options class's, once each (methods
# share an option only by sharing the class that declares it); the classes are light (merge/options.py),
# so --help does not import the registry and torch
TAILOR_PARAMS = params_of(TailorOptions, exclude=("sparsity",))
OWN_PARAMS = list({p.name: p for c in option_classes() for p in params_of(c)}.values())


@app.command(help="Keep a small patch of the fine-tuned changes (Model Tailor) or merge with a baseline.\n\n"
                  "--sparsity is the fraction of fine-tuned changes KEPT (the paper's rho: 0.1 keeps 10 %), per "
                  "tensor and per SFT; with several SFTs the patch is the union of their masks. Methods at the "
                  "same kept budget: tailor (the Eq. 9-11 salience + Hessian sensitivity mask, then the "
                  "decorator: --variant paper is Thm 4.5 in SparseGPT's column order, as published; --variant "
                  "refined, the default, is mfcli's, adding a per-row fallback, CG and a closeness penalty), dare, grafting, "
                  "task-arithmetic, ties, fisher-budget. Data-aware merges of PRE and the SFTs, every change "
                  "moved: regmean and fisher (they need --pre-data). A LoRA adapter dir is merged into PRE "
                  "first. Several budgets (--sparsity 0.02,0.05,0.1) come from one calibration pass, one "
                  "checkpoint each in DIR/sparsity-RHO.\n\n"
                  "Example:  mfcli tailor tiny runs/full/epoch-3 --sparsity 0.1 --out runs/tailored")
@options(opts=Group(TAILOR_PARAMS + OWN_PARAMS, _tailor_options))
def tailor(
    pre: Annotated[str, typer.Argument(metavar="PRE", help="Pre-trained checkpoint (dir, hub id, tiny).")],
    sft: Annotated[list[str], typer.Argument(metavar="SFT", help="Fine-tuned checkpoint(s) or LoRA adapter dir(s).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output checkpoint directory.")],
    sparsity: Annotated[Optional[str], typer.Option(
        help="Fraction of each SFT's fine-tuned changes KEPT, per tensor, in (0, 1]; or a list (0.02,0.05,0.1), "
             "every budget from one pass. Default 0.1; budgeted methods only.", show_default=False)] = None,
    opts: TailorOptions = ...,  # its fields become the options (cli/params.py)
):
    from mfcli.merge import methods
    from mfcli.merge.run import parse_budgets, run_tailor

    if sparsity is not None and not methods.get(opts.method).budgeted:
        raise UsageError(f"--method {opts.method} keeps every change (it has no budget), so --sparsity does not "
                         "apply.", "Drop --sparsity, or choose a budgeted method: "
                                   f"{', '.join(n for n, m in methods.REGISTRY.items() if m.budgeted)}.")
    budgets = parse_budgets(sparsity or "0.1")
    t0 = time.perf_counter()
    own = opts.method_options
    if opts.method == "nps" and own.nps_search and not own.nps_weights:
        opts = _nps_search(pre, sft, out, opts, budgets)
    done = run_tailor(pre, sft, out, opts, log=lambda m: print(m, file=sys.stderr), budgets=budgets)
    seconds = time.perf_counter() - t0
    label = f"{opts.method} ({own.variant})" if opts.method == "tailor" else opts.method
    for b in done:
        print(f"{label}: kept {b.summary['kept_params']:,} of {b.summary['changed_params']:,} changed parameters "
              f"({100 * b.summary['kept_fraction']:.1f} %) in {seconds:.1f} s -> {b.path}", file=sys.stderr)
        print(str(b.path))
