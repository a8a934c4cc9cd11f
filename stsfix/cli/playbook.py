"""`stsfix playbook list | show NAME | run NAME|FILE`: runbooks the CLI can run and people can read.

`run` executes each step through the stsfix entry point in-process with `-o json`, branches on
its exit code as the playbook's table says, and prints each step to stderr; stdout carries the
result (a `PlaybookRun` envelope with -o json). Steps that change the cluster run only after
confirmation: `--yes`, or a prompt on a terminal (exit 4 otherwise). `--dry-run=client` prints
the resolved steps; `--dry-run=server` runs the read steps and the first mutating step with
`--dry-run=server`, then stops. The schema and its validation live in stsfix.playbook.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stsfix.cli.common import Globals, cluster_command, emit, is_interactive, note, parse_duration
from stsfix.cli.repair import PROGRESS_MODES, ProgressOpt
from stsfix.errors import EXIT_CODE_MEANINGS, ExitCode, UsageError
from stsfix.render import Result, table

if TYPE_CHECKING:
    from stsfix.playbook import Playbook, Step

# Injection point for tests: the wait action sleeps through this.
SLEEP: Callable[[float], None] = time.sleep

playbook_app = typer.Typer(
    name="playbook",
    help="Runbooks for StatefulSet incidents: list them, read one, or run it step by step.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(help="A bundled playbook name (see `stsfix playbook list`) or a YAML file.")
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="A parameter as NAME=VALUE (repeatable).")
]
DryRunOpt = Annotated[
    str,
    typer.Option(
        "--dry-run",
        help="none: run the steps. client: print the resolved steps. server: run read steps and the first "
        "mutating step with --dry-run=server, then stop.",
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes", "-y", help="Run steps that change the cluster without asking (required without a terminal)."
    ),
]


@dataclass
class StepRecord:
    """What one executed step did: the JSON envelope it printed is kept as `result`."""

    index: int
    id: str
    command: str
    exit_code: int
    next: str
    seconds: float = 0.0
    result: Any = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "command": self.command,
            "exitCode": self.exit_code,
            "next": self.next,
            "seconds": round(self.seconds, 3),
            "message": self.message or None,
            "result": self.result,
        }


@dataclass
class RunState:
    records: list[StepRecord] = field(default_factory=list)
    outcome: str = "done"
    exit_code: ExitCode = ExitCode.OK
    errors: list[dict[str, Any]] = field(default_factory=list)


def invoke(argv: list[str]) -> tuple[int, str]:
    """Run `stsfix ARGV` in-process; (exit code, stdout). stderr passes through to ours."""
    from stsfix.cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # a bug in a step must not lose the run's record
            note(f"error: internal error in step ({type(exc).__name__}: {str(exc)[:200]})")
            code = ExitCode.INTERNAL
    return int(code), out.getvalue()


def as_exit_code(code: int) -> ExitCode:
    """A step's exit code as an ExitCode (a code stsfix never documents counts as internal)."""
    try:
        return ExitCode(code)
    except ValueError:
        return ExitCode.INTERNAL


def forwarded(g: Globals, words: list[str]) -> list[str]:
    """The run's cluster flags for one step (the step's own -n wins)."""
    extra: list[str] = []
    if g.namespace and not any(w in ("-n", "--namespace") or w.startswith("--namespace=") for w in words):
        extra += ["-n", g.namespace]
    if g.kubeconfig:
        extra += ["--kubeconfig", g.kubeconfig]
    if g.context:
        extra += ["--context", g.context]
    if g.request_timeout is not None:
        extra += ["--request-timeout", f"{g.request_timeout:g}"]
    return extra + ["-v"] * g.verbose


def _first_error(result: Any) -> str:
    """The first error of a step's envelope, else its first critical finding (diagnose)."""
    if not isinstance(result, dict):
        return ""
    for err in result.get("errors") or ():
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    for item in result.get("items") or ():
        for finding in (item.get("findings") or ()) if isinstance(item, dict) else ():
            if finding.get("severity") == "critical":
                return f"{finding.get('code')}: {finding.get('message')}"
    return ""


