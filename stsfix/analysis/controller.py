"""Which ordinal the StatefulSet controller is waiting on, and why, restated from its sync loop.

Mirrors `processReplica` (semantics reference §5.4), `processCondemned` (§5.6) and the rolling
update with the MaxUnavailableStatefulSet gate off (§5.7) and on (§5.8). The answer is a
`ControllerWait` naming one ordinal; `None` means the controller is not waiting (it is acting, or
there is nothing to do). Pure: stdlib and `stsfix.model` only; `now` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stsfix.analysis.pods import (
    is_available,
    is_failed,
    is_running_and_ready,
    is_succeeded,
    is_unavailable,
    pod_reason,
)
from stsfix.analysis.versions import (
    ServerVersion,
    has_parallel_max_unavailable_fix,
    max_unavailable_gate_default,
    update_waits_for_available,
)
from stsfix.model import PodState, Snapshot, StatefulSetState


@dataclass(frozen=True, slots=True)
class ControllerWait:
    """The ordinal the controller stops at, the stage that stops (`replicas`, `condemned` or
    `update`), and a full sentence saying why."""

    ordinal: int
    stage: str
    why: str


def pod_name(sts: StatefulSetState, ordinal: int) -> str:
    """`<set>-<ordinal>`."""
    return f"{sts.name}-{ordinal}"


def is_monotonic(sts: StatefulSetState) -> bool:
    """OrderedReady (the default) rather than Parallel."""
    return sts.pod_management_policy != "Parallel"


def update_floor(sts: StatefulSetState) -> int:
    """The lowest ordinal the rolling update replaces: start + partition (partition 0 when
    `rollingUpdate` is nil)."""
    return sts.ordinals_start + (sts.partition or 0)


def max_unavailable_gate(sts: StatefulSetState, version: ServerVersion | None) -> bool:
    """Whether the controller runs the maxUnavailable update path (§5.8).

    The API server keeps or defaults `maxUnavailable` only with the gate on, or when the stored
    object already had it (`dropStatefulSetDisabledFields`). So: on where the version has it on by
    default; on up to 1.34 (alpha, off by default) when the spec carries the field, which there
    means the gate was enabled by hand (`--feature-gates=MaxUnavailableStatefulSet=true`); on for
    an unknown version when the spec carries it. On 1.35.4+ and 1.36 the field is most often left
    from 1.35.0-1.35.3, whose default it was, so there it is taken as off.
    """
    default = max_unavailable_gate_default(version)
    if default is None:
        return sts.max_unavailable is not None
    if version is not None and (version.major, version.minor) <= (1, 34):
        return sts.max_unavailable is not None
    return default


def scaled_max_unavailable(sts: StatefulSetState) -> int:
    """maxUnavailable against replicas: an integer as is, a percentage rounded down; at least 1."""
    value = sts.max_unavailable if sts.max_unavailable is not None else 1
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        number = int(text) if text.isdigit() else 1
        return max(1, sts.replicas * number // 100) if value.strip().endswith("%") else max(1, number)
    return max(1, value)


def outdated_ordinals(snapshot: Snapshot) -> list[int]:
    """Ordinals ≥ the partition floor whose pod exists, is not terminating and is not on the
    update revision: what the rolling update would delete, highest first."""
    sts = snapshot.statefulset
    found = []
    for ordinal in reversed(sts.ordinals):
        pod = snapshot.pod_at(ordinal)
        if ordinal >= update_floor(sts) and pod is not None and not pod.deleting:
            if pod.revision != sts.update_revision:
                found.append(ordinal)
    return found


def _replica_block(
    pod: PodState | None, sts: StatefulSetState, now: datetime, version: ServerVersion | None
) -> str:
    """Why `processReplica` stops at this slot in OrderedReady mode, or "" if it passes."""
    if pod is None:
        return "does not exist yet; the controller creates it next"
    if (is_failed(pod) or is_succeeded(pod)) and not pod.deleting:
        return f"is {pod.phase}; the controller deletes it and creates it again"
    if pod.deleting:
        return f"is {pod_reason(pod, now)}"
    if not is_running_and_ready(pod):
        reason = pod_reason(pod, now)
        return (
            "is Running but not Ready"
            if reason == "Running, not Ready"
            else f"is not Running and Ready ({reason})"
        )
    if not is_available(pod, sts.min_ready_seconds, now, server_version=version):
        return f"is Ready but not yet available (minReadySeconds {sts.min_ready_seconds})"
    return ""


def _next_action(snapshot: Snapshot, blocked: int) -> str:
    """What the controller would do after the blocked ordinal, for the `waiting_why` sentence."""
    sts = snapshot.statefulset
    missing = [o for o in sts.ordinals if o > blocked and snapshot.pod_at(o) is None]
    if missing:
        return f"before creating {pod_name(sts, missing[0])}"
    condemned = sorted(
        (p.ordinal for p in snapshot.pods if p.ordinal is not None and p.ordinal not in sts.ordinals),
        reverse=True,
    )
    if condemned:
        return f"before scaling down {pod_name(sts, condemned[0])}"
    if sts.update_strategy != "RollingUpdate":
        return ""
    outdated = outdated_ordinals(snapshot)
    if outdated and outdated[0] == blocked:
        return "and the rolling update, which would replace it, never runs"
    if outdated:
        return f"before updating {pod_name(sts, outdated[0])}"
    return ""


def _replicas_wait(snapshot: Snapshot, now: datetime, version: ServerVersion | None) -> ControllerWait | None:
    """OrderedReady only: in Parallel mode a missing or Failed slot does not stop the other slots."""
    sts = snapshot.statefulset
    if not is_monotonic(sts):
        return None
    for ordinal in sts.ordinals:
        pod = snapshot.pod_at(ordinal)
        why = _replica_block(pod, sts, now, version)
        if not why:
            continue
        name = pod_name(sts, ordinal)
        if pod is None or ((is_failed(pod) or is_succeeded(pod)) and not pod.deleting):
            return ControllerWait(ordinal, "replicas", f"{name} {why}.")
        tail = _next_action(snapshot, ordinal)
        tail = f" {tail}" if tail else ""
        return ControllerWait(ordinal, "replicas", f"{name} {why}; OrderedReady waits for it{tail}.")
    return None


def _condemned_wait(
    snapshot: Snapshot, now: datetime, version: ServerVersion | None
) -> ControllerWait | None:
    sts = snapshot.statefulset
    condemned = sorted(
        (p for p in snapshot.pods if p.ordinal is not None and p.ordinal not in sts.ordinals),
        key=lambda p: -(p.ordinal or 0),
    )
    if not condemned or not is_monotonic(sts):
        return None
    unavailable = [
        p for p in condemned if is_unavailable(p, sts.min_ready_seconds, now, server_version=version)
    ]
    first_unavailable = min(unavailable, key=lambda p: p.ordinal or 0) if unavailable else None
    for pod in condemned:
        ordinal = pod.ordinal or 0
        if pod.deleting:
            return ControllerWait(
                ordinal,
                "condemned",
                f"{pod.name} is {pod_reason(pod, now)}; OrderedReady scale-down waits for it to be gone.",
            )
        if pod in unavailable and pod is not first_unavailable:
            return ControllerWait(
                ordinal,
                "condemned",
                f"{pod.name} is not available ({pod_reason(pod, now)}); OrderedReady scale-down waits for it.",
            )
        return None
    return None


def _is_unavailable_for_update(
    pod: PodState, sts: StatefulSetState, now: datetime, version: ServerVersion | None
) -> bool:
    if update_waits_for_available(version):
        return is_unavailable(pod, sts.min_ready_seconds, now, server_version=version)
    return not (is_running_and_ready(pod) and not pod.deleting)


def _legacy_update_wait(
    snapshot: Snapshot, now: datetime, version: ServerVersion | None
) -> ControllerWait | None:
    sts = snapshot.statefulset
    outdated = outdated_ordinals(snapshot)
    for ordinal in reversed(sts.ordinals):
        if ordinal < update_floor(sts) or not outdated:
            return None
        pod = snapshot.pod_at(ordinal)
        name = pod_name(sts, ordinal)
        if pod is None:
            return ControllerWait(
                ordinal,
                "update",
                f"{name} does not exist yet; the rolling update waits for it before updating {pod_name(sts, outdated[0])}.",
            )
        if pod.revision != sts.update_revision and not pod.deleting:
            return None
        if _is_unavailable_for_update(pod, sts, now, version):
            why = f"{name} is not available ({pod_reason(pod, now)}); the rolling update waits for it before updating {pod_name(sts, outdated[0])}."
            return ControllerWait(ordinal, "update", why)
    return None


def _gated_update_wait(
    snapshot: Snapshot, now: datetime, version: ServerVersion | None
) -> ControllerWait | None:
    sts = snapshot.statefulset
    outdated = outdated_ordinals(snapshot)
    if not outdated:
        return None
    budget = scaled_max_unavailable(sts)
    unavailable = [
        o
        for o in sts.ordinals
        if (p := snapshot.pod_at(o)) is None or _is_unavailable_for_update(p, sts, now, version)
    ]
    if len(unavailable) < budget:
        return None
    if (
        has_parallel_max_unavailable_fix(version)
        and not is_monotonic(sts)
        and set(unavailable) & set(outdated)
    ):
        return None
    ordinal = max(unavailable)
    why = (
        f"{len(unavailable)} of {sts.replicas} pods are unavailable and maxUnavailable is {budget}; the rolling update "
        f"deletes nothing (next: {pod_name(sts, outdated[0])}) until {pod_name(sts, ordinal)} becomes available."
    )
    return ControllerWait(ordinal, "update", why)


def controller_wait(
    snapshot: Snapshot, *, now: datetime, version: ServerVersion | None = None
) -> ControllerWait | None:
    """The ordinal the controller waits on and why, walking its stages in order (§5.3): replicas
    (ascending, OrderedReady blocks), condemned (descending), then the rolling update."""
    sts = snapshot.statefulset
    if sts.meta.deletion_timestamp is not None:
        return None
    wait = _replicas_wait(snapshot, now, version) or _condemned_wait(snapshot, now, version)
    if wait is not None or sts.update_strategy != "RollingUpdate":
        return wait
    if any(p.ordinal is not None and p.ordinal not in sts.ordinals for p in snapshot.pods):
        return None
    if max_unavailable_gate(sts, version):
        return _gated_update_wait(snapshot, now, version)
    return _legacy_update_wait(snapshot, now, version)
