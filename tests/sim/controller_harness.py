"""A controller-only harness for fidelity tests, modelled on upstream `fakes.go`.

No kubelet, scheduler or runner: tests call `sync()` (one controller pass, like
`UpdateStatefulSet`) and move pods between phases by hand, exactly as the upstream unit tests do.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from stsfix.sim.controllers.statefulset import StatefulSetController, SyncResult
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store import defaults
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.objects import (
    REVISION_LABEL,
    parent_and_ordinal,
    set_condition,
    ts,
)
from stsfix.sim.store.store import Store, WatchEvent

T0 = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def default_statefulset(sts: Obj, *, max_unavailable_gate: bool) -> Obj:
    """A StatefulSet as the API server stores it: the simulator's admission defaults (§1), one copy."""
    sts = copy.deepcopy(sts)
    sts.setdefault("apiVersion", "apps/v1")
    sts.setdefault("kind", "StatefulSet")
    defaults.default_object("statefulsets", sts, max_unavailable_gate=max_unavailable_gate)
    sts["spec"]["template"].setdefault("metadata", {})
    return sts


def new_statefulset(replicas: int, *, name: str = "foo", **spec: Any) -> Obj:
    """Upstream `newStatefulSet(n)`: foo, foo=bar, nginx with datadir/home, rollingUpdate nil."""
    raw: Obj = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"foo": "bar"}},
            "serviceName": "governingsvc",
            "revisionHistoryLimit": 2,
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"foo": "bar"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx",
                            "volumeMounts": [
                                {"name": "datadir", "mountPath": "/tmp/"},
                                {"name": "home", "mountPath": "/home"},
                            ],
                        }
                    ],
                    "volumes": [{"name": "home", "hostPath": {"path": "/tmp/home"}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "datadir"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    raw["spec"].update(spec)
    return raw


class Harness:
    """Store + controller; counts pod creates/deletes from the store's event stream."""

    def __init__(self, sts: Obj, *, version: str = "1.34.0"):
        self.clock = SimClock(start=T0, speed=0)
        self.store = Store(now=self.clock.now)
        self.client = SimClient(self.store, now=self.clock.now)
        self.recorder = EventRecorder(self.store, now=self.clock.now)
        self.version = KubeVersion.parse(version)
        self.controller = StatefulSetController(
            self.client, self.recorder, version=self.version, now=self.clock.now
        )
        self.creates: list[str] = []
        self.store.subscribe(self._count)
        sts = default_statefulset(sts, max_unavailable_gate=self.version.max_unavailable_gate)
        self.name = sts["metadata"]["name"]
        self.store.create("statefulsets", sts)

    def _count(self, event: WatchEvent) -> None:
        if event.resource == "pods" and event.type == "ADDED":
            self.creates.append(event.obj["metadata"]["name"])

    @property
    def deletes(self) -> list[str]:
        """Pod DELETE calls the controller made (attempts, in order)."""
        return [name for op, name in self.client.faults.log if op == "delete_pod"]

    # -- driving -------------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        return self.controller.sync("default", self.name)

    @property
    def sts(self) -> Obj:
        return self.store.get("statefulsets", "default", self.name)

    @property
    def status(self) -> Obj:
        return self.sts.get("status") or {}

    def pods(self) -> dict[str, Obj]:
        items = self.store.list("pods", "default")[0]
        return {
            p["metadata"]["name"]: p
            for p in sorted(items, key=lambda p: parent_and_ordinal(p["metadata"]["name"])[1])
        }

    def revision(self, name: str) -> str:
        return self.pods()[name]["metadata"]["labels"][REVISION_LABEL]

    def update_spec(self, change: Any) -> None:
        """Change the spec like an API update would (and bump the generation)."""

        def mutate(obj: Obj) -> None:
            change(obj["spec"])
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1

        self.store.mutate("statefulsets", "default", self.name, mutate)

    def set_image(self, image: str) -> None:
        self.update_spec(lambda spec: spec["template"]["spec"]["containers"][0].__setitem__("image", image))

    # -- pod state -----------------------------------------------------------------------------
    def set_phase(
        self, name: str, phase: str, *, ready: bool | None = None, ready_since: datetime | None = None
    ) -> None:
        now = ready_since or self.clock.now()

        def change(pod: Obj) -> None:
            pod["spec"]["nodeName"] = "node-1"
            status = pod.setdefault("status", {})
            status["phase"] = phase
            if ready is not None:
                set_condition(status, "Ready", "True" if ready else "False", now)
                if ready_since is not None:
                    next(c for c in status["conditions"] if c["type"] == "Ready")["lastTransitionTime"] = ts(
                        now
                    )

        self.store.mutate("pods", "default", name, change)

    def make_ready(self, name: str, *, since: datetime | None = None) -> None:
        self.set_phase(name, "Running", ready=True, ready_since=since)

    def make_all_ready(self, *, since: datetime | None = None) -> None:
        for name, pod in self.pods().items():
            if not pod["metadata"].get("deletionTimestamp"):
                self.make_ready(name, since=since)

    def converge(self, *, max_syncs: int = 200) -> None:
        """Sync, make every pod ready, finish deletions; until the set is rolled out."""
        for _ in range(max_syncs):
            self.sync()
            self.finish_deletions()
            self.make_all_ready(since=self.clock.now() - timedelta(hours=2))
            status = self.status
            n = self.sts["spec"]["replicas"]
            if (
                status.get("readyReplicas", 0) == n
                and status.get("replicas", 0) == n
                and status.get("currentRevision") == status.get("updateRevision")
                and len(self.pods()) == n
            ):
                self.sync()
                return
        raise AssertionError(f"did not converge: {self.status}")

    def mark_terminating(self, name: str) -> None:
        def change(pod: Obj) -> None:
            pod["metadata"]["deletionTimestamp"] = ts(self.clock.now() + timedelta(seconds=30))
            pod["metadata"]["deletionGracePeriodSeconds"] = 30

        self.store.mutate("pods", "default", name, change)

    def finish_deletions(self) -> list[str]:
        gone = []
        for name, pod in self.pods().items():
            if pod["metadata"].get("deletionTimestamp"):
                self.store.remove("pods", "default", name)
                gone.append(name)
        return gone

    def remove(self, name: str) -> None:
        self.store.remove("pods", "default", name)

    def events(self, reason: str | None = None) -> list[Obj]:
        items = self.store.list("events", "default")[0]
        return [e for e in items if reason is None or e["reason"] == reason]

    def copy_sts(self) -> Obj:
        return copy.deepcopy(self.sts)
