"""`mfcli tailor PRE SFT... --sparsity 0.1 --out DIR`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mfcli.cli import app
from mfcli.merge.options import TailorOptions


@app.command(help="Keep a small patch of the fine-tuned changes (Model Tailor) or merge with a baseline.\n\n"
                  "--sparsity is the fraction of fine-tuned changes KEPT (the paper's rho: 0.1 keeps 10 %). "
                  "Methods at the same kept budget: tailor (salience + Hessian sensitivity mask, OBS "
                  "compensation), dare, grafting, task-arithmetic, ties. Several SFTs merge multi-task; a LoRA "
                  "adapter dir is merged into PRE first.\n\n"
                  "Example:  mfcli tailor tiny runs/full/epoch-3 --sparsity 0.1 --out runs/tailored")
def tailor(
    pre: Annotated[str, typer.Argument(metavar="PRE", help="Pre-trained checkpoint (dir, hub id, tiny).")],
    sft: Annotated[list[str], typer.Argument(metavar="SFT", help="Fine-tuned checkpoint(s) or LoRA adapter dir(s).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output checkpoint directory.")],
    sparsity: Annotated[float, typer.Option(help="Fraction of fine-tuned changes KEPT, in (0, 1].")] = 0.1,
    method: Annotated[str, typer.Option(help="tailor, dare, grafting, task-arithmetic, ties.")] = "tailor",
    data: Annotated[Optional[str], typer.Option(help="Calibration train.jsonl (default: SFT's manifest).")] = None,
    nsamples: Annotated[int, typer.Option(help="Calibration examples.")] = 128,
    omega: Annotated[float, typer.Option(help="Eq. 11 weight of salience vs sensitivity.")] = 0.8,
    score_norm: Annotated[str, typer.Option(help="minmax (paper) or zscore.")] = "minmax",
    mask_scope: Annotated[str, typer.Option(help="layer or row.")] = "layer",
    block_size: Annotated[int, typer.Option(help="OBS lazy-update block size.")] = 128,
    damp: Annotated[float, typer.Option(help="Damping, fraction of mean diag(H).")] = 0.01,
    refine_steps: Annotated[int, typer.Option(help="CG steps after OBS (0: OBS only).")] = 10,
    comp_penalty: Annotated[float, typer.Option(
        help="Eq. 5's closeness to PRE: penalty on the compensation's size, in units of mean diag(H) "
             "(0: unconstrained least squares; large: the plain mask).")] = TailorOptions.comp_penalty,
    scope: Annotated[str, typer.Option(
        help="Tensors tailored: all (every changed tensor) or paper (decoder layers + projector; "
             "the rest keep their fine-tuned values).")] = TailorOptions.scope,
    compensate: Annotated[bool, typer.Option("--compensate/--no-compensate", help="OBS compensation.")] = True,
    layers: Annotated[Optional[str], typer.Option(help="Decoder layers to tailor, e.g. 20-31; others revert.")] = None,
    lam: Annotated[float, typer.Option("--lambda", help="task-arithmetic / ties scale.")] = 1.0,
    seed: Annotated[int, typer.Option(help="DARE's random seed.")] = 0,
):
    from mfcli.merge.run import run_tailor

    opts = TailorOptions(sparsity=sparsity, method=method, data=data, nsamples=nsamples, omega=omega,
                         score_norm=score_norm, mask_scope=mask_scope, block_size=block_size, damp=damp,
                         refine_steps=refine_steps, comp_penalty=comp_penalty, scope=scope,
                         compensate=compensate, layers=layers, lam=lam, seed=seed)
    s = run_tailor(pre, sft, out, opts, log=lambda m: print(m, file=sys.stderr))
    print(f"{method}: kept {s['kept_params']:,} of {s['changed_params']:,} changed parameters "
          f"({100 * s['kept_fraction']:.1f} %) -> {out}", file=sys.stderr)
    print(str(out))