class Runner:
    """Executes a playbook's steps and follows the exit-code branches."""

    def __init__(
        self,
        playbook: Playbook,
        values: dict[str, str],
        g: Globals,
        *,
        dry_run: str,
        yes: bool,
        progress: str,
    ):
        self.playbook, self.values, self.g = playbook, values, g
        self.dry_run, self.yes, self.progress = dry_run, yes, progress
        self.state = RunState()

    def _say(self, index: int, step: Step, text: str, *, event: str, **fields: object) -> None:
        """A step line on stderr: `[2/4 plan] ...`, or a JSON line with --progress=jsonl."""
        if self.progress == "none":
            return
        if self.progress == "jsonl":
            line = {"time": round(time.time(), 3), "event": event, "playbook": self.playbook.name,
                    "step": index + 1, "id": step.id, "message": text, **fields}  # fmt: skip
            sys.stderr.write(json.dumps(line) + "\n")
            sys.stderr.flush()
            return
        note(f"[{index + 1}/{len(self.playbook.steps)} {step.id}] {text}")

    def run(self) -> RunState:
        index, executed = 0, 0
        while index < len(self.playbook.steps):
            if executed >= self.playbook.max_steps:
                self._stop("not_converged", ExitCode.NOT_CONVERGED, "max_steps",
                           f"playbook {self.playbook.name} ran {executed} steps without finishing (max_steps)")  # fmt: skip
                return self.state
            step = self.playbook.steps[index]
            executed += 1
            if step.mutates and not self._confirmed(index, step):
                return self.state
            record = self._execute(index, step)
            self.state.records.append(record)
            if step.mutates and self.dry_run == "server":
                self._say(index, step, f"exit {record.exit_code}: server dry run, stopping before anything changes",
                          event="result", exitCode=record.exit_code, next="stop")  # fmt: skip
                self.state.outcome, self.state.exit_code = "dry-run", as_exit_code(record.exit_code)
                return self.state
            self._say(index, step, f"exit {record.exit_code} -> {record.next}",
                      event="result", exitCode=record.exit_code, next=record.next)  # fmt: skip
            if record.exit_code == ExitCode.INTERRUPTED:
                self._stop(
                    "interrupted", ExitCode.INTERRUPTED, "interrupted", f"step {step.id} was interrupted"
                )
                return self.state
            if record.next == "done":
                return self.state
            if record.next == "page":
                code = as_exit_code(record.exit_code or ExitCode.REFUSED)
                why = record.message or EXIT_CODE_MEANINGS.get(code, "")
                self._stop("paged", code, "paged", f"step {step.id} exited {record.exit_code}: page a human "
                           f"(see `stsfix playbook show {self.playbook.name}`): {why}")  # fmt: skip
                return self.state
            index = index + 1 if record.next == "next" else self.playbook.index(record.next)
        return self.state

    def _stop(self, outcome: str, code: ExitCode, error_code: str, message: str) -> None:
        self.state.outcome, self.state.exit_code = outcome, code
        self.state.errors.append({"code": error_code, "message": message})

    def _confirmed(self, index: int, step: Step) -> bool:
        """May this mutating step run? --yes, a server dry run, or a person at a terminal says yes."""
        if self.yes or self.dry_run == "server":
            return True
        line = self._command(step)
        if not is_interactive():
            code, why = (
                "confirmation_required",
                f"Pass --yes to run step {step.id} ({line}) when no terminal can confirm it.",
            )
        elif typer.confirm(f"Run step {step.id}: {line}?", default=False, err=True):
            return True
        else:
            code, why = "not_confirmed", f"Step {step.id} was not confirmed: nothing was changed."
        self._stop("refused", ExitCode.REFUSED, code, why)
        self.state.records.append(StepRecord(index + 1, step.id, line, ExitCode.REFUSED, "stop"))
        return False

    def _command(self, step: Step) -> str:
        """The step as a person would type it (without the run's cluster flags)."""
        from stsfix.playbook import command_line, step_argv

        if not step.run:
            return f"({step.action})"
        return command_line([*step_argv(step, self.values), *self._flags(step)])

    def _flags(self, step: Step) -> list[str]:
        from stsfix.playbook import runner_flags

        return runner_flags(step, dry_run=self.dry_run, progress=self.progress)

    def _execute(self, index: int, step: Step) -> StepRecord:
        from stsfix.playbook import substitute

        began = time.monotonic()
        line = self._command(step)
        message = substitute(step.message, self.values) if step.message else ""
        what = (
            line
            if step.run
            else (f"wait {substitute(step.duration, self.values)}" if step.action == "wait" else message)
        )
        self._say(index, step, f"{step.title}: {what}", event="step", command=line)
        code, result = self._perform(step, message)
        return StepRecord(
            index=index + 1,
            id=step.id,
            command=line,
            exit_code=code,
            next=step.branch(code),
            seconds=time.monotonic() - began,
            result=result,
            message=_first_error(result) if step.run else message,
        )

    def _perform(self, step: Step, message: str) -> tuple[int, Any]:
        from stsfix.playbook import step_argv, substitute

        if step.action == "note":
            return ExitCode.OK, None
        if step.action == "wait":
            if self.dry_run == "server":
                return ExitCode.OK, None
            SLEEP(parse_duration(substitute(step.duration, self.values)))
            return ExitCode.OK, None
        if step.action == "confirm":
            if self.yes or self.dry_run == "server":
                return ExitCode.OK, None
            if not is_interactive():
                return ExitCode.REFUSED, {"errors": [{"code": "confirmation_required", "message": "Pass --yes "
                                          "to confirm when no terminal can."}]}  # fmt: skip
            return (
                ExitCode.OK if typer.confirm(message, default=False, err=True) else ExitCode.REFUSED
            ), None
        words = step_argv(step, self.values)
        code, stdout = invoke([*words, *forwarded(self.g, words), *self._flags(step)])
        try:
            result: Any = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            result = {"stdout": stdout[-4000:]}
        return code, result


