"""From a results table to the report's figures: the accuracy matrix with intervals, the change
against the pre-trained model with paired tests, H-score, backward transfer, per-epoch curves,
verdict breakdowns, effective rank and training curves. Rendering is report/render.py's job."""

from __future__ import annotations

from dataclasses import dataclass, field

from mfcli.errors import MfcliError
from mfcli.report.paired import SIGN_FLIP, paired_cider_change, paired_mean_change
from mfcli.forgetting import h_score, h_score_all_target, h_score_mdgd, mean, percent_scale
from mfcli.report.stats import backward_transfer, mcnemar_exact, pareto, wilson
from mfcli.report.table import PRETRAINED, TARGET, Results, Row

ALPHA = 0.05  # a change whose exact McNemar p is above this is marked "not significant"


@dataclass
class Cell:
    score: float
    n: int | None
    interval: tuple[float, float] | None = None  # 95 % Wilson, in percent
    delta: float | None = None  # against the pre-trained model, same task
    p_value: float | None = None  # on the records both were scored on: exact McNemar, else a sign-flip test
    delta_interval: tuple[float, float] | None = None  # 95 % paired bootstrap of the change (report/paired.py)
    test: str | None = None  # which test gave p_value
    metric: str = "accuracy"
    spread: float | None = None  # sample standard deviation over seeds (when the model has several)
    seeds: int | None = None
    seed_scores: list | None = None  # each seed's score, in seed order (JSON carries them)
    # the split the model's checkpoint was chosen on, where these very records are it (report marks it)
    selected_on: str | None = None


@dataclass
class FrontPoint:
    """One model on the trade-off front: what it kept against what it gained on the targets."""
    model: str
    method: str
    budget: float | None  # ρ of a budgeted merge; None for a method without one
    kept: float  # % of the base model's pre-trained scores (scale-free)
    gain: float  # avg target − the base model's avg target (points)
    pareto: bool = False


@dataclass
class HeadlinePoint:
    """One model on the report's headline figure: kept against target gain, with its uncertainty."""
    model: str
    kept: float  # % of the base model's pre-trained scores
    gain: float  # avg target − the base's (points)
    kept_err: tuple[float, float] | None = None  # ± sd over seeds
    gain_err: tuple[float, float] | None = None  # ± sd over seeds, or the one target's paired 95 % interval
    pareto: bool = False  # no other model (the base included) keeps and gains at least as much, and more of one
    base: bool = False


@dataclass
class Report:
    tasks: list  # pre-trained tasks first, then targets
    roles: dict
    models: list  # base first, then the vision-encoder baseline, then the rest in input order
    base: str | None
    cells: dict  # (model, task) → Cell
    summary: dict  # model → {"avg_pretrained", "avg_target", "h_score", "h_mdgd", "missing", "method", ...}
    curves: dict = field(default_factory=dict)  # run → task → [(epoch, score)]
    verdicts: dict = field(default_factory=dict)  # model → {verdict: share %}
    ranks: dict = field(default_factory=dict)  # (model, task) → erank (last layer)
    logs: dict = field(default_factory=dict)
    watches: dict = field(default_factory=dict)  # run → its forgetting watch records
    front: list = field(default_factory=list)  # the trade-off front: FrontPoint per model with a kept and a target
    bwt: dict = field(default_factory=dict)  # last model of a sequence → backward transfer
    # the builds of a built-in model the reported models descend from: [{"fingerprint", "models"}]; more
    # than one means their scores are not comparable number for number (issue 37)
    builds: list = field(default_factory=list)
    headline: list = field(default_factory=list)  # HeadlinePoint per model with a kept and a target


def _pick_base(res: Results, base: str | None) -> str | None:
    names = {r.model for r in res.rows}
    if base:
        if base not in names:
            raise MfcliError(f"--base '{base}' has no results in the inputs.", f"Known models: {', '.join(sorted(names))}.")
        return base
    pre = [m for m in names if res.models.get(m) and res.models[m].method == "pre-trained"
           and res.models[m].kind == "mllm"]
    if len(pre) == 1:
        return pre[0]
    paths = {res.models[m].path: m for m in names if m in res.models and res.models[m].path}
    roots = {paths[p] for m in names if m in res.models for p in res.models[m].parents[:1] if p in paths}
    return sorted(roots)[0] if len(roots) == 1 else None


