"""`stsfix rollback`, `stsfix delete-pod` and `stsfix force-delete`: plan, show, confirm, execute.

Each command reads one Snapshot, asks the planner for a Plan, and then, by --dry-run:
`client` prints the plan (exit 3 when it changes something, 0 when there is nothing to do);
`server` runs every mutation with dryRun=All and reports what the server said; `none` asks for
confirmation on a TTY (or requires --yes) and executes. Progress goes to stderr (a live line on a
TTY, or JSON lines with --progress=jsonl); stdout carries only the result.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer

from stsfix.cli import complete
from stsfix.cli.common import (
    Globals,
    check_one_context,
    cluster_command,
    connect,
    emit,
    is_interactive,
    note,
    parse_duration,
    parse_target,
)
from stsfix.cli.sources import read_snapshot
from stsfix.errors import ConfirmationRequiredError, ExitCode, UsageError
from stsfix.render import Result, Screen, table

if TYPE_CHECKING:
    from stsfix.executor import Outcome, ProgressEvent
    from stsfix.planner import Plan
    from stsfix.ports import ClusterPort

TargetArg = Annotated[
    str, typer.Argument(help="NAME, sts/NAME or statefulset/NAME", autocompletion=complete.statefulsets)
]
OrdinalArg = Annotated[int, typer.Argument(help="The ordinal of the pod (web-3 -> 3).", min=0)]
DryRunOpt = Annotated[
    str,
    typer.Option(
        "--dry-run", help="none: act. client: print the plan. server: send every mutation with dryRun=All."
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Apply without asking (required when no terminal can confirm).")
]
TimeoutOpt = Annotated[str, typer.Option("--timeout", help="Deadline for the waits (e.g. 90s, 10m).")]
ProgressOpt = Annotated[
    str,
    typer.Option(
        "--progress",
        help="auto (live line on a TTY, plain lines otherwise), plain, jsonl, or none (retries and warnings only).",
    ),
]
EvictOpt = Annotated[
    bool, typer.Option("--evict", help="Evict through the Eviction API (PodDisruptionBudgets apply).")
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the pod to come back Ready.")]
PodOrdinalArg = Annotated[
    int | None, typer.Argument(help="The ordinal of the pod (web-3 -> 3); omit with --outdated.", min=0)
]
OutdatedOpt = Annotated[
    bool,
    typer.Option(
        "--outdated",
        help="OnDelete: replace every pod off the update revision, highest ordinal first, one at a time.",
    ),
]
CountOpt = Annotated[
    int | None, typer.Option("--count", help="With --outdated: at most this many pods (1: a canary).", min=1)
]
ForceLeaseOpt = Annotated[
    bool,
    typer.Option(
        "--force-lease",
        help="Take over the repair lease another run holds, after confirmation (--yes without a terminal); "
        "recorded as a StsfixLeaseTakenOver Event.",
    ),
]

DRY_RUN_MODES: Final = ("none", "client", "server")
PROGRESS_MODES: Final = ("auto", "plain", "jsonl", "none")
# Shown even with --progress=none: every retried attempt, conflict, re-plan and warning.
ALWAYS_SHOWN: Final = frozenset({"retry", "conflict", "replan", "warning"})
LEASE_SECONDS: Final = 60

# Injection points for tests (kopf's "controls impossible to pass via CLI").
SLEEP: Callable[[float], None] = time.sleep
RETRY_POLICY: Any = None


_HOLDER: Final = re.compile(r"^(?P<user>.+)@(?P<host>[^/]+)/pid-(?P<pid>\d+)$")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def lease_holder() -> str:
    """Who holds the lease: user@host/pid, so `kubectl get lease` says who is repairing."""
    return f"{_user()}@{socket.gethostname()}/pid-{os.getpid()}"


def process_gone(pid: int) -> bool:
    """True only when no process `pid` exists here (one we may not signal still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def lease_takeover(*, force: bool, yes: bool) -> Callable[[str, datetime], str | None]:
    """When a live repair lease of another holder may be taken over, and why (None: refuse).

    A run killed with SIGKILL leaves its lease live for a minute. Its own holder (this host and
    user, a pid that is gone) takes it over at once; anyone else needs `--force-lease`, confirmed
    on a terminal or by --yes. Either way the executor records a StsfixLeaseTakenOver Event.
    """
    user, host = _user(), socket.gethostname()

    def decide(holder: str, expires: datetime) -> str | None:
        found = _HOLDER.match(holder)
        if found and (found["user"], found["host"]) == (user, host):
            pid = int(found["pid"])
            if pid > 1 and pid != os.getpid() and process_gone(pid):
                return f"a run of {user} on {host} whose process {pid} is gone"
        if not force:
            return None
        if yes:
            return "--force-lease --yes"
        until = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        if is_interactive() and typer.confirm(
            f"Take over the repair lease held by {holder} (live until {until})?", default=False, err=True
        ):
            return "--force-lease, confirmed"
        return None

    return decide


# -- progress -----------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    from stsfix.analysis.pods import human_duration

    return human_duration(timedelta(seconds=max(seconds, 0.0)))


def wait_times(elapsed: float, remaining: float) -> str:
    """`(12s elapsed, 9m48s left)`: how long the run has taken and what --timeout still allows."""
    return f"({_clock(elapsed)} elapsed, {_clock(remaining)} left)"


class Progress:
    """Progress on stderr: plain lines, JSON lines, a live line on a TTY, or nothing.

    A wait says how long the run has taken and how much of --timeout is left; on a terminal the
    live line keeps counting (once a second) while the state it shows does not change.
    """

    def __init__(self, mode: str):
        if mode not in PROGRESS_MODES:
            raise UsageError(f'unknown --progress "{mode}": use one of {", ".join(PROGRESS_MODES)}')
        self.live = mode == "auto" and sys.stderr.isatty()
        self.mode = "plain" if mode == "auto" else mode
        self.open_line = False
        self._lock = threading.Lock()
        self._wait: tuple[str, float, float, float] | None = None  # line, elapsed, remaining, when
        self._ticker: threading.Thread | None = None
        self._stopped = threading.Event()

    def __call__(self, event: ProgressEvent) -> None:
        stream = sys.stderr
        if self.mode == "none" and event.event not in ALWAYS_SHOWN:
            return
        if self.mode == "jsonl":
            stream.write(json.dumps({"time": round(time.time(), 3), **event.to_dict()}, default=str) + "\n")
            stream.flush()
            return
        prefix = f"[{event.step}] " if event.step else ""
        label = "warning: " if event.event == "warning" else ""  # kubectl's `Warning:` lines, lower case
        text = f"{prefix}{label}{event.message}"
        timed = event.event == "wait" and "elapsed" in event.data
        with self._lock:
            if timed:
                elapsed = float(event.data["elapsed"])  # type: ignore[arg-type]
                left = float(event.data["remaining"])  # type: ignore[arg-type]
                self._wait = (text, elapsed, left, time.monotonic())
            elif event.event != "wait":
                self._wait = None
            if self.live and event.event == "wait":
                if timed:
                    self._draw_wait()
                else:
                    stream.write(f"\r\033[K{text}")
                self.open_line = True
                self._start_ticker()
            else:
                if self.open_line:
                    stream.write("\n")
                    self.open_line = False
                if timed:
                    text += " " + wait_times(elapsed, left)
                stream.write(f"{text}\n" if event.event != "step" else f"{text} ...\n")
            stream.flush()

    def _draw_wait(self) -> None:
        if self._wait is None:
            return
        line, elapsed, left, when = self._wait
        since = time.monotonic() - when
        sys.stderr.write(f"\r\033[K{line} {wait_times(elapsed + since, left - since)}")

    def _start_ticker(self) -> None:
        """Redraw the live line once a second, so its times keep counting between events."""
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stopped.wait(1.0):
                with self._lock:
                    if self.open_line and self._wait is not None:
                        self._draw_wait()
                        sys.stderr.flush()

        self._ticker = threading.Thread(target=tick, name="stsfix-progress", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            if self.open_line:
                sys.stderr.write("\n")
                self.open_line = False


# -- rendering ----------------------------------------------------------------------------------
def render_plan(plan: Plan) -> str:
    lines = [
        f"Plan for statefulset {plan.namespace}/{plan.name} ({plan.request.command}, {plan.fingerprint[:19]}…)"
    ]
    if plan.target_revision:
        number = f" (revision {plan.target_revision_number})" if plan.target_revision_number else ""
        lines.append(f"Target revision: {plan.target_revision}{number}")
    if plan.reasons:
        lines.append("Why:")
        lines.extend(f"  - {r}" for r in plan.reasons)
    if plan.steps:
        lines.append("Steps:")
        lines.extend(f"  {i}. {s.describe()}" for i, s in enumerate(plan.steps, 1))
    else:
        lines.append("Nothing to do: the StatefulSet is already healthy at the target revision.")
    if plan.warnings:
        lines.append("Warnings:")
        lines.extend(f"  ! {w}" for w in plan.warnings)
    return "\n".join(lines)


def render_outcome(outcome: Outcome, *, width: int | None = None) -> str:
    rows = [[s.index, s.kind, s.status, s.message or s.description] for s in outcome.steps]
    plan = outcome.plan
    head = (
        f"{plan.request.command} of statefulset {plan.namespace}/{plan.name}: {outcome.status}"
        f"{' (server dry run)' if outcome.dry_run else ''} in {outcome.seconds:.1f}s"
        + (f" after {outcome.replans} re-plan(s)" if outcome.replans else "")
    )
    parts = [table(rows, ["step", "kind", "result", "message"], width=width, fold=(3,)) if rows else "", head]
    return "\n".join(p for p in parts if p)  # the error itself goes to stderr (`emit`)


# -- the shared flow ----------------------------------------------------------------------------
def check_dry_run(value: str) -> str:
    if value not in DRY_RUN_MODES:
        raise UsageError(f'invalid --dry-run "{value}": use none, client or server')
    return value


def check_run_flags(
    *, dry_run: str, timeout: str, progress: str, yes: bool, contexts: tuple[str, ...] | list[str] = ()
) -> None:
    """What a mutating command refuses before it reads anything: bad flag values, and a run that
    needs confirmation no terminal can give (exit 4 at once, rather than after showing a plan)."""
    check_one_context(contexts)
    check_dry_run(dry_run)
    if parse_duration(timeout) <= 0:
        raise UsageError(f'invalid --timeout "{timeout}": the waits need a deadline above 0 (e.g. 90s, 10m)')
    Progress(progress)
    if dry_run == "none" and not yes and not is_interactive():
        raise ConfirmationRequiredError("Pass --yes to apply the plan when no terminal can confirm it.")


def where_of(cluster: object, namespace: str) -> str:
    """The context, cluster, server and namespace a change goes to (kubectl's `--context` words)."""
    where = getattr(cluster, "where", None)
    return str(where(namespace)) if callable(where) else f'namespace "{namespace}"'


def confirm(plan: Plan, *, yes: bool, where: str = "") -> None:
    """Confirmation on a TTY, naming the context, cluster and namespace; `--yes` otherwise (exit 4)."""
    if yes or plan.is_empty:
        return
    if not is_interactive():
        raise ConfirmationRequiredError("Pass --yes to apply the plan when no terminal can confirm it.")
    target = f"statefulset {plan.namespace}/{plan.name}" + (f" in {where}" if where else "")
    if not typer.confirm(f"Apply this plan to {target}?", default=False, err=True):
        raise ConfirmationRequiredError("Not confirmed: nothing was changed.")


def plan_payload(plan: Plan) -> dict[str, Any]:
    return {"statefulset": {"namespace": plan.namespace, "name": plan.name}, "plan": plan.to_dict()}


def run_plan(
    g: Globals,
    cluster: ClusterPort,
    plan: Plan,
    *,
    dry_run: str,
    yes: bool,
    timeout: str,
    progress: str,
    allow_replan: bool = True,
    force_lease: bool = False,
) -> None:
    """Show the plan, then print it (client), run it as a server dry run, or confirm and run it."""
    from stsfix.executor import RetryPolicy, execute

    sink = Progress(progress)
    if dry_run == "client":
        code = ExitCode.OK if plan.is_empty else ExitCode.ACTION_NEEDED
        emit(Result(kind="Plan", exit_code=code, payload=plan_payload(plan)), g, human=render_plan(plan))
        return
    if sink.mode != "jsonl" and sink.mode != "none":
        note(render_plan(plan))
    if dry_run == "none":
        confirm(plan, yes=yes, where=where_of(cluster, plan.namespace))
    configure_lease(cluster, force=force_lease, yes=yes)
    try:
        outcome = execute(
            plan,
            cluster,
            dry_run=dry_run == "server",
            policy=RETRY_POLICY or RetryPolicy(),
            sleep=SLEEP,
            timeout_s=parse_duration(timeout),
            progress=sink,
            allow_replan=allow_replan,
            lease_holder=lease_holder(),
            lease_seconds=LEASE_SECONDS,
        )
    finally:
        sink.close()
    result = outcome_result(outcome)
    if outcome.exit_code == ExitCode.NOT_CONVERGED:
        result = with_diagnosis(result, cluster, plan)
    emit(result, g, human=render_outcome(outcome, width=g.width))


def configure_lease(cluster: ClusterPort, *, force: bool, yes: bool) -> None:
    """Give the adapter (a KubeCluster, the composition root knows) its lease takeover policy."""
    cast(Any, cluster).lease_takeover = lease_takeover(force=force, yes=yes)


def with_diagnosis(result: Result, cluster: ClusterPort, plan: Plan) -> Result:
    """Attach `stsfix diagnose` of the current state to a not-converged result (stderr and JSON)."""
    from stsfix.analysis.diagnose import diagnose
    from stsfix.analysis.serialize import diagnosis_to_dict
    from stsfix.cli.diagnose import diagnosis_text
    from stsfix.errors import StsfixError

    try:
        snapshot = read_snapshot(cluster, plan.namespace, plan.name)
        found = diagnose(snapshot, now=snapshot.observed_at or cluster.server_now())
    except StsfixError as err:
        note(f"warning: could not diagnose the current state: {err.message}")
        return result
    from stsfix.cli.common import screen_width

    note("Diagnosis of the current state:\n" + diagnosis_text(found, screen=Screen(width=screen_width())))
    return Result(
        kind=result.kind,
        exit_code=result.exit_code,
        payload={**result.payload, "diagnosis": diagnosis_to_dict(found)},
        errors=result.errors,
    )


def outcome_result(outcome: Outcome) -> Result:
    code = outcome.exit_code
    if outcome.dry_run and code == ExitCode.OK and not outcome.plan.is_empty:
        code = ExitCode.ACTION_NEEDED
    errors: tuple[dict[str, Any], ...] = ()
    if outcome.error is not None:
        errors = ({"code": outcome.error.code, "message": outcome.error.message},)
    payload = {**plan_payload(outcome.plan), "outcome": outcome.to_dict()}
    return Result(kind="Repair", exit_code=code, payload=payload, errors=errors)


def read(g: Globals, target: str) -> tuple[ClusterPort, Any]:
    name = parse_target(target)
    cluster, namespace = connect(g)
    return cluster, read_snapshot(cluster, namespace, name)


def _now(cluster: ClusterPort, snapshot: Any) -> Any:
    return snapshot.observed_at or cluster.server_now()


# -- commands -----------------------------------------------------------------------------------
def make_rollback_plan(
    g: Globals, target: str, to_revision: int | None, evict: bool, stuck_after: str = "5m"
) -> tuple[ClusterPort, Plan]:
    from stsfix.cli.sources import parse_stuck_after
    from stsfix.planner import plan_rollback

    threshold = parse_stuck_after(stuck_after)
    cluster, snapshot = read(g, target)
    return cluster, plan_rollback(
        snapshot, now=_now(cluster, snapshot), to_revision=to_revision, evict=evict, stuck_after=threshold
    )


def make_delete_plan(
    g: Globals,
    target: str,
    ordinal: int | None,
    evict: bool,
    force: bool,
    wait: bool,
    *,
    outdated: bool = False,
    count: int | None = None,
) -> tuple[ClusterPort, Plan]:
    from stsfix.planner import plan_delete_outdated, plan_delete_pod

    if outdated == (ordinal is not None):
        raise UsageError("give the ORDINAL of one pod, or --outdated (OnDelete: every pod off the update revision)")
    if count is not None and not outdated:
        raise UsageError("--count goes with --outdated")
    if outdated and force:
        raise UsageError("--outdated needs no --force: it replaces one pod at a time, each once the one before is Ready")
    cluster, snapshot = read(g, target)
    now = _now(cluster, snapshot)
    if ordinal is None:
        return cluster, plan_delete_outdated(snapshot, now=now, count=count or 0, evict=evict, wait=wait)
    return cluster, plan_delete_pod(snapshot, ordinal, now=now, evict=evict, force=force, wait=wait)


def make_force_plan(
    g: Globals, target: str, ordinal: int, node_lost_after: str, wait: bool
) -> tuple[ClusterPort, Plan]:
    from stsfix.planner import plan_force_delete

    threshold = timedelta(seconds=parse_duration(node_lost_after))
    cluster, snapshot = read(g, target)
    return cluster, plan_force_delete(
        snapshot, ordinal, now=_now(cluster, snapshot), node_lost_after=threshold, wait=wait
    )


ToRevisionOpt = Annotated[
    int | None,
    typer.Option(
        "--to-revision",
        help="Roll back to this revision number (see stsfix history).",
        min=1,
        autocompletion=complete.revisions,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Allow deleting a pod that is Running and Ready.")]
StuckAfterOpt = Annotated[
    str,
    typer.Option(
        "--stuck-after",
        help="Judge as `stsfix diagnose --stuck-after` does: the revert must be the repair diagnose proposes.",
    ),
]
NodeLostOpt = Annotated[
    str, typer.Option("--node-lost-after", help="How long the node must be NotReady/Unknown (server clock).")
]


@cluster_command
def rollback(
    target: TargetArg,
    to_revision: ToRevisionOpt = None,
    evict: EvictOpt = False,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    stuck_after: StuckAfterOpt = "5m",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """The forced rollback: revert the template, wait until observed, replace the stuck pods, wait for the rollout.

    The target defaults to status.currentRevision (the last revision every pod ran Ready at);
    ambiguous cases are refused unless --to-revision is given, and so is a revert that `stsfix
    diagnose` does not propose. Only pods off the target revision that are not Ready are deleted,
    highest ordinal first, and only once the controller has observed the revert.
    """
    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    cluster, plan = make_rollback_plan(g, target, to_revision, evict, stuck_after)
    run_plan(
        g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress, force_lease=force_lease
    )


@cluster_command
def delete_pod(
    target: TargetArg,
    ordinal: PodOrdinalArg = None,
    evict: EvictOpt = False,
    force: ForceOpt = False,
    wait: WaitOpt = True,
    outdated: OutdatedOpt = False,
    count: CountOpt = None,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """Delete (or --evict) one pod with uid/resourceVersion preconditions; a Ready pod needs --force.

    With --outdated instead of an ORDINAL (OnDelete sets), roll out the update: delete each pod off
    the update revision, highest ordinal first, each once the one before is Ready again at the
    update revision; a replacement that fails stops the run (exit 6). --count 1 replaces one pod,
    a canary.
    """
    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    cluster, plan = make_delete_plan(g, target, ordinal, evict, force, wait, outdated=outdated, count=count)
    run_plan(
        g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress, force_lease=force_lease
    )


@cluster_command
def force_delete(
    target: TargetArg,
    ordinal: OrdinalArg,
    node_lost_after: NodeLostOpt = "5m",
    wait: WaitOpt = True,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """Force-delete (grace period 0) a pod whose node is gone or NotReady beyond --node-lost-after.

    Refused for a pod on a Ready node. If the node is in fact still running the pod, its identity
    (name and volumes) may run twice: the plan says what was checked.
    """
    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    cluster, plan = make_force_plan(g, target, ordinal, node_lost_after, wait)
    run_plan(
        g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress, force_lease=force_lease
    )


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
    app.command("delete-pod")(delete_pod)
    app.command("force-delete")(force_delete)
