"""`mfcli tailor`'s options: what every merge run reads (`TailorOptions`), and each method's own options
class (a `MethodOptions` dataclass registered with the method, merge/contract.py), light so that
`mfcli tailor --help` builds its flags without importing torch. Methods share an option by sharing the
class that declares it (`LambdaOptions` for ties and task-arithmetic, ...).

    from mfcli.merge.methods import tailor_options   # the registry's builder
    tailor_options("ties", sparsity=0.1, lam=2.0)   # -> TailorOptions(method="ties", method_options=TiesOptions(lam=2.0))
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

from mfcli.errors import UsageError, did_you_mean
from mfcli.merge.contract import MethodOptions, option_classes  # noqa: F401  (option_classes: the CLI's)
from mfcli.params import option


# --scope: which changed tensors the method tailors. Outside the scope a tensor keeps its fine-tuned
# value (the mean over SFTs), as Model Tailor's own code does for embeddings, lm_head and norms.
SCOPES = {
    "all": "every changed tensor",
    "paper": "what Model Tailor counts in its 10 %: the projector, the token embeddings, the decoder layers and "
             "lm_head (2.71B of LLaVA-1.5-7B's parameters when its last 12 layers are fine-tuned, so 271.2M "
             "kept at 10 %; the paper prints 2.7B and 273M, figures that do not add up exactly); the vision "
             "tower and the final norm keep their fine-tuned values",
}

# --variant: which decorator compensates a linear layer's reverted changes (docs/methods.md)
VARIANTS = {
    "paper": "Model Tailor as published: the Eq. 9-11 mask, then Thm 4.5's compensation in SparseGPT's column order",
    "refined": "mfcli's variant: the same mask and Thm 4.5, then per row the better of it and the plain mask, then "
               "--refine-steps CG steps on Eq. 5 with --comp-penalty's squared closeness term",
}
# μ = 0.1: the highest validation score of μ ∈ {0, 0.1, 0.3, 1, 3, 10} on counting and scene-caption, 3 seeds,
# on splits carved from the training data (studies/tailor_choose.py; docs/results.md, "Model Tailor on tiny")
REFINED_DEFAULTS = {"refine_steps": 10, "comp_penalty": 0.1}


# the registry's names (merge/methods/), written out because importing the registry imports torch and
# `--help` must not; tests/test_tailor.py holds this list to the registry
METHODS_HELP = "tailor, dare, grafting, task-arithmetic, ties, regmean, fisher, fisher-budget, nps"


@dataclass(frozen=True)
class TailorOptions:
    """What every merge run reads; a field made with `option` is also `mfcli tailor`'s --flag, with this help.
    The method's own options ride along as `method_options` (its registered class; the run fills in its
    defaults where none was given: merge/contract.py's with_method_options; `tailor_options` in
    mfcli.merge.methods builds both from one set of keywords)."""

    # fraction of the fine-tuned changes KEPT (the paper's ρ: 10 % keeps 28.8M of 288M); the command line
    # takes a list of budgets (cli/tailor.py), each run with its own TailorOptions
    sparsity: float = 0.1
    method: str = option("tailor", f"{METHODS_HELP}.")
    data: str | None = option(None, "Calibration train.jsonl (default: SFT's manifest).")
    nsamples: int = option(128, "Calibration examples.")  # as the authors' code
    # which changed tensors are tailored; the rest keep their fine-tuned values (SCOPES)
    scope: str = option("all", "Tensors tailored: all (every changed tensor) or paper (projector, embeddings, "
                               "decoder layers, lm_head: what the paper counts; the rest keep their fine-tuned "
                               "values).")
    # the authors' code restricts to decoder layers this way
    layers: str | None = option(None, "Decoder layers to tailor, e.g. 20-31; others revert.")
    seed: int = option(0, "DARE's random seed.")  # DARE's random drop and the calibration sample
    method_options: object = None

    def __post_init__(self):
        if not 0.0 < self.sparsity <= 1.0:
            raise UsageError(f"--sparsity must be in (0, 1] (the fraction of changes kept), got {self.sparsity}.")
        if self.scope not in SCOPES:
            raise UsageError(f"unknown --scope '{self.scope}'.", did_you_mean(self.scope, SCOPES))


@dataclass(frozen=True)
class MaskScopeOptions(MethodOptions):
    """The masking methods that may select per row."""

    mask_scope: str = option("layer", "tailor, grafting, fisher-budget: keep the top rho per tensor (layer) or per "
                                      "row.")

    def __post_init__(self):
        if self.mask_scope not in ("layer", "row"):
            raise UsageError(f"--mask-scope must be layer or row, got '{self.mask_scope}'.")


@dataclass(frozen=True)
class ModelTailorOptions(MaskScopeOptions):
    """Model Tailor's (merge/methods/tailor.py)."""

    # the decorator (VARIANTS): refined is the default because it scored higher than paper on the same
    # validation splits, on both targets (docs/results.md); --variant paper is the paper's
    variant: str = option("refined", "tailor's decorator: paper (Thm 4.5 in SparseGPT's column order, nothing "
                                     "else) or refined (mfcli's: + per-row fallback to the plain mask, CG, "
                                     "--comp-penalty).")
    # the authors' code: 0.8 / 0.2
    omega: float = option(0.8, "tailor: Eq. 11 weight of salience vs sensitivity.")
    score_norm: str = option("minmax", "tailor: minmax (paper) or zscore.")  # Eq. 11's norm; zscore as the authors' code
    block_size: int = option(128, "tailor: OBS lazy-update block size.")  # SparseGPT's
    damp: float = option(0.01, "tailor: damping, fraction of mean diag(H).")  # SparseGPT, the authors
    # --variant refined only (None: REFINED_DEFAULTS): conjugate-gradient steps after OBS, and Eq. 5's
    # closeness constraint as a squared penalty on the compensation, in units of mean(diag H)
    refine_steps: int | None = option(None, "--variant refined: CG steps after OBS [default: 10].")
    comp_penalty: float | None = option(None, "--variant refined: Eq. 5's closeness to PRE as a squared penalty on "
                                              "the compensation, in units of mean diag(H) (0: unconstrained least "
                                              "squares; large: the plain mask) [default: 0.1].")
    compensate: bool = option(True, "tailor: OBS compensation.", flags=("--compensate/--no-compensate",))  # off: Table 4
    compensate_head: bool = option(False, "tailor: take lm_head through the Hessian path (mask by Eq. 9-11, "
                                          "compensate) instead of salience only; the paper gives no basis for it.",
                                   flags=("--compensate-head/--no-compensate-head",))

    def __post_init__(self):
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise UsageError(f"unknown --variant '{self.variant}'.", did_you_mean(self.variant, VARIANTS))
        for name, default in REFINED_DEFAULTS.items():
            if self.variant == "refined" and getattr(self, name) is None:
                object.__setattr__(self, name, default)
            elif self.variant == "paper" and getattr(self, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} shapes --variant refined only; the paper's decorator has no such step.")
        if self.score_norm not in ("minmax", "zscore"):
            raise UsageError(f"--score-norm must be minmax or zscore, got '{self.score_norm}'.")
        if self.comp_penalty is not None and self.comp_penalty < 0:
            raise UsageError(f"--comp-penalty must be >= 0, got {self.comp_penalty}.")
        if not 0.0 <= self.omega <= 1.0:
            raise UsageError(f"--omega must be in [0, 1], got {self.omega}.")


