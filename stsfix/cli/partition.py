"""`stsfix partition TARGET --hold | --set N | --step [--count K] | --until N`: a canary on a plain StatefulSet.

`--hold` sets the partition to replicas (nothing further updates); change the template, then
`--step` releases one ordinal (or `--count K`) and waits until the released pods are Ready, and
available for minReadySeconds, at the update revision; `--until N` keeps stepping down to N.
With `--pause-on-failure` (the default), an updated pod that fails (or does not become Ready in
`--timeout`) puts the partition back to hold and exits 6 with a diagnosis. Dry-run, confirmation,
`--yes`, `--progress`, the lease and the audit events are those of the repairs (`stsfix.cli.repair`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from stsfix.cli.common import Globals, cluster_command, emit, note, parse_duration
from stsfix.cli.plan_group import SaveOpt, plan_app, save_or_print
from stsfix.cli.repair import (
    DryRunOpt,
    ForceLeaseOpt,
    Progress,
    ProgressOpt,
    TargetArg,
    TimeoutOpt,
    YesOpt,
    check_run_flags,
    configure_lease,
    confirm,
    lease_holder,
    outcome_result,
    read,
    render_outcome,
    render_plan,
    run_plan,
    where_of,
)
from stsfix.cli.sources import read_snapshot
from stsfix.errors import ExitCode, NotConvergedError, RefusedError
from stsfix.render import Result

if TYPE_CHECKING:
    from collections.abc import Callable

    from stsfix.analysis.findings import Diagnosis
    from stsfix.executor import Outcome, ProgressEvent
    from stsfix.model import Snapshot
    from stsfix.planner import Plan
    from stsfix.ports import ClusterPort

HOLD_TIMEOUT_S: Final = 60.0
OBSERVE_TIMEOUT_S: Final = 30.0

HoldOpt = Annotated[
    bool, typer.Option("--hold", help="Set the partition to replicas: nothing further updates.")
]
SetOpt = Annotated[
    int | None, typer.Option("--set", help="Set the partition to N (lowering it waits as a step).", min=0)
]
StepOpt = Annotated[
    bool,
    typer.Option("--step", help="Lower the partition by --count ordinals, then wait for the released pods."),
]
CountOpt = Annotated[int, typer.Option("--count", help="Ordinals released per step.", min=1)]
UntilOpt = Annotated[
    int | None, typer.Option("--until", help="Keep stepping until the partition is N.", min=0)
]
PauseOpt = Annotated[
    bool,
    typer.Option(
        "--pause-on-failure/--no-pause-on-failure",
        help="When an updated pod fails, put the partition back to hold and exit 6 with a diagnosis.",
    ),
]
GateOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait", help="Wait for the released pods to be Ready (the gate) after each step."
    ),
]


def observed(cluster: ClusterPort, snapshot: Snapshot, *, timeout_s: float = OBSERVE_TIMEOUT_S) -> Snapshot:
    """The snapshot once the controller has observed the latest spec (plans are judged on it)."""
    sts = snapshot.statefulset
    if sts.observed_generation >= sts.meta.generation:
        return snapshot
    with contextlib.closing(
        cluster.watch_changes(sts.namespace, sts.name, timeout_seconds=timeout_s)
    ) as stream:  # type: ignore[type-var]
        for fresh in stream:
            if fresh.statefulset.observed_generation >= fresh.statefulset.meta.generation:
                return fresh
    raise RefusedError(
        f"the StatefulSet controller has not observed generation {sts.meta.generation} of "
        f"statefulset {sts.namespace}/{sts.name} within {timeout_s:.0f}s; is kube-controller-manager running?",
        code="controller_not_observing",
    )


def make_partition_plan(g: Globals, target: str, **flags: Any) -> tuple[ClusterPort, Plan]:
    from stsfix.planner.partition import partition_request, plan_partition

    cluster, snapshot = read(g, target)
    snapshot = observed(cluster, snapshot)
    request = partition_request(snapshot.statefulset, **flags)
    return cluster, plan_partition(snapshot, request, now=snapshot.observed_at or cluster.server_now())


def _execute(
    plan: Plan,
    cluster: ClusterPort,
    sink: Progress,
    *,
    dry_run: bool,
    timeout_s: float,
    allow_replan: bool = True,
) -> Outcome:
    from stsfix.cli import repair
    from stsfix.executor import RetryPolicy, execute

    return execute(
        plan,
        cluster,
        dry_run=dry_run,
        policy=repair.RETRY_POLICY or RetryPolicy(),
        sleep=repair.SLEEP,
        timeout_s=timeout_s,
        progress=sink,
        allow_replan=allow_replan,
        lease_holder=lease_holder(),
        lease_seconds=repair.LEASE_SECONDS,
    )


@dataclass(frozen=True, slots=True)
class Paused:
    """What pause-on-failure did: the hold run (None when the partition already held) and the diagnosis."""

    hold: Outcome | None
    diagnosis: Diagnosis
    partition: int | None


def hold_after_failure(cluster: ClusterPort, plan: Plan, sink: Callable[[ProgressEvent], None]) -> Paused:
    """Put the partition back to replicas, then diagnose (evidence is in: stuck_after=0)."""
    from stsfix.analysis.diagnose import diagnose
    from stsfix.executor import ProgressEvent
    from stsfix.planner.partition import partition_request, plan_partition

    snapshot = read_snapshot(cluster, plan.namespace, plan.name)
    sts = snapshot.statefulset
    hold: Outcome | None = None
    if (sts.partition or 0) < sts.replicas:
        sink(
            ProgressEvent(
                "warning", f"an updated pod failed: putting the partition back to {sts.replicas} (hold)"
            )
        )
        hold_plan = plan_partition(snapshot, partition_request(sts, hold=True), now=cluster.server_now())
        hold = _execute(hold_plan, cluster, sink, dry_run=False, timeout_s=HOLD_TIMEOUT_S)  # type: ignore[arg-type]
    after = read_snapshot(cluster, plan.namespace, plan.name, events=True)
    now = after.observed_at or cluster.server_now()
    return Paused(hold, diagnose(after, now=now, stuck_after=timedelta(0)), after.statefulset.partition)


def _paused_text(outcome: Outcome, paused: Paused) -> str:
    held = paused.hold is None or paused.hold.error is None
    details = outcome.error.details if outcome.error is not None else {}
    failed = (
        f"{details['pod']} failed at the update revision {details.get('revision')} ({details.get('reason')}). "
        if details.get("pod")
        else "an updated pod did not become Ready in time. "
    )
    lines = [
        render_outcome(outcome),
        (
            f"paused: {failed}The partition is {paused.partition} (hold), so no further pod is updated. Pods already updated "
            "keep their revision: raising the partition does not roll them back (kubernetes#91676)."
            if held
            else f"error: could not put the partition back to hold: {paused.hold.error.message}"  # type: ignore[union-attr]
        ),
        f"diagnosis: {paused.diagnosis.verdict.value}",
    ]
    lines.extend(f"  - {f.message}" for f in paused.diagnosis.findings if f.severity.value != "info")
    return "\n".join(lines)


def paused_result(outcome: Outcome, paused: Paused) -> Result:
    from stsfix.analysis.serialize import diagnosis_to_dict

    base = outcome_result(outcome)
    error = outcome.error
    entry = {
        "code": "paused_on_failure",
        "message": f"an updated pod failed; the partition is back at {paused.partition} (hold)",
        "cause": error.code if error is not None else "",
    }
    payload = {
        **base.payload,
        "held": None if paused.hold is None else paused.hold.to_dict(),
        "partition": paused.partition,
        "diagnosis": diagnosis_to_dict(paused.diagnosis),
    }
    return Result(
        kind=base.kind, exit_code=ExitCode.NOT_CONVERGED, payload=payload, errors=(entry, *base.errors)
    )


def run_partition_plan(
    g: Globals,
    cluster: ClusterPort,
    plan: Plan,
    *,
    dry_run: str,
    yes: bool,
    timeout: str,
    progress: str,
    pause_on_failure: bool,
    allow_replan: bool = True,
    force_lease: bool = False,
) -> None:
    """`run_plan`, plus pause-on-failure: a failed or timed-out gate puts the partition back to hold."""
    if dry_run == "client":
        run_plan(g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress)
        return
    sink = Progress(progress)
    if sink.mode not in ("jsonl", "none"):
        note(render_plan(plan))
    if dry_run == "none":
        confirm(plan, yes=yes, where=where_of(cluster, plan.namespace))
    configure_lease(cluster, force=force_lease, yes=yes)
    paused: Paused | None = None
    try:
        outcome = _execute(
            plan,
            cluster,
            sink,
            dry_run=dry_run == "server",
            timeout_s=parse_duration(timeout),
            allow_replan=allow_replan,
        )
        if pause_on_failure and dry_run == "none" and isinstance(outcome.error, NotConvergedError):
            paused = hold_after_failure(cluster, plan, sink)
    finally:
        sink.close()
    if paused is not None:
        emit(paused_result(outcome, paused), g, human=_paused_text(outcome, paused))
        return
    if outcome.replans and outcome.error is None:
        note(
            f"note: the cluster changed during the run ({outcome.replans} re-plan(s)); the gates were applied to "
            "whatever revision the controller rolled out, and nothing was overwritten"
        )
    emit(outcome_result(outcome), g, human=render_outcome(outcome, width=g.width))


@cluster_command
def partition(
    target: TargetArg,
    hold: HoldOpt = False,
    set_to: SetOpt = None,
    step: StepOpt = False,
    count: CountOpt = 1,
    until: UntilOpt = None,
    pause_on_failure: PauseOpt = True,
    wait: GateOpt = True,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """Hold, set or step spec.updateStrategy.rollingUpdate.partition, with readiness gates.

    A canary with nothing installed: --hold, change the template, then --step one pod at a time
    (or --until 0). Each step waits until the released pods are Ready and available at the update
    revision; a failed pod puts the partition back to hold and exits 6 (--no-pause-on-failure to
    leave it). The controller replaces pods one at a time, or maxUnavailable at a time where the
    server honours it.
    """
    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    cluster, plan = make_partition_plan(
        g, target, hold=hold, set_to=set_to, step=step, count=count, until=until, wait=wait
    )
    run_partition_plan(
        g,
        cluster,
        plan,
        dry_run=dry_run,
        yes=yes,
        timeout=timeout,
        progress=progress,
        pause_on_failure=pause_on_failure,
        force_lease=force_lease,
    )


@cluster_command
def plan_partition_cmd(
    target: TargetArg,
    hold: HoldOpt = False,
    set_to: SetOpt = None,
    step: StepOpt = False,
    count: CountOpt = 1,
    until: UntilOpt = None,
    wait: GateOpt = True,
    save: SaveOpt = None,
    *,
    g: Globals,
) -> None:
    """Plan a partition move (see `stsfix partition`); `stsfix apply FILE` runs it."""
    _, plan = make_partition_plan(
        g, target, hold=hold, set_to=set_to, step=step, count=count, until=until, wait=wait
    )
    save_or_print(g, plan, save)


def register(app: typer.Typer) -> None:
    app.command("partition")(partition)
    plan_app.command("partition")(plan_partition_cmd)
