"""What every command shares: kubectl's global flags, target parsing, output and error handling.

`cluster_command` adds kubectl's flags (-n/--namespace, --context, --kubeconfig, -o/--output,
--request-timeout, -v/--verbose) to a command and hands them over as one `Globals` value, so each
command body stays parse -> call core -> render. The same flags given before the command name
(`stsfix -n db inspect pg`) are defaults for it. Only the CLI turns StsfixError into exit codes.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import sys
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from stsfix.cli import complete
from stsfix.errors import ExitCode, InterruptedRunError, StsfixError, UsageError
from stsfix.render import (
    JSONPATH,
    OUTPUT_FORMATS,
    Result,
    Screen,
    error_line,
    error_result,
    is_output_format,
    render_machine,
    render_names,
    render_template,
)

if TYPE_CHECKING:
    from stsfix.kube import KubeCluster

_NAME_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_KINDS: Final = ("statefulset", "statefulsets", "sts", "statefulset.apps", "statefulsets.apps")


DEFAULT_WIDTH: Final = 80


def screen_width() -> int:
    """Columns to fit text output into: $COLUMNS, else the terminal's width, else 80 (a pipe, a file)."""
    import os

    value = os.environ.get("COLUMNS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns or DEFAULT_WIDTH
    except (OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def colour_wanted(*, no_color: bool) -> bool:
    """Colour only on a terminal, never with --no-color or NO_COLOR set (no-color.org)."""
    import os

    if no_color or os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout.isatty()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class Globals:
    namespace: str | None = None
    context: str | None = None
    #: every --context given (repeatable): the fleet views read each; `context` is set when one is
    contexts: tuple[str, ...] = ()
    kubeconfig: str | None = None
    output: str = "table"
    request_timeout: float | None = None
    verbose: int = 0
    no_color: bool = False

    @property
    def machine(self) -> bool:
        return self.output in ("json", "yaml")

    @property
    def wide(self) -> bool:
        return self.output == "wide"

    @property
    def width(self) -> int | None:
        """Columns text output fits into; None for -o wide (every detail, one line each)."""
        return None if self.wide else screen_width()

    @property
    def color(self) -> bool:
        return self.output in ("table", "wide") and colour_wanted(no_color=self.no_color)


@dataclass(frozen=True, slots=True)
class Target:
    namespace: str
    name: str


def parse_target(text: str) -> str:
    """The StatefulSet name from `NAME`, `sts/NAME` or `statefulset/NAME`; UsageError otherwise."""
    kind, sep, name = text.partition("/")
    if not sep:
        kind, name = "statefulset", text
    if kind.lower() not in _KINDS:
        raise UsageError(f'invalid target "{text}": expected NAME, sts/NAME or statefulset/NAME')
    if not name or len(name) > 253 or not _NAME_RE.match(name):
        raise UsageError(f'invalid target "{text}": "{name}" is not a valid StatefulSet name')
    return name


def parse_duration(text: str) -> float:
    """Seconds from a Go-style duration (`90s`, `10m`, `1h30m`) or a plain number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f'invalid duration "{text}": use e.g. 30s, 10m or 1h')
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


#: Set while a playbook runs one of its steps in-process: the step's error is the run's to report
#: (in its one error line and its envelope), so the step prints none of its own on stderr.
STEP_OF_A_RUN: ContextVar[bool] = ContextVar("stsfix_step_of_a_run", default=False)


def positive_speed(value: float) -> float:
    """Typer callback for --speed: a simulated clock only moves forward (0, negative or NaN would
    freeze it or run it backwards, and everything waiting on it would hang)."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value:g} is not a positive number of simulated seconds per real second")
    return value


# -- the shared flags ---------------------------------------------------------------------------
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace (default: the context's namespace).", autocompletion=complete.namespaces
    ),
]
ContextOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        help="The kubeconfig context to use; repeat it for a fleet view (inspect, diagnose) of several clusters.",
        autocompletion=complete.contexts,
    ),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table, wide, json, yaml, name or jsonpath=TEMPLATE.",
        autocompletion=complete.outputs,
    ),
]
#: A StatefulSet argument: NAME, sts/NAME or statefulset/NAME (names complete from the cluster).
TARGET_HELP: Final = "NAME, sts/NAME or statefulset/NAME"
RequestTimeoutOpt = Annotated[
    str | None, typer.Option("--request-timeout", help="Timeout for one API request (e.g. 30s).")
]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr.")]
NoColorOpt = Annotated[
    bool, typer.Option("--no-color", help="No colour, even on a terminal (as NO_COLOR=1 does).")
]

_SHARED: Final = {
    "namespace": NamespaceOpt,
    "context": ContextOpt,
    "kubeconfig": KubeconfigOpt,
    "output": OutputOpt,
    "request_timeout": RequestTimeoutOpt,
    "verbose": VerboseOpt,
    "no_color": NoColorOpt,
}
_DEFAULTS: Final = {"verbose": 0, "no_color": False}


