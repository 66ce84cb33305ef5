"""Judges score free-text answers: against a label set (exact, embed, clip, openai, cascade) or, for the
other record kinds, on that kind's metric (vqa, caption, choice). One module each; this is their registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfcli.errors import MfcliError, did_you_mean


@dataclass(frozen=True)
class JudgeOptions:
    synonyms: str | None = None  # JSON {synonym: label} for exact (and the exact stage of cascade)
    margin: float = 0.02  # embed/clip: abstain when the top-2 label similarities are closer than this
    clip_model: str = "tiny-clip"  # clip judge's text encoder: dir, hub id, or tiny-clip
    model: str = "gpt-3.5-turbo"  # openai judge model (EMT used gpt-3.5-turbo)
    base_url: str | None = None  # any OpenAI-compatible server; default OPENAI_BASE_URL or OpenAI
    concurrency: int = 16  # openai requests in flight
    cache: str | None = None  # openai reply cache file; default in the mfcli cache dir
    openai: bool = False  # cascade: send what exact and embed cannot decide to the openai judge
    device: str = "cpu"


def _exact(o: JudgeOptions, decisive=True):
    from mfcli.eval.judges.exact import ExactJudge, load_synonyms

    return ExactJudge(load_synonyms(o.synonyms), decisive=decisive)


def _embed(o: JudgeOptions, decisive=True):
    from mfcli.eval.judges.embed import EmbedJudge, MiniLMEncoder

    return EmbedJudge(MiniLMEncoder(o.device), margin=o.margin, decisive=decisive)


def _clip(o: JudgeOptions, decisive=True):
    from mfcli.eval.judges.embed import ClipJudge

    return ClipJudge(o.clip_model, margin=o.margin, decisive=decisive, device=o.device)


def _openai(o: JudgeOptions, decisive=True):
    from mfcli.eval.judges.openai_judge import OpenAIJudge

    return OpenAIJudge(o.model, o.base_url, concurrency=o.concurrency, cache=Path(o.cache) if o.cache else None)


def _cascade(o: JudgeOptions, decisive=True):
    from mfcli.eval.judges.cascade import CascadeJudge

    stages = [_exact(o, decisive=False)]
    if o.openai:
        stages += [_embed(o, decisive=False), _openai(o)]
    else:
        stages += [_embed(o)]
    return CascadeJudge(stages)


def metric_judge(kind: str):
    """The judge of a non-classification record kind: its metric."""
    if kind == "vqa":
        from mfcli.eval.judges.vqa import VqaJudge

        return VqaJudge()
    if kind == "caption":
        from mfcli.eval.judges.caption import CaptionJudge

        return CaptionJudge()
    if kind == "choice":
        from mfcli.eval.judges.choice import ChoiceJudge

        return ChoiceJudge()
    raise MfcliError(f"no metric judge for kind '{kind}'.", "Use vqa, caption or choice.")  # pragma: no cover


LABEL_JUDGES = {"exact": _exact, "embed": _embed, "clip": _clip, "openai": _openai, "cascade": _cascade}
JUDGES = {**LABEL_JUDGES, **{k: (lambda o, decisive=True, k=k: metric_judge(k)) for k in ("vqa", "caption", "choice")}}


def make_judge(name: str, opts: JudgeOptions = JudgeOptions()):
    """A label judge scores classification records and leaves the other kinds to their metrics; a metric
    judge (vqa, caption, choice) scores every record as its kind."""
    if name not in JUDGES:
        raise MfcliError(f"unknown judge '{name}'.", did_you_mean(name, JUDGES))
    return JUDGES[name](opts)
