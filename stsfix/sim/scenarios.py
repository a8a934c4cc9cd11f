"""Scenario loading and fast-forwarding, plus `load_manifests` for dumps.

A scenario is a documented YAML file in stsfix/sim/scenarios/: `description`, `k8s_version`,
`nodes`, `storage_classes`, kubelet `rules`, `manifests` (real Kubernetes YAML that also applies
to a kind cluster), `healthy_when` (conditions after the manifests), `steps` (patches, rollout
undo, node changes, deletes; each with its own `wait`) and `ready_when` (the starting state). The
cluster runs all of it in stepped virtual time before it starts serving. Conditions are small
dicts, see `check`. Standard library + PyYAML only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from stsfix.sim.kubelet.rules import Rule
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.nodes import NodeState
from stsfix.sim.store.objects import (
    REVISION_LABEL,
    Obj,
    controller_ref,
    is_pod_ready,
    is_terminating,
    labels_of,
    parse_ts,
)

DEFAULT_BUDGET = 4 * 3600.0  # sim seconds a scenario may take to reach each wait condition
ObjList = list[Obj]  # NB: inside ScenarioCluster, `list` is the method


class ScenarioCluster(Protocol):
    """What a scenario drives: the cluster's reads, writes and stepped time (`SimCluster` has them).

    Named here rather than imported from `stsfix.sim.cluster`, which loads and runs scenarios, so
    the two modules do not import each other.
    """

    clock: SimClock

    def get(self, resource: str, namespace: str, name: str) -> Obj | None: ...

    def list(self, resource: str, namespace: str | None = None) -> ObjList: ...

    def patch(
        self, resource: str, namespace: str, name: str, patch: Obj, *, content_type: str = ...
    ) -> Obj: ...

    def delete(
        self, resource: str, namespace: str, name: str, *, grace_seconds: int | None = None
    ) -> None: ...

    def set_node(self, name: str, state: NodeState = "Ready") -> Obj: ...

    def apply_manifest(self, obj_or_list: Obj | ObjList) -> ObjList: ...

    def advance(self, seconds: float) -> None: ...

    def settle(self) -> None: ...

    def run_until(
        self,
        predicate: Callable[[ScenarioCluster], bool],
        *,
        max_seconds: float = ...,
        tick: float | None = None,
    ) -> bool: ...


class ScenarioError(Exception):
    """A scenario is unknown, malformed, or never reached its documented state."""


@dataclass
class Scenario:
    name: str
    description: str
    k8s_version: str | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    storage_classes: list[str] = field(default_factory=lambda: ["standard"])
    rules: list[Rule] = field(default_factory=list)
    manifests: list[Obj] = field(default_factory=list)
    healthy_when: list[Obj] = field(default_factory=list)
    steps: list[Obj] = field(default_factory=list)
    ready_when: list[Obj] = field(default_factory=list)
    starting_state: str = ""

    def run(self, sim: ScenarioCluster) -> None:
        """Apply, wait healthy, run the steps, wait for the starting state (stepped time)."""
        if self.manifests:
            sim.apply_manifest(self.manifests)
        _wait(sim, self, "healthy_when", self.healthy_when)
        for index, step in enumerate(self.steps):
            _do_step(sim, step)
            _wait(sim, self, f"steps[{index}].wait", step.get("wait") or [])
        _wait(sim, self, "ready_when", self.ready_when)


# -- loading ---------------------------------------------------------------------------------------
def _scenario_dir() -> Path:
    return Path(str(resources.files("stsfix.sim") / "scenarios"))


def scenario_names() -> list[str]:
    return sorted(p.stem for p in _scenario_dir().glob("*.yaml"))


def describe_scenarios() -> list[tuple[str, str]]:
    """(name, one-line description) for every bundled scenario."""
    out = []
    for name in scenario_names():
        doc = yaml.safe_load((_scenario_dir() / f"{name}.yaml").read_text())
        out.append((name, " ".join(str(doc.get("description", "")).split()).split(". ")[0].rstrip(".")))
    return out


def load_scenario(name: str, *, params: dict[str, Any] | None = None) -> Scenario:
    """A bundled scenario by name, or a scenario YAML file by path."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = _scenario_dir() / f"{name}.yaml"
    if not path.exists():
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    doc = yaml.safe_load(path.read_text()) or {}
    if doc.get("generator") == "fleet":
        from stsfix.sim.fleet import fleet_manifests

        size = int((params or {}).get("size", doc.get("parameters", {}).get("size", {}).get("default", 10)))
        doc["manifests"], doc["healthy_when"], doc["steps"], doc["ready_when"] = fleet_manifests(size)
    return Scenario(
        name=path.stem,
        description=str(doc.get("description", "")).strip(),
        k8s_version=str(doc["k8s_version"]) if doc.get("k8s_version") else None,
        nodes=list(doc.get("nodes") or []),
        storage_classes=list(doc.get("storage_classes") or ["standard"]),
        rules=[Rule.from_dict(r) for r in doc.get("rules") or []],
        manifests=[m for m in doc.get("manifests") or [] if m],
        healthy_when=list(doc.get("healthy_when") or []),
        steps=list(doc.get("steps") or []),
        ready_when=list(doc.get("ready_when") or []),
        starting_state=str(doc.get("starting_state", "")).strip(),
    )


