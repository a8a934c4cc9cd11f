"""Simulated Nodes: objects with capacity and a Ready condition, and node control.

A node is in one of three states: `Ready`; `NotReady` (kubelet up, reports Ready=False; its pods
lose readiness); `Lost` (kubelet gone: Ready=Unknown, nothing on it progresses, pods are marked
not ready and evicted after the default 300 s toleration, and then stay Terminating until
force-deleted). Standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from stsfix.sim.store.objects import Obj, condition, ts
from stsfix.sim.store.store import Store

NodeState = Literal["Ready", "NotReady", "Lost"]

_TAINTS: dict[str, list[Obj]] = {
    "Ready": [],
    "NotReady": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
    "Lost": [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ],
}
_READY: dict[str, tuple[str, str, str]] = {
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    "NotReady": (
        "False",
        "KubeletNotReady",
        "container runtime network not ready: NetworkReady=false "
        "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
    ),
    "Lost": ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."),
}


def new_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    version: str = "v1.34.0",
    labels: dict[str, str] | None = None,
    index: int = 0,
    now: datetime,
) -> Obj:
    """A Node object shaped like a kind worker's."""
    stamp = ts(now)
    machine = hashlib.sha1(name.encode()).hexdigest()[:32]
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    node_labels.update(labels or {})
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, reason, message in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": f"10.244.{index}.0/24",
            "podCIDRs": [f"10.244.{index}.0/24"],
            "providerID": f"kind://docker/sim/{name}",
        },
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": f"172.18.0.{index + 2}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": machine,
                "containerRuntimeVersion": "containerd://2.1.3",
                "kernelVersion": "6.8.0-sim",
                "kubeProxyVersion": version,
                "kubeletVersion": version,
                "machineID": machine,
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": machine,
            },
        },
    }


def node_state(node: Obj | None) -> NodeState:
    """Missing nodes count as Ready (pods loaded from a dump may name nodes we never created)."""
    if node is None:
        return "Ready"
    status = (condition(node, "Ready") or {}).get("status")
    return {"True": "Ready", "False": "NotReady"}.get(status or "True", "Lost")  # type: ignore[return-value]


def set_node_state(store: Store, name: str, state: NodeState, *, now: Callable[[], datetime]) -> Obj:
    """Flip a node's Ready condition and taints (the node control of the simulator)."""
    if state not in _READY:
        raise ValueError(f"unknown node state {state!r}; use Ready, NotReady or Lost")
    value, reason, message = _READY[state]
    stamp = ts(now())

    def change(node: Obj) -> None:
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                if cond["status"] != value:
                    cond["lastTransitionTime"] = stamp
                cond.update(status=value, reason=reason, message=message)
                if state != "Lost":
                    cond["lastHeartbeatTime"] = stamp
        taints = [dict(t, timeAdded=stamp) for t in _TAINTS[state]]
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)

    return store.mutate("nodes", "", name, change)
