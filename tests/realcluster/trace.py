"""A trace of what a StatefulSet controller did in one namespace, recorded the same way on both sides.

`TraceRecorder` watches pods, statefulsets and controllerrevisions of one namespace through the
official client (a kubeconfig and a namespace: the simulator's HTTP server and the real apiserver
alike), from an empty namespace on, and `Trace` normalises what it saw into three sequences, each in
the order the API server committed the changes (by resourceVersion):

- `pods`: ("created", name, revision label), ("deleting", name, revision) when a deletionTimestamp
  first appears (the DELETE the controller, the kubelet or a script sent), ("deleted", name, revision)
  when the object is gone;
- `status`: the distinct values of the StatefulSet status fields (STATUS_FIELDS), repeats collapsed:
  one entry per status write that changed one of them, i.e. after each controller step;
- `revisions`: ("revision", name, number) when a ControllerRevision appears or is re-numbered,
  ("revision deleted", name) when history is truncated;
- `objects`: what the controller wrote into the objects it made, in no particular order: each pod as
  created (labels, controller reference, hostname, subdomain, claim volumes), each revision as created
  (labels, annotations, controller reference), and the StatefulSet's spec as the API server stored it
  last (defaulting, the maxUnavailable gate).

The comparison (`compare`) is documented in docs/sim.md, "Differential fidelity".
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RESOURCES = (("v1", "Pod"), ("apps/v1", "StatefulSet"), ("apps/v1", "ControllerRevision"))
STATUS_FIELDS = (
    "observedGeneration", "replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
    "availableReplicas", "currentRevision", "updateRevision", "collisionCount",
)  # fmt: skip
REVISION_LABEL = "controller-revision-hash"
#: Seconds a watch request stays open before the recorder opens the next one (from the last seen rv).
WATCH_WINDOW_S = 1


@dataclass(frozen=True)
class RawEvent:
    rv: int
    kind: str
    type: str
    obj: dict[str, Any]


class TraceRecorder:
    """Watches one namespace from an empty start; `stop()` returns the events, oldest first."""

    def __init__(self, kubeconfig: str, namespace: str, *, since: str | None = None):
        """`since`: watch from that resourceVersion (the server replays its log from there) instead of
        from an empty list of the namespace."""
        from kubernetes import config, dynamic

        self.namespace = namespace
        self.since = since
        self.client = dynamic.DynamicClient(config.new_client_from_config(config_file=kubeconfig))
        self._events: list[RawEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cycles: dict[str, int] = {}
        self.errors: list[str] = []
        self.last_change = time.monotonic()

    def start(self) -> TraceRecorder:
        for api_version, kind in RESOURCES:
            resource = self.client.resources.get(api_version=api_version, kind=kind)
            rv = self.since
            if rv is None:
                listed = resource.get(namespace=self.namespace)
                if listed.items:
                    raise RuntimeError(f"namespace {self.namespace} already holds {kind}s: a trace starts empty")
                rv = listed.metadata.resourceVersion
            self._cycles[kind] = 0
            thread = threading.Thread(target=self._watch, args=(resource, kind, rv), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _watch(self, resource: Any, kind: str, rv: str) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                    resource.get, namespace=self.namespace, resource_version=rv,
                    timeout_seconds=WATCH_WINDOW_S, serialize=False,
                ):  # fmt: skip
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":  # e.g. 410 Expired: the trace would have a hole
                        self.errors.append(f"{kind}: watch error {obj}")
                        self._stop.set()
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        with self._lock:
                            self._events.append(RawEvent(int(rv), kind, event["type"], obj))
            except Exception as exc:  # noqa: BLE001 - a broken stream is reopened from the last rv
                self.errors.append(f"{kind}: {exc}")
                time.sleep(0.2)
            with self._lock:
                self._cycles[kind] += 1

    def events(self) -> list[RawEvent]:
        with self._lock:
            return sorted(self._events, key=lambda e: e.rv)

    def trace(self) -> Trace:
        return Trace.from_events(self.events())

    def caught_up(self, *, expect: int | None = None, timeout_s: float = 30.0) -> None:
        """Wait until everything committed before this call is in: `expect` events when the caller
        knows how many there are (a stopped simulator), else until every watch has reopened twice."""
        with self._lock:
            wanted = {kind: n + 2 for kind, n in self._cycles.items()}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            with self._lock:
                if expect is not None and len(self._events) >= expect:
                    return
                if expect is None and all(self._cycles[k] >= n for k, n in wanted.items()):
                    return
            time.sleep(0.02)
        if not self.errors:
            self.errors.append(f"the trace watches did not catch up in {timeout_s}s")

    def stop(self, *, expect: int | None = None) -> list[RawEvent]:
        self.caught_up(expect=expect)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WATCH_WINDOW_S + 5)
        return self.events()


def _revision(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def status_of(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    out: dict[str, Any] = {}
    for key in STATUS_FIELDS:
        value = status.get(key)
        if value is None and key not in ("currentRevision", "updateRevision"):
            value = 0  # omitempty: an absent count is 0
        out[key] = value
    return out


@dataclass
class Trace:
    pods: list[tuple[str, ...]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[tuple[Any, ...]] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: Iterable[RawEvent]) -> Trace:
        trace = cls()
        deleting: set[str] = set()
        numbers: dict[str, int] = {}
        specs: dict[str, str] = {}
        for event in events:
            obj, name = event.obj, event.obj["metadata"]["name"]
            if event.kind == "Pod":
                uid = obj["metadata"]["uid"]
                if event.type == "ADDED":
                    trace._pod(("created", name, _revision(obj)))
                    trace.objects.append(_pod_as_created(obj))
                if event.type != "DELETED" and obj["metadata"].get("deletionTimestamp") and uid not in deleting:
                    deleting.add(uid)
                    trace._pod(("deleting", name, _revision(obj)))
                if event.type == "DELETED":
                    trace._pod(("deleted", name, _revision(obj)))
            elif event.kind == "StatefulSet" and event.type != "DELETED":
                specs[name] = f"statefulset {name} spec {_json(obj.get('spec'))}"
                status = status_of(obj)
                if not trace.status or trace.status[-1] != status:
                    trace.status.append(status)
                    trace.merged.append(f"sts {name} status {_short(status)}")
            elif event.kind == "ControllerRevision":
                number = int(obj.get("revision") or 0)
                if event.type == "ADDED":
                    meta = obj["metadata"]
                    trace.objects.append(
                        f"revision {name} labels {_json(meta.get('labels'))} annotations "
                        f"{_json(meta.get('annotations'))} owner {_owner(meta)}"
                    )
                if event.type == "DELETED":
                    trace._revision(("revision deleted", name))
                elif numbers.get(name) != number:
                    trace._revision(("revision", name, number))
                numbers[name] = number
        trace.objects = sorted(trace.objects) + sorted(specs.values())
        return trace

    def _pod(self, entry: tuple[str, ...]) -> None:
        self.pods.append(entry)
        self.merged.append(f"pod {entry[0]} {entry[1]} {entry[2]}")

    def _revision(self, entry: tuple[Any, ...]) -> None:
        self.revisions.append(entry)
        self.merged.append(" ".join(str(x) for x in entry))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _owner(meta: dict[str, Any]) -> str:
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
    return _json([{k: r.get(k) for k in ("apiVersion", "kind", "name", "controller", "blockOwnerDeletion")} for r in refs])


def _pod_as_created(pod: dict[str, Any]) -> str:
    """The parts of a new pod the StatefulSet controller sets (newVersionedStatefulSetPod). The service
    account token volume the real ServiceAccount admission plugin adds is left out (docs/sim.md)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    volumes = spec.get("volumes") or []
    claims = sorted((v["name"], v["persistentVolumeClaim"].get("claimName")) for v in volumes if "persistentVolumeClaim" in v)
    return (
        f"pod {meta['name']} labels {_json(meta.get('labels'))} annotations {_json(meta.get('annotations'))} "
        f"owner {_owner(meta)} hostname {spec.get('hostname')} subdomain {spec.get('subdomain')} claims {_json(claims)}"
    )


