"""One pod's scripted run on the simulated kubelet, and the pod status it reports.

`PodRun.advance(now, emit)` applies every transition due by `now` at its own scheduled time
(container start, exit, back-off restart, image-pull retry, readiness), so a jump of the clock
gives the same history as a slow walk. `build_status` renders the run as a pod status the
official client's typed models accept (containerStatuses with name/image/imageID/ready/
restartCount/containerID, conditions with type/status). Standard library only.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stsfix.sim.kubelet.rules import Behaviour
from stsfix.sim.store.objects import Obj, set_condition, ts

Emit = Callable[
    [str, str, str, str | None], None
]  # (type, reason, message, container); reason "Log" = log text
MAX_BACKOFF = 300.0


def go_duration(seconds: float) -> str:
    """10 -> "10s", 80 -> "1m20s", 300 -> "5m0s" (Go's time.Duration.String for whole seconds)."""
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _hex(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class ContainerRun:
    name: str
    image: str
    init: bool
    behaviour: Behaviour
    command: tuple[str, ...] = ()
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str | None = None
    restarts: int = 0
    started_at: datetime | None = None
    last_terminated: Obj | None = None
    terminated: Obj | None = None
    ready: bool = False
    ready_at: datetime | None = None
    exit_at: datetime | None = None
    wake_at: datetime | None = None  # start / restart / pull retry
    pull_failures: int = 0
    pulled: bool = False
    completed: bool = False
    container_id: str = ""
    image_id: str = ""  # kept from a loaded pod's status; else derived from the image

    def next_at(self) -> datetime | None:
        times = [
            t
            for t in (self.wake_at, self.exit_at, self.ready_at if not self.ready else None)
            if t is not None
        ]
        return min(times) if times else None


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    node: str
    init: list[ContainerRun]
    main: list[ContainerRun]
    bound_at: datetime
    static: bool = False
    pod_ip: str = ""
    stopping_at: datetime | None = None
    marked_lost: bool = False
    pristine: bool = False  # resumed from a loaded status and nothing happened since: keep that status
    log_lines: dict[str, int] = field(default_factory=dict)

    def start(self, at: datetime) -> None:
        if self.init:
            self.init[0].wake_at = at
            for container in self.init + self.main:
                container.reason = "PodInitializing"
        else:
            for container in self.main:
                container.wake_at = at

    def next_at(self) -> datetime | None:
        times = [t for c in self.init + self.main if (t := c.next_at()) is not None]
        return min(times) if times else None

    def advance(self, now: datetime, emit: Emit) -> bool:
        """Apply every transition due by `now`; True if any happened."""
        stepped = False
        for _ in range(100000):
            candidates = [
                (t, i)
                for i, c in enumerate(self.init + self.main)
                if (t := c.next_at()) is not None and t <= now
            ]
            if not candidates:
                break
            when, index = min(candidates)
            self._step((self.init + self.main)[index], when, emit)
            stepped = True
        return stepped

    # -- transitions -----------------------------------------------------------------------------
    def _step(self, c: ContainerRun, t: datetime, emit: Emit) -> None:
        if c.exit_at is not None and c.exit_at == t:
            self._exit(c, t, emit)
        elif c.ready_at is not None and c.ready_at == t and not c.ready:
            c.ready = True
        elif c.wake_at is not None and c.wake_at == t:
            c.wake_at = None
            if c.reason == "ErrImagePull":
                delay = min(10.0 * 2 ** (c.pull_failures - 1), MAX_BACKOFF)
                c.reason = "ImagePullBackOff"
                c.message = f'Back-off pulling image "{c.image}": ErrImagePull: {c.behaviour.pull_error}'
                c.wake_at = t + timedelta(seconds=delay)
                emit("Normal", "BackOff", f'Back-off pulling image "{c.image}"', c.name)
                emit("Warning", "Failed", "Error: ImagePullBackOff", c.name)
            elif c.behaviour.config_error and c.pulled:
                # CreateContainerConfigError (a missing Secret or ConfigMap key): retried, never started.
                c.reason, c.message = "CreateContainerConfigError", c.behaviour.config_error
                c.wake_at = t + timedelta(seconds=10)
                emit("Warning", "Failed", f"Error: {c.behaviour.config_error}", c.name)
            elif c.behaviour.pull_error and not c.pulled:
                c.pull_failures += 1
                c.reason, c.message = "ErrImagePull", c.behaviour.pull_error
                c.wake_at = t + timedelta(seconds=1)
                emit("Normal", "Pulling", f'Pulling image "{c.image}"', c.name)
                emit(
                    "Warning", "Failed", f'Failed to pull image "{c.image}": {c.behaviour.pull_error}', c.name
                )
                emit("Warning", "Failed", "Error: ErrImagePull", c.name)
            elif c.behaviour.config_error:
                emit("Normal", "Pulled", f'Container image "{c.image}" already present on machine', c.name)
                c.pulled, c.wake_at = True, t  # then fails to create: CreateContainerConfigError
            else:
                if c.reason == "CrashLoopBackOff":
                    c.restarts += 1
                self._start(c, t, emit)

    def _start(self, c: ContainerRun, t: datetime, emit: Emit) -> None:
        if not c.pulled:
            emit("Normal", "Pulled", f'Container image "{c.image}" already present on machine', c.name)
            c.pulled = True
        c.container_id = "containerd://" + _hex(self.uid, c.name, c.restarts)
        emit("Normal", "Created", f"Created container: {c.name}", c.name)
        emit("Normal", "Started", f"Started container {c.name}", c.name)
        if c.restarts:
            emit("Normal", "LogRotate", "", c.name)  # the previous instance's log becomes --previous
        emit("Normal", "Log", startup_log(c, t), c.name)
        c.state, c.reason, c.message, c.started_at, c.terminated = "running", "", None, t, None
        b = c.behaviour
        if c.init or b.exit_code is not None:
            c.exit_at = t + timedelta(seconds=b.run_seconds)
        elif not b.never_ready:
            c.ready_at = t + timedelta(seconds=b.ready_delay)
            if b.ready_delay <= 0:
                c.ready, c.ready_at = True, None

    def _exit(self, c: ContainerRun, t: datetime, emit: Emit) -> None:
        code = c.behaviour.exit_code or 0
        reason = "Completed" if code == 0 else c.behaviour.reason
        c.exit_at, c.ready, c.ready_at = None, False, None
        record = {
            "exitCode": code,
            "reason": reason,
            "startedAt": ts(c.started_at or t),
            "finishedAt": ts(t),
            "containerID": c.container_id,
        }
        if c.init and code == 0:
            c.state, c.terminated, c.completed, c.ready = "terminated", record, True, True
            pending = [i for i in self.init if not i.completed]
            if pending:
                pending[0].wake_at = t
            else:
                for main in self.main:
                    main.reason, main.wake_at = "ContainerCreating", t
            return
        delay = min(10.0 * 2**c.restarts, MAX_BACKOFF)
        c.last_terminated = record
        c.state, c.reason = "waiting", "CrashLoopBackOff"
        c.message = (
            f"back-off {go_duration(delay)} restarting failed container={c.name} "
            f"pod={self.name}_{self.namespace}({self.uid})"
        )
        c.wake_at = t + timedelta(seconds=delay)
        emit(
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {c.name} in pod {self.name}_{self.namespace}({self.uid})",
            c.name,
        )


def _repository(image: str) -> str:
    """`nginx:1.27` -> `docker.io/library/nginx` (what containerd reports in imageID)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def startup_log(c: ContainerRun, t: datetime) -> str:
    """A few plausible lines for a container start: echo output of a shell command, nginx's banner,
    or a generic line."""
    lines = [m.strip().strip("'\"") for m in re.findall(r"\becho\s+([^;&|]+)", " ".join(c.command))]
    if not lines and "nginx" in c.image and not c.command:
        stamp = t.strftime("%Y/%m/%d %H:%M:%S")
        lines = [
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            f"{stamp} [notice] 1#1: nginx/{c.image.rsplit(':', 1)[-1]}",
            f"{stamp} [notice] 1#1: start worker processes",
        ]
    if not lines:
        lines = [f"{ts(t)} starting {c.name} (image {c.image})"]
    return "".join(f"{line}\n" for line in lines)


def _container_status(c: ContainerRun) -> Obj:
    started = c.container_id != ""
    if c.state == "running":
        state: Obj = {"running": {"startedAt": ts(c.started_at)}} if c.started_at else {}
    elif c.state == "terminated":
        state = {"terminated": dict(c.terminated or {})}
    else:
        state = {"waiting": {"reason": c.reason, **({"message": c.message} if c.message else {})}}
    status: Obj = {
        "name": c.name,
        "image": c.image,
        "imageID": c.image_id or (f"{_repository(c.image)}@sha256:{_hex(c.image)}" if started else ""),
        "ready": c.ready,
        "restartCount": c.restarts,
        "started": c.state == "running",
        "state": state,
        "lastState": {"terminated": dict(c.last_terminated)} if c.last_terminated else {},
    }
    if started:
        status["containerID"] = c.container_id
    return status


def build_status(pod: Obj, run: PodRun, now: datetime, *, node_ready: bool) -> Obj:
    """The pod status for `run` at `now` (existing condition transition times are kept)."""
    old = pod.get("status") or {}
    status = copy.deepcopy(old)
    if run.static:
        if not node_ready:
            set_condition(status, "Ready", "False", now)
            set_condition(status, "ContainersReady", "False", now)
        return status
    initialized = all(c.completed for c in run.init)
    running = initialized and any(c.container_id for c in run.main)
    status["phase"] = "Running" if running else "Pending"
    status["hostIP"] = status.get("hostIP") or "172.18.0.2"
    status["hostIPs"] = [{"ip": status["hostIP"]}]
    status["podIP"], status["podIPs"] = run.pod_ip, [{"ip": run.pod_ip}]
    status["startTime"] = status.get("startTime") or ts(run.bound_at)
    set_condition(status, "PodReadyToStartContainers", "True", now)
    pending = [c.name for c in run.init if not c.completed]
    if pending:
        set_condition(
            status,
            "Initialized",
            "False",
            now,
            reason="ContainersNotInitialized",
            message=f"containers with incomplete status: [{' '.join(pending)}]",
        )
    else:
        set_condition(status, "Initialized", "True", now)
    unready = [c.name for c in run.main if not c.ready]
    message = f"containers with unready status: [{' '.join(unready)}]"
    if unready:
        set_condition(status, "Ready", "False", now, reason="ContainersNotReady", message=message)
        set_condition(status, "ContainersReady", "False", now, reason="ContainersNotReady", message=message)
    else:
        set_condition(status, "Ready", "True" if node_ready else "False", now)
        set_condition(status, "ContainersReady", "True", now)
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    status["conditions"].sort(key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))
    if run.init:
        status["initContainerStatuses"] = [_container_status(c) for c in run.init]
    status["containerStatuses"] = [_container_status(c) for c in run.main]
    return status


def final_status(pod: Obj, run: PodRun, now: datetime, *, killed: bool) -> Obj:
    """The status the kubelet writes once a deleted pod's containers have stopped, before the pod
    object may go (v1.34 pkg/kubelet/status/status_manager.go: `canBeDeleted` waits for a terminal
    phase; `TerminatePod` gives every container a terminated state; kubelet_pods.go `getPhase`):
    Succeeded when every container exited 0, else Failed; Ready and ContainersReady False with reason
    PodCompleted or PodFailed. `killed`: the grace period ran out (SIGKILL, exit 137)."""
    status = copy.deepcopy(pod.get("status") or {})
    initialized = all(c.completed for c in run.init)
    for c in run.main:
        if c.state == "running":
            code = 137 if killed else 0
            c.terminated = {
                "exitCode": code,
                "reason": "Error" if code else "Completed",
                "startedAt": ts(c.started_at or now),
                "finishedAt": ts(now),
                "containerID": c.container_id,
            }
        elif c.last_terminated is not None:
            c.terminated = dict(c.last_terminated)
        elif initialized:
            c.terminated = {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
            }
        else:
            continue
        c.state, c.ready, c.ready_at, c.exit_at, c.wake_at = "terminated", False, None, None, None
    if run.main and all(c.state == "terminated" for c in run.main):
        codes = [int((c.terminated or {}).get("exitCode") or 0) for c in run.main]
        status["phase"] = "Succeeded" if not any(codes) else "Failed"
    else:
        status["phase"] = "Failed"
    reason = "PodCompleted" if status["phase"] == "Succeeded" else "PodFailed"
    set_condition(status, "Ready", "False", now, reason=reason)
    set_condition(status, "ContainersReady", "False", now, reason=reason)
    if run.init:
        status["initContainerStatuses"] = [_container_status(c) for c in run.init]
    status["containerStatuses"] = [_container_status(c) for c in run.main]
    return status
