"""`stsfix restart TARGET`: a rolling restart (kubectl's restartedAt annotation) that is safe during rollouts.

It first looks for a rollout in flight: by default it refuses (exit 4, naming it) while one is
progressing or stuck; `--wait-for-rollout` waits for a progressing one to finish first (a stuck
one is still refused: waiting would not help). So a restart from a CronJob never piles onto an
upgrade, and a stuck rollout is reported, not buried. Ordinals below a partition do not restart
(a warning says which). Under OnDelete, where the controller replaces nothing on its own, the
plan deletes one pod at a time, highest ordinal first, each once the previous one is Ready again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from stsfix.cli.common import Globals, cluster_command
from stsfix.cli.plan_group import SaveOpt, plan_app, save_or_print
from stsfix.cli.repair import (
    DryRunOpt,
    ForceLeaseOpt,
    ProgressOpt,
    TargetArg,
    TimeoutOpt,
    YesOpt,
    check_run_flags,
    read,
    run_plan,
)

if TYPE_CHECKING:
    from stsfix.planner import Plan
    from stsfix.ports import ClusterPort

WaitForRolloutOpt = Annotated[
    bool,
    typer.Option(
        "--wait-for-rollout",
        help="If a rollout is progressing, wait for it to complete, then restart (a stuck one is still refused).",
    ),
]
DeletePodsOpt = Annotated[
    bool,
    typer.Option(
        "--delete-pods/--no-delete-pods",
        help="OnDelete only: delete the pods one at a time behind readiness gates (default), or only annotate.",
    ),
]
RestartWaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for every restarted pod to be Ready again.")
]


def make_restart_plan(
    g: Globals, target: str, *, wait_for_rollout: bool, delete_pods: bool, wait: bool
) -> tuple[ClusterPort, Plan]:
    from stsfix.planner.restart import plan_restart, restart_request

    cluster, snapshot = read(g, target)
    now = snapshot.observed_at or cluster.server_now()
    request = restart_request(
        restarted_at=now, wait_for_rollout=wait_for_rollout, delete_pods=delete_pods, wait=wait
    )
    return cluster, plan_restart(snapshot, request, now=now)


@cluster_command
def restart(
    target: TargetArg,
    wait_for_rollout: WaitForRolloutOpt = False,
    delete_pods: DeletePodsOpt = True,
    wait: RestartWaitOpt = True,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """Restart every pod (kubectl.kubernetes.io/restartedAt), refusing while a rollout is in flight.

    Exit 4 names a progressing or stuck rollout (--wait-for-rollout waits for a progressing one).
    Ordinals below a partition do not restart. Under OnDelete the pods are deleted one at a time,
    highest ordinal first, each once the previous one is Ready again (--no-delete-pods to skip).
    """
    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    cluster, plan = make_restart_plan(
        g, target, wait_for_rollout=wait_for_rollout, delete_pods=delete_pods, wait=wait
    )
    run_plan(
        g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress, force_lease=force_lease
    )


@cluster_command
def plan_restart_cmd(
    target: TargetArg,
    wait_for_rollout: WaitForRolloutOpt = False,
    delete_pods: DeletePodsOpt = True,
    wait: RestartWaitOpt = True,
    save: SaveOpt = None,
    *,
    g: Globals,
) -> None:
    """Plan a restart (see `stsfix restart`); `stsfix apply FILE` runs it."""
    _, plan = make_restart_plan(
        g, target, wait_for_rollout=wait_for_rollout, delete_pods=delete_pods, wait=wait
    )
    save_or_print(g, plan, save)


def register(app: typer.Typer) -> None:
    app.command("restart")(restart)
    plan_app.command("restart")(plan_restart_cmd)