def load_manifests(path: str | Path) -> list[Obj]:
    """Objects from a List or multi-document YAML/JSON file (e.g. `kubectl get -o yaml` output)."""
    text = Path(path).read_text()
    if text.lstrip().startswith(("{", "[")):
        try:
            docs: list[Any] = [json.loads(text)]
        except ValueError:
            docs = list(yaml.safe_load_all(text))
    else:
        docs = list(yaml.safe_load_all(text))
    objects: list[Obj] = []
    for doc in docs:
        if isinstance(doc, list):
            objects.extend(doc)
        elif isinstance(doc, dict) and doc.get("kind", "").endswith("List") and "items" in doc:
            objects.extend(doc["items"] or [])
        elif isinstance(doc, dict):
            objects.append(doc)
    return objects


# -- steps -----------------------------------------------------------------------------------------
_PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


def _do_step(sim: ScenarioCluster, step: Obj) -> None:
    if "patch" in step:
        spec = step["patch"]
        sim.patch(
            spec.get("resource", "statefulsets"),
            spec.get("namespace", "default"),
            spec["name"],
            spec["body"],
            content_type=_PATCH_TYPES[spec.get("type", "strategic")],
        )
    elif "rollout_undo" in step:
        spec = step["rollout_undo"]
        rollout_undo(
            sim, spec.get("namespace", "default"), spec["name"], to_revision=int(spec.get("to_revision", 0))
        )
    elif "node" in step:
        spec = step["node"]
        name = spec.get("name")
        if name is None:
            pod = sim.get("pods", spec.get("namespace", "default"), spec["pod_of"])
            if pod is None:
                raise ScenarioError(f"step node: pod {spec['pod_of']} does not exist")
            name = pod["spec"]["nodeName"]
        sim.set_node(name, spec.get("state", "Ready"))
    elif "delete" in step:
        spec = step["delete"]
        sim.delete(
            spec.get("resource", "pods"),
            spec.get("namespace", "default"),
            spec["name"],
            grace_seconds=spec.get("grace"),
        )
    elif "apply" in step:
        sim.apply_manifest(list(step["apply"]))
    elif "advance" in step:
        sim.advance(float(step["advance"]))
    else:
        raise ScenarioError(f"unknown scenario step {sorted(step)}")


def rollout_undo(sim: ScenarioCluster, namespace: str, name: str, *, to_revision: int = 0) -> None:
    """What `kubectl rollout undo` sends: the target revision's data as a strategic-merge patch."""
    sts = sim.get("statefulsets", namespace, name)
    if sts is None:
        raise ScenarioError(f"statefulset {namespace}/{name} not found")
    owned = [
        r
        for r in sim.list("controllerrevisions", namespace)
        if (controller_ref(r) or {}).get("uid") == sts["metadata"]["uid"]
    ]
    owned.sort(key=lambda r: int(r.get("revision") or 0))
    if to_revision:
        target = next((r for r in owned if int(r.get("revision") or 0) == to_revision), None)
    else:
        target = owned[-2] if len(owned) >= 2 else None
    if target is None:
        raise ScenarioError(f"no revision to roll back to for {namespace}/{name}")
    sim.patch("statefulsets", namespace, name, target["data"])


