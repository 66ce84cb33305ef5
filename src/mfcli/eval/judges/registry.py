"""The judge registry, a leaf the judge modules import: each judge module registers a builder and the
options it reads (`register`), `make_judge` builds one by name, `JudgeOptions` carries every registered
option's value. `mfcli judge` and `mfcli emt --judge` offer the registered options as flags (cli/judge.py),
so a judge with an option of its own is one module and its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

from mfcli.errors import MfcliError, UsageError, did_you_mean
from mfcli.eval.judges.base import VERDICTS
from mfcli.kinds import CLASSIFICATION
from mfcli.params import Param


@runtime_checkable
class JudgeContract(Protocol):
    """What the host (eval/judging.py) uses of a built judge, and nothing else: its name (written into
    each judged record), the record kind it scores and the metric it reports, and `judge`, which gives
    one Judgement per item (None: undecided, for a cascade's stage that is not decisive)."""

    name: str
    kind: str
    metric: str

    def judge(self, items: list) -> list: ...


@dataclass(frozen=True)
class Judge:
    name: str
    build: Callable[[Any, bool], Any]  # (JudgeOptions, decisive) -> an object with .judge(items) -> [Judgement]
    options: tuple[Param, ...]  # the options it declares (an option another judge declared is read, not redeclared)
    summary: str
    kind: str = CLASSIFICATION  # the record kind it scores: label judges classification, metric judges their own
    verdicts: tuple[str, ...] = VERDICTS  # the verdicts it gives, in the order a summary counts them


JUDGES: dict[str, Judge] = {}


def register(name: str, *, summary: str, options: tuple[Param, ...] = (), kind: str = CLASSIFICATION,
             verdicts: tuple[str, ...] = VERDICTS):
    """Decorate a builder `(JudgeOptions, decisive) -> judge` as the judge `name`; a second judge of one
    name is refused (what it builds is checked against JudgeContract when it is built)."""
    def wrap(build: Callable[[Any, bool], Any]) -> Callable[[Any, bool], Any]:
        if name in JUDGES and JUDGES[name] is not None:
            raise ValueError(f"judge '{name}' is registered twice; give the new one another name")
        if not callable(build):
            raise TypeError(f"judge '{name}': register a builder (JudgeOptions, decisive) -> judge")
        JUDGES[name] = Judge(name, build, tuple(options), summary, kind, tuple(verdicts))
        return build

    return wrap


def _checked(entry: Judge, judge):
    """A built judge, held to JudgeContract and to the kind it registered: one line where it is not."""
    if not isinstance(judge, JudgeContract):
        lacks = [a for a in ("name", "kind", "metric", "judge") if not hasattr(judge, a)]
        raise TypeError(f"judge '{entry.name}' builds a {type(judge).__name__}, which lacks {', '.join(lacks)} "
                        "(eval/judges/registry.py, JudgeContract)")
    if judge.kind != entry.kind:
        raise TypeError(f"judge '{entry.name}' registered kind '{entry.kind}' but builds one of kind '{judge.kind}'")
    return judge


def judge_params() -> list[Param]:
    """Every registered judge's options, in registration order, each once."""
    seen: dict[str, Param] = {}
    for j in JUDGES.values():
        for p in j.options:
            if p.name in seen:
                raise ValueError(f"judge option '{p.name}' is declared twice")  # pragma: no cover
            seen[p.name] = p
    return list(seen.values())


class JudgeOptions(SimpleNamespace):
    """The judges' option values by name, each defaulting to what its judge declares; `device` is where
    the embedding judges run."""

    def __init__(self, device: str = "cpu", **given):
        params = {p.name: p.default for p in judge_params()}
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise TypeError(f"no judge declares the option(s) {', '.join(unknown)}")
        super().__init__(**{**params, **given}, device=device)


def metric_judges() -> list[str]:
    """The judges that are a record kind's metric (vqa, caption, choice), by name."""
    return [n for n, j in JUDGES.items() if j.kind != CLASSIFICATION]


def verdicts_of(kind: str) -> tuple[str, ...]:
    """The verdicts a summary counts for a record kind: its metric judge's (the label judges' for
    classification)."""
    return next((j.verdicts for j in JUDGES.values() if j.kind == kind), VERDICTS)


def all_verdicts() -> tuple[str, ...]:
    """Every verdict any registered judge gives: EMT's label verdicts first, then the metrics' own."""
    return tuple(dict.fromkeys(v for j in (VERDICTS, *(j.verdicts for j in JUDGES.values())) for v in j))


def label_judges() -> list[str]:
    return [n for n, j in JUDGES.items() if j.kind == CLASSIFICATION]


def make_judge(name: str, opts: JudgeOptions | None = None, *, decisive: bool = True):
    """A label judge scores classification records and leaves the other kinds to their metrics; a metric
    judge (vqa, caption, choice) scores every record as its kind. `decisive=False`: a cascade's stage,
    which passes on what it cannot decide."""
    if name not in JUDGES:
        raise UsageError(f"unknown judge '{name}'.", did_you_mean(name, JUDGES))
    return _checked(JUDGES[name], JUDGES[name].build(opts if opts is not None else JudgeOptions(), decisive))


def metric_judge(kind: str):
    """The judge of a non-classification record kind: its metric."""
    for j in JUDGES.values():
        if j.kind == kind and kind != CLASSIFICATION:
            return _checked(j, j.build(JudgeOptions(), True))
    raise MfcliError(f"no metric judge for kind '{kind}'.", f"Use {', '.join(metric_judges())}.")  # pragma: no cover