def build_globals(parent: Globals | None, **given: Any) -> Globals:
    base = parent or Globals()
    output = given.get("output") or base.output
    if not is_output_format(output):
        raise UsageError(
            f'unknown output format "{output}": use one of {", ".join(OUTPUT_FORMATS)} or jsonpath=TEMPLATE'
        )
    timeout = given.get("request_timeout")
    named = given.get("context")
    contexts = ((named,) if isinstance(named, str) else tuple(dict.fromkeys(named or ()))) or base.contexts
    return replace(
        base,
        namespace=given.get("namespace") or base.namespace,
        context=contexts[0] if len(contexts) == 1 else None,
        contexts=contexts,
        kubeconfig=given.get("kubeconfig") or base.kubeconfig,
        output=output,
        request_timeout=parse_duration(timeout) if timeout else base.request_timeout,
        verbose=max(given.get("verbose") or 0, base.verbose),
        no_color=bool(given.get("no_color")) or base.no_color,
    )


def screen_of(g: Globals) -> Screen:
    """The width and colour text output uses for these flags and this terminal."""
    return Screen(width=g.width, color=g.color)


def emit(result: Result, g: Globals, human: str | None = None) -> None:
    """Print a result: the envelope for -o json|yaml, else the human text; then exit with its code.

    A failed result (refused, cluster error, not converged) also says why in one line on stderr,
    kubectl's `error: ...`, whatever the output format: stdout is the result, stderr the rest.
    """
    if g.machine:
        typer.echo(render_machine(result, g.output))
    elif g.output == "name":
        names = render_names(result)
        if names:
            typer.echo(names)
    elif g.output.startswith(JSONPATH):
        typer.echo(render_template(result, g.output), nl=False)
    elif human is not None:
        typer.echo(human)
    if result.exit_code not in (ExitCode.OK, ExitCode.ACTION_NEEDED) and result.errors and not STEP_OF_A_RUN.get():
        message = str(result.errors[0].get("message") or result.errors[0].get("code") or "failed")
        line = message.splitlines()[0] if message else "failed"
        note(line if line.startswith(("error:", "Error from server")) else f"error: {line}")
    if result.exit_code != ExitCode.OK:
        raise typer.Exit(code=int(result.exit_code))


def note(message: str) -> None:
    """A message for people: always stderr."""
    typer.echo(message, err=True)


def emit_error(err: StsfixError, output: str) -> None:
    if output in ("json", "yaml"):
        typer.echo(render_machine(error_result(err), output))
    if not STEP_OF_A_RUN.get():
        typer.echo(error_line(err), err=True)


def cluster_command(command: Callable[..., None]) -> Callable[..., None]:
    """Add the shared kubectl flags to a command, pass them as `g: Globals`, map errors to exit codes."""
    signature = inspect.signature(command)
    # NB: resolve string annotations (PEP 563) here, keeping Annotated metadata: Typer would
    # otherwise resolve them without extras and lose every typer.Argument/Option declaration.
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=hints.get(name, p.annotation))
        for name, p in signature.parameters.items()
        if name != "g"
    ]
    shared = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=annotation,
            default=_DEFAULTS.get(name),
        )
        for name, annotation in _SHARED.items()
    ]
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx: typer.Context = kwargs.pop("ctx")
        given = {name: kwargs.pop(name) for name in _SHARED}
        output = given.get("output") or (ctx.obj.output if isinstance(ctx.obj, Globals) else "table")
        shown = output if is_output_format(output) else "table"
        try:
            g = build_globals(ctx.obj if isinstance(ctx.obj, Globals) else None, **given)
            command(*args, g=g, **kwargs)
        except StsfixError as err:
            emit_error(err, shown)
            raise typer.Exit(code=int(err.exit_code)) from None
        except KeyboardInterrupt as stop:
            # NB: here, not in main(): Typer turns a KeyboardInterrupt into a silent exit 130.
            # SIGTERM arrives as errors.TerminatedError, a KeyboardInterrupt (root.main's handler).
            how = getattr(stop, "signal_name", "") or "Ctrl-C"
            emit_error(InterruptedRunError(f"interrupted ({how})", details={"signal": how}), shown)
            raise typer.Exit(code=int(ExitCode.INTERRUPTED)) from None

    wrapper.__signature__ = signature.replace(parameters=[*own, *shared, ctx_param])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *shared, ctx_param]}
    return wrapper


def check_one_context(contexts: tuple[str, ...] | list[str]) -> None:
    """Every command but the fleet views works on one cluster: --context repeated is bad input."""
    if len(contexts) > 1:
        raise UsageError(
            f"--context was given {len(contexts)} times ({', '.join(contexts)}): only the fleet views "
            "(inspect and diagnose without a target) read several contexts"
        )


def connect(g: Globals) -> tuple[KubeCluster, str]:
    """The cluster adapter and the namespace to use (flag, else the context's)."""
    from stsfix.kube import KubeTarget, connect

    check_one_context(g.contexts)

    cluster = connect(
        KubeTarget(
            kubeconfig=g.kubeconfig,
            context=g.context,
            namespace=g.namespace,
            request_timeout=g.request_timeout,
            verbose=g.verbose,
        )
    )
    return cluster, cluster.namespace


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()
