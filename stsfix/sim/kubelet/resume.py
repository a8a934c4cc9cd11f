"""A loaded pod's run, resumed from the status in the dump, as a real kubelet carries on after a restart.

A pod loaded with a status keeps that status only until the kubelet has a reason to change it,
as on a real node: a running container whose readiness probe passes becomes Ready (at
`startedAt + initialDelaySeconds`), a crash-looping one restarts when its back-off ends
(`lastState.terminated.finishedAt` + the back-off for its restart count) and does what its
behaviour says (a rule derived from the dump, derive.py, makes a container that failed fail
again), an image pull is retried, a container still being created starts. Until then the run is
`pristine` and the kubelet writes nothing. Phases Failed and Succeeded are final. Standard
library only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from stsfix.sim.kubelet.pod import MAX_BACKOFF, ContainerRun, PodRun
from stsfix.sim.store.objects import Obj, parse_ts

_PULL_RETRY = {"ErrImagePull": 1.0, "ImagePullBackOff": 10.0}


def _time(value: object, default: datetime) -> datetime:
    try:
        parsed = parse_ts(str(value)) if value else None
    except ValueError:
        return default
    return parsed or default


def _resume_container(c: ContainerRun, status: Obj | None, *, now: datetime, start_at: datetime) -> None:
    """Set `c` from its containerStatus and schedule its next transition."""
    if status is None:
        c.wake_at = start_at
        return
    c.restarts = int(status.get("restartCount") or 0)
    c.container_id = str(status.get("containerID") or "")
    c.image_id = str(status.get("imageID") or "")
    c.pulled = bool(c.image_id or c.container_id)
    last = (status.get("lastState") or {}).get("terminated")
    c.last_terminated = dict(last) if isinstance(last, dict) else None
    state = status.get("state") or {}
    behaviour = c.behaviour
    if isinstance(state.get("running"), dict):
        c.state, c.reason, c.message = "running", "", None
        c.started_at = _time(state["running"].get("startedAt"), now)
        c.ready = bool(status.get("ready"))
        if c.init or behaviour.exit_code is not None:
            c.exit_at = max(c.started_at + timedelta(seconds=behaviour.run_seconds), now)
        elif not c.ready and not behaviour.never_ready:
            c.ready_at = max(c.started_at + timedelta(seconds=behaviour.ready_delay), now)
        return
    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        c.terminated = dict(terminated)
        if c.init and int(terminated.get("exitCode") or 0) == 0:
            c.state, c.completed, c.ready = "terminated", True, True
            return
        c.last_terminated = dict(terminated)  # a main container between exit and back-off
        c.state, c.reason = "waiting", "CrashLoopBackOff"
    waiting = state.get("waiting") or {}
    c.state = "waiting"
    c.reason = str(waiting.get("reason") or c.reason or "ContainerCreating")
    c.message = waiting.get("message")
    if c.reason == "CrashLoopBackOff":
        finished = _time((c.last_terminated or {}).get("finishedAt"), now)
        delay = min(10.0 * 2**c.restarts, MAX_BACKOFF)
        c.wake_at = max(finished + timedelta(seconds=delay), now)
    elif c.reason in _PULL_RETRY:
        c.pulled, c.pull_failures = False, 1
        c.wake_at = now + timedelta(seconds=_PULL_RETRY[c.reason])
    elif c.reason == "CreateContainerConfigError":
        c.pulled, c.wake_at = True, now + timedelta(seconds=10)
    else:  # ContainerCreating, PodInitializing: still being started
        c.wake_at = start_at


def resume_run(run: PodRun, pod: Obj, *, now: datetime, start_delay: float) -> PodRun:
    """Resume a fresh `run` (behaviours already chosen) from `pod`'s status; returns it, pristine."""
    status = pod.get("status") or {}
    run.bound_at = _time(status.get("startTime"), now)
    run.pod_ip = str(status.get("podIP") or run.pod_ip)
    start_at = now + timedelta(seconds=start_delay)
    for key, containers in (("initContainerStatuses", run.init), ("containerStatuses", run.main)):
        by_name = {s.get("name"): s for s in status.get(key) or [] if isinstance(s, dict)}
        for c in containers:
            c.wake_at = None
            _resume_container(c, by_name.get(c.name), now=now, start_at=start_at)
    if any(not c.completed for c in run.init):
        for c in run.main:
            if c.state == "waiting" and c.reason in ("ContainerCreating", "PodInitializing"):
                c.reason, c.wake_at = "PodInitializing", None  # the init containers finish first
        pending = [c for c in run.init if not c.completed]
        if pending[0].state == "waiting" and pending[0].wake_at is None:
            pending[0].wake_at = start_at
    run.pristine = True
    return run
