"""The `mfcli` command line: thin Typer wrappers over library functions.

Heavy imports (torch, transformers) happen inside command bodies so `--help` stays instant.
"""

from __future__ import annotations

import os
import sys

import typer

from mfcli import __version__
from mfcli.dist import leave
from mfcli.errors import MfcliError
from mfcli.plugins import load_plugins
from mfcli.zoo.fingerprint import pin_if_asked

def _usage_name(self) -> str:
    """An argument on the usage line as click and man pages write it — `PRE SFT...`, `[DATA]...` —, not
    typer's `{PRE} {SFT}...`."""
    name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
    return name + ("..." if self.nargs != 1 else "")


if hasattr(typer.core.TyperArgument, "_usage_display_name"):  # typer 0.2x braces required arguments
    typer.core.TyperArgument._usage_display_name = _usage_name

app = typer.Typer(
    name="mfcli",
    help="Measure and mitigate catastrophic forgetting in multimodal LLMs (EMT, Model Tailor, MDGD).\n\n"
         "Example:  mfcli prepare digits --out data/digits && mfcli zoo tiny --out models/tiny",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool):
    if value:
        typer.echo(f"mfcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (they are drawn only on a "
                                                                 "terminal anyway); results and errors still "
                                                                 "print.")):
    if quiet:
        os.environ["MFCLI_QUIET"] = "1"


def _plugins() -> None:
    """The user's plug-ins (mfcli/plugins.py) register before the commands build their flags from the
    registries; one that fails is one line, exit 1."""
    try:
        load_plugins()
    except MfcliError as e:
        if os.environ.get("MFCLI_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {e.one_line()}", file=sys.stderr)
        sys.exit(e.exit_code)


_plugins()

from mfcli.cli import prepare as _prepare  # noqa: E402,F401  (registers commands, in help order)
from mfcli.cli import zoo as _zoo  # noqa: E402,F401
from mfcli.cli import emt as _emt  # noqa: E402,F401
from mfcli.cli import judge as _judge  # noqa: E402,F401
from mfcli.cli import finetune as _finetune  # noqa: E402,F401
from mfcli.cli import tailor as _tailor  # noqa: E402,F401
from mfcli.cli import rank as _rank  # noqa: E402,F401
from mfcli.cli import report as _report  # noqa: E402,F401
from mfcli.cli import demo as _demo  # noqa: E402,F401


def main() -> None:
    """Entry point: one line per error, exit 1 (usage 2); MFCLI_DEBUG=1 shows the traceback. A process of
    a torchrun / accelerate launch group leaves through dist.leave (no interpreter teardown)."""
    try:
        _main()
    except SystemExit as e:
        leave(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
        raise
    leave(0)


def _main() -> None:
    debug = os.environ.get("MFCLI_DEBUG", "") not in ("", "0")

    pin_if_asked()  # MFCLI_PINNED=1: the built-in models' pins for this command too (docs/methods.md)
    if not debug:  # the libraries' deprecation notices (peft, transformers) are not the user's to act on
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer turns Ctrl-C into Exit(130) and returns its code
            sys.exit(code)
    except MfcliError as e:
        if debug:
            raise
        print(f"error: {e.one_line()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted; nothing half-written was left behind.", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:
        # typer vendors its own click, so recognise its exceptions by shape, not by class
        kind = type(e).__name__
        if kind == "Exit":
            sys.exit(getattr(e, "exit_code", 0))
        if kind == "Abort":
            print("aborted.", file=sys.stderr)
            sys.exit(130)
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # UsageError, BadParameter, ...
            e.show()
            sys.exit(e.exit_code)
        if debug:
            raise
        print(f"error: unexpected {kind}: {str(e).splitlines()[0] if str(e) else ''} "
              "(rerun with MFCLI_DEBUG=1 for the traceback, and report it)", file=sys.stderr)
        sys.exit(1)
