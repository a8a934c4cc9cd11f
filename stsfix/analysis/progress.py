"""Per-ordinal rollout progress: one row per ordinal, the set-level header, the controller's wait.

`ordinal_progress(snapshot, now=...)` is what `stsfix inspect` renders; `rollout_status_message`
is kubectl's `StatefulSetStatusViewer` as a pure `(message, done)` text (semantics reference
§9.3, C38). Progress carries no verdict: `stsfix.analysis.diagnose.verdict_of` is the one rule
that decides complete, progressing, paused, stuck or unknown, for `inspect` and `diagnose` alike.
Pure: stdlib, `stsfix.model` and `stsfix.errors` only; never reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from stsfix.analysis.controller import ControllerWait, controller_wait, pod_name, update_floor
from stsfix.analysis.pods import age, is_available, is_healthy, is_healthy_and_available, pod_reason
from stsfix.analysis.revisions import revisions_by_number
from stsfix.analysis.versions import ServerVersion, parse_version
from stsfix.model import ContainerState, PodState, Snapshot

__all__ = [
    "DEFAULT_STUCK_AFTER",
    "OrdinalRow",
    "RevisionRole",
    "RolloutProgress",
    "RolloutState",
    "is_rollout_complete",
    "ordinal_progress",
    "paused_reason",
    "rollout_status_message",
]

DEFAULT_STUCK_AFTER: Final = timedelta(minutes=5)


class RolloutState(StrEnum):
    """The verdict on a rollout; the values appear in JSON."""

    COMPLETE = "complete"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    FAILING = "failing"  # a pod fails now; it counts as stuck once --stuck-after has passed
    STUCK = "stuck"
    UNKNOWN = "unknown"


class RevisionRole(StrEnum):
    """How a pod's revision relates to the set's status: the update revision wins when both match."""

    CURRENT = "current"
    UPDATE = "update"
    OTHER = "other"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class OrdinalRow:
    """One ordinal: a wanted one (pod or not) or an extra pod outside the range (`condemned`)."""

    ordinal: int
    pod: str
    exists: bool
    condemned: bool
    revision: str
    revision_number: int | None
    revision_role: RevisionRole
    phase: str
    ready: bool
    ready_since: datetime | None
    available: bool
    terminating: bool
    restarts: int
    reason: str
    node: str
    age: timedelta | None
    images: tuple[str, ...]
    containers: tuple[ContainerState, ...]
    waiting: bool = False
    waiting_why: str = ""


@dataclass(frozen=True, slots=True)
class RolloutProgress:
    """The set-level header and the rows, ascending by ordinal."""

    namespace: str
    name: str
    replicas: int
    ready_replicas: int
    available_replicas: int
    current_replicas: int
    updated_replicas: int
    updated_pods: int
    generation: int
    observed_generation: int
    current_revision: str
    current_revision_number: int | None
    update_revision: str
    update_revision_number: int | None
    pod_management_policy: str
    update_strategy: str
    partition: int | None
    min_ready_seconds: int
    waiting_ordinal: int | None
    rows: tuple[OrdinalRow, ...]


def _role(revision: str, snapshot: Snapshot) -> RevisionRole:
    sts = snapshot.statefulset
    if not revision:
        return RevisionRole.NONE
    if revision == sts.update_revision:
        return RevisionRole.UPDATE
    if revision == sts.current_revision:
        return RevisionRole.CURRENT
    return RevisionRole.OTHER


def _row(
    snapshot: Snapshot, ordinal: int, pod: PodState | None, now: datetime, version: ServerVersion | None
) -> OrdinalRow:
    sts = snapshot.statefulset
    numbers = {r.name: r.revision for r in snapshot.revisions}
    if pod is None:
        return OrdinalRow(
            ordinal=ordinal, pod=pod_name(sts, ordinal), exists=False, condemned=ordinal not in sts.ordinals,
            revision="", revision_number=None, revision_role=RevisionRole.NONE, phase="", ready=False,
            ready_since=None, available=False, terminating=False, restarts=0, reason="Missing", node="",
            age=None, images=(), containers=(),
        )  # fmt: skip
    return OrdinalRow(
        ordinal=ordinal,
        pod=pod.name,
        exists=True,
        condemned=ordinal not in sts.ordinals,
        revision=pod.revision,
        revision_number=numbers.get(pod.revision),
        revision_role=_role(pod.revision, snapshot),
        phase=pod.phase,
        ready=pod.ready,
        ready_since=pod.ready_since,
        available=is_available(pod, sts.min_ready_seconds, now, server_version=version),
        terminating=pod.deleting,
        restarts=sum(c.restart_count for c in pod.containers),
        reason=pod_reason(pod, now),
        node=pod.node_name,
        age=age(pod.meta.created, now),
        images=pod.images,
        containers=pod.init_containers + pod.containers,
    )


def _rows(
    snapshot: Snapshot, now: datetime, version: ServerVersion | None, wait: ControllerWait | None
) -> tuple[OrdinalRow, ...]:
    sts = snapshot.statefulset
    extra = {p.ordinal for p in snapshot.pods if p.ordinal is not None and p.ordinal not in sts.ordinals}
    rows = []
    for ordinal in sorted(set(sts.ordinals) | extra):
        row = _row(snapshot, ordinal, snapshot.pod_at(ordinal), now, version)
        if wait is not None and wait.ordinal == ordinal:
            row = _with_wait(row, wait)
        rows.append(row)
    return tuple(rows)


def _with_wait(row: OrdinalRow, wait: ControllerWait) -> OrdinalRow:
    return replace(row, waiting=True, waiting_why=wait.why)


def is_rollout_complete(
    snapshot: Snapshot, now: datetime, *, revision: str | None = None, version: ServerVersion | None = None
) -> bool:
    """The rollout to `revision` (default: the update revision) is complete and verified.

    The spec is observed with that updateRevision; every wanted ordinal runs it Running, Ready,
    available and not terminating; no extra pods are left; and the status agrees: updated, ready
    and total replicas all equal `replicas` and, for RollingUpdate, currentRevision is the update
    revision (the controller's completeRollingUpdate). Stricter than §6.3 on purpose: it also waits
    for minReadySeconds (#136831). The one rule for diagnose's `complete`, the planner's "nothing
    left to wait for" and the executor's final wait.
    """
    sts = snapshot.statefulset
    target = revision or sts.update_revision
    if sts.observed_generation < sts.meta.generation or not target or sts.update_revision != target:
        return False
    if sts.update_strategy == "RollingUpdate" and sts.current_revision != target:
        return False
    if not sts.updated_replicas == sts.ready_replicas == sts.status_replicas == sts.replicas:
        return False
    if any(p.ordinal is not None and p.ordinal not in sts.ordinals for p in snapshot.pods):
        return False
    for ordinal in sts.ordinals:
        pod = snapshot.pod_at(ordinal)
        if pod is None or pod.revision != target:
            return False
        if not is_healthy_and_available(pod, sts.min_ready_seconds, now, server_version=version):
            return False
    return True


def paused_reason(snapshot: Snapshot, now: datetime) -> str:
    """Why the rollout is held on purpose ("" if it is not): a partition or OnDelete."""
    sts = snapshot.statefulset
    if sts.observed_generation < sts.meta.generation:
        return ""
    pods = [snapshot.pod_at(o) for o in sts.ordinals]
    if any(p is None or not is_healthy(p) for p in pods):
        return ""
    outdated = [p for p in pods if p is not None and p.revision != sts.update_revision]
    if not outdated:
        return ""
    if sts.update_strategy == "OnDelete":
        return (
            f"OnDelete: {len(outdated)} of {sts.replicas} pods keep an older revision until they are deleted."
        )
    if sts.update_strategy == "RollingUpdate" and all(
        p.ordinal is not None and p.ordinal < update_floor(sts) for p in outdated
    ):
        return f"partition {sts.partition}: ordinals below {update_floor(sts)} stay at revision {sts.current_revision}."
    return ""


def ordinal_progress(
    snapshot: Snapshot, *, now: datetime, server_version: str | None = None
) -> RolloutProgress:
    """Rows for every wanted ordinal (missing ones included) plus extra pods, the header values
    and the ordinal the controller waits on. The verdict is `diagnose`'s (`verdict_of`).

    `server_version` defaults to the snapshot's; it decides the availability boundary and the
    maxUnavailable update path.
    """
    sts = snapshot.statefulset
    version = parse_version(server_version or snapshot.server_version)
    wait = controller_wait(snapshot, now=now, version=version)
    numbers = {r.name: r.revision for r in revisions_by_number(snapshot).values()}
    return RolloutProgress(
        namespace=sts.namespace,
        name=sts.name,
        replicas=sts.replicas,
        ready_replicas=sts.ready_replicas,
        available_replicas=sts.available_replicas,
        current_replicas=sts.current_replicas,
        updated_replicas=sts.updated_replicas,
        updated_pods=sum(
            1
            for o in sts.ordinals
            if (p := snapshot.pod_at(o)) and p.revision == sts.update_revision and not p.deleting
        ),
        generation=sts.meta.generation,
        observed_generation=sts.observed_generation,
        current_revision=sts.current_revision,
        current_revision_number=numbers.get(sts.current_revision),
        update_revision=sts.update_revision,
        update_revision_number=numbers.get(sts.update_revision),
        pod_management_policy=sts.pod_management_policy,
        update_strategy=sts.update_strategy,
        partition=sts.partition,
        min_ready_seconds=sts.min_ready_seconds,
        waiting_ordinal=wait.ordinal if wait is not None else None,
        rows=_rows(snapshot, now, version, wait),
    )


def rollout_status_message(snapshot: Snapshot) -> tuple[str, bool]:
    """kubectl's `StatefulSetStatusViewer.Status` as `(message, done)`, without the newline.

    A strategy other than RollingUpdate is kubectl's error text with `done=True` (kubectl exits
    non-zero there; the caller decides). `rollingUpdate: null` is seen as `partition is None`.
    """
    sts = snapshot.statefulset
    if sts.update_strategy != "RollingUpdate":
        return "rollout status is only available for RollingUpdate strategy type", True
    if sts.observed_generation == 0 or sts.meta.generation > sts.observed_generation:
        return "Waiting for statefulset spec update to be observed...", False
    if sts.ready_replicas < sts.replicas:
        return f"Waiting for {sts.replicas - sts.ready_replicas} pods to be ready...", False
    if sts.partition is not None:
        wanted = sts.replicas - sts.partition
        if sts.updated_replicas < wanted:
            return (
                f"Waiting for partitioned roll out to finish: {sts.updated_replicas} out of {wanted} new pods have been updated...",
                False,
            )
        return f"partitioned roll out complete: {sts.updated_replicas} new pods have been updated...", True
    if sts.update_revision != sts.current_revision:
        return (
            f"waiting for statefulset rolling update to complete {sts.updated_replicas} pods at revision {sts.update_revision}...",
            False,
        )
    return (
        f"statefulset rolling update complete {sts.current_replicas} pods at revision {sts.current_revision}...",
        True,
    )
