"""Report figures with matplotlib (Agg: no display needed), in a colour-blind-safe palette.

Every report figure is FIG_WIDTH inches wide at DPI, so the HTML shows them all at one CSS width
(FIGURE_CSS_PX) with one type size; no text is set below MIN_FONT points, and each PNG records the
smallest size it used (`mfcli:min-font-pt`) for the test that holds figures to it. Heights follow the
content (models, tasks), never the width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfcli.forgetting import percent_scale

# Okabe & Ito (2008), safe for the common colour-vision deficiencies; tab20 beyond eight series
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FIG_WIDTH = 7.6  # inches: every report figure
DPI = 150  # 1140 px wide: sharp when shown at FIGURE_CSS_PX on a 1.5x screen
FIGURE_CSS_PX = 760  # the width the HTML report shows each figure at (10 px per point of FIG_WIDTH)
MIN_FONT = 8.0  # points; at FIGURE_CSS_PX that is 11 CSS px, readable at page width
FONT_META = "mfcli:min-font-pt"
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": MIN_FONT,
         "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT, "figure.titlesize": 10}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def _figure(plt, height: float, ncols: int = 1, nrows: int = 1, **kw):
    """A report figure: FIG_WIDTH wide, `height` inches tall, at the report's DPI."""
    return plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, height), dpi=DPI, squeeze=False, **kw)


def smallest_font(fig) -> float:
    """The smallest type size (points) of any visible, non-empty text the figure draws."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) if sizes else MIN_FONT


def _save(plt, fig, path: Path, layout: bool = True) -> Path:
    """Every figure's last steps: lay out (unless its labels were placed on the final layout), write at
    the report's size and resolution with its smallest type size recorded, free it."""
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={FONT_META: f"{smallest_font(fig):g}"})
    plt.close(fig)
    return path


def palette(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _legend_below(fig, handles: list, labels: list, columns: int = 4) -> None:
    """One legend under the figure's panels, never over a line or bar; the panels laid out above it."""
    rows = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), columns), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, (0.12 + 0.2 * rows) / fig.get_size_inches()[1], 1, 1))


def _wrap(n: int, most: int = 3) -> tuple[int, int]:
    """(rows, columns) of panels for n small multiples, at most `most` to a row."""
    cols = min(n, most)
    return -(-n // cols), cols


def epoch_curves(curves: dict[str, dict[str, list[tuple[float, float]]]], path: Path, ylabel: str) -> Path:
    """curves[run][task] = [(epoch, score)]: one panel per run, one line per task (EMT Figs. 6-7)."""
    plt = _plt()
    runs = sorted(curves)
    tasks = sorted({t for r in runs for t in curves[r]})
    colours = dict(zip(tasks, palette(len(tasks))))
    rows, cols = _wrap(len(runs))
    fig, axes = _figure(plt, 0.9 + 2.5 * rows, cols, rows, sharey=True)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    for ax, run in zip(axes.flat, runs):
        for task in tasks:
            pts = sorted(curves[run].get(task, []))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colours[task], label=task)
        ax.set_title(run)
        ax.set_xlabel("epoch (0 = before)")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel(ylabel)
    _legend_below(fig, *axes.flat[0].get_legend_handles_labels())
    return _save(plt, fig, path, layout=False)


