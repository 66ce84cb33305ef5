"""`mfcli tailor PRE SFT... --sparsity 0.1 --out DIR`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.merge.options import TailorOptions

# the registry's names (merge/methods/), written out because importing the registry imports torch and
# `--help` must not; tests/test_tailor.py holds this list to the registry
METHODS_HELP = "tailor, dare, grafting, task-arithmetic, ties, regmean, fisher, fisher-budget"


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
def tailor(
    pre: Annotated[str, typer.Argument(metavar="PRE", help="Pre-trained checkpoint (dir, hub id, tiny).")],
    sft: Annotated[list[str], typer.Argument(metavar="SFT", help="Fine-tuned checkpoint(s) or LoRA adapter dir(s).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output checkpoint directory.")],
    sparsity: Annotated[str, typer.Option(
        help="Fraction of each SFT's fine-tuned changes KEPT, per tensor, in (0, 1]; or a list (0.02,0.05,0.1), "
             "every budget from one pass.")] = "0.1",
    method: Annotated[str, typer.Option(help=f"{METHODS_HELP}.")] = "tailor",
    variant: Annotated[str, typer.Option(
        help="tailor's decorator: paper (Thm 4.5 in SparseGPT's column order, nothing else) or refined "
             "(mfcli's: + per-row fallback to the plain mask, CG, --comp-penalty).")] = TailorOptions.variant,
    data: Annotated[Optional[str], typer.Option(help="Calibration train.jsonl (default: SFT's manifest).")] = None,
    nsamples: Annotated[int, typer.Option(help="Calibration examples.")] = 128,
    omega: Annotated[float, typer.Option(help="Eq. 11 weight of salience vs sensitivity.")] = 0.8,
    score_norm: Annotated[str, typer.Option(help="minmax (paper) or zscore.")] = "minmax",
    mask_scope: Annotated[str, typer.Option(help="layer or row.")] = "layer",
    block_size: Annotated[int, typer.Option(help="OBS lazy-update block size.")] = 128,
    damp: Annotated[float, typer.Option(help="Damping, fraction of mean diag(H).")] = 0.01,
    refine_steps: Annotated[Optional[int], typer.Option(
        help="--variant refined: CG steps after OBS [default: 10].")] = None,
    comp_penalty: Annotated[Optional[float], typer.Option(
        help="--variant refined: Eq. 5's closeness to PRE as a squared penalty on the compensation, in units "
             "of mean diag(H) (0: unconstrained least squares; large: the plain mask) [default: 0.1].")] = None,
    scope: Annotated[str, typer.Option(
        help="Tensors tailored: all (every changed tensor) or paper (projector, embeddings, decoder layers, "
             "lm_head: what the paper counts; the rest keep their fine-tuned values).")] = TailorOptions.scope,
    compensate: Annotated[bool, typer.Option("--compensate/--no-compensate", help="OBS compensation.")] = True,
    compensate_head: Annotated[bool, typer.Option(
        "--compensate-head/--no-compensate-head",
        help="Take lm_head through the Hessian path (mask by Eq. 9-11, compensate) instead of salience only; "
             "the paper gives no basis for it.")] = TailorOptions.compensate_head,
    layers: Annotated[Optional[str], typer.Option(help="Decoder layers to tailor, e.g. 20-31; others revert.")] = None,
    lam: Annotated[float, typer.Option("--lambda", help="task-arithmetic / ties scale.")] = 1.0,
    pre_data: Annotated[Optional[list[str]], typer.Option(
        "--pre-data", help="regmean, fisher: prepared data (dirs or train.jsonl) of the tasks PRE knows, for "
                           "PRE's own statistics; repeat per data set.")] = None,
    regmean_alpha: Annotated[float, typer.Option(
        help="regmean: α in G̃ = α·G + (1 − α)·diag(G).")] = TailorOptions.regmean_alpha,
    seed: Annotated[int, typer.Option(help="DARE's random seed.")] = 0,
):
    from mfcli.merge.run import budget_dir, parse_budgets, run_tailor

    budgets = parse_budgets(sparsity)
    opts = TailorOptions(sparsity=budgets[0], method=method, pre_data=tuple(pre_data or ()),
                         regmean_alpha=regmean_alpha, variant=variant, data=data, nsamples=nsamples, omega=omega,
                         score_norm=score_norm, mask_scope=mask_scope, block_size=block_size, damp=damp,
                         refine_steps=refine_steps, comp_penalty=comp_penalty, scope=scope,
                         compensate=compensate, compensate_head=compensate_head, layers=layers, lam=lam,
                         seed=seed)
    s = run_tailor(pre, sft, out, opts, log=lambda m: print(m, file=sys.stderr), budgets=budgets)
    label = f"{method} ({variant})" if method == "tailor" else method
    for rho in budgets:
        one = s if len(budgets) == 1 else s["budgets"][budget_dir(rho)]
        where = out if len(budgets) == 1 else out / budget_dir(rho)
        print(f"{label}: kept {one['kept_params']:,} of {one['changed_params']:,} changed parameters "
              f"({100 * one['kept_fraction']:.1f} %) -> {where}", file=sys.stderr)
        print(str(where))