def build(res: Results, base: str | None = None) -> Report:
    base = _pick_base(res, base)
    tasks = sorted({r.task for r in res.rows}, key=lambda t: (res.roles.get(t) != PRETRAINED, t))
    order = list(dict.fromkeys(r.model for r in res.rows))
    encoders = [m for m in order if res.models.get(m) and res.models[m].kind == "vision-encoder"]
    models = ([base] if base else []) + encoders + [m for m in order if m != base and m not in encoders]
    repeats: dict[tuple, list[Row]] = {}
    for r in res.rows:
        repeats.setdefault((r.model, r.task), []).append(r)
    rows = {k: _mean_row(v) for k, v in repeats.items()}
    cells = {}
    for (m, t), r in rows.items():
        cell = Cell(r.score, r.n, metric=r.metric,
                    selected_on=next((x.selected_on for x in repeats[(m, t)] if x.selected_on), None))
        if r.seed is not None:  # several seeds: mean ± sample sd, no per-record interval or paired test
            scores = [x.score for x in sorted(repeats[(m, t)], key=lambda x: x.seed)]
            cell.seeds, cell.spread, cell.seed_scores = len(scores), _sd(scores), scores
        elif r.correct is not None and r.n:
            lo, hi = wilson(r.correct, r.n)
            cell.interval = (100 * lo, 100 * hi)
        ref = rows.get((base, t)) if base and m != base else None
        if ref is not None and ref.metric == r.metric:
            cell.delta = r.score - ref.score
            if r.seed is not None and ref.seed is None:
                _over_seeds(cell, [x.score - ref.score for x in repeats[(m, t)]])
            else:
                _paired(cell, r, ref)
                if cell.test == SIGN_FLIP and res.cluster != "image":  # the unit the user named
                    cell.test = f"sign-flip by {res.cluster}"
        cells[(m, t)] = cell
    summary = {m: _summary(m, res, tasks, repeats, rows, base) for m in models}
    rep = Report(tasks, {t: res.roles[t] for t in tasks}, models, base, cells, summary, logs=res.logs, watches=res.watches)
    _curves(rep, res, rows)
    rep.front = _front(rep, res)
    rep.headline = _headline(rep)
    for m in models:
        counts: dict[str, int] = {}
        for t in tasks:
            r = rows.get((m, t))
            if r is None or r.metric != "accuracy":  # EMT's taxonomy is for answers right or wrong
                continue
            for v, k in (r.verdicts or {}).items():
                counts[v] = counts.get(v, 0) + k
        total = sum(counts.values())
        if total:
            rep.verdicts[m] = {v: 100.0 * k / total for v, k in counts.items()}
    for r in res.ranks:
        if r.layer == "last":
            rep.ranks[(r.model, r.task)] = float(r.erank)
    _backward_transfer(rep, res)
    rep.builds = _builds(models, res)
    return rep


def _builds(models: list, res: Results) -> list[dict]:
    """The builds of a built-in model the reported models descend from. One build is one run of a recipe
    in one environment (tiny and tiny-clip are built together): the same recipe, libraries, kernel
    level, BLAS mode and threads, and one weights digest per built-in model name."""
    import json

    groups: list[dict] = []
    for m in models:
        fp = res.models[m].built_in if m in res.models else {}
        if not fp.get("weights_sha256"):
            continue
        key = json.dumps([fp.get(k) for k in ("recipe_version", "recipe", "cpu_capability", "mkl_cbwr", "threads",
                                               "libraries")], sort_keys=True, default=str)
        name, digest = fp.get("model"), fp["weights_sha256"]
        group = next((g for g in groups if g["key"] == key and g["digests"].get(name, digest) == digest), None)
        if group is None:
            group = {"key": key, "fingerprint": fp, "digests": {}, "models": []}
            groups.append(group)
        group["digests"][name] = digest
        group["models"].append(m)
    return [{k: v for k, v in g.items() if k != "key"} for g in groups]


def _over_seeds(cell: Cell, diffs: list[float]) -> None:
    """A model with several seeds against a single base: the seeds' spread is the uncertainty, so the
    change gets Student's t interval of the per-seed changes and a one-sample t-test against 0."""
    from scipy import stats

    if len(diffs) < 2:
        return
    sd = _sd(diffs)
    if sd == 0:  # every seed changed by the same amount: no spread to test against
        cell.delta_interval, cell.test = (diffs[0], diffs[0]), "all seeds equal"
        return
    half = stats.t.ppf(0.975, len(diffs) - 1) * sd / len(diffs) ** 0.5
    cell.delta_interval = (mean(diffs) - half, mean(diffs) + half)
    cell.p_value, cell.test = float(stats.ttest_1samp(diffs, 0.0).pvalue), f"t over {len(diffs)} seeds"


