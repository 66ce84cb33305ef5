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


def summary_lines(rep: Report, names: dict, h_form: str = "model-tailor", mixed: bool = False) -> list[str]:
    """One sentence per target; `names` maps models to their display names. Where the averages mix
    scales (`mixed`: a CIDEr task among accuracies), the trade-off is named by H of kept: the chosen
    H with "kept (% of base)" in place of avg pre — scale-free on the pre-trained side — and not at all
    where the target itself is not a percentage."""
    key, spread_key = ("h_kept", "h_kept_spread") if mixed else H_KEYS[h_form]
    label = "H of kept and target (2·kept·target / (kept + target))" if mixed else H_LABELS[h_form]
    lines = []
    for t in [t for t in rep.tasks if rep.roles[t] == "target"]:
        models = [m for m in _candidates(rep, t) if (m, t) in rep.cells]
        if not models:
            continue
        parts = []
        learned = max(models, key=lambda m: rep.cells[(m, t)].score)
        base = (f"; {names[rep.base]} {rep.cells[(rep.base, t)].score:.1f}" if rep.base and (rep.base, t) in rep.cells
                else "")
        parts.append(f"learned most: {names[learned]}, {_score(rep, learned, t)}{base}")
        kept = [m for m in models if rep.summary[m]["kept_pretrained"] is not None]
        if kept:
            k = max(kept, key=lambda m: rep.summary[m]["kept_pretrained"])
            s = rep.summary[k]
            parts.append(f"kept most of {names[rep.base]}'s pre-trained scores: {names[k]}, "
                         f"{_spread(s['kept_pretrained'], s['kept_spread'], s['seeds'], ' %')}")
        scored = [m for m in models if rep.summary[m][key] is not None]
        if scored:
            h = max(scored, key=lambda m: rep.summary[m][key])
            s = rep.summary[h]
            parts.append(f"best trade-off by {label}: {names[h]}, {_spread(s[key], s[spread_key], s['seeds'])}")
        elif mixed and not kept:
            parts.append(f"no trade-off named: 'kept' needs {names[rep.base] if rep.base else 'a base'}'s "
                         "pre-trained scores, and they are 0 or missing")
        elif mixed:
            parts.append("no trade-off named: the target is not scored in % (compare by the table)")
        lines.append(f"{t}: " + "; ".join(parts) + ".")
    return lines