# -- rendering ----------------------------------------------------------------------------------
def show_text(playbook: Playbook) -> str:
    from stsfix.playbook import branch_text, command_line, runner_flags, step_argv

    lines = [f"{playbook.name}: {playbook.title}", f"answers: {', '.join(playbook.answers)}"]
    lines += [f"source: {playbook.source}", "", playbook.description, "", "Parameters:"]
    for p in playbook.parameters:
        kind = f"{p.type}, required" if p.required else f"{p.type}, default {p.default}"
        lines.append(f"  {p.name} ({kind}): {p.description}")
    lines += ["", "Steps:"]
    for i, s in enumerate(playbook.steps, 1):
        lines.append(f"  {i}. {s.id}: {s.title}")
        if s.run:
            lines.append(f"     {command_line([*step_argv(s), *runner_flags(s)])}")
        else:
            what = s.message if s.action != "wait" else f"wait {s.duration}"
            lines.append(f"     ({s.action}) {what}")
        lines.append(f"     {branch_text(s)}")
    lines += ["", "Notes:", *(f"  {line}" if line else "" for line in playbook.notes.splitlines())]
    return "\n".join(lines)


def resolved_steps(playbook: Playbook, values: dict[str, str]) -> list[dict[str, Any]]:
    from stsfix.playbook import branch_text, command_line, runner_flags, step_argv, substitute

    return [
        {
            "index": i,
            "id": s.id,
            "title": s.title,
            "command": command_line([*step_argv(s, values), *runner_flags(s)]) if s.run else None,
            "action": s.action,
            "message": substitute(s.message, values) or None,
            "branches": branch_text(s),
        }
        for i, s in enumerate(playbook.steps, 1)
    ]


def run_text(state: RunState, playbook: Playbook, seconds: float) -> str:
    rows = [[r.index, r.id, r.exit_code, r.next, r.command] for r in state.records]
    head = f"playbook {playbook.name}: {state.outcome} (exit {int(state.exit_code)}) in {seconds:.1f}s"
    parts = [table(rows, ["#", "step", "exit", "next", "command"]) if rows else "", head]
    parts += [f"error: {e['message']}" for e in state.errors]
    return "\n".join(p for p in parts if p)


# -- commands -----------------------------------------------------------------------------------
@cluster_command
def list_playbooks(*, g: Globals) -> None:
    """List the bundled playbooks and the diagnosis codes each answers."""
    from stsfix.playbook import bundled_names, find_playbook

    books = [find_playbook(name) for name in bundled_names()]
    rows = [[b.name, ", ".join(b.answers), b.title] for b in books]
    items = [
        {"name": b.name, "title": b.title, "answers": list(b.answers), "source": b.source} for b in books
    ]
    emit(
        Result(kind="PlaybookList", payload={"items": items}),
        g,
        human=table(rows, ["name", "answers", "title"]),
    )


@cluster_command
def show(name: NameArg, *, g: Globals) -> None:
    """Print a playbook: what it answers, its parameters, steps with their exit-code branches, and notes."""
    from stsfix.playbook import find_playbook, playbook_to_dict

    playbook = find_playbook(name)
    emit(
        Result(kind="Playbook", payload={"playbook": playbook_to_dict(playbook)}),
        g,
        human=show_text(playbook),
    )


@cluster_command
def run(
    name: NameArg,
    param: ParamOpt = None,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    progress: ProgressOpt = "auto",
    *,
    g: Globals,
) -> None:
    """Run a playbook: each step with -o json, following its exit-code branches; the result on stdout."""
    from stsfix.playbook import find_playbook, parse_param_flags, resolve_parameters

    if dry_run not in ("none", "client", "server"):
        raise UsageError(f'invalid --dry-run "{dry_run}": use none, client or server')
    if progress not in PROGRESS_MODES:
        raise UsageError(f'unknown --progress "{progress}": use one of {", ".join(PROGRESS_MODES)}')
    playbook = find_playbook(name)
    given = parse_param_flags(param or [])
    if g.namespace and "namespace" in {p.name for p in playbook.parameters}:
        given.setdefault("namespace", g.namespace)
    values = resolve_parameters(playbook, given)
    payload: dict[str, Any] = {
        "playbook": playbook.name,
        "source": playbook.source,
        "parameters": values,
        "dryRun": dry_run,
    }
    if dry_run == "client":
        steps = resolved_steps(playbook, values)
        human = "\n".join(
            f"{s['index']}. {s['id']}: {s['command'] or s['message']}\n   {s['branches']}" for s in steps
        )
        emit(
            Result(kind="PlaybookRun", payload={**payload, "outcome": "dry-run", "steps": steps}),
            g,
            human=human,
        )
        return
    began = time.monotonic()
    state = Runner(playbook, values, g, dry_run=dry_run, yes=yes, progress=progress).run()
    payload |= {"outcome": state.outcome, "steps": [r.to_dict() for r in state.records]}
    result = Result(
        kind="PlaybookRun", exit_code=state.exit_code, payload=payload, errors=tuple(state.errors)
    )
    emit(result, g, human=run_text(state, playbook, time.monotonic() - began))


def register(app: typer.Typer) -> None:
    playbook_app.command("list")(list_playbooks)
    playbook_app.command("show")(show)
    playbook_app.command("run")(run)
    app.add_typer(playbook_app, name="playbook")