@dataclass(frozen=True)
class LambdaOptions(MethodOptions):
    lam: float = option(1.0, "task-arithmetic / ties scale.", flags=("--lambda",))


@dataclass(frozen=True)
class TiesOptions(LambdaOptions):
    # TIES's trim: per tensor (mfcli's: the same budget in every tensor as the other budgeted methods) or
    # over the whole task vector (the paper's and its code's)
    ties_trim: str = option("tensor", "ties: keep the top rho of each tensor's changes (tensor) or of the whole "
                                      "task vector's (global: the paper's).")

    def __post_init__(self):
        if self.ties_trim not in ("tensor", "global"):
            raise UsageError(f"--ties-trim must be tensor or global, got '{self.ties_trim}'.")


@dataclass(frozen=True)
class TaskArithmeticOptions(LambdaOptions):
    # task arithmetic: λ times the mean of the task vectors (mfcli's) or their sum (the paper's)
    ta_combine: str = option("mean", "task-arithmetic: lambda times the mean of the task vectors (mean) or their "
                                     "sum (sum: the paper's).")

    def __post_init__(self):
        if self.ta_combine not in ("mean", "sum"):
            raise UsageError(f"--ta-combine must be mean or sum, got '{self.ta_combine}'.")


@dataclass(frozen=True)
class PreDataOptions(MethodOptions):
    """The methods that weigh PRE by its own statistics (a registered `pre_side`)."""

    # RegMean and Fisher merging weigh PRE by its own statistics on the tasks it knows: prepared dirs or
    # train.jsonl files of those tasks (a seeded sample of --nsamples examples, pooled)
    pre_data: tuple[str, ...] = option((), "regmean, fisher, fisher-budget: prepared data (dirs or train.jsonl) of "
                                           "the tasks PRE knows, for PRE's own statistics; repeat per data set.",
                                       flags=("--pre-data",), cli_type=Optional[list[str]])