def _short(status: dict[str, Any]) -> str:
    names = {"observedGeneration": "gen", "replicas": "r", "readyReplicas": "ready", "currentReplicas": "cur",
             "updatedReplicas": "upd", "availableReplicas": "avail", "collisionCount": "coll"}  # fmt: skip
    parts = [f"{names.get(k, k)}={v}" for k, v in status.items() if k not in ("currentRevision", "updateRevision")]
    return " ".join(parts) + f" current={status['currentRevision']} update={status['updateRevision']}"


def ordinal(name: str) -> int:
    match = re.search(r"-(\d+)$", name)
    return int(match[1]) if match else -1


# -- comparison ------------------------------------------------------------------------------------
PHASE_FIELDS = ("observedGeneration", "currentRevision", "updateRevision", "collisionCount")


def _pod_histories(pods: list[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for what, name, revision in pods:
        out.setdefault(name, []).append((what, revision))
    return out


def _phases(status: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for entry in status:
        phase = tuple(entry[k] for k in PHASE_FIELDS)
        if not out or out[-1] != phase:
            out.append(phase)
    return out


def _in_order(part: list[Any], whole: list[Any]) -> bool:
    """Whether `part` is `whole` with some entries left out (same order), starting at the same entry."""
    rest = iter(whole)
    return part[:1] == whole[:1] and all(any(entry == w for w in rest) for entry in part)


def compare(sim: Trace, real: Trace, *, concurrent: bool, ordered: bool = True) -> list[str]:
    """What differs between the two traces (empty: they agree); docs/sim.md, "Differential fidelity".

    Exact when one pod at a time is in flight (OrderedReady, maxUnavailable 1): the controller changes
    a pod and waits for it, so the order of every pod event and every status value is the
    controller's, not the kubelets'. With several pods in flight (`concurrent`: Parallel, or
    maxUnavailable above 1) the kubelets finish them in their own order and the real controller sees
    them in its own batches, so only what the controller decides is compared in order: each pod's own
    history, the order in which pods were chosen for deletion, for `ordered` sets (OrderedReady: one
    create per sync, lowest ordinal first) the order of creations, the sequence of generations and
    revisions in the status, and the final status."""
    out = []
    if sim.objects != real.objects:
        out.append(f"objects: {_first_difference(sim.objects, real.objects)}")
    if sim.revisions != real.revisions:
        out.append(f"revisions: simulator {sim.revisions} != real {real.revisions}")
    if not concurrent:
        if sim.pods != real.pods:
            out.append(f"pods: {_first_difference(sim.pods, real.pods)}")
        # Every status the real controller wrote is one the simulator wrote, in the same order, from
        # the same first to the same last; the real one may skip one: a sync that finds two changes
        # (web-4 gone and not Ready) writes one status, and under load its informer batches more.
        if not _in_order(real.status, sim.status) or sim.status[-1:] != real.status[-1:]:
            out.append(f"status: {_first_difference(sim.status, real.status)}")
        return out
    if _pod_histories(sim.pods) != _pod_histories(real.pods):
        out.append(f"pod histories: simulator {_pod_histories(sim.pods)} != real {_pod_histories(real.pods)}")
    decisions = ("deleting", "created") if ordered else ("deleting",)
    for what in decisions:
        chosen = [[name for kind, name, _ in t.pods if kind == what] for t in (sim, real)]
        if chosen[0] != chosen[1]:
            out.append(f"order of pods {what}: simulator {chosen[0]} != real {chosen[1]}")
    if _phases(sim.status) != _phases(real.status):
        out.append(f"status phases: {_first_difference(_phases(sim.status), _phases(real.status))}")
    if sim.status[-1:] != real.status[-1:]:
        out.append(f"final status: simulator {sim.status[-1:]} != real {real.status[-1:]}")
    return out


def _first_difference(sim: list[Any], real: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(sim, real, strict=False)):
        if a != b:
            return f"entry {index}: simulator {a} != real {b}"
    return f"simulator has {len(sim)} entries, real {len(real)}; first extra: {(sim + real)[min(len(sim), len(real))]}"


def side_by_side(sim: Trace, real: Trace, width: int = 96) -> str:
    rows = [f"{'simulator':<{width}} | real", "-" * (2 * width + 3)]
    for index in range(max(len(sim.merged), len(real.merged))):
        left = sim.merged[index] if index < len(sim.merged) else ""
        right = real.merged[index] if index < len(real.merged) else ""
        mark = "|" if left == right else "X"
        rows.append(f"{left:<{width}} {mark} {right}")
    return "\n".join(rows)
