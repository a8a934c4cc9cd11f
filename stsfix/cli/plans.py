"""`stsfix plan rollback|delete-pod|force-delete ... [--save FILE]` and `stsfix apply FILE`.

A saved plan carries its preconditions and a fingerprint (sha256 of its canonical JSON). `apply`
re-reads the cluster and refuses (exit 4, listing what changed) when the StatefulSet's uid,
generation or updateRevision, or a targeted pod, changed since the plan was made; effects of the
plan's own steps are not changes, so an interrupted apply can be re-applied. `--replan` makes a
fresh plan for the same request instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stsfix.cli.common import Globals, cluster_command, connect, note
from stsfix.cli.partition import run_partition_plan
from stsfix.cli.plan_group import SaveOpt, plan_app, save_or_print
from stsfix.cli.repair import (
    CountOpt,
    DryRunOpt,
    EvictOpt,
    ForceLeaseOpt,
    ForceOpt,
    NodeLostOpt,
    OrdinalArg,
    OutdatedOpt,
    PodOrdinalArg,
    ProgressOpt,
    StuckAfterOpt,
    TargetArg,
    TimeoutOpt,
    ToRevisionOpt,
    WaitOpt,
    YesOpt,
    check_run_flags,
    make_delete_plan,
    make_force_plan,
    make_rollback_plan,
    run_plan,
)
from stsfix.cli.sources import read_snapshot
from stsfix.errors import PreconditionFailedError, UsageError

PlanFileArg = Annotated[Path, typer.Argument(help="A plan file written by `stsfix plan ... --save`.")]
ReplanOpt = Annotated[
    bool, typer.Option("--replan", help="Make a fresh plan from the current state instead of refusing.")
]


@cluster_command
def plan_rollback_cmd(
    target: TargetArg,
    to_revision: ToRevisionOpt = None,
    evict: EvictOpt = False,
    save: SaveOpt = None,
    stuck_after: StuckAfterOpt = "5m",
    *,
    g: Globals,
) -> None:
    """Plan the forced rollback (see `stsfix rollback`)."""
    _, plan = make_rollback_plan(g, target, to_revision, evict, stuck_after)
    save_or_print(g, plan, save)


@cluster_command
def plan_delete_pod_cmd(
    target: TargetArg,
    ordinal: PodOrdinalArg = None,
    evict: EvictOpt = False,
    force: ForceOpt = False,
    wait: WaitOpt = True,
    outdated: OutdatedOpt = False,
    count: CountOpt = None,
    save: SaveOpt = None,
    *,
    g: Globals,
) -> None:
    """Plan the deletion of one pod, or with --outdated the OnDelete update (see `stsfix delete-pod`)."""
    _, plan = make_delete_plan(g, target, ordinal, evict, force, wait, outdated=outdated, count=count)
    save_or_print(g, plan, save)


@cluster_command
def plan_force_delete_cmd(
    target: TargetArg,
    ordinal: OrdinalArg,
    node_lost_after: NodeLostOpt = "5m",
    wait: WaitOpt = True,
    save: SaveOpt = None,
    *,
    g: Globals,
) -> None:
    """Plan the force deletion of one pod on a lost node (see `stsfix force-delete`)."""
    _, plan = make_force_plan(g, target, ordinal, node_lost_after, wait)
    save_or_print(g, plan, save)


def load_plan(path: Path) -> Any:
    import yaml

    from stsfix.planner import plan_from_dict

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"cannot read plan file {path}: {err}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path} is not a plan file")
    return plan_from_dict(raw)


@cluster_command
def apply(
    plan_file: PlanFileArg,
    replan: ReplanOpt = False,
    dry_run: DryRunOpt = "none",
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    progress: ProgressOpt = "auto",
    force_lease: ForceLeaseOpt = False,
    *,
    g: Globals,
) -> None:
    """Apply a saved plan after re-checking its preconditions (exit 4 listing what changed)."""
    from stsfix.planner import check_preconditions
    from stsfix.planner import replan as fresh_plan

    check_run_flags(dry_run=dry_run, timeout=timeout, progress=progress, yes=yes, contexts=g.contexts)
    plan = load_plan(plan_file)
    if g.namespace and g.namespace != plan.namespace:
        raise UsageError(f"the plan is for namespace {plan.namespace}, not {g.namespace}")
    cluster, _ = connect(g)
    snapshot = read_snapshot(cluster, plan.namespace, plan.name)
    changes = check_preconditions(plan, snapshot)
    if changes and not replan:
        listed = "; ".join(changes)
        raise PreconditionFailedError(
            f"the cluster changed since the plan was saved: {listed}. Re-run with --replan to make a fresh plan",
            code="stale_plan",
            details={"changes": listed, "fingerprint": plan.fingerprint},
        )
    if replan:
        plan = fresh_plan(plan.request, snapshot, now=snapshot.observed_at or cluster.server_now())
        note("re-planned from the current state" + (f" (changed: {'; '.join(changes)})" if changes else ""))
    if plan.request.command == "partition":
        # pause-on-failure holds for saved plans too
        run_partition_plan(
            g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress,
            pause_on_failure=True, allow_replan=replan, force_lease=force_lease,
        )  # fmt: skip
        return
    run_plan(
        g, cluster, plan, dry_run=dry_run, yes=yes, timeout=timeout, progress=progress, allow_replan=replan,
        force_lease=force_lease,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    plan_app.command("rollback")(plan_rollback_cmd)
    plan_app.command("delete-pod")(plan_delete_pod_cmd)
    plan_app.command("force-delete")(plan_force_delete_cmd)
    app.add_typer(plan_app, name="plan")
    app.command("apply")(apply)