@dataclass(frozen=True)
class RegMeanOptions(PreDataOptions):
    # RegMean's α: G̃ = α·G + (1 − α)·diag(G) (its §3.2). The paper tunes α per setting. 0.6: the highest
    # mean H of kept over counting and animals on their validation splits, 3 seeds each, of α ∈ {0.1, 0.3,
    # 0.6, 0.9, 0.95} (studies/regmean_alpha.py; docs/results.md) — 0.3 to 0.95 within the seeds' spread
    regmean_alpha: float = option(0.6, "regmean: α in G̃ = α·G + (1 − α)·diag(G) (0.6: chosen on validation "
                                       "splits, docs/results.md).")
    # each model's Gram matrix: its mean over its tokens (the reference codes: models weigh equally) or
    # the sum of Eq. 1 (a model weighs by its token count)
    regmean_gram: str = option("mean", "regmean: each model's Gram XᵀX as its mean over its tokens (mean: "
                                       "RegMean's code and FusionBench, every model weighs equally) or summed "
                                       "(sum: Eq. 1 as written, a model weighs by its calibration tokens).")

    def __post_init__(self):
        if self.regmean_gram not in ("mean", "sum"):
            raise UsageError(f"--regmean-gram must be mean or sum, got '{self.regmean_gram}'.")
        if not 0.0 <= self.regmean_alpha <= 1.0:
            raise UsageError(f"--regmean-alpha must be in [0, 1], got {self.regmean_alpha}.")


@dataclass(frozen=True)
class FisherOptions(PreDataOptions):
    # Fisher merging (merge/methods/fisher.py): each model's Fisher over its L2 norm (both references'
    # default), the empirical or the model-sampled (true) Fisher, and the references' floor
    fisher_normalise: bool = option(True, "fisher: divide each model's Fisher by its L2 norm over the model, as "
                                          "both reference codes do (off: the raw Fishers of Eq. 2).",
                                    flags=("--fisher-normalise/--no-fisher-normalise",))
    fisher_estimate: str = option("empirical", "fisher: empirical (the data's answer tokens) or sampled (the true "
                                               "Fisher of the references: one token drawn from the model per "
                                               "answer position).")
    fisher_floor: float = option(0.0, "fisher: raise every Fisher entry to at least this (the references': 1e-6); "
                                      "0: the plain mean only where every Fisher is 0.")

    def __post_init__(self):
        if self.fisher_estimate not in ("empirical", "sampled"):
            raise UsageError(f"--fisher-estimate must be empirical or sampled, got '{self.fisher_estimate}'.")
        if self.fisher_floor < 0:
            raise UsageError(f"--fisher-floor must be >= 0, got {self.fisher_floor}.")


@dataclass(frozen=True)
class FisherBudgetOptions(FisherOptions, MaskScopeOptions):
    """mfcli's fisher-budget: Fisher merging's options and a mask scope."""

    def __post_init__(self):
        FisherOptions.__post_init__(self)
        MaskScopeOptions.__post_init__(self)


@dataclass(frozen=True)
class NpsOptions(MethodOptions):
    # NPS-style (merge/methods/nps.py, mfcli/search.py): magnitude bands of each Δ, their weights found by
    # CMA-ES on labelled validation records (--nps-search) or given (--nps-weights); what the paper leaves
    # open is an option here, its default stated in docs/methods.md
    nps_bands: int = option(4, "nps: magnitude bands of each tensor's changes (equal counts; band 1 the largest).")
    nps_weights: str = option("", "nps: the bands' weights, comma-separated (default: found by --nps-search; "
                                  "without it, all 1 = magnitude pruning).")
    nps_apply: str = option("mask", "nps: what is kept: mask (m ⊙ Δ, the paper's formula) or reweighted "
                                    "(m ⊙ w ⊙ Δ).")
    nps_search: tuple[str, ...] = option((), "nps: prepared data whose val.jsonl scores each candidate's weights "
                                             "(CMA-ES); repeat per data set; never the held-out split.",
                                         flags=("--nps-search",), cli_type=Optional[list[str]])
    nps_budget: int = option(24, "nps: candidate weightings CMA-ES may score.")

    def __post_init__(self):
        if self.nps_bands < 1 or self.nps_budget < 1:
            raise UsageError("--nps-bands and --nps-budget must be at least 1.")
        if self.nps_apply not in ("mask", "reweighted"):
            raise UsageError(f"--nps-apply must be mask or reweighted, got '{self.nps_apply}'.")
        if self.nps_weights:
            try:
                weights = [float(w) for w in self.nps_weights.split(",")]
            except ValueError:
                raise UsageError(f"--nps-weights must be numbers, got '{self.nps_weights}'.") from None
            if len(weights) != self.nps_bands or any(w < 0 for w in weights):
                raise UsageError(f"--nps-weights needs {self.nps_bands} non-negative numbers (one per band), got "
                                 f"'{self.nps_weights}'.")


def common_options() -> tuple[str, ...]:
    """What every merge run reads: TailorOptions' fields."""
    return tuple(f.name for f in fields(TailorOptions) if f.name != "method_options")


def updated(opts: TailorOptions, **values) -> TailorOptions:
    """`opts` with some options changed, each where it lives (TailorOptions or the method's own class)."""
    common = set(common_options())
    own = {k: v for k, v in values.items() if k not in common}
    method_options = replace(opts.method_options, **own) if own else opts.method_options
    return replace(opts, method_options=method_options, **{k: v for k, v in values.items() if k in common})
