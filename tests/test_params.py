"""Options declared once, on the library's dataclasses and the judges' registry entries
(mfcli/params.py), and turned into command-line flags by cli/params.py."""

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from mfcli.cli.params import Group, of, options
from mfcli.params import Param, option, params_of


@dataclasses.dataclass(frozen=True)
class Knobs:
    rate: float = option(0.5, "How fast.")
    name: str | None = option(None, "What to call it.")
    steady: bool = option(True, "Keep it steady.")
    tags: tuple[str, ...] = option((), "Repeat per tag.", flags=("--tag",), cli_type=list[str])
    hidden: int = 3  # a library setting: no flag


def _app(**groups):
    app, got = typer.Typer(), {}

    @app.command()
    @options(**groups)
    def cmd(thing: str = typer.Argument(...), knobs: Knobs = ..., other: int = 1):
        got.update(thing=thing, knobs=knobs, other=other)

    return app, got


def test_a_dataclass_becomes_its_flags_and_back():
    app, got = _app(knobs=Knobs)
    r = CliRunner().invoke(app, ["x", "--rate", "2", "--no-steady", "--tag", "a", "--tag", "b", "--other", "4"])
    assert r.exit_code == 0, r.output
    assert got == {"thing": "x", "knobs": Knobs(rate=2.0, steady=False, tags=("a", "b")), "other": 4}
    r = CliRunner().invoke(app, ["x"])
    assert got["knobs"] == Knobs()  # the defaults are the dataclass's
    helptext = CliRunner().invoke(app, ["--help"]).output
    assert "How fast." in helptext and "--no-steady" in helptext and "--tag" in helptext and "--hidden" not in helptext


def test_prefixed_groups_keep_their_flags_apart():
    app, got = _app(knobs=Group(params_of(Knobs), lambda v: v, prefix="k_"))  # flags: --k-rate
    assert CliRunner().invoke(app, ["x", "--k-rate", "3"]).exit_code == 0 and got["knobs"]["rate"] == 3.0
    app, got = _app(knobs=Group(params_of(Knobs), lambda v: v, prefix="k_", flag_prefix=False))  # flags: --rate
    assert CliRunner().invoke(app, ["x", "--rate", "3", "--no-steady"]).exit_code == 0
    assert got["knobs"]["rate"] == 3.0 and got["knobs"]["steady"] is False
    app, got = _app(knobs=of(Knobs, rate=9.0))  # a fixed value is no flag
    assert CliRunner().invoke(app, ["x", "--rate", "3"]).exit_code != 0
    assert CliRunner().invoke(app, ["x"]).exit_code == 0 and got["knobs"].rate == 9.0


def test_every_finetune_and_tailor_option_is_a_field_of_their_options():
    from mfcli.cli import app
    from mfcli.merge.options import TailorOptions
    from mfcli.train.options import TrainOptions
    from mfcli.train.watch import WatchOptions

    runner = CliRunner()
    for command, classes in (("finetune", (TrainOptions, WatchOptions)), ("tailor", (TailorOptions,))):
        helptext = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"}).output
        for cls in classes:
            for p in params_of(cls):
                assert p.help.split(" (")[0][:30] in " ".join(helptext.split()), (command, p.name)


def test_a_judge_with_an_option_is_one_registration(monkeypatch):
    """What a new judge module does: register a builder that reads its own option. The option reaches
    the judge from the command line through JudgeOptions, with no other edit."""
    from mfcli.eval.judges import JUDGES, JudgeOptions, judge_params, make_judge, register
    from mfcli.eval.judges.base import CORRECT, OFF_LABEL, Judgement

    class LengthJudge:  # correct when the answer is at most `max_words` long and names the label
        kind, metric = "classification", "accuracy"  # what every judge declares (JudgeContract)

        def __init__(self, max_words):
            self.name, self.max_words = "length", max_words

        def judge(self, items):
            return [Judgement(CORRECT if len(it.answer.split()) <= self.max_words and it.label in it.answer
                              else OFF_LABEL, None, self.name) for it in items]

    monkeypatch.setitem(JUDGES, "length", None)  # the registry as it was, after the test
    register("length", summary="short answers only",
             options=(Param("max_words", int, 3, "length: the longest answer that can be right."),))(
        lambda o, decisive=True: LengthJudge(o.max_words))
    assert JudgeOptions().max_words == 3 and "max_words" in [p.name for p in judge_params()]
    app, got = typer.Typer(), {}

    @app.command()
    @options(o=Group(judge_params(), lambda v: JudgeOptions(**v), prefix="judge_", flag_prefix=False))
    def judge(name: str = "length", o: JudgeOptions = ...):
        got["judge"] = make_judge(name, o)

    assert CliRunner().invoke(app, ["--max-words", "7"]).exit_code == 0 and got["judge"].max_words == 7
    assert CliRunner().invoke(app, []).exit_code == 0 and got["judge"].max_words == 3
    with pytest.raises(TypeError, match="no judge declares the option"):
        JudgeOptions(max_wordz=2)
