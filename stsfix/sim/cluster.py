"""SimCluster: the simulated cluster as one object, for tests, the CLI and the demo.

It wires the Store, the SimClock, S1's ApiServer (HTTP, admission) and the controllers (StatefulSet
controller, scheduler, kubelet, GC) on one runner thread. Scenarios are fast-forwarded in stepped
virtual time (clock speed 0, jumping from timer to timer) until their starting condition holds, so
a test starts instantly in the stuck state; after that the clock runs at `speed`. With
`autorun=False` nothing runs on its own and tests drive time with `settle()` / `advance()`.
Standard library + PyYAML only.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from stsfix.sim.apiserver.api import Api
from stsfix.sim.controllers.gc import GarbageCollector
from stsfix.sim.controllers.scheduler import Scheduler
from stsfix.sim.controllers.statefulset import StatefulSetController
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.dump import Dump, read_dumps, store_objects
from stsfix.sim.kubelet.derive import DerivedRule, derive_rules
from stsfix.sim.kubelet.kubelet import Kubelet, KubeletConfig
from stsfix.sim.kubelet.rules import Rule
from stsfix.sim.runner import Runner, StatefulSetWorker
from stsfix.sim.scenarios import Scenario, load_scenario
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.nodes import NodeState, new_node, node_state, set_node_state
from stsfix.sim.store.objects import Obj
from stsfix.sim.store.resources import RESOURCES
from stsfix.sim.store.store import SimApiError, Store

_KINDS = {
    "Pod": "pods",
    "StatefulSet": "statefulsets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ControllerRevision": "controllerrevisions",
    "Event": "events",
    "Namespace": "namespaces",
    "Node": "nodes",
    "PodDisruptionBudget": "poddisruptionbudgets",
}
ObjList = list[Obj]  # NB: inside SimCluster, `list` is the method
_REHEARSALS: dict[tuple[object, ...], timedelta] = {}  # scenario start durations already measured
DEFAULT_NODES = ({"name": "sim-worker"}, {"name": "sim-worker2"}, {"name": "sim-worker3"})


def resource_of(kind_or_resource: str) -> str:
    """`StatefulSet`, `statefulsets`, `sts` or `pod` -> the plural resource name."""
    aliases = {
        "sts": "statefulsets",
        "po": "pods",
        "pvc": "persistentvolumeclaims",
        "ns": "namespaces",
        "pdb": "poddisruptionbudgets",
        "no": "nodes",
        "ev": "events",
    }
    if kind_or_resource in _KINDS:
        return _KINDS[kind_or_resource]
    lowered = kind_or_resource.lower()
    if lowered in aliases:
        return aliases[lowered]
    return lowered if lowered.endswith("s") else lowered + "s"


class SimCluster:
    """A whole simulated cluster; use as a context manager."""

    def __init__(
        self,
        scenarios: Iterable[str | Scenario] = (),
        *,
        speed: float = 60.0,
        k8s_version: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: bool = False,
        serve: bool = True,
        autorun: bool = True,
        nodes: Iterable[dict[str, Any]] | None = None,
        loads: Iterable[str | Path] = (),
        params: dict[str, Any] | None = None,
        kubelet: KubeletConfig | None = None,
        start: datetime | None = None,
        anonymous: str | None = None,
        add_nodes: int = 0,
        storage_classes: Iterable[str] = (),
        feature_gates: Mapping[str, bool] | None = None,
    ):
        self._scenario_names = [s if isinstance(s, str) else s.name for s in scenarios]
        self._params = params
        self._start_given = start is not None
        self.scenarios = [load_scenario(s, params=params) if isinstance(s, str) else s for s in scenarios]
        self._loads = list(loads)
        self.dump: Dump | None = read_dumps(self._loads) if self._loads else None
        version = (
            k8s_version
            or next((s.k8s_version for s in self.scenarios if s.k8s_version), None)
            or (self.dump.server_version if self.dump is not None else None)
            or "1.34.0"
        )
        self.version = KubeVersion.parse(version).with_gates(feature_gates or {})
        self.speed = speed
        self.serve_http = serve
        self.autorun = autorun
        self.clock = SimClock(start=start or datetime.now(UTC), speed=0.0)
        self.store = Store(now=self.clock.now)
        self.server: Any = None
        self.api: Api
        self._make_server(host, port, tls, anonymous)
        self.recorder = EventRecorder(self.store, now=self.clock.now)
        self.client = SimClient(self.store, now=self.clock.now)
        self.controller = StatefulSetController(
            self.client, self.recorder, version=self.version, now=self.clock.now
        )
        self.statefulsets = StatefulSetWorker(self.controller, now=self.clock.now)
        classes, default_class = self._storage_classes(storage_classes)
        self.scheduler = Scheduler(
            self.store,
            self.recorder,
            now=self.clock.now,
            storage_classes=classes,
            default_class=default_class,
        )
        config = (
            KubeletConfig() if kubelet is None else dataclasses.replace(kubelet, rules=list(kubelet.rules))
        )
        self._kubelet_config = dataclasses.replace(config, rules=list(config.rules))
        self.kubelet = Kubelet(
            self.client,
            self.recorder,
            now=self.clock.now,
            config=config,
            pod_logs=self.server.pod_logs if self.server is not None else None,
        )
        for scenario in self.scenarios:
            self.kubelet.config.rules.extend(scenario.rules)
        self.gc = GarbageCollector(self.client)
        self.runner = Runner(
            self.store, self.clock, [self.statefulsets, self.scheduler, self.kubelet, self.gc]
        )
        self._node_specs = list(nodes) if nodes is not None else self._scenario_nodes()
        self._node_specs += _extra_nodes(add_nodes, {str(n["name"]) for n in self._node_specs})
        self.derived_rules: list[DerivedRule] = []
        self.load_notes: list[str] = []
        self.started = False
        self.startup_seconds = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def _make_server(self, host: str, port: int, tls: bool, anonymous: str | None) -> None:
        try:
            from stsfix.sim.apiserver.server import ApiServer
        except ImportError:  # the HTTP server is optional for in-process tests
            self.api = Api(
                self.store, clock=self.clock, version=lambda: str(self.version), gates=lambda: dict(self.version.gates)
            )
            return
        self.server = ApiServer(
            self.store,
            clock=self.clock,
            version=str(self.version),
            feature_gates=dict(self.version.gates),
            host=host,
            port=port,
            tls=tls,
            anonymous=anonymous,
        )
        self.api = self.server.api
        self.server.add_control_route("POST", "/_sim/nodes", self._control_node)
        self.server.add_control_route("POST", "/_sim/rules", self._control_rule)
        self.server.add_control_route("POST", "/_sim/clock", self._control_clock)

    def _scenario_nodes(self) -> list[dict[str, Any]]:
        for scenario in self.scenarios:
            if scenario.nodes:
                return list(scenario.nodes)
        if self.dump is not None and not self.scenarios:
            return []  # the dump defines the cluster: its own nodes only (add more with add_nodes)
        return [dict(n) for n in DEFAULT_NODES]

    def _storage_classes(self, extra: Iterable[str]) -> tuple[tuple[str, ...], str]:
        """Scenario classes (default `standard`), the classes the dump names, and `extra`."""
        classes = {c for s in self.scenarios for c in s.storage_classes}
        dumped = self.dump.storage_classes if self.dump is not None else []
        if not classes and not dumped:
            classes = {"standard"}  # the default of a scenario, and of a dump that names no class
        classes |= set(dumped) | set(extra)
        default = (self.dump.default_storage_class if self.dump is not None else "") or (
            "standard" if "standard" in classes or not classes else sorted(classes)[0]
        )
        return tuple(sorted(classes)), default

    def start(self) -> SimCluster:
        """Create the base objects, load the dump, fast-forward every scenario, then serve and run."""
        began = time.perf_counter()
        if not self._start_given:
            dumped = self.dump.clock_start if self.dump is not None else None
            if dumped is not None and not self.scenarios:
                self.clock.set_now(dumped)  # the dump's own time: ages read as they did when it was taken
            else:
                start = datetime.now(UTC) - (self._rehearse() if self.scenarios else timedelta(0))
                # a dump taken from a clock ahead of ours must not be "future"
                self.clock.set_now(max(start, dumped + timedelta(seconds=1)) if dumped else start)
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._ensure_namespace(name)
        for index, spec in enumerate(self._node_specs):
            spec = dict(spec)
            node = new_node(
                spec.pop("name"),
                index=index,
                version=self.version.git_version,
                now=self.clock.now(),
                cpu=str(spec.get("cpu", "4")),
                memory=str(spec.get("memory", "8Gi")),
                pods=str(spec.get("pods", "110")),
            )
            self.store.create("nodes", node)
        if self.dump is not None:  # every object before any controller runs, nodes first
            self.load_objects(self.dump.objects)
        self.gc.prime()
        for scenario in self.scenarios:
            scenario.run(self)
        self.runner.run_once()
        self.clock.speed = self.speed if self.autorun else 0.0
        if self.server is not None and self.serve_http:
            self.server.start()
        if self.autorun:
            self.runner.start()
        self.started = True
        self.startup_seconds = time.perf_counter() - began
        return self

    def _rehearse(self) -> timedelta:
        """How much sim time the scenarios take to reach their starting state (a dry run), so the
        real run can start that far in the past and end at the wall clock: ages then look right."""
        key = (
            repr(self.scenarios),
            repr(sorted((self._params or {}).items())),
            repr(self.version),  # the gates too
            repr(self._node_specs),
            repr(self._kubelet_config),
        )
        if key in _REHEARSALS:
            return _REHEARSALS[key]
        origin = datetime(2026, 1, 1, tzinfo=UTC)
        probe = SimCluster(
            self.scenarios,
            serve=False,
            autorun=False,
            k8s_version=str(self.version),
            feature_gates=dict(self.version.gates),
            nodes=self._node_specs,
            params=self._params,
            kubelet=self._kubelet_config,
            start=origin,
        )
        probe.start()
        _REHEARSALS[key] = probe.clock.now() - origin + timedelta(seconds=1)
        return _REHEARSALS[key]

    def stop(self) -> None:
        self.runner.stop()
        if self.server is not None and self.serve_http and self.started:
            self.server.stop()
        self.started = False

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------------
    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None and self.serve_http else None

    @property
    def requests(self) -> Any:
        return self.server.request_log if self.server is not None else []

    def write_kubeconfig(self, path: str | Path, *, current: str = "admin") -> Path:
        if self.server is None:
            raise RuntimeError("no HTTP server in this simulator (stsfix.sim.apiserver.server is missing)")
        return Path(self.server.write_kubeconfig(path, current=current))

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self.store.get(resource_of(resource), namespace or "", name)

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return self.store.list(resource_of(resource), namespace)[0]

    def wait_for(self, predicate: Callable[[SimCluster], bool], timeout: float = 10.0) -> bool:
        """Re-evaluate `predicate(self)` on every store change until true or `timeout` real seconds."""
        deadline = time.monotonic() + timeout
        while True:
            rv = self.store.resource_version
            if predicate(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self.autorun:
                self.runner.run_once()
            self.store.wait(rv, min(left, 0.25))

    # -- stepped time (autorun=False, or startup) ------------------------------------------------
    def settle(self) -> None:
        self.runner.run_once()

    def step(self) -> datetime | None:
        """Stepped mode: run up to and including the next timer; None when nothing is scheduled."""
        with self.runner.mutex:
            return self.runner.step()

    def advance(self, seconds: float) -> None:
        """Move sim time forward by `seconds`, running timers on their times (stepped mode)."""
        with self.runner.mutex:  # the controller thread waits while time jumps timer by timer
            self.runner.advance(seconds)
        self.runner.wake()

    def run_until(
        self,
        predicate: Callable[[SimCluster], bool],
        *,
        max_seconds: float = 3600.0,
        tick: float | None = None,
    ) -> bool:
        """Stepped mode: jump through timers until `predicate(self)` holds (sim-time budget)."""
        return self.runner.run_until(lambda: predicate(self), max_seconds=max_seconds, tick=tick)

    # -- writes ----------------------------------------------------------------------------------
    def _ensure_namespace(self, name: str) -> None:
        if self.store.get("namespaces", "", name) is None:
            self.api.create(
                "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    def apply_manifest(self, obj_or_list: Obj | ObjList) -> ObjList:
        """Create or replace objects through admission (defaulting, validation, generation)."""
        items = obj_or_list if isinstance(obj_or_list, list) else _items(obj_or_list)
        results = []
        with self.runner.mutex:
            for raw in items:
                obj = copy.deepcopy(raw)
                resource = resource_of(obj.get("kind", ""))
                if resource not in RESOURCES:
                    continue  # e.g. a Service in a manifest meant for kind as well: not simulated
                namespace = obj.get("metadata", {}).get("namespace") or (
                    "" if resource in ("nodes", "namespaces") else "default"
                )
                if namespace:
                    self._ensure_namespace(namespace)
                current = self.store.get(resource, namespace, obj["metadata"]["name"])
                if current is None:
                    results.append(
                        self.api.create(resource, namespace, obj, manager="kubectl-client-side-apply")
                    )
                else:
                    obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    results.append(
                        self.api.update(
                            resource,
                            namespace,
                            obj["metadata"]["name"],
                            obj,
                            manager="kubectl-client-side-apply",
                        )
                    )
        self.runner.wake()
        return results

    def patch(
        self,
        resource: str,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        content_type: str = "application/strategic-merge-patch+json",
    ) -> Obj:
        with self.runner.mutex:
            obj, _ = self.api.patch(
                resource_of(resource), namespace, name, content_type, patch, manager="kubectl-patch"
            )
        self.runner.wake()
        return obj

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        grace_seconds: int | None = None,
        propagation: str | None = None,
    ) -> None:
        options: Obj = {}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if propagation:
            options["propagationPolicy"] = propagation
        with self.runner.mutex:
            self.api.delete(resource_of(resource), namespace, name, options)
        self.runner.wake()

    def load_objects(self, objects: ObjList) -> None:
        """Put objects into the store, defaulted as the server reads them and with their status: a dump's
        state is the starting state. Pods with a status are resumed from it by the kubelet, and the
        ways the dump shows pods failing become behaviour rules (`derived_rules`)."""
        with self.runner.mutex:
            loaded = store_objects(
                self.store,
                objects,
                max_unavailable_gate=self.version.max_unavailable_gate,
                now=self.clock.now(),
                node_version=self.version.git_version,
                ensure_namespace=self._ensure_namespace,
                notes=self.load_notes,
            )
            self.kubelet.loaded_uids.update(
                o["metadata"]["uid"]
                for o in loaded
                if o["kind"] == "Pod" and (o.get("status") or {}).get("phase")
            )
            ready = {n["metadata"]["name"] for n in self.store.list("nodes")[0] if node_state(n) == "Ready"}
            pods = [o for o in loaded if o.get("kind") == "Pod"]
            events = [o for o in loaded if o.get("kind") == "Event"]
            derived = derive_rules(pods, events, now=self.clock.now(), ready_nodes=ready)
            self.derived_rules.extend(derived)
            self.kubelet.config.rules.extend(d.rule for d in derived)
            self.gc.prime()
        self.runner.wake()

    def set_node(self, name: str, state: NodeState = "Ready") -> Obj:
        with self.runner.mutex:
            node = set_node_state(self.store, name, state, now=self.clock.now)
        self.runner.wake()
        return node

    def add_rule(self, rule: Rule | dict[str, Any] | None = None, **fields: Any) -> Rule:
        """Add a kubelet behaviour rule (applies to containers started from now on)."""
        parsed = rule if isinstance(rule, Rule) else Rule.from_dict(dict(rule or {}, **fields))
        with self.runner.mutex:
            self.kubelet.config.rules.append(parsed)
        return parsed

    # -- control routes --------------------------------------------------------------------------
    def _control_node(self, data: Obj) -> tuple[int, Obj]:
        try:
            node = self.set_node(str(data["name"]), data.get("state", "Ready"))
        except (KeyError, ValueError, SimApiError) as err:
            raise SimApiError(400, "BadRequest", f"bad node control request: {err}") from None
        return 200, node

    def _control_clock(self, data: Obj) -> tuple[int, Obj]:
        """Like the server's clock route, but an advance runs every timer on its own time."""
        try:
            if "advance" in data:
                self.advance(float(data["advance"]))
            if "speed" in data:
                self.clock.speed = float(data["speed"])
        except (TypeError, ValueError) as err:
            raise SimApiError(400, "BadRequest", f"bad clock request: {err}") from None
        return 200, {"now": self.clock.now().isoformat(), "speed": self.clock.speed}

    def _control_rule(self, data: Obj) -> tuple[int, Obj]:
        try:
            rule = self.add_rule(data)
        except (KeyError, ValueError) as err:
            raise SimApiError(400, "BadRequest", f"bad rule: {err}") from None
        return 201, {"action": rule.action, "pod": rule.pod, "namespace": rule.namespace}


def _extra_nodes(count: int, taken: set[str]) -> list[dict[str, Any]]:
    """`count` default-sized nodes named sim-worker, sim-worker2, ... that are not taken yet."""
    names = (("sim-worker" if i == 1 else f"sim-worker{i}") for i in itertools.count(1))
    return [{"name": n} for n in itertools.islice((n for n in names if n not in taken), count)]


def _items(obj: Obj) -> list[Obj]:
    return list(obj.get("items") or []) if obj.get("kind", "").endswith("List") else [obj]
