"""The figures of one evaluation and the choice of the best (pure: tests drive them with made-up
scores): `make_record` turns a step's scores into its `mfcli.watch/1` record against step 0's,
`Tracker` decides best/ and stopping, `live_line` is the line printed per evaluation."""

from __future__ import annotations

from dataclasses import replace

from mfcli.forgetting import h_score, h_score_mdgd, mean, percent_scale, watch_mixed_scale
from mfcli.io.records import WatchRecord
from mfcli.train.watch.options import CRITERIA, WatchOptions


def make_record(step: int, epoch: float, scores: dict, metrics: dict, n: dict, targets: tuple[str, ...],
                base: dict, criterion: str = "h", seconds: float = 0.0) -> WatchRecord:
    """The watch record of `scores` against the step-0 scores `base` (the same tasks)."""
    pre = [t for t in scores if t not in targets]
    tgt = [t for t in scores if t in targets]
    kept = {t: 100.0 * scores[t] / base[t] for t in pre if base.get(t)}
    kept_mean = mean(list(kept.values())) if kept else None
    target = mean([scores[t] for t in tgt]) if tgt else None
    gain = target - mean([base[t] for t in tgt]) if tgt else None
    both = bool(pre and tgt)
    percent_target = all(percent_scale(metrics[t]) for t in tgt)
    return WatchRecord(
        step=step, epoch=round(epoch, 4), scores=dict(scores), metrics=dict(metrics), n=dict(n), targets=tuple(targets),
        kept=kept, kept_mean=kept_mean, target=target, target_gain=gain,
        h=h_score([scores[t] for t in pre], [scores[t] for t in tgt]) if both else None,
        h_mdgd=h_score_mdgd([scores[t] for t in pre], [scores[t] for t in tgt]) if both else None,
        h_kept=h_score([kept_mean], [target]) if kept_mean is not None and tgt and percent_target else None,
        criterion=criterion, seconds=round(seconds, 3), mixed_scale=watch_mixed_scale(metrics, targets))


class Tracker:
    """The best evaluation so far and how long since it improved; decides best/ and stopping."""

    def __init__(self, opts: WatchOptions):
        self.opts = opts
        self.key = CRITERIA[opts.best]
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.since_best = 0

    def state(self) -> tuple:
        return self.best_value, self.best_step, self.since_best

    def restore(self, state: tuple) -> None:
        self.best_value, self.best_step, self.since_best = state

    def qualifies(self, r: WatchRecord) -> float | None:
        v = self.key(r)
        if v is None or (self.opts.kept_min is not None and (r.kept_mean is None or r.kept_mean < self.opts.kept_min)):
            return None
        return v

    def update(self, r: WatchRecord) -> WatchRecord:
        """`r` with its criterion value, whether it is the new best, and why to stop (if so)."""
        v = self.qualifies(r)
        better = v is not None and (self.best_value is None or v > self.best_value)
        if better:
            self.best_value, self.best_step, self.since_best = v, r.step, 0
        elif r.step > 0:
            self.since_best += 1
        stop = None
        if r.step > 0 and self.opts.patience is not None and self.since_best >= self.opts.patience:
            stop = (f"{self.opts.best} has not improved for {self.since_best} evaluations "
                    f"(best {self.best_value:.2f} at step {self.best_step})" if self.best_value is not None else
                    f"no evaluation qualified in {self.since_best} evaluations")
        elif r.step > 0 and self.opts.floor is not None and r.kept_mean is not None and r.kept_mean < self.opts.floor:
            stop = f"kept {r.kept_mean:.1f} % fell below the floor of {self.opts.floor:g} %"
        return replace(r, criterion=self.opts.best, value=v, best=better, best_step=self.best_step, stop=stop)


def live_line(r: WatchRecord) -> str:
    f = lambda x, unit="": "—" if x is None else f"{x:.1f}{unit}"  # noqa: E731
    gain = "" if r.target_gain is None else f" ({r.target_gain:+.1f})"
    best = " *best*" if r.best else (f"; best at step {r.best_step}" if r.best_step is not None else "")
    line = (f"watch step {r.step} (epoch {r.epoch:.2f}): target {f(r.target)}{gain}, kept {f(r.kept_mean, ' %')}, "
            f"H {f(r.h)}{' †' if 'h' in r.mixed_scale else ''}{best} [{r.seconds:.1f} s]")
    return line + (f"\nwatch: stopping — {r.stop}" if r.stop else "")
