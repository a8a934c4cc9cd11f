"""The guard's view of the cluster: one informer per resource the analysis reads, and the sets to re-check.

StatefulSets, their pods (`statefulset.kubernetes.io/pod-name` exists: pods of other workloads
are never listed), ControllerRevisions owned by a StatefulSet, PVCs, nodes and
PodDisruptionBudgets, all namespaces (or one). Every change marks the sets it concerns dirty:
a set itself; a pod's or revision's controlling set; every set of the namespace for a PVC or a
PDB; every set for a node. `snapshots` assembles the sets' Snapshots from the cache with the same
`stsfix.bundle.BundleIndex` that live reads and offline files use, so the guard diagnoses exactly
what `stsfix diagnose` would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final

from stsfix.bundle import BundleIndex, RawBundle
from stsfix.kube.client import Connection
from stsfix.kube.informer import Informer
from stsfix.model import POD_NAME_LABEL, RawObject, Snapshot

Key = tuple[str, str]

#: resource -> (kind, label selector)
RESOURCES: Final[dict[str, tuple[str, str | None]]] = {
    "statefulsets": ("StatefulSet", None),
    "pods": ("Pod", POD_NAME_LABEL),
    "controllerrevisions": ("ControllerRevision", None),
    "persistentvolumeclaims": ("PersistentVolumeClaim", None),
    "nodes": ("Node", None),
    "poddisruptionbudgets": ("PodDisruptionBudget", None),
}
CLUSTER_SCOPED: Final = frozenset({"nodes"})


def _set_owner(raw: RawObject) -> str | None:
    for ref in (raw.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") == "StatefulSet":
            return str(ref.get("name") or "") or None
    return None


def _owned_by_a_set(raw: RawObject) -> bool:
    return _set_owner(raw) is not None


class ClusterCache:
    """Informers for every resource in `RESOURCES`; `on_dirty(keys | None)` (None: every set)."""

    def __init__(
        self,
        conn: Connection,
        *,
        namespace: str | None,
        on_dirty: Callable[[set[Key] | None], None],
        stop: threading.Event,
    ):
        self.namespace = namespace
        self.on_dirty = on_dirty
        self.informers: dict[str, Informer] = {}
        for resource, (kind, selector) in RESOURCES.items():
            self.informers[resource] = Informer(
                conn,
                resource,
                kind,
                namespace=None if resource in CLUSTER_SCOPED else namespace,
                label_selector=selector,
                listener=self._listener(resource),
                keep=_owned_by_a_set if resource == "controllerrevisions" else None,
                stop=stop,
            )

    def start(self) -> ClusterCache:
        for informer in self.informers.values():
            informer.start()
        return self

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers.values())

    def wait_synced(self, timeout: float) -> bool:
        return all(i.synced.wait(timeout) for i in self.informers.values())

    def statefulsets(self) -> tuple[RawObject, ...]:
        return self.informers["statefulsets"].items()

    def statefulset(self, key: Key) -> RawObject | None:
        return self.informers["statefulsets"].get(*key)

    def _listener(self, resource: str) -> Callable[[str, RawObject], None]:
        def changed(_type: str, raw: RawObject) -> None:
            meta = raw.get("metadata") or {}
            namespace = str(meta.get("namespace") or "")
            if resource == "statefulsets":
                self.on_dirty({(namespace, str(meta.get("name") or ""))})
            elif resource in ("pods", "controllerrevisions"):
                owner = _set_owner(raw)
                if owner:
                    self.on_dirty({(namespace, owner)})
            elif resource == "nodes":
                self.on_dirty(None)
            else:
                sets = self.informers["statefulsets"].items(namespace)
                self.on_dirty({(namespace, str((s.get("metadata") or {}).get("name") or "")) for s in sets})

        return changed

    def snapshots(
        self, raws: list[RawObject], *, now: datetime, server_version: str
    ) -> list[Snapshot]:
        """The Snapshots of these sets from the cache (no requests), observed at `now` (the server's
        clock). Their namespaces' objects are indexed once (`BundleIndex`), nodes parsed once."""
        namespaces = sorted({str((r.get("metadata") or {}).get("namespace") or "") for r in raws})

        def of(resource: str) -> tuple[RawObject, ...]:
            return tuple(o for ns in namespaces for o in self.informers[resource].items(ns))

        index = BundleIndex(
            RawBundle(
                pods=of("pods"),
                revisions=of("controllerrevisions"),
                pvcs=of("persistentvolumeclaims"),
                nodes=self.informers["nodes"].items(),
                pdbs=of("poddisruptionbudgets"),
                server_version=server_version,
                observed_at=now,
            )
        )
        return [index.snapshot(raw) for raw in raws]

    def stats(self) -> dict[str, tuple[int, int, int]]:
        """resource -> (objects kept, relists, watch errors)."""
        return {r: (len(i), i.relists, i.errors) for r, i in self.informers.items()}
