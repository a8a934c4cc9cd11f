"""The `fleet` scenario's generator: many namespaces and StatefulSets, every fifth one stuck.

Standard library only.
"""

from __future__ import annotations

from stsfix.sim.store.objects import Obj


def fleet_namespace(index: int) -> str:
    return f"team-{index:03d}"


def is_stuck(index: int) -> bool:
    return index % 5 == 0


def _statefulset(namespace: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": namespace, "labels": {"app": "db"}},
        "spec": {
            "serviceName": "db",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "db",
                            "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


def fleet_manifests(size: int) -> tuple[list[Obj], list[Obj], list[Obj], list[Obj]]:
    """(manifests, healthy_when, steps, ready_when) for `size` namespaces."""
    manifests: list[Obj] = []
    healthy: list[Obj] = []
    steps: list[Obj] = []
    ready: list[Obj] = []
    bad = {
        "metadata": {"annotations": {"kubernetes.io/change-cause": "db entrypoint v2 (broken)"}},
        "spec": {"template": {"spec": {"containers": [{"name": "db", "command": ["sh", "-c", "exit 1"]}]}}},
    }
    for index in range(size):
        namespace = fleet_namespace(index)
        manifests.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        manifests.append(_statefulset(namespace))
        healthy.append({"statefulset": "db", "namespace": namespace, "rolled_out": True})
        if is_stuck(index):
            steps.append(
                {"patch": {"resource": "statefulsets", "namespace": namespace, "name": "db", "body": bad}}
            )
            ready.append(
                {
                    "pod": "db-2",
                    "namespace": namespace,
                    "revision": "update",
                    "waiting_reason": "CrashLoopBackOff",
                    "min_restarts": 1,
                }
            )
        else:
            ready.append({"statefulset": "db", "namespace": namespace, "rolled_out": True})
    return manifests, healthy, steps, ready
