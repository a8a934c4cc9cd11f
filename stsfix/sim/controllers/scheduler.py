"""The simulated scheduler and volume binder.

The scheduler binds pending pods to Ready, untainted nodes with enough allocatable cpu, memory and
pod slots (sum of requests of the pods already there), least-allocated first. Pods it cannot place
stay Pending with `PodScheduled=False reason=Unschedulable` and the real message shape, e.g.
`0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption
victims found for incoming pod.`, plus a FailedScheduling event. Pods whose claims are missing or
unbound get the scheduler's PVC messages. The volume binder binds claims of known storage classes
at once (like a local-path provisioner) and leaves the others Pending with ProvisioningFailed.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.nodes import node_state
from stsfix.sim.store.objects import Obj, is_terminating, pod_phase, quantity, selector_matches, set_condition
from stsfix.sim.store.store import SimApiError, Store, WatchEvent

_NOT_HELPFUL = "Preemption is not helpful for scheduling"
_NO_VICTIMS = "No preemption victims found for incoming pod"


def pod_requests(pod: Obj) -> dict[str, float]:
    totals = {"cpu": 0.0, "memory": 0.0}
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        wanted = resources.get("requests") or resources.get("limits") or {}
        for key in totals:
            totals[key] += quantity(wanted.get(key))
    return totals


def _claims(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("spec", {}).get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]


class Scheduler:
    """Binds pods and claims; event-driven (no polling)."""

    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        *,
        now: Callable[[], datetime],
        storage_classes: tuple[str, ...] = ("standard",),
        default_class: str = "standard",
    ):
        self.store = store
        self.recorder = recorder
        self.now = now
        self.storage_classes = set(storage_classes)
        self.default_class = default_class
        self._pending: set[tuple[str, str]] = set()
        self._claims: set[tuple[str, str]] = set()
        self._unschedulable: set[tuple[str, str]] = set()
        self._retry_all = False
        self._usage_cache: dict[str, dict[str, float]] | None = None

    def next_due(self) -> None:
        return None

    def observe(self, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event.resource == "pods":
            if event.type == "DELETED":
                self._retry_all = True
            elif not event.obj.get("spec", {}).get("nodeName") and not is_terminating(event.obj):
                self._pending.add(key)
        elif event.resource == "nodes":
            self._retry_all = True
        elif event.resource == "persistentvolumeclaims":
            if event.type != "DELETED" and not (event.obj.get("spec") or {}).get("volumeName"):
                self._claims.add(key)
            self._retry_all = True

    def work(self) -> bool:
        did = False
        for namespace, name in sorted(self._claims):
            did |= self._bind_claim(namespace, name)
        self._claims.clear()
        if self._retry_all:
            self._pending |= self._unschedulable
            self._retry_all = False
        pending, self._pending = sorted(self._pending), set()
        self._usage_cache = None
        for namespace, name in pending:
            did |= self._schedule(namespace, name)
        self._usage_cache = None
        return did

    # -- claims ----------------------------------------------------------------------------------
    def _bind_claim(self, namespace: str, name: str) -> bool:
        claim = self.store.get("persistentvolumeclaims", namespace, name)
        if claim is None or claim["spec"].get("volumeName") or is_terminating(claim):
            return False
        storage_class = claim["spec"].get("storageClassName") or self.default_class
        if storage_class not in self.storage_classes:
            self.recorder.record(
                claim,
                "Warning",
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{storage_class}" not found',
                component="persistentvolume-controller",
            )
            return False

        def bind(obj: Obj) -> None:
            spec = obj["spec"]
            spec["storageClassName"] = storage_class
            spec["volumeName"] = f"pvc-{obj['metadata']['uid']}"
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations.update(
                {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                }
            )
            request = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
            obj["status"] = {
                "phase": "Bound",
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "capacity": {"storage": request},
            }

        self.store.mutate("persistentvolumeclaims", namespace, name, bind)
        return True

    # -- pods ------------------------------------------------------------------------------------
    def _schedule(self, namespace: str, name: str) -> bool:
        pod = self.store.get("pods", namespace, name)
        if pod is None or pod["spec"].get("nodeName") or is_terminating(pod) or pod_phase(pod) != "Pending":
            self._unschedulable.discard((namespace, name))
            return False
        nodes, _ = self.store.list("nodes")
        message = self._claim_problem(pod, len(nodes))
        node_name = None
        if message is None:
            node_name, message = self._pick_node(pod, nodes)
        if node_name is None:
            self._unschedulable.add((namespace, name))
            return self._mark_unschedulable(pod, message or "no nodes available to schedule pods")
        self._unschedulable.discard((namespace, name))
        now = self.now()

        def bind(obj: Obj) -> None:
            obj["spec"]["nodeName"] = node_name
            set_condition(obj.setdefault("status", {}), "PodScheduled", "True", now)

        try:
            self.store.mutate("pods", namespace, name, bind)
        except SimApiError:
            return False
        self.recorder.record(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node_name}",
            component="default-scheduler",
        )
        return True

    def _claim_problem(self, pod: Obj, total: int) -> str | None:
        namespace = pod["metadata"]["namespace"]
        tail = f" preemption: 0/{total} nodes are available: {total} {_NOT_HELPFUL}."
        for claim_name in _claims(pod):
            claim = self.store.get("persistentvolumeclaims", namespace, claim_name)
            if claim is None:
                return f'0/{total} nodes are available: persistentvolumeclaim "{claim_name}" not found.{tail}'
            if is_terminating(claim):
                return f'0/{total} nodes are available: persistentvolumeclaim "{claim_name}" is being deleted.{tail}'
            if (claim.get("status") or {}).get("phase") != "Bound":
                return (
                    f"0/{total} nodes are available: pod has unbound immediate PersistentVolumeClaims.{tail}"
                )
        return None

    def _pick_node(self, pod: Obj, nodes: list[Obj]) -> tuple[str | None, str | None]:
        wanted = pod_requests(pod)
        selector = pod["spec"].get("nodeSelector") or {}
        reasons: dict[str, int] = {}
        preemption: dict[str, int] = {}
        best: tuple[float, str] | None = None
        if self._usage_cache is None:
            all_pods, _ = self.store.list("pods", None, lambda p: bool(p.get("spec", {}).get("nodeName")))
            self._usage_cache = self._usage(all_pods)
        usage = self._usage_cache
        for node in nodes:
            name = node["metadata"]["name"]
            used = usage.get(name) or {"cpu": 0.0, "memory": 0.0, "pods": 0.0}
            problems = self._node_problems(node, selector, wanted, used)
            if problems:
                for problem in problems:
                    reasons[problem] = reasons.get(problem, 0) + 1
                victims = (
                    _NO_VICTIMS if problems[0].startswith(("Insufficient", "Too many")) else _NOT_HELPFUL
                )
                preemption[victims] = preemption.get(victims, 0) + 1
                continue
            allocatable = node["status"].get("allocatable") or {}
            score = sum((used[k] + wanted[k]) / max(quantity(allocatable.get(k, "1")), 1e-9) for k in wanted)
            score += (used["pods"] + 1) / max(quantity(allocatable.get("pods", "110")), 1.0)
            if best is None or (score, name) < best:
                best = (score, name)
        if best is not None:
            used = usage.setdefault(best[1], {"cpu": 0.0, "memory": 0.0, "pods": 0.0})
            for key, value in wanted.items():
                used[key] += value
            used["pods"] += 1
            return best[1], None
        total = len(nodes)
        if total == 0:
            return None, "no nodes available to schedule pods"
        summary = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        tail = ", ".join(f"{count} {reason}" for reason, count in sorted(preemption.items()))
        return (
            None,
            f"0/{total} nodes are available: {summary}. preemption: 0/{total} nodes are available: {tail}.",
        )

    @staticmethod
    def _usage(pods: list[Obj]) -> dict[str, dict[str, float]]:
        usage: dict[str, dict[str, float]] = {}
        for other in pods:
            if pod_phase(other) in ("Succeeded", "Failed"):
                continue
            used = usage.setdefault(other["spec"]["nodeName"], {"cpu": 0.0, "memory": 0.0, "pods": 0.0})
            for key, value in pod_requests(other).items():
                used[key] += value
            used["pods"] += 1
        return usage

    @staticmethod
    def _node_problems(
        node: Obj, selector: dict[str, str], wanted: dict[str, float], used: dict[str, float]
    ) -> list[str]:
        state = node_state(node)
        if state == "NotReady":
            return ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        if state == "Lost":
            return ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
        if node.get("spec", {}).get("unschedulable"):
            return ["node(s) were unschedulable"]
        if selector and not selector_matches({"matchLabels": selector}, node["metadata"].get("labels") or {}):
            return ["node(s) didn't match Pod's node affinity/selector"]
        allocatable = node["status"].get("allocatable") or {}
        problems = []
        for key in ("cpu", "memory"):
            if wanted[key] and used[key] + wanted[key] > quantity(allocatable.get(key, "0")) + 1e-9:
                problems.append(f"Insufficient {key}")
        if used["pods"] + 1 > quantity(allocatable.get("pods", "110")):
            problems.append("Too many pods")
        return problems

    def _mark_unschedulable(self, pod: Obj, message: str) -> bool:
        now = self.now()
        previous = None
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled":
                previous = cond.get("message")

        def change(obj: Obj) -> None:
            set_condition(
                obj.setdefault("status", {}),
                "PodScheduled",
                "False",
                now,
                reason="Unschedulable",
                message=message,
            )

        meta = pod["metadata"]
        try:
            self.store.mutate("pods", meta["namespace"], meta["name"], change)
        except SimApiError:
            return False
        if previous != message:
            self.recorder.record(pod, "Warning", "FailedScheduling", message, component="default-scheduler")
            return True
        return False