# -- conditions ------------------------------------------------------------------------------------
def _wait(sim: ScenarioCluster, scenario: Scenario, where: str, conditions: list[Obj]) -> None:
    if not conditions:
        sim.settle()
        return
    started = sim.clock.now()
    budget = max([float(c.get("within", DEFAULT_BUDGET)) for c in conditions])

    def holds(s: ScenarioCluster) -> bool:
        return all(check(s, c, since=started) for c in conditions)

    if not sim.run_until(holds, max_seconds=budget, tick=30.0):
        failing = [c for c in conditions if not check(sim, c, since=started)]
        raise ScenarioError(f"scenario {scenario.name}: {where} never held; failing: {failing}")


def check(sim: ScenarioCluster, cond: Obj, *, since: Any = None) -> bool:
    """Evaluate one condition dict against the cluster (see the scenario README in docs/sim.md)."""
    namespace = cond.get("namespace", "default")
    if "elapsed" in cond:
        return since is None or (sim.clock.now() - since).total_seconds() >= float(cond["elapsed"])
    if "statefulset" in cond:
        sts = sim.get("statefulsets", namespace, cond["statefulset"])
        return sts is not None and _check_sts(sts, cond)
    if "pod" in cond:
        pod = sim.get("pods", namespace, cond["pod"])
        if cond.get("exists") is False:
            return pod is None
        return pod is not None and _check_pod(sim, pod, cond)
    if "claim" in cond:
        claim = sim.get("persistentvolumeclaims", namespace, cond["claim"])
        if cond.get("exists") is False:
            return claim is None
        return claim is not None and (
            "phase" not in cond or (claim.get("status") or {}).get("phase") == cond["phase"]
        )
    if "all" in cond:
        return all(check(sim, c, since=since) for c in cond["all"])
    raise ScenarioError(f"unknown condition {cond}")


def _check_sts(sts: Obj, cond: Obj) -> bool:
    status = sts.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(sts["metadata"].get("generation") or 1):
        return False
    for key, want in (cond.get("status") or {}).items():
        if (status.get(key) or 0 if key.endswith("eplicas") else status.get(key)) != want:
            return False
    replicas = int(sts["spec"].get("replicas", 1))
    if cond.get("rolled_out") and not (
        status.get("currentRevision") == status.get("updateRevision")
        and int(status.get("readyReplicas") or 0) == replicas == int(status.get("updatedReplicas") or 0)
        and int(status.get("replicas") or 0) == replicas
    ):
        return False
    if "revisions_differ" in cond and (status.get("currentRevision") != status.get("updateRevision")) != bool(
        cond["revisions_differ"]
    ):
        return False
    return True


def _waiting_reasons(pod: Obj) -> set[str]:
    status = pod.get("status") or {}
    found = set()
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            found.add(waiting.get("reason", ""))
    return found


def _check_pod(sim: ScenarioCluster, pod: Obj, cond: Obj) -> bool:
    status = pod.get("status") or {}
    if "phase" in cond and status.get("phase") != cond["phase"]:
        return False
    if "ready" in cond and is_pod_ready(pod) != bool(cond["ready"]):
        return False
    if "waiting_reason" in cond and cond["waiting_reason"] not in _waiting_reasons(pod):
        return False
    restarts = max(
        [
            int(cs.get("restartCount") or 0)
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        ]
        or [0]
    )
    if restarts < int(cond.get("min_restarts", 0)):
        return False
    if "terminating" in cond and is_terminating(pod) != bool(cond["terminating"]):
        return False
    if "past_grace_seconds" in cond:
        deadline = parse_ts(pod["metadata"].get("deletionTimestamp"))
        if deadline is None or (sim.clock.now() - deadline).total_seconds() < float(
            cond["past_grace_seconds"]
        ):
            return False
    if "node" in cond and (pod.get("spec") or {}).get("nodeName", "") != cond["node"]:
        return False
    if "scheduled" in cond:
        scheduled = any(
            c.get("type") == "PodScheduled" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if scheduled != bool(cond["scheduled"]):
            return False
    if "revision" in cond:
        ref = controller_ref(pod) or {}
        sts = sim.get("statefulsets", pod["metadata"]["namespace"], ref.get("name", ""))
        sts_status = (sts or {}).get("status") or {}
        label = labels_of(pod).get(REVISION_LABEL)
        want = cond["revision"]
        if want == "update" and label != sts_status.get("updateRevision"):
            return False
        if want == "current" and label != sts_status.get("currentRevision"):
            return False
        if want == "not-update" and label == sts_status.get("updateRevision"):
            return False
    return True
