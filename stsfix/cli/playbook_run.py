"""The playbook runner: executes a playbook's steps through the stsfix entry point and follows the
exit-code branches.

Each `run:` step is `stsfix.cli.main` called in-process with `-o json` (stdout captured, stderr
passed through); its exit code picks the next step. Steps that change the cluster run only after
confirmation: `--yes`, or a prompt on a terminal (exit 4 otherwise). With `--dry-run=server` the
first mutating step runs with `--dry-run=server` and the run stops there.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from stsfix.cli.common import STEP_OF_A_RUN, Globals, is_interactive, note, parse_duration
from stsfix.cli.root import main
from stsfix.errors import EXIT_CODE_MEANINGS, ExitCode, StsfixError

if TYPE_CHECKING:
    from stsfix.playbook import Playbook, Step

# Injection point for tests: the wait action sleeps through this.
SLEEP: Callable[[float], None] = time.sleep


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
    changed: bool = False  # a mutating step applied something


def _applied_anything(result: Any) -> bool:
    """Whether a step's envelope reports an applied step (its outcome, or a repair it held)."""
    if isinstance(result, list):
        return any(_applied_anything(v) for v in result)
    if not isinstance(result, dict):
        return False
    if {"index", "kind", "status"} <= result.keys() and result["status"] == "applied":
        return True
    return any(_applied_anything(v) for v in result.values())


def invoke(argv: list[str]) -> tuple[int, str]:
    """Run `stsfix ARGV` in-process; (exit code, stdout). stderr passes through to ours."""
    out = io.StringIO()
    code = 0
    quiet = STEP_OF_A_RUN.set(True)  # the step's error is reported by the run, once
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # a bug in a step must not lose the run's record
            note(f"error: internal error in step ({type(exc).__name__}: {str(exc)[:200]})")
            code = ExitCode.INTERNAL
        finally:
            STEP_OF_A_RUN.reset(quiet)
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
    for context in g.contexts:  # several: each step that cannot read them all says so (exit 2)
        extra += ["--context", context]
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
        """Run the steps; Ctrl-C or SIGTERM between or inside steps ends the run as `interrupted`
        (exit 130), with the steps so far in the result."""
        try:
            return self._run()
        except KeyboardInterrupt as stop:
            how = getattr(stop, "signal_name", "") or "Ctrl-C"
            done = ", ".join(r.id for r in self.state.records) or "none"
            self._stop("interrupted", ExitCode.INTERRUPTED, "interrupted",
                       f"playbook {self.playbook.name} was interrupted ({how}); steps run: {done}")  # fmt: skip
            return self.state

    def _run(self) -> RunState:
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
                why = f": {record.message}" if record.message else ""
                self._stop("interrupted", ExitCode.INTERRUPTED, "interrupted", f"step {step.id} was interrupted{why}")
                return self.state
            if record.next == "done":
                return self.state
            if step.mutates and _applied_anything(record.result):
                self.state.changed = True
            if record.next == "page":
                code = as_exit_code(record.exit_code or ExitCode.REFUSED)
                if code == ExitCode.ACTION_NEEDED and self.state.changed:
                    # A finding after this run changed the cluster: the repair did not converge (6),
                    # not a repair still to run (3), which would send a runbook round again.
                    code = ExitCode.NOT_CONVERGED
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
        elif typer.confirm(f"Run step {step.id} in {self._where()}: {line}?", default=False, err=True):
            return True
        else:
            code, why = "not_confirmed", f"Step {step.id} was not confirmed: nothing was changed."
        self._stop("refused", ExitCode.REFUSED, code, why)
        self.state.records.append(StepRecord(index + 1, step.id, line, ExitCode.REFUSED, "stop"))
        return False

    def _where(self) -> str:
        """The context, cluster, server and namespace the run's steps change (for the prompt)."""
        from stsfix.kube import KubeTarget, connect

        g = self.g
        try:
            cluster = connect(KubeTarget(kubeconfig=g.kubeconfig, context=g.context, namespace=g.namespace))
        except StsfixError as err:
            return f"an unusable configuration ({err.message})"
        return cluster.where(self.values.get("namespace") or cluster.namespace)

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
