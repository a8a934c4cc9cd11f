"""What every finding rule needs: the snapshot, `now`, the stuck threshold and the server version.

Also the small derived facts several rules share (the controller's wait, which pods are stuck,
whether the update revision is bad or healthy, which update path the controller runs). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from stsfix.analysis.controller import ControllerWait, controller_wait, is_monotonic, max_unavailable_gate
from stsfix.analysis.findings import Cause, RepairStep, delete_pod
from stsfix.analysis.pods import cause_of, is_running_and_ready, stuck_evidence
from stsfix.analysis.revisions import revision_for_template
from stsfix.analysis.versions import ServerVersion, has_parallel_max_unavailable_fix
from stsfix.model import PodState, RevisionInfo, Snapshot, StatefulSetState


class ReplacementMode(StrEnum):
    """Who replaces a broken pod once the template is good (semantics reference §7)."""

    MANUAL = "manual"  # OrderedReady, OnDelete: only a deletion moves it (#67250)
    CONTROLLER = "controller"  # Parallel with the gate off, or 1.37+: the update loop deletes it
    REGRESSION = "regression"  # Parallel + maxUnavailable gate without the 1.37 fix (#137409)


@dataclass(frozen=True, slots=True)
class Context:
    snapshot: Snapshot
    now: datetime
    stuck_after: timedelta
    version: ServerVersion | None
    wait: ControllerWait | None = field(default=None)
    #: Pods judged as if already stuck (`stuck_after` 0): failing ones, for the "failing" verdict.
    promoted: frozenset[str] = field(default=frozenset())

    @property
    def sts(self) -> StatefulSetState:
        return self.snapshot.statefulset

    @property
    def observed(self) -> bool:
        return self.sts.observed_generation >= self.sts.meta.generation


def make_context(
    snapshot: Snapshot, *, now: datetime, stuck_after: timedelta, version: ServerVersion | None
) -> Context:
    return Context(snapshot, now, stuck_after, version, controller_wait(snapshot, now=now, version=version))


def set_pods(ctx: Context) -> list[PodState]:
    """Pods of the set with an ordinal, ascending."""
    return sorted((p for p in ctx.snapshot.pods if p.ordinal is not None), key=lambda p: p.ordinal or 0)


def in_range(ctx: Context, pod: PodState) -> bool:
    return pod.ordinal is not None and pod.ordinal in ctx.sts.ordinals


def stuck_pods(ctx: Context) -> list[tuple[PodState, tuple[str, ...]]]:
    """Every pod of the set with evidence over time that it is stuck, ascending by ordinal."""
    found = []
    for pod in set_pods(ctx):
        after = timedelta(0) if pod.name in ctx.promoted else ctx.stuck_after
        evidence = stuck_evidence(pod, now=ctx.now, stuck_after=after)
        if evidence:
            found.append((pod, evidence))
    return found


def replacement_mode(ctx: Context) -> ReplacementMode:
    """Whether the controller itself replaces broken outdated pods after a revert (§7)."""
    sts = ctx.sts
    if sts.update_strategy != "RollingUpdate" or is_monotonic(sts):
        return ReplacementMode.MANUAL
    if max_unavailable_gate(sts, ctx.version) and not has_parallel_max_unavailable_fix(ctx.version):
        return ReplacementMode.REGRESSION
    return ReplacementMode.CONTROLLER


def has_ready_pod(ctx: Context, revision: str) -> bool:
    """Some pod of the set runs `revision` and is Running and Ready."""
    return any(p.revision == revision and is_running_and_ready(p) and not p.deleting for p in set_pods(ctx))


def update_revision_is_bad(ctx: Context, stuck: list[PodState]) -> bool:
    """The update revision is new (≠ current), a pod on it is stuck, and no pod on it is Ready."""
    update = ctx.sts.update_revision
    if not update or update == ctx.sts.current_revision:
        return False
    return any(p.revision == update for p in stuck) and not has_ready_pod(ctx, update)


def live_template_revision(ctx: Context) -> RevisionInfo | None:
    """The revision equal to the live template (it may be newer than the status says)."""
    return revision_for_template(ctx.snapshot)


def revision_label(ctx: Context, name: str) -> str:
    """`web-6c5f8d9b4f (2)`: a revision name with its number when known."""
    revision = ctx.snapshot.revision_named(name)
    return f"{name} ({revision.revision})" if revision is not None else name


def on_lost_node(ctx: Context, pod: PodState) -> bool:
    """The pod is not Ready and its node is NotReady or Unknown."""
    node = ctx.snapshot.node_named(pod.node_name) if pod.node_name else None
    return node is not None and node.ready != "True" and not is_running_and_ready(pod)


def pod_cause(ctx: Context, pods: list[PodState]) -> Cause:
    """The first specific cause among the pods; a pod on a NotReady/Unknown node is node-lost."""
    causes = [Cause.NODE_LOST if on_lost_node(ctx, p) else Cause(cause_of(p)) for p in pods]
    return next((c for c in causes if c is not Cause.UNKNOWN), Cause.UNKNOWN)


def blocks(ctx: Context, pod: PodState) -> bool:
    """The controller waits on this pod, or (OrderedReady) it sits in the replica range."""
    return (ctx.wait is not None and ctx.wait.ordinal == pod.ordinal) or (
        in_range(ctx, pod) and ctx.sts.pod_management_policy != "Parallel"
    )


def delete_steps(ctx: Context, victims: list[PodState]) -> list[RepairStep]:
    """One delete-pod command per victim (highest ordinal first), each of which succeeds when run in
    order: under OrderedReady a deleted pod comes back only once every lower ordinal is Ready (§5.4),
    so every delete but the last (lowest) one skips the wait for its replacement."""
    ordered = ctx.sts.pod_management_policy != "Parallel"
    return [
        delete_pod(ctx.sts, p.name, p.ordinal or 0, wait=not ordered or i == len(victims) - 1)
        for i, p in enumerate(victims)
    ]
