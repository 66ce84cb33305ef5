"""NPS-style merging's search (merge/methods/nps.py): the band weights w chosen by CMA-ES (the `cma`
package) to maximise the merged model's score on labelled validation records — prepare's `val.jsonl`,
never the held-out split. Orchestration: each candidate is a real `tailor` merge into a scratch
directory, scored with `mfcli emt`'s generation and the judges.

Choices the paper leaves open, stated (docs/methods.md): the fitness is the mean over the given data sets'
tasks of their validation scores (the target's alone, as the paper's, when only the target is given);
w starts at all 1 (magnitude pruning) with σ₀ 0.3, bounded to [0, 2], CMA-ES's default population, seeded
by `--seed`, at most `--nps-budget` candidates scored (one past it is told its generation's worst
score, unscored); the best candidate seen is kept.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mfcli.errors import MfcliError, UsageError
from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file
from mfcli.merge.contract import with_method_options
from mfcli.merge.options import TailorOptions, updated


def validation_files(specs: tuple[str, ...]) -> list[str]:
    """Each --nps-search DATA as its val.jsonl: a prepared directory's, or a file of that name."""
    files = []
    for spec in specs:
        p = Path(spec)
        f = p / "val.jsonl" if p.is_dir() else p
        if f.name != "val.jsonl":
            raise UsageError(f"--nps-search {spec}: the search scores validation records (val.jsonl), never the "
                             "held-out split.", "Pass a prepared directory, or its val.jsonl.")
        if not f.is_file():
            raise MfcliError(f"--nps-search {spec}: {f} does not exist.",
                             "Prepare the data again with a validation split (mfcli prepare … --val-fraction 0.1).")
        files.append(str(f))
    return files


def search_band_weights(pre: str, sfts: list[str], opts: TailorOptions, rho: float, *, log=print) -> tuple[list[float], float]:
    """CMA-ES over the band weights at budget ρ; returns the best weights and their validation score."""
    import cma

    from mfcli.merge.run import run_tailor

    from mfcli.merge import methods

    opts = with_method_options(opts, methods.get(opts.method))
    own = opts.method_options  # NpsOptions
    files = validation_files(own.nps_search)
    scratch = Path(tempfile.mkdtemp(prefix="mfcli-nps-"))
    judge = make_judge("exact")
    seen: dict[tuple, float] = {}

    def fitness(weights) -> float:
        w = tuple(round(float(x), 6) for x in weights)
        if w in seen:
            return seen[w]
        d = scratch / f"candidate-{len(seen)}"
        run_tailor(pre, sfts, d, updated(opts, sparsity=rho, nps_weights=",".join(map(repr, w)), nps_search=()),
                   budgets=[rho], progress=False)
        preds = d.with_suffix(".jsonl")
        run_emt(str(d), files, preds, EmtOptions(), progress=False)
        summary = judge_file(str(preds), str(d.with_suffix(".judged.jsonl")), judge)
        score = sum(float(s["score"]) for s in summary.tasks.values()) / len(summary.tasks)
        seen[w] = score
        log(f"nps: weights {', '.join(f'{x:.3f}' for x in w)} -> validation score {100 * score:.1f}")
        shutil.rmtree(d, ignore_errors=True)
        return score

    try:
        es = cma.CMAEvolutionStrategy([1.0] * own.nps_bands, 0.3,
                                      {"bounds": [0.0, 2.0], "seed": opts.seed + 1, "maxfevals": own.nps_budget,
                                       "verbose": -9})
        while not es.stop() and len(seen) < own.nps_budget:
            candidates, values = es.ask(), []
            for c in candidates:  # past the budget a candidate is not scored: told the generation's worst
                values.append(-fitness(c) if len(seen) < own.nps_budget else max(values, default=0.0))
            es.tell(candidates, values)
        best = max(seen, key=seen.get)
        return list(best), seen[best]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
