import subprocess
import sys

import pytest

from conftest import run_cli


def test_help_lists_only_working_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "prepare" in r.stdout and "zoo" in r.stdout


def test_version():
    from mfcli import __version__

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mfcli {__version__}"


def test_cli_import_is_lazy():
    # --help must not pay for torch/transformers: importing the CLI may not import them.
    code = "import sys, mfcli.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_command_help_has_an_example():
    from mfcli.cli import app

    for cmd in app.registered_commands:
        assert "Example:" in (cmd.help or ""), cmd.name


def test_usage_lines_name_arguments_in_capitals():
    """`mfcli tailor [OPTIONS] PRE SFT...` as click and man pages write it — never typer's braces
    (`{PRE} {SFT}...`) nor lower case (`{pre} {sft}...`); optional arguments in square brackets."""
    import re

    from typer.testing import CliRunner

    from mfcli.cli import app

    runner = CliRunner()
    for cmd in app.registered_commands:
        name = cmd.name or cmd.callback.__name__.replace("_", "-")
        usage = runner.invoke(app, [name, "--help"]).output.splitlines()[0]
        args = usage.split("[OPTIONS]", 1)[1].split()
        assert "{" not in usage and all(a.strip("[].").isupper() for a in args), usage
        assert args or name == "demo", usage  # every other command takes its inputs as arguments
    tailor = runner.invoke(app, ["tailor", "--help"]).output.splitlines()[0]
    assert tailor == "Usage: mfcli tailor [OPTIONS] PRE SFT...", tailor


def test_unknown_command_is_usage_error():
    r = run_cli("frobnicate")
    assert r.returncode == 2


def test_debug_shows_traceback(tmp_path):
    r = run_cli("prepare", tmp_path / "missing-dir", "--out", tmp_path / "o", env={"MFCLI_DEBUG": "1"}, process=True)
    assert r.returncode != 0 and "Traceback" in r.stderr
    r = run_cli("prepare", tmp_path / "missing-dir", "--out", tmp_path / "o")
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_command_is_in_the_readme():
    from pathlib import Path

    from mfcli.cli import app

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for cmd in app.registered_commands:
        name = cmd.name or cmd.callback.__name__.replace("_", "-")
        assert f"mfcli {name}" in readme, name


SHELLS = {"bash": "mfcli.bash", "zsh": "_mfcli", "fish": "mfcli.fish"}


def _mfcli(**env) -> str:
    """Run the installed `mfcli` entry point (completion keys on the program's name) with extra env."""
    import os
    from pathlib import Path

    exe = Path(sys.executable).parent / "mfcli"
    return subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout


def test_completion_scripts_are_in_step_with_the_app():
    """completions/ holds exactly what the app generates for each shell; regenerate with
    `_MFCLI_COMPLETE=source_bash mfcli > completions/mfcli.bash` (zsh: `_mfcli`, fish: `mfcli.fish`)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "completions"
    for shell, name in SHELLS.items():
        assert _mfcli(_MFCLI_COMPLETE=f"source_{shell}") == (root / name).read_text(), name


def test_completion_offers_commands_and_options():
    def complete(words: str, cword: int) -> list[str]:
        return _mfcli(_MFCLI_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword)).split()

    assert complete("mfcli fine", 1) == ["finetune"]
    assert sorted(complete("mfcli tailor --sc", 2)) == ["--scope", "--score-norm"]
    assert "--mdgd-variant" in complete("mfcli finetune --md", 2)


@pytest.mark.parametrize("args, says", [
    (["prepare", "digits", "--out", "{tmp}/d", "--eval-fraction", "2"], "--eval-fraction"),
    (["zoo", "tiniest", "--out", "{tmp}/z"], "unknown built-in model"),
    (["emt", "tiny", "{tmp}", "--out", "{tmp}/p.jsonl", "--judge", "foo"], "unknown judge"),
    (["emt", "tiny", "{tmp}", "--out", "{tmp}/p.jsonl", "--shard", "3/2"], "--shard"),
    (["judge", "{tmp}/p.jsonl", "--judge", "foo"], "unknown judge"),
    (["finetune", "tiny", "{tmp}", "--method", "LoRA", "--out", "{tmp}/f"], "unknown method"),
    (["tailor", "tiny", "tiny", "--sparsity", "1.5", "--out", "{tmp}/t"], "(0, 1]"),
    (["tailor", "tiny", "tiny", "--method", "regmean", "--out", "{tmp}/t"], "--pre-data"),
    (["tailor", "tiny", "tiny", "--method", "regmean", "--sparsity", "0.1", "--pre-data", "x", "--out", "{tmp}/t"],
     "no budget"),
    (["rank", "tiny", "--data", "{tmp}", "--nsamples", "0"], "--nsamples"),
    (["report", "{tmp}/t.csv", "--hscore", "paper"], "--hscore"),
    (["demo", "--out", "{tmp}/demo", "--sparsity", "2"], "--sparsity"),
    (["demo", "--out", "{tmp}/demo", "--target", "digits"], "target"),
])
def test_every_command_exits_2_on_a_usage_error(tmp_path, args, says):
    """Issue 44: one rule for every command — a bad option value or combination is a usage error, exit 2
    (as click's own), one line, nothing written, no work started."""
    r = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert says in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_quiet_turns_progress_bars_off(monkeypatch):
    """`mfcli --quiet CMD`: no progress bars, even on a terminal (they are off without one anyway)."""
    import os

    from mfcli.progress import show_progress

    monkeypatch.delenv("MFCLI_QUIET", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert show_progress()
    r = run_cli("--quiet", "emt", "--help")
    assert r.returncode == 0
    assert os.environ.get("MFCLI_QUIET") == "1" and not show_progress()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.setenv("MFCLI_QUIET", "0")
    assert not show_progress()