def grouped_bars(values: dict[str, dict[str, float]], path: Path, xlabel: str, title: str) -> Path:
    """values[model][series] as horizontal grouped bars (models down the side, so a long name stays
    readable at any count); the legend under the axes."""
    plt = _plt()
    models = list(values)
    series = sorted({s for m in models for s in values[m]})
    colours = palette(len(series))
    height = 0.8 / max(1, len(series))
    fig, axes = _figure(plt, 1.4 + 0.16 * len(models) * max(2, len(series)) + 0.2 * ((len(series) - 1) // 4))
    ax = axes[0][0]
    for j, s in enumerate(series):
        ys = [i + (j - (len(series) - 1) / 2) * height for i in range(len(models))]
        ax.barh(ys, [values[m].get(s, 0.0) for m in models], height, label=s, color=colours[j])
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(models)
    ax.invert_yaxis()  # the first model on top, as in the tables
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _legend_below(fig, *ax.get_legend_handles_labels())
    return _save(plt, fig, path, layout=False)


def shares(values: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """values[model][kind] = % of records: one 100 % bar per model, each kind a segment."""
    plt = _plt()
    models = list(values)
    kinds = sorted({k for m in models for k in values[m]})
    fig, axes = _figure(plt, 1.3 + 0.24 * len(models) + 0.2 * ((len(kinds) - 1) // 4))
    ax = axes[0][0]
    left = [0.0] * len(models)
    for colour, kind in zip(palette(len(kinds)), kinds):
        widths = [values[m].get(kind, 0.0) for m in models]
        ax.barh(range(len(models)), widths, left=left, color=colour, label=kind)
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(models)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of records")
    ax.set_title(title)
    _legend_below(fig, *ax.get_legend_handles_labels())
    return _save(plt, fig, path, layout=False)


def task_intervals(values: dict[str, list[tuple]], path: Path, title: str) -> Path:
    """values[task] = [(model, score, low, high)]: per task a panel, each model a dot with its 95 %
    interval (or ± sd over seeds), so a difference can be read against its uncertainty. Each panel has
    its own scale (a CIDEr task beside accuracies)."""
    plt = _plt()
    tasks = list(values)
    models = list(dict.fromkeys(m for t in tasks for m, *_ in values[t]))
    rows, cols = _wrap(len(tasks))
    fig, axes = _figure(plt, 0.4 + rows * (0.7 + 0.2 * len(models)), cols, rows, sharey=True)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    colours = dict(zip(models, palette(len(models))))
    for ax, task in zip(axes.flat, tasks):
        for model, score, low, high in values[task]:
            y = models.index(model)
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color=colours[model], linewidth=1.6)
            ax.plot([score], [y], "o", color=colours[model], markersize=4)
        ax.set_title(task)
        ax.grid(axis="x", alpha=0.3)
    for row in axes:
        row[0].set_yticks(range(len(models)))
        row[0].set_yticklabels(models)
    axes[0][0].invert_yaxis()
    fig.suptitle(title)
    return _save(plt, fig, path)


@dataclass(frozen=True)
class Point:
    """One model on the learned-against-kept figure. Errors are (low, high) in the axis' units."""
    name: str
    kept: float
    gain: float
    kept_err: tuple[float, float] | None = None
    gain_err: tuple[float, float] | None = None
    pareto: bool = False
    base: bool = False


# where a label may go around its point, in the order tried: right, above, left, below, then the
# diagonals, at growing distances (points); beyond the first ring a leader line ties it to its point
_ANGLES = (0, 90, 180, 270, 45, 135, 315, 225, 20, 160, 200, 340, 70, 110, 250, 290)
_RADII = (5, 12, 20, 30, 42, 56, 72, 90, 110, 135, 160)


def place_labels(fig, ax, items: list[tuple[float, float, str, object]], fontsize: float = MIN_FONT,
                 bars: list[tuple[float, float, float, float]] = ()) -> list:
    """Label each (x, y, text, colour) beside its point where it overlaps no other label, no marker, no
    error bar (`bars`: (x0, y0, x1, y1) in data units) and no legend, inside the axes: the first free
    place of _ANGLES × _RADII (bounding boxes from the renderer). A label with no free place left is
    numbered, its name listed under the axes. Call on the final layout: moving the axes afterwards would
    move points under their labels. Returns the label artists."""
    import math

    renderer = fig.canvas.get_renderer()
    to_px = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    points = [ax.transData.transform((x, y)) for x, y, _, _ in items]
    marker = 4.0 * to_px
    taken = [(px - marker, py - marker, px + marker, py + marker) for px, py in points]
    for x0, y0, x1, y1 in bars:
        (a, b), (c, d) = ax.transData.transform((x0, y0)), ax.transData.transform((x1, y1))
        taken.append((min(a, c) - 2 * to_px, min(b, d) - 2 * to_px, max(a, c) + 2 * to_px, max(b, d) + 2 * to_px))
    legend = ax.get_legend()
    if legend is not None:
        box = legend.get_window_extent(renderer)
        taken.append((box.x0, box.y0, box.x1, box.y1))
    placed, listed = [], []

    def clear(box) -> bool:
        x0, y0, x1, y1 = box.x0 - 1, box.y0 - 1, box.x1 + 1, box.y1 + 1
        inside = x0 >= frame.x0 and x1 <= frame.x1 and y0 >= frame.y0 and y1 <= frame.y1
        return inside and not any(x0 < b[2] and x1 > b[0] and y0 < b[3] and y1 > b[1] for b in taken)

    for (x, y, text, colour), (px, py) in zip(items, points):
        label = None
        for radius in _RADII:
            for angle in _ANGLES:
                dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                far = radius > _RADII[1]
                label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                    fontsize=fontsize, color=colour,
                                    arrowprops=dict(arrowstyle="-", color="#777", linewidth=0.6, shrinkA=0,
                                                    shrinkB=3) if far else None)
                box = text_box(label, renderer)
                if clear(box):
                    taken.append((box.x0, box.y0, box.x1, box.y1))
                    placed.append(label)
                    break
                label.remove()
                label = None
            if label is not None:
                break
        if label is None:  # crowded out everywhere: a number beside the point, the name under the axes
            listed.append(text)
            number = ax.annotate(str(len(listed)), (x, y), xytext=(3, 3), textcoords="offset points",
                                 fontsize=fontsize, color=colour)
            placed.append(number)
    if listed:  # the figure's bottom-left corner, beside the centred axis label
        fig.text(0.005, 0.005, "  ".join(f"{i}: {t}" for i, t in enumerate(listed, 1)), fontsize=fontsize,
                 va="bottom", ha="left")
    return placed


def text_box(label, renderer):
    """A label's own text box in display pixels: an annotation's window extent would take in its
    leader line too, which always reaches its own point."""
    from matplotlib.text import Text

    if hasattr(label, "update_positions"):  # an annotation: its offset resolved on this renderer first
        label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def tradeoff_figure(points: list[Point], title: str, gain_label: str = "target gain over the base (points)"):
    """The report's headline: for every model, what it kept of the base model's pre-trained scores (x)
    against what it gained on the targets (y), error bars from its seeds or its intervals, the Pareto
    front drawn through the models no other beats on both, and each point named without overlap.
    Returns the figure (labels placed on its final layout)."""
    plt = _plt()
    fig, axes = _figure(plt, 4.6)
    ax = axes[0][0]
    colours = dict(zip([p.name for p in points if not p.base], palette(sum(not p.base for p in points))))
    front = sorted((p for p in points if p.pareto), key=lambda p: p.kept)
    if len(front) > 1:
        ax.plot([p.kept for p in front], [p.gain for p in front], "--", color="#888", linewidth=1.0, zorder=1,
                label="Pareto front")
    for p in points:
        colour = "#555" if p.base else colours[p.name]
        xerr = [[p.kept - p.kept_err[0]], [p.kept_err[1] - p.kept]] if p.kept_err else None
        yerr = [[p.gain - p.gain_err[0]], [p.gain_err[1] - p.gain]] if p.gain_err else None
        ax.errorbar([p.kept], [p.gain], xerr=xerr, yerr=yerr, fmt="D" if p.base else "o", color=colour, capsize=2,
                    markersize=5, elinewidth=0.9, zorder=3, markeredgecolor="black" if p.pareto else colour)
    xs = [v for p in points for v in ((p.kept,) + tuple(p.kept_err or ()))]
    ys = [v for p in points for v in ((p.gain,) + tuple(p.gain_err or ()))]
    for lo, hi, setter in ((min(xs), max(xs), ax.set_xlim), (min(ys), max(ys), ax.set_ylim)):
        pad = max(hi - lo, 1.0) * 0.22  # room for the labels inside the axes
        setter(lo - pad, hi + pad)
    ax.axhline(0, color="#bbb", linewidth=0.8, zorder=0)
    ax.set_xlabel("kept: % of the base model's pre-trained scores")
    ax.set_ylabel(gain_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(front) > 1:
        ax.legend(loc="lower left")
    fig.tight_layout()
    bars = [(lo, p.gain, hi, p.gain) for p in points if p.kept_err for lo, hi in [p.kept_err]] + \
           [(p.kept, lo, p.kept, hi) for p in points if p.gain_err for lo, hi in [p.gain_err]]
    # the names in dark type (a pale palette colour is unreadable as text); the marker carries the colour
    place_labels(fig, ax, [(p.kept, p.gain, p.name, "#222") for p in
                           sorted(points, key=lambda p: (not p.pareto, p.base))], bars=bars)
    return fig


def tradeoff(points: list[Point], path: Path, title: str, **labels) -> Path:
    plt = _plt()
    return _save(plt, tradeoff_figure(points, title, **labels), path, layout=False)


def lines(series: dict[str, list[tuple[float, float]]], path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    plt = _plt()
    fig, axes = _figure(plt, 3.4)
    ax = axes[0][0]
    for colour, (name, pts) in zip(palette(len(series)), sorted(series.items())):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def front(points, path: Path) -> Path:
    """The trade-off front: target gain against kept, one line per method through its budgets (each
    point labelled with its ρ, placed clear of the others), the Pareto-optimal points ringed."""
    plt = _plt()
    fig, axes = _figure(plt, 4.6)
    ax = axes[0][0]
    methods = list(dict.fromkeys(p.method for p in points))
    colours = dict(zip(methods, palette(len(methods))))
    for method in methods:
        pts = [p for p in points if p.method == method]
        ax.plot([p.kept for p in pts], [p.gain for p in pts], "-o", color=colours[method], label=method, markersize=4,
                linewidth=1.2)
    best = [p for p in points if p.pareto]
    ax.scatter([p.kept for p in best], [p.gain for p in best], s=110, facecolors="none", edgecolors="black",
               linewidths=1.2, label="Pareto-optimal", zorder=3)
    ax.set_xlabel("kept (% of base, mean over pre-trained tasks)")
    ax.set_ylabel("target gain (points over base)")
    ax.set_title("Each method over its budgets ρ (up and right is better)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    ax.margins(0.12)
    fig.tight_layout()
    place_labels(fig, ax, [(p.kept, p.gain, f"{p.budget:g}", "#222") for p in points
                           if p.budget is not None])
    return _save(plt, fig, path, layout=False)


def watch(records, path: Path, title: str) -> Path:
    """A forgetting watch: each task's score against steps (left; a caption task's CIDEr on its own
    axis), and kept and target against steps (right), the best evaluation marked."""
    plt = _plt()

    fig, axes = _figure(plt, 4.4, 2)
    left, right = axes[0]
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
    left.set_title("each task (dashed: pre-trained)")
    left.grid(alpha=0.3)
    right.plot(steps, [r.kept_mean for r in records], color="#1f77b4", marker=".", label="kept (% of step 0)")
    right.plot(steps, [r.target for r in records], color="#d62728", marker=".", label="target")
    best = next((r for r in reversed(records) if r.best), None)
    if best is not None:
        right.axvline(best.step, color="#555", linestyle=":", linewidth=1)
        right.plot([best.step], [best.target], "*", color="black", markersize=11,
                   label=f"best {best.criterion} (step {best.step})")
    right.set_xlabel("optimiser step")
    right.set_title("kept and target")
    right.grid(alpha=0.3)
    fig.suptitle(title)
    handles = [h for ax in (left, other, right) if ax is not None for h in ax.get_legend_handles_labels()[0]]
    _legend_below(fig, handles, [h.get_label() for h in handles], columns=3)
    return _save(plt, fig, path, layout=False)


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
