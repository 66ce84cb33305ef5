"""Paired tests for a change of score between two models scored on the same records, for every metric:
an interval for the change (paired bootstrap) and a p-value (exact McNemar for right/wrong records,
elsewhere a sign-flip permutation test), both over *clusters* of records — records that share an image
are resampled and flipped together, since their outcomes are not independent.

Both come from SciPy (`scipy.stats.bootstrap`, `scipy.stats.permutation_test`), seeded. CIDEr-D is a
corpus metric — its tf-idf weights come from the references of the whole evaluated set — so each
bootstrap resample recomputes it as a corpus on that resample (`CorpusCider`, pycocoevalcap's CIDEr-D
vectorised over resample weights). The permutation test needs no recomputation: swapping two models'
outputs on an image leaves the references, hence the weights, as they were, so it flips the sign of
that image's score difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mfcli.eval.metrics.caption import _library, tokenize

N_RESAMPLES = 2000  # bootstrap resamples and random sign flips (exact enumeration below 2^11 clusters)
CONFIDENCE = 0.95
SIGN_FLIP = "sign-flip by image"  # the test's name in reports: whole clusters (images) flipped together
# below this a randomised p (N_RESAMPLES sign flips, floor 1/(N_RESAMPLES + 1)) is not resolved: printed "p < 0.001"
P_RESOLUTION = 0.001


@dataclass(frozen=True)
class PairedChange:
    delta: float  # model − base, in the metric's report units (percent, CIDEr ×100)
    low: float  # 95 % paired-bootstrap interval of the change
    high: float
    p_value: float
    test: str  # which test gave p_value


class CorpusCider:
    """CIDEr-D of several systems on one set of images, for any weighting of the images (a bootstrap
    resample is a weighting: image i drawn w_i times). Exactly pycocoevalcap's `CiderScorer` on the
    resample — document frequency df(g) = Σ_i w_i·[g in image i's references], ref_len = log Σ_i w_i,
    tf-idf weights tf·(ref_len − log max(1, df)), clipped products, the Gaussian length penalty σ = 6
    on the bigram counts (its `length`), ×10 — with the n-gram counts cooked once, so that a resample
    costs a few sparse products. Captions are tokenised as `eval/metrics/caption.py` tokenises them."""

    def __init__(self, outputs: Sequence[Sequence[str]], references: Sequence[Sequence[str]], sigma: float = 6.0):
        from scipy import sparse

        _library()  # pycocoevalcap present, or the one clear line that says how to install it
        from pycocoevalcap.cider.cider_scorer import precook as _ngrams  # its own n-gram counts, 1-4

        self.sigma, self.n_images = sigma, len(references)
        vocab: dict[tuple, int] = {}
        col = lambda g: vocab.setdefault(g, len(vocab))  # noqa: E731
        refs = [[_ngrams(tokenize(r)) for r in rs] for rs in references]
        presence_rows, presence_cols = [], []
        for i, rs in enumerate(refs):
            for g in {g for r in rs for g in r}:
                presence_rows.append(i)
                presence_cols.append(col(g))
        self.ref_pairs = [(i, j) for i, rs in enumerate(refs) for j in range(len(rs))]
        self.n_refs = np.array([len(rs) for rs in refs], dtype=float)
        ref_counts = [r for rs in refs for r in rs]
        hyps = [[_ngrams(tokenize(o or "")) for o in outs] for outs in outputs]
        for system in hyps:
            for h in system:
                for g in h:
                    col(g)
        self.order = np.zeros(len(vocab), dtype=int)
        for g, k in vocab.items():
            self.order[k] = len(g) - 1
        G = len(vocab)
        self.presence = sparse.csr_matrix((np.ones(len(presence_rows)), (presence_rows, presence_cols)),
                                          shape=(len(refs), G))

        def matrix(rows_of: list[dict], value) -> sparse.csr_matrix:
            r, c, v = [], [], []
            for k, counts in enumerate(rows_of):
                for g, tf in counts.items():
                    x = value(g, tf, k)
                    if x:
                        r.append(k), c.append(vocab[g]), v.append(x)
            return sparse.csr_matrix((v, (r, c)), shape=(len(rows_of), G))

        self.ref_sq = matrix(ref_counts, lambda g, tf, k: tf * tf)
        self.ref_len = np.array([sum(tf for g, tf in r.items() if len(g) == 2) for r in ref_counts], dtype=float)
        self.systems = []
        for system in hyps:
            hyp_sq = matrix(system, lambda g, tf, k: tf * tf)
            per_ref = [system[i] for i, _ in self.ref_pairs]
            # numerator of the clipped cosine: min(tf_hyp, tf_ref)·tf_ref per n-gram the hypothesis has
            cross = matrix(ref_counts, lambda g, tf, k: min(per_ref[k].get(g, 0), tf) * tf)
            length = np.array([sum(tf for g, tf in h.items() if len(g) == 2) for h in system], dtype=float)
            self.systems.append((hyp_sq, cross, length))
        self.image_of_ref = np.array([i for i, _ in self.ref_pairs])
        self.order_masks = [self.order == n for n in range(4)]

    def image_scores(self, weights: np.ndarray | None = None) -> list[np.ndarray]:
        """Each system's per-image CIDEr-D under image weights (None: each image once), pycocoevalcap's
        scale (the corpus score is their weighted mean; the report prints it ×100)."""
        w = np.ones(self.n_images) if weights is None else np.asarray(weights, dtype=float)
        df = self.presence.T @ w
        idf = np.log(w.sum()) - np.log(np.maximum(1.0, df))
        idf2 = idf * idf
        out = []
        for hyp_sq, cross, length in self.systems:
            val = np.zeros((len(self.ref_pairs), 4))
            penalty = np.exp(-((length[self.image_of_ref] - self.ref_len) ** 2) / (2 * self.sigma ** 2))
            for n, mask in enumerate(self.order_masks):
                x = idf2 * mask
                norm_h = np.sqrt(hyp_sq @ x)[self.image_of_ref]
                norm_r = np.sqrt(self.ref_sq @ x)
                num = cross @ x
                ok = (norm_h != 0) & (norm_r != 0)
                val[:, n] = np.where(ok, num / np.where(ok, norm_h * norm_r, 1.0), num) * penalty
            per_ref = val.mean(axis=1)
            score = np.bincount(self.image_of_ref, weights=per_ref, minlength=self.n_images) / self.n_refs * 10.0
            out.append(score)
        return out


def _clusters(keys: Sequence[str]) -> tuple[np.ndarray, int]:
    index: dict[str, int] = {}
    return np.array([index.setdefault(k, len(index)) for k in keys]), len(index)


def _interval(statistic, n_clusters: int, seed: int) -> tuple[float, float]:
    from scipy import stats

    if n_clusters < 2:
        value = statistic(np.arange(n_clusters))
        return value, value
    res = stats.bootstrap((np.arange(n_clusters),), statistic, n_resamples=N_RESAMPLES, vectorized=False,
                          method="percentile", confidence_level=CONFIDENCE, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _sign_flip_p(cluster_diffs: np.ndarray, seed: int) -> float:
    """Two-sided p of the mean paired difference under random sign flips of whole clusters."""
    from scipy import stats

    if not np.any(cluster_diffs):
        return 1.0
    res = stats.permutation_test((cluster_diffs,), np.sum, permutation_type="samples", vectorized=False,
                                 n_resamples=N_RESAMPLES, alternative="two-sided",
                                 random_state=np.random.default_rng(seed))
    return float(min(1.0, res.pvalue))


def paired_mean_change(model: Sequence[float], base: Sequence[float], clusters: Sequence[str],
                       scale: float = 100.0, seed: int = 0) -> PairedChange:
    """The change of a mean-of-records metric (accuracy, VQA accuracy) between two models scored on the
    same records (in the same order), with records sharing a cluster (an image) kept together."""
    a, b = np.asarray(model, dtype=float), np.asarray(base, dtype=float)
    idx, k = _clusters(clusters)
    diff_sum = np.bincount(idx, weights=a - b, minlength=k)
    size = np.bincount(idx, minlength=k).astype(float)

    def statistic(drawn):
        w = np.bincount(drawn, minlength=k)
        return scale * (w @ diff_sum) / (w @ size)

    low, high = _interval(statistic, k, seed)
    return PairedChange(scale * float((a - b).mean()), low, high, _sign_flip_p(diff_sum, seed), SIGN_FLIP)


def paired_cider_change(model_outputs: Sequence[str], base_outputs: Sequence[str],
                        references: Sequence[Sequence[str]], images: Sequence[str], seed: int = 0) -> PairedChange:
    """The change of corpus CIDEr-D (×100) between two models' captions of the same records: the
    interval recomputes both corpora on every resample of images, the p-value flips whole images."""
    cider = CorpusCider([model_outputs, base_outputs], references)
    idx, k = _clusters(images)

    def statistic(drawn):
        w = np.bincount(drawn, minlength=k)[idx].astype(float)  # an image drawn twice weighs twice
        s_model, s_base = cider.image_scores(w)
        return 100.0 * (w @ (s_model - s_base)) / w.sum()

    s_model, s_base = cider.image_scores()
    low, high = _interval(statistic, k, seed)
    diffs = np.bincount(idx, weights=s_model - s_base, minlength=k)
    return PairedChange(100.0 * float((s_model - s_base).mean()), low, high, _sign_flip_p(diffs, seed), SIGN_FLIP)
