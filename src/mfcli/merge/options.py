"""`mfcli tailor`'s options, shared by every merge method."""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError


# --scope: which changed tensors the method tailors. Outside the scope a tensor keeps its fine-tuned
# value (the mean over SFTs), as Model Tailor's own code does for embeddings, lm_head and norms.
SCOPES = {
    "all": "every changed tensor",
    "paper": "the decoder layers and the projector (what Model Tailor counts in its 10 %)",
}


@dataclass(frozen=True)
class TailorOptions:
    sparsity: float = 0.1  # fraction of the fine-tuned changes KEPT (the paper's ρ: 10 % keeps 28.8M of 288M)
    method: str = "tailor"
    data: str | None = None  # calibration train.jsonl; default: the data recorded in SFT's manifest
    nsamples: int = 128  # calibration examples, as the authors' code
    omega: float = 0.8  # Eq. 11 weight of salience vs sensitivity (the authors' code: 0.8 / 0.2)
    score_norm: str = "minmax"  # Eq. 11's norm: min-max in the paper; zscore as the authors' code
    mask_scope: str = "layer"  # top-ρ per tensor ("layer") or per row
    block_size: int = 128  # SparseGPT lazy-update block
    damp: float = 0.01  # damping, as a fraction of mean(diag H) (SparseGPT, authors)
    refine_steps: int = 10  # conjugate-gradient steps after OBS (0: OBS only)
    # Eq. 5's closeness constraint as a penalty on the compensation's size, in units of mean(diag H)
    # (0: the unconstrained least-squares fit). 1.0 had the best H-score of 0-10 on tiny, 3 seeds
    # (docs/results.md, bench/tailor_quality.py)
    comp_penalty: float = 1.0
    scope: str = "all"  # which changed tensors are tailored; the rest keep their fine-tuned values (SCOPES)
    compensate: bool = True  # --no-compensate: the paper's ablation (Table 4)
    layers: str | None = None  # restrict to decoder layers, e.g. "20-31" (the authors' code)
    lam: float = 1.0  # task-arithmetic / ties scaling λ
    seed: int = 0  # DARE's random drop and the calibration sample
    device: str = "auto"

    def __post_init__(self):
        from mfcli.merge import methods

        if not 0.0 < self.sparsity <= 1.0:
            raise UsageError(f"--sparsity must be in (0, 1] (the fraction of changes kept), got {self.sparsity}.")
        methods.get(self.method)
        if self.score_norm not in ("minmax", "zscore") or self.mask_scope not in ("layer", "row"):
            raise UsageError("--score-norm must be minmax|zscore and --mask-scope layer|row.")
        if self.scope not in SCOPES:
            from mfcli.errors import MfcliError, did_you_mean

            raise MfcliError(f"unknown --scope '{self.scope}'.", did_you_mean(self.scope, SCOPES))
        if self.comp_penalty < 0:
            raise UsageError(f"--comp-penalty must be >= 0, got {self.comp_penalty}.")
        if not 0.0 <= self.omega <= 1.0:
            raise UsageError(f"--omega must be in [0, 1], got {self.omega}.")