def _paired(cell: Cell, r: Row, ref: Row) -> None:
    """The change's interval and test, on the records both models were scored on (one seed each)."""
    if not (r.records and ref.records):
        return
    shared = sorted(r.records.keys() & ref.records.keys())
    if not shared:
        return
    images = [ref.records[i].image for i in shared]  # the cluster of each record (its image by default)
    if "cider" in r.metric.lower():
        change = paired_cider_change([r.records[i].output for i in shared], [ref.records[i].output for i in shared],
                                     [ref.records[i].references for i in shared], images)
    else:
        change = paired_mean_change([r.records[i].score for i in shared], [ref.records[i].score for i in shared],
                                    images)
    cell.delta_interval, cell.p_value, cell.test = (change.low, change.high), change.p_value, change.test
    # right/wrong records, one per cluster: McNemar's exact test, as EMT-style reports use. Where a cluster
    # holds several records (five questions about one image) they are not independent, and the
    # record-level McNemar would overstate the evidence: the cluster-level sign-flip test stands
    if r.outcomes and ref.outcomes and len(set(images)) == len(shared):
        b = sum(1 for i in shared if ref.outcomes[i] and not r.outcomes[i])
        c = sum(1 for i in shared if not ref.outcomes[i] and r.outcomes[i])
        cell.p_value, cell.test = mcnemar_exact(b, c), "exact McNemar"


def _summary(m: str, res: Results, tasks: list, repeats: dict, rows: dict, base: str | None) -> dict:
    """A model's headline figures, each over the same task set for every row: all pre-trained tasks, all
    targets. A row that lacks one of them gets no average (its `missing` says which) rather than an
    average over fewer tasks, which no other row could be compared with. With several seeds each
    figure is the mean of each seed's own (H is not linear in the scores)."""
    info = res.models.get(m)
    pre_tasks = [t for t in tasks if res.roles[t] == PRETRAINED]
    tgt_tasks = [t for t in tasks if res.roles[t] == TARGET]
    missing = [t for t in tasks if (m, t) not in rows]
    seeds = sorted({r.seed for t in tasks for r in repeats.get((m, t), []) if r.seed is not None}) or [None]
    tgt_percent = all(percent_scale(rows[k].metric) for k in rows if k[1] in tgt_tasks)
    # (avg pre, avg target, H Model Tailor, kept, H MDGD, H of kept, H MDGD Table 2) of each seed's own scores
    per_seed = []
    for sd in seeds:
        got = {t: r.score for t in tasks for r in repeats.get((m, t), []) if r.seed == sd}
        pre = [got[t] for t in pre_tasks] if all(t in got for t in pre_tasks) else []
        tgt = [got[t] for t in tgt_tasks] if all(t in got for t in tgt_tasks) else []
        both = bool(pre and tgt)
        kept = _kept(m, got, rows, base, res.roles) if pre else None
        per_seed.append((mean(pre) if pre else None, mean(tgt) if tgt else None,
                         h_score(pre, tgt) if both else None, kept,
                         h_score_mdgd(pre, tgt) if both else None,
                         h_score([kept], tgt) if kept is not None and tgt and tgt_percent else None,
                         h_score_all_target(pre, tgt) if both else None))
    col = lambda i: [x[i] for x in per_seed if x[i] is not None]  # noqa: E731
    several = len(seeds) > 1
    avg = lambda i: mean(col(i)) if col(i) else None  # noqa: E731
    spread = lambda i: _sd(col(i)) if several and col(i) else None  # noqa: E731
    return {"avg_pretrained": avg(0), "avg_target": avg(1), "target_spread": spread(1),
            "h_score": avg(2), "h_spread": spread(2), "kept_pretrained": avg(3), "kept_spread": spread(3),
            "h_mdgd": avg(4), "h_mdgd_spread": spread(4), "h_kept": avg(5), "h_kept_spread": spread(5),
            "h_all_target": avg(6), "h_all_target_spread": spread(6),
            "missing": missing,
            "seeds": len(seeds) if several else None,
            "method": info.method if info else None, "epoch": info.epoch if info else None,
            "kind": info.kind if info else "mllm", "about": (info.about if info else "") or None,
            "targets": list(info.targets) if info else [], "budget": info.budget if info else None}


def _kept(model: str, scores: dict[str, float], rows: dict[tuple, Row], base: str | None,
          roles: dict) -> float | None:
    """How much of the base model's pre-trained skill a model keeps: the mean over pre-trained tasks of
    score / base score (%). Scale-free, so a CIDEr task (to 1000) weighs as much as an accuracy; a
    task the base scores 0 on (or on another metric) is left out."""
    if base is None:
        return None
    ratios = [100.0 * v / rows[(base, t)].score for t, v in scores.items()
              if roles[t] == PRETRAINED and (base, t) in rows and rows[(base, t)].score > 0
              and rows[(base, t)].metric == rows[(model, t)].metric]
    return mean(ratios) if ratios else None


