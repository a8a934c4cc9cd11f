"""The root command: the Typer `app` with kubectl's global flags, and `main()`, the entry point.

Every command module registers on `app` (see `stsfix.cli`, the composition root). `main()` runs it
so that bad input gives one line on stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Annotated, Final

import typer

from stsfix import __version__
from stsfix.cli import coercion
from stsfix.cli.commands import LazyGroup
from stsfix.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    NoColorOpt,
    OutputOpt,
    RequestTimeoutOpt,
    VerboseOpt,
    build_globals,
    emit_error,
)
from stsfix.errors import (
    EXIT_CODE_MEANINGS,
    ExitCode,
    InterruptedRunError,
    StsfixError,
    TerminatedError,
    UsageError,
)

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

coercion.install()  # before any parsing: plain flags need no pydantic

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_MEANINGS.items()
)

app = typer.Typer(
    name="stsfix",
    cls=LazyGroup,
    help="Get stuck StatefulSet rollouts moving again, safely: inspect, diagnose, plan and repair.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stsfix {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    namespace: NamespaceOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    verbose: VerboseOpt = 0,
    no_color: NoColorOpt = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Flags given before the command are defaults for it, as with kubectl."""
    ctx.obj = build_globals(
        None,
        namespace=namespace,
        context=context,
        kubeconfig=kubeconfig,
        output=output,
        request_timeout=request_timeout,
        verbose=verbose,
        no_color=no_color,
    )


def _output_from_argv(argv: list[str]) -> str:
    """The -o value, for errors raised before the command could parse it."""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            return argv[i + 1]
        for prefix in ("--output=", "-o=", "-o"):
            if arg.startswith(prefix) and len(arg) > len(prefix):
                return arg[len(prefix) :]
    return "table"


def kubectl_argv(args: list[str]) -> list[str]:
    """kubectl's spellings Click does not parse: `-n=NS` (pflag) is `-n NS`, not namespace "=NS".

    Words after `--` are left alone.
    """
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if len(arg) > 3 and arg[0] == "-" and arg[1].isalpha() and arg[2] == "=":
            out += [arg[:2], arg[3:]]
        else:
            out.append(arg)
    return out


#: Commands people look for that stsfix spells differently: the hint replaces Click's guess.
_NOT_COMMANDS: Final = {
    "repair": "stsfix has no repair command: `stsfix diagnose NAME` names the repair that fits "
    "(rollback, delete-pod, force-delete, partition)",
    "fix": "stsfix has no fix command: `stsfix diagnose NAME` names the repair that fits "
    "(rollback, delete-pod, force-delete, partition)",
    "undo": "stsfix has no undo command: the forced rollback is `stsfix rollback NAME`",
    "status": "stsfix has no status command: `stsfix inspect NAME` shows the rollout per ordinal",
}


def _usage_line(exc: click_exceptions.UsageError) -> str:
    line = exc.format_message().splitlines()[0]
    match = re.match(r"No such command '([^']+)'", line)
    if match and match.group(1) in _NOT_COMMANDS:
        return _NOT_COMMANDS[match.group(1)]
    return line


def _on_sigterm(signum: int, frame: object) -> None:
    raise TerminatedError()


def _handle_sigterm() -> object:
    """Make SIGTERM a TerminatedError (Ctrl-C's path) in the main thread; the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def _restore_sigterm(previous: object) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def _interrupted(stop: BaseException, args: list[str]) -> None:
    """Ctrl-C or SIGTERM outside a repair's steps: one line, and one envelope with -o json."""
    how = getattr(stop, "signal_name", "") or "Ctrl-C"
    emit_error(InterruptedRunError(f"interrupted ({how})", details={"signal": how}), _output_from_argv(args))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `stsfix` and `kubectl-stsfix` scripts."""
    args = kubectl_argv(list(sys.argv[1:] if argv is None else argv))
    prog = "kubectl stsfix" if os.path.basename(sys.argv[0]).startswith("kubectl-") else "stsfix"
    previous = _handle_sigterm()
    try:
        code = _run(args, prog)
    finally:
        _restore_sigterm(previous)
    sys.exit(int(code or 0))


def _run(args: list[str], prog: str) -> int:
    try:
        code = app(args=args, prog_name=prog, standalone_mode=False)
    except click_exceptions.UsageError as exc:
        emit_error(
            UsageError(_usage_line(exc) + f" (see '{prog} --help')"),
            _output_from_argv(args),
        )
        code = ExitCode.USAGE
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt) as stop:
        _interrupted(stop, args)
        code = ExitCode.INTERRUPTED
    except StsfixError as err:
        emit_error(err, _output_from_argv(args))
        code = err.exit_code
    except Exception as exc:  # a bug: say so in one line; -v shows the traceback
        if "-v" in args or "--verbose" in args:
            raise
        typer.echo(
            f"error: internal error ({type(exc).__name__}: {str(exc)[:200]}); re-run with -v for details",
            err=True,
        )
        code = ExitCode.INTERNAL
    return int(code or 0)
