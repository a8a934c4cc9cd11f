"""Pod predicates with the controller's names, kubectl-like pod reasons, durations, and "stuck" evidence.

The one set of pod predicates: analysis, the planner, the executor and the CLI all import them from
here. They restate `stateful_set_utils.go` and `k8s.io/kubernetes/pkg/api/v1/pod` as in the
semantics reference §4. `failing_reason` is kubectl's list of waiting reasons that waiting will not
fix; `pod_reason` follows the STATUS column of `kubectl get pods`; `human_duration` is kubectl's
short duration. A pod is "stuck", not slow, only with evidence over time (§ "Stuck, not slow" in
the brief, anchors §0.10). Pure: imports only the stdlib and `stsfix.model`; every time-dependent
function takes `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from stsfix.analysis.versions import ServerVersion, availability_is_inclusive, parse_version
from stsfix.model import ContainerState, EventInfo, PodState, Snapshot

#: A CrashLoopBackOff container with this many restarts has already backed off several times
#: (10s, 20s, 40s, ...): that is evidence over time even when the pod is young.
CRASH_LOOP_RESTARTS: Final = 3
#: How long past the end of its grace period (deletionTimestamp) a terminating pod may take before
#: it counts as stuck: kubelets routinely need a few seconds more.
TERMINATING_SLACK: Final = timedelta(seconds=60)

_CREATE_ERRORS: Final = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "RunContainerError"}
)
IMAGE_PULL_REASONS: Final = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
)
#: Waiting reasons that mean "this pod will not become Ready by waiting" (kubectl's appendWarning
#: list): a crash loop, an image that cannot be pulled, a container that cannot be created.
FAILING_REASONS: Final = frozenset({"CrashLoopBackOff"}) | IMAGE_PULL_REASONS | _CREATE_ERRORS


# --- predicates (stateful_set_utils.go) -------------------------------------------------------


def is_created(pod: PodState) -> bool:
    """A pod the API server accepted (phase != "")."""
    return pod.phase != ""


def is_failed(pod: PodState) -> bool:
    """Phase Failed."""
    return pod.phase == "Failed"


def is_succeeded(pod: PodState) -> bool:
    """Phase Succeeded."""
    return pod.phase == "Succeeded"


def is_terminating(pod: PodState) -> bool:
    """The pod has a deletionTimestamp."""
    return pod.deleting


def is_running_and_ready(pod: PodState) -> bool:
    """Phase Running and condition Ready=True (terminating pods included, as upstream)."""
    return pod.phase == "Running" and pod.ready


def is_available(
    pod: PodState, min_ready_seconds: int, now: datetime, *, server_version: str | ServerVersion | None = None
) -> bool:
    """Ready=True for at least `min_ready_seconds` (`IsPodAvailable`); does not check the phase.

    The boundary is inclusive (`<=`) since v1.34 and strict before (#132122); an unknown version
    uses the current rule.
    """
    if not pod.ready:
        return False
    if min_ready_seconds <= 0:
        return True
    if pod.ready_since is None:
        return False
    version = parse_version(server_version) if isinstance(server_version, str) else server_version
    deadline = pod.ready_since + timedelta(seconds=min_ready_seconds)
    return deadline <= now if availability_is_inclusive(version) else deadline < now


def is_healthy(pod: PodState) -> bool:
    """Running, Ready and not terminating (the ≤v1.33 rolling-update test)."""
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_healthy_and_available(
    pod: PodState, min_ready_seconds: int, now: datetime, *, server_version: str | ServerVersion | None = None
) -> bool:
    """Healthy and Ready for at least `min_ready_seconds`: a replacement pod that has arrived."""
    return is_healthy(pod) and is_available(pod, min_ready_seconds, now, server_version=server_version)


def failing_reason(pod: PodState) -> str:
    """The first waiting reason in FAILING_REASONS of any container, init containers first ("" when none)."""
    for container in (*pod.init_containers, *pod.containers):
        if container.state == "waiting" and container.reason in FAILING_REASONS:
            return container.reason
    return ""


def failing_now(pod: PodState) -> str:
    """Why the pod fails now in a way waiting alone rarely fixes: a FAILING_REASONS waiting reason,
    or "Unschedulable" (Pending with PodScheduled=False); "" otherwise. Evidence of *failing*, not
    yet of *stuck*: that takes `stuck_after` (see `stuck_evidence`)."""
    if pod.deleting or pod.phase in ("Failed", "Succeeded"):
        return ""
    reason = failing_reason(pod)
    if reason:
        return reason
    return "Unschedulable" if unscheduled(pod) else ""


#: Image pull errors that a retry does not fix: the registry host, the image or the access is wrong.
_PERMANENT_PULL: Final = (
    "no such host", "not found", "manifest unknown", "unauthorized", "denied", "invalid reference format",
)  # fmt: skip


def failure_certainty(pod: PodState, snapshot: Snapshot) -> str:
    """A sentence saying why waiting will not fix the pod's failure, or "" when it may still heal.

    Certain: an image that cannot be pulled for a reason a retry does not change (the host does not
    resolve, the image or tag does not exist, access is denied, the name is invalid), a container
    whose configuration cannot be created (CreateContainerConfigError: a missing Secret or
    ConfigMap key), and a pod that requests more cpu or memory than any Ready node can allocate.
    """
    for c in (*pod.init_containers, *pod.containers):
        if c.state != "waiting":
            continue
        if c.reason in ("InvalidImageName", "ErrImageNeverPull"):
            return f"container {c.name}: {c.reason} ({c.message or c.image})"
        if c.reason in IMAGE_PULL_REASONS:
            texts = [c.message] + [e.message for e in snapshot.events if e.kind == "Pod" and e.object_name == pod.name]
            cause = next((_cause(t, word) for t in texts for word in _PERMANENT_PULL if word in t.lower()), "")
            if cause:
                return f"image {c.image} cannot be pulled: {cause}"
        if c.reason == "CreateContainerConfigError":
            return f"container {c.name} cannot be created: {c.message or c.reason}"
    if unscheduled(pod):
        return _fits_nowhere(pod, snapshot)
    return ""


def _cause(text: str, word: str) -> str:
    """The end of an error chain that names the cause: "a: b: lookup x: no such host" -> "lookup x: no such host"."""
    parts = text.split(": ")
    last = max(i for i, part in enumerate(parts) if word in part.lower())
    return ": ".join(parts[max(last - 1, 0) : last + 1])


def _fits_nowhere(pod: PodState, snapshot: Snapshot) -> str:
    """A sentence when the pod's requests exceed every Ready node's allocatable, else ""."""
    if not snapshot.nodes or not pod.requests:
        return ""
    nodes = [n for n in snapshot.nodes if n.ready == "True" and n.allocatable]
    if not nodes:
        return ""
    for resource, wanted in pod.requests:
        largest = max(dict(n.allocatable).get(resource, 0.0) for n in nodes)
        if wanted > largest:
            return (
                f"it requests {_amount(resource, wanted)} {resource}, more than any node can allocate "
                f"(largest: {_amount(resource, largest)}, {len(nodes)} Ready node{'s' if len(nodes) != 1 else ''})"
            )
    return ""


def _amount(resource: str, value: float) -> str:
    if resource == "memory":
        return f"{value / 2**30:.1f}Gi"
    return f"{value:g}"


def is_unavailable(
    pod: PodState, min_ready_seconds: int, now: datetime, *, server_version: str | ServerVersion | None = None
) -> bool:
    """Not available, or terminating (the v1.34+ rolling-update and maxUnavailable test)."""
    return is_terminating(pod) or not is_available(pod, min_ready_seconds, now, server_version=server_version)


# --- durations --------------------------------------------------------------------------------


def human_duration(delta: timedelta) -> str:
    """A kubectl-like short duration: 45s, 5m12s, 47m, 5h12m, 30h, 3d4h, 12d."""
    seconds = max(0, int(delta.total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def age(moment: datetime | None, now: datetime) -> timedelta | None:
    """now - moment, or None when the moment is unknown."""
    return None if moment is None else now - moment


# --- reasons ------------------------------------------------------------------------------------


def _init_reason(pod: PodState) -> str:
    total = len(pod.init_containers)
    for index, container in enumerate(pod.init_containers):
        if container.state == "terminated" and container.exit_code == 0:
            continue
        if container.state == "terminated":
            return (
                f"Init:{container.reason or 'Error'}"
                if container.reason
                else f"Init:ExitCode:{container.exit_code}"
            )
        if container.state == "waiting" and container.reason and container.reason != "PodInitializing":
            return f"Init:{container.reason}"
        return f"Init:{index}/{total}"
    return ""


def _container_reason(container: ContainerState) -> str:
    if container.state == "waiting" and container.reason:
        if container.reason == "CrashLoopBackOff" and container.last_reason == "OOMKilled":
            return "CrashLoopBackOff (OOMKilled)"
        return container.reason
    if container.state == "terminated":
        return container.reason or (
            f"ExitCode:{container.exit_code}" if container.exit_code is not None else "Error"
        )
    return ""


def pod_reason(pod: PodState, now: datetime) -> str:
    """What `kubectl get pods` would print as STATUS, with a few stsfix refinements.

    Terminating carries its duration ("Terminating (5m12s)"); an unschedulable Pending pod says
    "Unschedulable"; a Running pod whose containers run but is not Ready says "Running, not Ready".
    """
    if pod.deleting:
        since = pod.meta.deletion_timestamp
        grace = timedelta(seconds=pod.meta.deletion_grace_seconds or 0)
        started = since - grace if since is not None else None
        return f"Terminating ({human_duration(now - started)})" if started else "Terminating"
    if pod.phase in ("Failed", "Succeeded"):
        return pod.reason or ("Completed" if pod.phase == "Succeeded" else "Error")
    init = _init_reason(pod)
    if init:
        return init
    reasons = [r for r in (_container_reason(c) for c in pod.containers) if r]
    if reasons:
        return reasons[0]
    scheduled = pod.condition("PodScheduled")
    if pod.phase == "Pending" and scheduled is not None and scheduled.status == "False":
        return scheduled.reason or "Unschedulable"
    if pod.phase == "Pending":
        return "ContainerCreating" if pod.node_name else "Pending"
    if pod.phase == "Running" and not pod.ready:
        return "Running, not Ready"
    return pod.phase or "Unknown"


def cause_of(pod: PodState) -> str:
    """The finding cause for an unhealthy pod (the `Cause` values of diagnose), "unknown" if none fits."""
    if pod.phase == "Failed" and pod.reason == "Evicted":
        return "evicted"
    if pod.phase in ("Failed", "Succeeded"):
        return "terminated"
    containers = pod.init_containers + pod.containers
    if any(c.last_reason == "OOMKilled" or c.reason == "OOMKilled" for c in containers):
        return "oom-killed"
    for container in pod.init_containers:
        if container.state == "waiting" and container.reason not in ("", "PodInitializing"):
            return "init-failure"
        if container.state == "terminated" and container.exit_code not in (0, None):
            return "init-failure"
    waiting = {c.reason for c in pod.containers if c.state == "waiting"}
    if waiting & IMAGE_PULL_REASONS:
        return "image-pull"
    if "CrashLoopBackOff" in waiting or any(c.state == "terminated" for c in pod.containers):
        return "crash-loop"
    if waiting & _CREATE_ERRORS:
        return "create-container-error"
    scheduled = pod.condition("PodScheduled")
    if pod.phase == "Pending" and scheduled is not None and scheduled.status == "False":
        return "unschedulable"
    if pod.phase == "Running" and pod.containers and all(c.state == "running" for c in pod.containers):
        return "readiness-failing"
    return "unknown"


# --- evidence over time -------------------------------------------------------------------------


def not_ready_since(pod: PodState) -> datetime | None:
    """When the pod last stopped being (or never was) Ready: the Ready=False transition, else creation."""
    ready = pod.condition("Ready")
    if ready is not None and ready.status != "True" and ready.last_transition is not None:
        return max(ready.last_transition, pod.meta.created) if pod.meta.created else ready.last_transition
    return pod.meta.created


def terminating_overdue(pod: PodState, now: datetime) -> timedelta | None:
    """How far past its grace period (deletionTimestamp) a terminating pod is; None if not (yet)."""
    end = pod.meta.deletion_timestamp
    if end is None or now - end < TERMINATING_SLACK:
        return None
    return now - end


def container_lines(pod: PodState, now: datetime) -> list[str]:
    """One evidence line per container that is not running and ready."""
    lines = []
    for c in pod.init_containers + pod.containers:
        if c.state == "running" and (c.ready or c.init):
            continue
        if c.init and c.state == "terminated" and c.exit_code == 0:
            continue
        kind = "init container" if c.init else "container"
        detail = f"{c.state}" + (f": {c.reason}" if c.reason else "")
        if c.message:
            detail += f" ({c.message})"  # whole: the cause is often at the end (render shortens text)
        extra = f", {c.restart_count} restarts" if c.restart_count else ""
        if c.last_reason:
            when = f" {human_duration(now - c.last_finished)} ago" if c.last_finished else ""
            extra += f", last terminated {c.last_reason} (exit code {c.last_exit_code}){when}"
        lines.append(f"{pod.name}: {kind} {c.name} ({c.image}) {detail}{extra}")
    return lines


def before_first_readiness_probe(pod: PodState, now: datetime) -> bool:
    """Running, and every container that is not Ready is running within its readiness probe's
    initialDelaySeconds plus one period: the kubelet has not probed it yet (it probes nothing
    before the delay, then on its next tick), so not Ready is no failure."""
    waiting = [c for c in pod.containers if not c.ready]
    return (
        pod.phase == "Running"
        and bool(waiting)
        and all(
            c.state == "running" and c.since is not None and now - c.since < timedelta(seconds=c.readiness_delay_s)
            for c in waiting
        )
    )


def stuck_evidence(pod: PodState, *, now: datetime, stuck_after: timedelta) -> tuple[str, ...]:
    """Evidence lines proving the pod is stuck, or () when it is healthy or merely slow so far.

    Stuck means: terminating past its grace period (+ slack); or not Ready for at least
    `stuck_after`, and past its readiness probes' first run (initialDelaySeconds + periodSeconds); or crash-looping with at
    least CRASH_LOOP_RESTARTS restarts. Failed and Succeeded pods are never stuck here: the
    controller deletes and recreates them (§5.4 rule 1).
    """
    if pod.deleting:
        overdue = terminating_overdue(pod, now)
        if overdue is None:
            return ()
        return (
            f"{pod.name}: Terminating; its grace period ({pod.grace_period_seconds}s) ended {human_duration(overdue)} ago",
        )
    if is_running_and_ready(pod) or pod.phase in ("Failed", "Succeeded") or before_first_readiness_probe(pod, now):
        return ()
    since = not_ready_since(pod)
    long_enough = since is not None and now - since >= stuck_after
    restarts = max((c.restart_count for c in pod.containers + pod.init_containers), default=0)
    looping = restarts >= CRASH_LOOP_RESTARTS and any(
        c.reason == "CrashLoopBackOff" for c in pod.containers + pod.init_containers
    )
    if not (long_enough or looping):
        return ()
    head = f"{pod.name}: {pod_reason(pod, now)}, phase {pod.phase}"
    if since is not None:
        head += f", not Ready for {human_duration(now - since)}"
    scheduled = pod.condition("PodScheduled")
    words = (
        (f"{pod.name}: PodScheduled=False ({scheduled.reason}): {scheduled.message}",)
        if unscheduled(pod) and scheduled
        else ()
    )
    return (head, *words, *container_lines(pod, now))


def unscheduled(pod: PodState) -> bool:
    """Pending with PodScheduled=False: the scheduler (or volume binding) has not placed it."""
    scheduled = pod.condition("PodScheduled")
    return pod.phase == "Pending" and scheduled is not None and scheduled.status == "False"


def event_lines(
    events: tuple[EventInfo, ...], *, kind: str, name: str, now: datetime, limit: int = 5
) -> list[str]:
    """Events about one object, newest first, as "Warning BackOff (x42 over 12m, last 10s ago): ..."."""
    matching = [e for e in events if e.kind == kind and e.object_name == name]
    matching.sort(key=lambda e: (e.type != "Warning", -(e.last_seen.timestamp() if e.last_seen else 0.0)))
    lines = []
    for e in matching[:limit]:
        span = (
            f" over {human_duration(e.last_seen - e.first_seen)}"
            if e.first_seen and e.last_seen and e.count > 1
            else ""
        )
        last = f", last {human_duration(now - e.last_seen)} ago" if e.last_seen else ""
        lines.append(f"event {kind}/{name}: {e.type} {e.reason} (x{e.count}{span}{last}): {e.message}")
    return lines


def pod_events(snapshot: Snapshot, pod: PodState, now: datetime) -> list[str]:
    """Event lines for a pod, matched by name (and uid when the event carries one)."""
    events = tuple(e for e in snapshot.events if not e.object_uid or e.object_uid == pod.meta.uid)
    return event_lines(events, kind="Pod", name=pod.name, now=now)
