"""The simulated kubelet (all nodes) and the node-lifecycle side effects on pods.

Each bound pod gets a scripted run (rules.Behaviour per container) advanced on SimClock
timers: ContainerCreating -> Running after `start_delay`; Ready after the probe delay (never for a
failing exec probe); crash loops (Running phase, waiting CrashLoopBackOff, lastState terminated,
restartCount with back-off 10 s, 20 s ... 300 s, BackOff events); image pulls that fail
(ErrImagePull <-> ImagePullBackOff, phase Pending); init-container failures (Init:CrashLoopBackOff);
graceful termination (the containers stop within the grace period, the terminal status -- phase
Succeeded or Failed, not Ready -- is written, then the object is removed). Pods on a
NotReady node lose readiness; on a Lost node nothing progresses, pods are marked not ready and
evicted after their 300 s toleration, and stay Terminating until force-deleted. Transitions run
at their scheduled sim times, so results do not depend on how often the kubelet is woken.
Standard library only.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stsfix.sim.kubelet.pod import ContainerRun, PodRun, build_status, final_status
from stsfix.sim.kubelet.resume import resume_run
from stsfix.sim.kubelet.rules import Rule, container_behaviour
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.nodes import node_state
from stsfix.sim.store.objects import Obj, is_pod_ready, is_terminating, parse_ts
from stsfix.sim.store.store import SimApiError, WatchEvent

PodKey = tuple[str, str]
ORPHAN_QUARANTINE = 40.0  # pod GC waits this long after a Node object is deleted


@dataclass
class KubeletConfig:
    start_delay: float = 2.0  # sim seconds from binding to the first container start
    stop_seconds: float = 1.0  # containers stop this fast on SIGTERM (capped by the grace period)
    eviction_seconds: float = 300.0  # default toleration of node.kubernetes.io/unreachable
    rules: list[Rule] = field(default_factory=list)


class Kubelet:
    """Runs every bound pod; event- and timer-driven."""

    def __init__(
        self,
        client: SimClient,
        recorder: EventRecorder,
        *,
        now: Callable[[], datetime],
        config: KubeletConfig | None = None,
        pod_logs: dict[tuple[str, str, str], str] | None = None,
    ):
        self.client = client
        self.store = client.store
        self.recorder = recorder
        self.now = now
        self.config = config or KubeletConfig()
        self.pod_logs = pod_logs if pod_logs is not None else {}
        self.loaded_uids: set[str] = set()  # pods loaded with a status: resumed from it (resume.py)
        self._runs: dict[PodKey, PodRun] = {}
        self._dirty: set[PodKey] = set()
        self._heap: list[tuple[datetime, int, PodKey]] = []
        self._due: dict[PodKey, datetime] = {}
        self._seq = itertools.count()
        self._lost_since: dict[str, datetime] = {}
        self._deleted_nodes: dict[str, datetime] = {}

    # -- runner interface ------------------------------------------------------------------------
    def observe(self, event: WatchEvent) -> None:
        if event.resource == "pods":
            meta = event.obj["metadata"]
            key = (meta["namespace"], meta["name"])
            if event.type == "DELETED":
                self._runs.pop(key, None)
                self._due.pop(key, None)
            elif event.obj.get("spec", {}).get("nodeName"):
                self._dirty.add(key)
        elif event.resource == "nodes":
            name = event.obj["metadata"]["name"]
            if event.type == "DELETED":
                self._deleted_nodes.setdefault(name, self.now())
            else:
                self._deleted_nodes.pop(name, None)
            if node_state(event.obj) == "Lost":
                self._lost_since.setdefault(name, self.now())
            else:
                self._lost_since.pop(name, None)
            self._dirty.update(k for k, run in self._runs.items() if run.node == name)

    def next_due(self) -> datetime | None:
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def work(self) -> bool:
        now = self.now()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == due:
                del self._due[key]
                self._dirty.add(key)
        if not self._dirty:
            return False
        dirty, self._dirty = sorted(self._dirty), set()
        did = False
        for key in dirty:
            did |= self._sync(key, now)
        return did

    def _schedule(self, key: PodKey, due: datetime | None) -> None:
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))

    # -- one pod ---------------------------------------------------------------------------------
    def _sync(self, key: PodKey, now: datetime) -> bool:
        pod = self.store.get("pods", *key)
        if pod is None or not pod["spec"].get("nodeName"):
            return False
        if pod["spec"]["nodeName"] in self._deleted_nodes:
            return self._orphaned(pod, now)
        run = self._runs.get(key)
        if run is None or run.uid != pod["metadata"]["uid"]:
            run = self._new_run(pod, now)
            self._runs[key] = run
        state = node_state(self.store.get("nodes", "", run.node))
        if state == "Lost":
            return self._lost(pod, run, now)
        run.marked_lost = False
        if is_terminating(pod):
            return self._terminate(pod, run, now)
        if run.static:
            return False
        if run.advance(now, self._emit(pod)):
            run.pristine = False
        self._schedule(key, run.next_at())
        if run.pristine and (state == "Ready" or not is_pod_ready(pod)):
            return False  # a loaded status stands until the kubelet (or a node going away) changes it
        run.pristine = False
        return self._write_status(pod, run, now, node_ready=state == "Ready")

    def _new_run(self, pod: Obj, now: datetime) -> PodRun:
        spec = pod["spec"]
        loaded = pod["metadata"]["uid"] in self.loaded_uids
        static = loaded and (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")
        if not loaded:  # a new incarnation of the name starts with empty logs
            namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            for key in [k for k in self.pod_logs if k[0] == namespace and k[1] == name]:
                del self.pod_logs[key]

        def runs(key: str, init: bool) -> list[ContainerRun]:
            return [
                ContainerRun(
                    c["name"],
                    str(c.get("image", "")),
                    init,
                    container_behaviour(pod, c, init=init, rules=self.config.rules),
                    tuple(str(a) for a in (c.get("command") or []) + (c.get("args") or [])),
                )
                for c in spec.get(key) or []
            ]

        run = PodRun(
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            pod["metadata"]["uid"],
            spec["nodeName"],
            runs("initContainers", True),
            runs("containers", False),
            bound_at=now,
            static=static,
            pod_ip=_pod_ip(pod["metadata"]["uid"], spec["nodeName"]),
        )
        delays = [c.behaviour.start_delay for c in run.init + run.main if c.behaviour.start_delay is not None]
        delay = max(delays) if delays else self.config.start_delay
        if loaded and not static:
            return resume_run(run, pod, now=now, start_delay=delay)
        run.start(now + timedelta(seconds=delay))
        if static:
            started = parse_ts((pod.get("status") or {}).get("startTime"))
            run.bound_at = started or now
        return run

    def _emit(self, pod: Obj) -> Callable[[str, str, str, str | None], None]:
        node = pod["spec"]["nodeName"]

        def emit(type_: str, reason: str, message: str, container: str | None) -> None:
            if reason in ("Log", "LogRotate"):
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container or "")
                if reason == "LogRotate":
                    self.pod_logs[(key[0], key[1], f"{key[2]}/previous")] = self.pod_logs.pop(key, "")
                else:
                    self.pod_logs[key] = self.pod_logs.get(key, "") + message
                return
            field_path = None
            if container is not None:
                kind = (
                    "initContainers"
                    if any(c.get("name") == container for c in pod["spec"].get("initContainers") or [])
                    else "containers"
                )
                field_path = f"spec.{kind}{{{container}}}"
            self.recorder.record(
                pod, type_, reason, message, component="kubelet", host=node, field_path=field_path
            )

        return emit

    def _write_status(self, pod: Obj, run: PodRun, now: datetime, *, node_ready: bool) -> bool:
        status = build_status(pod, run, now, node_ready=node_ready)
        if status == pod.get("status"):
            return False

        # A shallow copy is enough: stored objects are never changed in place, and only the status
        # (built fresh above) and metadata (copied, for the new resourceVersion) differ.
        updated = {**pod, "metadata": dict(pod["metadata"]), "status": status}
        try:
            self.store.replace("pods", updated, expect_rv=pod["metadata"]["resourceVersion"])
        except SimApiError:
            self._dirty.add((run.namespace, run.name))  # changed meanwhile (or gone): look again
            return False
        return True

    def _terminate(self, pod: Obj, run: PodRun, now: datetime) -> bool:
        key = (run.namespace, run.name)
        if run.stopping_at is None:
            grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
            ignore = any(c.behaviour.ignore_sigterm for c in run.main)
            run.stopping_at = now + timedelta(
                seconds=grace if ignore else min(grace, self.config.stop_seconds)
            )
            emit = self._emit(pod)
            for container in run.main:
                if container.state == "running":
                    emit("Normal", "Killing", f"Stopping container {container.name}", container.name)
        if now < run.stopping_at:
            self._schedule(key, run.stopping_at)
            return False
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            # the containers have stopped: the status manager writes the terminal status first and
            # deletes the object only once the API shows it (status_manager.go, canBeDeleted), so the
            # controllers see a terminating pod that is no longer Ready before it goes
            killed = any(c.behaviour.ignore_sigterm for c in run.main)
            status = final_status(pod, run, now, killed=killed)
            updated = {**pod, "metadata": dict(pod["metadata"]), "status": status}
            try:
                self.store.replace("pods", updated, expect_rv=pod["metadata"]["resourceVersion"])
            except SimApiError:
                pass  # changed meanwhile (or gone): the next sync looks again
            self._dirty.add(key)
            return True
        if pod["metadata"].get("finalizers"):

            def finished(obj: Obj) -> None:
                obj["metadata"]["deletionGracePeriodSeconds"] = 0

            self.store.mutate("pods", run.namespace, run.name, finished)
            return True
        self.store.remove("pods", run.namespace, run.name)
        self._runs.pop(key, None)
        return True

    def _orphaned(self, pod: Obj, now: datetime) -> bool:
        """Pod GC: a pod bound to a deleted Node is force-deleted after a 40 s quarantine."""
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        due = self._deleted_nodes[pod["spec"]["nodeName"]] + timedelta(seconds=ORPHAN_QUARANTINE)
        if now < due:
            self._schedule(key, due)
            return False
        try:
            self.client.delete("pods", meta["namespace"], meta["name"], grace_seconds=0)
        except SimApiError:
            return False
        self._runs.pop(key, None)
        return True

    def _lost(self, pod: Obj, run: PodRun, now: datetime) -> bool:
        """Node lifecycle on an unreachable node: mark not ready, evict after the toleration."""
        already = run.pristine and not is_pod_ready(pod)  # a loaded pod the dump shows not Ready already
        did = (
            self._write_status(pod, run, now, node_ready=False) if not (run.marked_lost or already) else False
        )
        run.marked_lost = True
        if is_terminating(pod):
            return did
        since = self._lost_since.setdefault(run.node, now)
        evict_at = since + timedelta(seconds=self.config.eviction_seconds)
        if now < evict_at:
            self._schedule((run.namespace, run.name), evict_at)
            return did
        try:
            self.client.delete("pods", run.namespace, run.name)
        except SimApiError:
            return did
        self.recorder.record(
            pod,
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {run.namespace}/{run.name}",
            component="taint-eviction-controller",
        )
        return True


def _pod_ip(uid: str, node: str) -> str:
    digest = hashlib.sha1(f"{uid}{node}".encode()).digest()
    return f"10.244.{digest[0] % 250 + 1}.{digest[1] % 250 + 2}"