def _sd(xs: list[float]) -> float:
    """Sample standard deviation (n − 1); 0 for a single value."""
    if len(xs) < 2:
        return 0.0
    mu = sum(xs) / len(xs)
    return (sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def _mean_row(rows: list[Row]) -> Row:
    """One row for a (model, task): itself, or the mean over its seeds (verdict counts summed)."""
    from dataclasses import replace

    if len(rows) == 1:  # one seed is one run: its own intervals and paired tests apply
        return replace(rows[0], seed=None)
    verdicts: dict[str, int] = {}
    for r in rows:
        for v, k in (r.verdicts or {}).items():
            verdicts[v] = verdicts.get(v, 0) + k
    return replace(rows[0], score=mean([r.score for r in rows]), correct=None, outcomes=None,
                   verdicts=verdicts or None, seed=rows[0].seed if rows[0].seed is not None else -1)


def _front(rep: Report, res: Results) -> list[FrontPoint]:
    """Every merged or fine-tuned model's (kept, target gain), where a study sweeps budgets (some model
    has one); the Pareto-optimal points marked (Model Tailor's trade-off, drawn as a front)."""
    if not rep.base or not any(res.models.get(m) and res.models[m].budget is not None for m in rep.models):
        return []
    base_target = rep.summary[rep.base].get("avg_target")
    pts = []
    for m in rep.models:
        s, info = rep.summary[m], res.models.get(m)
        if m == rep.base or s["kind"] == "vision-encoder" or s["kept_pretrained"] is None or s["avg_target"] is None \
                or base_target is None:
            continue
        pts.append(FrontPoint(m, s["method"] or m, info.budget if info else None, s["kept_pretrained"],
                              s["avg_target"] - base_target))
    best = pareto({p.model: (p.kept, p.gain) for p in pts})
    for p in pts:
        p.pareto = p.model in best
    return sorted(pts, key=lambda p: (p.method, p.budget if p.budget is not None else -1.0))


def _headline(rep: Report) -> list[HeadlinePoint]:
    """Every model with a kept and a target score (vision encoders aside), and the base at (100, 0):
    what each kept against what it gained — the report's first figure. Error bars: the seeds' sd where a
    model has several; else, with one target task, the paired 95 % interval of its change."""
    if not rep.base or rep.summary[rep.base].get("avg_target") is None:
        return []
    base_target = rep.summary[rep.base]["avg_target"]
    targets = [t for t in rep.tasks if rep.roles[t] == TARGET]
    pts = [HeadlinePoint(rep.base, 100.0, 0.0, base=True)]
    for m in rep.models:
        s = rep.summary[m]
        if m == rep.base or s["kind"] == "vision-encoder" or s["kept_pretrained"] is None or s["avg_target"] is None:
            continue
        gain = s["avg_target"] - base_target
        kept_err = gain_err = None
        if s.get("seeds"):
            ks, ts = s.get("kept_spread") or 0.0, s.get("target_spread") or 0.0
            kept_err, gain_err = (s["kept_pretrained"] - ks, s["kept_pretrained"] + ks), (gain - ts, gain + ts)
        elif len(targets) == 1 and (c := rep.cells.get((m, targets[0]))) is not None and c.delta_interval:
            gain_err = tuple(c.delta_interval)
        pts.append(HeadlinePoint(m, s["kept_pretrained"], gain, kept_err, gain_err))
    if len(pts) < 2:
        return []
    best = pareto({p.model: (p.kept, p.gain) for p in pts})
    for p in pts:
        p.pareto = p.model in best
    return pts


def _curves(rep: Report, res: Results, rows: dict[tuple, Row]) -> None:
    """Per-epoch checkpoints of one run (EMT Figs. 6-7); epoch 0 is the pre-trained model."""
    from pathlib import Path

    for m in rep.models:
        info = res.models.get(m)
        if not info or info.epoch is None:
            continue
        run = Path(info.path or m).parent.name or m
        for t in rep.tasks:
            if (m, t) in rows:
                pts = rep.curves.setdefault(run, {}).setdefault(t, [])
                pts.append((float(info.epoch), rows[(m, t)].score))
                if rep.base and (rep.base, t) in rows and not any(e == 0 for e, _ in pts):
                    pts.append((0.0, rows[(rep.base, t)].score))


def _backward_transfer(rep: Report, res: Results) -> None:
    """A sequence: each fine-tune's parent is the previous fine-tune (on another target task)."""
    by_path = {info.path: m for m, info in res.models.items() if info.path}
    for m in rep.models:
        chain = [m]
        while True:
            info = res.models.get(chain[0])
            parent = by_path.get(info.parents[0]) if info and info.parents else None
            if parent is None or res.models[parent].method in (None, "pre-trained") or parent in chain:
                break
            chain.insert(0, parent)
        if len(chain) < 2:
            continue
        tasks = [res.models[c].targets[0] for c in chain if res.models[c].targets]
        if len(tasks) != len(chain):
            continue
        acc = {(k + 1, t): rep.cells[(c, t)].score for k, c in enumerate(chain) for t in tasks if (c, t) in rep.cells}
        value = backward_transfer(acc, tasks)
        if value is not None:
            rep.bwt[m] = {"sequence": chain, "tasks": tasks, "bwt": value}
