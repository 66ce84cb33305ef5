"""Report figures with matplotlib (Agg: no display needed), in a colour-blind-safe palette."""

from __future__ import annotations

from pathlib import Path

# Okabe & Ito (2008), safe for the common colour-vision deficiencies; tab20 beyond eight series
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    """Every figure's last steps: lay out, write at the report's resolution, free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def palette(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def epoch_curves(curves: dict[str, dict[str, list[tuple[float, float]]]], path: Path, ylabel: str) -> Path:
    """curves[run][task] = [(epoch, score)]: one panel per run, one line per task (EMT Figs. 6-7)."""
    plt = _plt()
    runs = sorted(curves)
    tasks = sorted({t for r in runs for t in curves[r]})
    colours = dict(zip(tasks, palette(len(tasks))))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        for task in tasks:
            pts = sorted(curves[run].get(task, []))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colours[task], label=task)
        ax.set_title(run, fontsize=10)
        ax.set_xlabel("epoch (0 = before fine-tuning)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8, loc="best")
    return _save(plt, fig, path)


def grouped_bars(values: dict[str, dict[str, float]], path: Path, ylabel: str, title: str) -> Path:
    """values[model][series] as grouped bars (e.g. accuracy per task, or verdict shares)."""
    plt = _plt()
    models = list(values)
    series = sorted({s for m in models for s in values[m]})
    colours = palette(len(series))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(models) + 2) + 1.4, 3.6))
    for j, s in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(models))]
        ax.bar(xs, [values[m].get(s, 0.0) for m in models], width, label=s, color=colours[j])
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))  # beside the axes: never over a bar
    ax.grid(axis="y", alpha=0.3)
    return _save(plt, fig, path)


def tradeoff(points: dict[str, tuple], path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """points[model] = (x, y, x_sd, y_sd): one labelled marker per model, with its spread as error bars
    — the forgetting trade-off at a glance (up and right is better)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for colour, (name, (x, y, xe, ye)) in zip(palette(len(points)), points.items()):
        ax.errorbar([x], [y], xerr=[xe] if xe else None, yerr=[ye] if ye else None, fmt="o", color=colour,
                    capsize=3, label=name)
    for name, (x, y, _, _), dy in _label_offsets(ax, points):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, dy), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def _label_offsets(ax, points: dict[str, tuple], width: float = 80, height: float = 9):
    """(name, point, vertical offset in points) per marker: a label that would overprint one placed above
    it (two models with nearly the same scores) moves down a line until it is clear."""
    ax.autoscale_view()
    to_points = 72.0 / ax.figure.dpi  # display pixels → typographic points, the unit of xytext
    placed, out = [], []
    for name, pt in sorted(points.items(), key=lambda kv: -kv[1][1]):
        px, py = (v * to_points for v in ax.transData.transform((pt[0], pt[1])))
        dy = 4.0
        while any(abs(px - qx) < width and abs(py + dy - qy) < height for qx, qy in placed):
            dy -= height
        placed.append((px, py + dy))
        out.append((name, pt, dy))
    return out


def lines(series: dict[str, list[tuple[float, float]]], path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for colour, (name, pts) in zip(palette(len(series)), sorted(series.items())):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def front(points, path: Path) -> Path:
    """The trade-off front: target gain against kept, one line per method through its budgets (labelled
    with ρ), the Pareto-optimal points ringed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    methods = list(dict.fromkeys(p.method for p in points))
    for colour, method in zip(palette(len(methods)), methods):
        pts = [p for p in points if p.method == method]
        ax.plot([p.kept for p in pts], [p.gain for p in pts], "-o", color=colour, label=method, markersize=4,
                linewidth=1.2)
        for p in pts:
            if p.budget is not None:
                ax.annotate(f"{p.budget:g}", (p.kept, p.gain), textcoords="offset points", xytext=(4, 3), fontsize=6,
                            color=colour)
    best = [p for p in points if p.pareto]
    ax.scatter([p.kept for p in best], [p.gain for p in best], s=110, facecolors="none", edgecolors="black",
               linewidths=1.2, label="Pareto-optimal", zorder=3)
    ax.set_xlabel("kept (% of base, mean over pre-trained tasks)")
    ax.set_ylabel("target gain (points over base)")
    ax.set_title("Trade-off front: each method over its budgets ρ (up and right is better)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def watch(records, path: Path, title: str) -> Path:
    """A forgetting watch: each task's score against steps (left; a caption task's CIDEr on its own
    axis), and kept and target against steps (right), the best evaluation marked."""
    plt = _plt()
    from mfcli.forgetting import percent_scale

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.6))
    steps = [r.step for r in records]
    tasks = list(records[0].scores)
    own = [t for t in tasks if not percent_scale(records[0].metrics[t])]
    other = left.twinx() if own else None
    for colour, t in zip(palette(len(tasks)), tasks):
        ax = other if t in own else left
        style = "-" if t in records[0].targets else "--"
        ax.plot(steps, [r.scores[t] for r in records], style, color=colour, marker=".", linewidth=1.2,
                label=f"{t}{' (target)' if t in records[0].targets else ''}{' (CIDEr, right axis)' if t in own else ''}")
    left.set_xlabel("optimiser step")
    left.set_ylabel("score (%)")
    if other is not None:
        other.set_ylabel("CIDEr (×100)")
    handles = [h for ax in (left, other) if ax is not None for h in ax.get_legend_handles_labels()[0]]
    (other or left).legend(handles, [h.get_label() for h in handles], fontsize=7)  # on the top axis, not under it
    left.set_title("each task (dashed: pre-trained)", fontsize=9)
    left.grid(alpha=0.3)
    right.plot(steps, [r.kept_mean for r in records], color="#1f77b4", marker=".", label="kept (% of step 0)")
    right.plot(steps, [r.target for r in records], color="#d62728", marker=".", label="target")
    best = next((r for r in reversed(records) if r.best), None)
    if best is not None:
        right.axvline(best.step, color="#555", linestyle=":", linewidth=1)
        right.plot([best.step], [best.target], "*", color="black", markersize=11,
                   label=f"best {best.criterion} (step {best.step})")
    right.set_xlabel("optimiser step")
    right.set_title("kept and target", fontsize=9)
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)


def tsne_grid(features: dict[str, dict[str, tuple]], path: str | Path, seed: int = 0) -> Path:
    """MDGD Fig. 5: per task, each model's mean-pooled visual features in 2-D (scikit-learn t-SNE),
    side by side, coloured by class."""
    import numpy as np
    from sklearn.manifold import TSNE

    plt = _plt()
    models = list(features)
    tasks = sorted({t for m in models for t in features[m]})
    fig, axes = plt.subplots(len(tasks), len(models), figsize=(3.6 * len(models), 3.4 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for j, model in enumerate(models):
            X, labels = features[model][task]
            ax = axes[i][j]
            classes = sorted(set(labels))
            colours = dict(zip(classes, palette(len(classes))))
            emb = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(X) - 1) / 3)), random_state=seed,
                       init="pca").fit_transform(np.asarray(X, dtype=np.float64))
            for c in classes:
                sel = [k for k, lab in enumerate(labels) if lab == c]
                ax.scatter(emb[sel, 0], emb[sel, 1], s=8, color=colours[c], label=c)
            ax.set_title(f"{model} — {task}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][-1].legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
