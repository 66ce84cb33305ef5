"""The sentences a report opens with: per target, which model learned most, which kept most of the base
model's pre-trained skill, and which has the best trade-off by the chosen H-score, each with its
interval — generated from the report's own numbers, never written by hand."""

from __future__ import annotations

from mfcli.report.build import Report
from mfcli.report.stats import H_KEYS, H_LABELS


def _spread(value: float, spread: float | None, seeds: int | None, unit: str = "") -> str:
    if spread is not None and seeds:
        return f"{value:.1f}{unit} ± {spread:.1f} (sd over {seeds} seeds)"
    return f"{value:.1f}{unit}"


def _score(rep: Report, m: str, t: str) -> str:
    c = rep.cells[(m, t)]
    if c.spread is not None:
        return _spread(c.score, c.spread, c.seeds)
    if c.interval:
        return f"{c.score:.1f} (95 % CI {c.interval[0]:.1f}–{c.interval[1]:.1f})"
    return f"{c.score:.1f}"


def _candidates(rep: Report, target: str) -> list[str]:
    """The models a verdict about `target` compares: not the base, not a vision encoder; those fine-tuned
    on it where the manifests say so (else every such model)."""
    models = [m for m in rep.models if m != rep.base and rep.summary[m]["kind"] != "vision-encoder"]
    on_target = [m for m in models if target in (rep.summary[m].get("targets") or ())]
    return on_target or models


def _leaders(models: list[str], value) -> list[str]:
    """Every model at the highest value (to the 0.1 a sentence shows): a tie names them all."""
    top = max(round(value(m), 1) for m in models)
    return [m for m in models if round(value(m), 1) == top]


def _runner_up_overlaps(rep: Report, models: list[str], leader: str, t: str) -> str | None:
    """The best other model whose score on `t` is within the leader's uncertainty: the 95 % intervals
    overlap, or, over seeds, the mean ± sd ranges do. None where the lead is clear (or not measurable)."""
    def bounds(m):
        c = rep.cells[(m, t)]
        if c.spread is not None:
            return c.score - c.spread, c.score + c.spread
        return tuple(c.interval) if c.interval else None

    lead = bounds(leader)
    if lead is None:
        return None
    rest = sorted((m for m in models if m != leader), key=lambda m: -rep.cells[(m, t)].score)
    return next((m for m in rest if (other := bounds(m)) is not None and other[1] >= lead[0]), None)


def _names(names: dict, models: list[str]) -> str:
    return names[models[0]] if len(models) == 1 else "a tie between " + ", ".join(names[m] for m in models)


def summary_lines(rep: Report, names: dict, h_form: str = "model-tailor", mixed: bool = False) -> list[str]:
    """One sentence per target; `names` maps models to their display names. Where the averages mix
    scales (`mixed`: a CIDEr task among accuracies), the trade-off is named by H of kept: the chosen
    H with "kept (% of base)" in place of avg pre — scale-free on the pre-trained side — and not at all
    where the target itself is not a percentage. A tie names every model in it; nothing is named as
    having learned most when no model scores above the base (or above 0 without one); a leader whose
    runner-up lies within its interval is said to be so."""
    key, spread_key = ("h_kept", "h_kept_spread") if mixed else H_KEYS[h_form]
    label = "H of kept and target (2·kept·target / (kept + target))" if mixed else H_LABELS[h_form]
    lines = []
    for t in [t for t in rep.tasks if rep.roles[t] == "target"]:
        models = [m for m in _candidates(rep, t) if (m, t) in rep.cells]
        if not models:
            continue
        parts = []
        floor = rep.cells[(rep.base, t)].score if rep.base and (rep.base, t) in rep.cells else 0.0
        base = (f"; {names[rep.base]} {rep.cells[(rep.base, t)].score:.1f}" if rep.base and (rep.base, t) in rep.cells
                else "")
        learners = [m for m in models if round(rep.cells[(m, t)].score, 1) > round(floor, 1)]
        if not learners:
            best = max(rep.cells[(m, t)].score for m in models)
            parts.append(f"nothing learned: no model scores above {names[rep.base] if base else '0'} "
                         f"(best {best:.1f}{base})")
        else:
            top = _leaders(learners, lambda m: rep.cells[(m, t)].score)
            close = _runner_up_overlaps(rep, learners, top[0], t) if len(top) == 1 else None
            within = f", within the interval of {names[close]} ({_score(rep, close, t)})" if close else ""
            parts.append(f"learned most: {_names(names, top)}, {_score(rep, top[0], t)}{base}{within}")
        kept = [m for m in models if rep.summary[m]["kept_pretrained"] is not None]
        if kept:
            top = _leaders(kept, lambda m: rep.summary[m]["kept_pretrained"])
            s = rep.summary[top[0]]
            parts.append(f"kept most of {names[rep.base]}'s pre-trained scores: {_names(names, top)}, "
                         f"{_spread(s['kept_pretrained'], s['kept_spread'], s['seeds'], ' %')}")
        scored = [m for m in models if rep.summary[m][key] is not None]
        if scored and learners:
            top = _leaders(scored, lambda m: rep.summary[m][key])
            s = rep.summary[top[0]]
            parts.append(f"best trade-off by {label}: {_names(names, top)}, "
                         f"{_spread(s[key], s[spread_key], s['seeds'])}")
        elif scored:
            parts.append("no trade-off named: nothing was learned")
        elif mixed and not kept:
            parts.append(f"no trade-off named: 'kept' needs {names[rep.base] if rep.base else 'a base'}'s "
                         "pre-trained scores, and they are 0 or missing")
        elif mixed:
            parts.append("no trade-off named: the target is not scored in % (compare by the table)")
        lines.append(f"{t}: " + "; ".join(parts) + ".")
    return lines
