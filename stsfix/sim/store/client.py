"""In-process writes for the simulated controllers, with the API server's write semantics.

Controllers run inside the simulator and write to the Store directly instead of over HTTP. This
module gives them the few server behaviours they rely on: pod create defaults (phase Pending),
graceful deletion (deletionTimestamp + grace; unbound or finished pods and grace 0 go at once;
finalizers keep an object), propagation finalizers, and per-operation fault injection so the
controller's error paths (§5.11, C13-C16) can be exercised. Standard library only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stsfix.sim.store.objects import Obj, default_pod, pod_phase, ts
from stsfix.sim.store.store import SimApiError, Store, not_found

_GROUPS = {"statefulsets": "apps", "controllerrevisions": "apps"}


@dataclass
class ControllerFaults:
    """Make the next `times` calls of an operation fail with 500 InternalError.

    Operations: create_pod, delete_pod, update_pod, update_status, create_pvc, create_revision.
    `calls` counts every attempt per operation and `log` lists (operation, name) in order.
    """

    pending: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    skip: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, operation: str, *, times: int = 1, after: int = 0) -> None:
        self.pending[operation] = self.pending.get(operation, 0) + times
        self.skip[operation] = after

    def check(self, operation: str, name: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        self.log.append((operation, name))
        if self.skip.get(operation, 0) > 0:
            self.skip[operation] -= 1
            return
        if self.pending.get(operation, 0) > 0:
            self.pending[operation] -= 1
            raise SimApiError(
                500, "InternalError", f"Internal error occurred: injected fault on {operation} {name}"
            )


class SimClient:
    """What a controller may do to the cluster, applied to the Store with server semantics."""

    def __init__(self, store: Store, *, now: Callable[[], datetime], faults: ControllerFaults | None = None):
        self.store = store
        self.now = now
        self.faults = faults or ControllerFaults()

    # -- creates ---------------------------------------------------------------------------------
    def create(self, resource: str, obj: Obj, *, operation: str | None = None) -> Obj:
        if operation:
            self.faults.check(operation, obj["metadata"].get("name", ""))
        obj = copy.deepcopy(obj)
        if resource == "pods":
            default_pod(obj)
        if resource == "persistentvolumeclaims":
            obj.setdefault("apiVersion", "v1")
            obj.setdefault("kind", "PersistentVolumeClaim")
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if "kubernetes.io/pvc-protection" not in finalizers:
                finalizers.append("kubernetes.io/pvc-protection")
            obj.setdefault("status", {"phase": "Pending"})
        return self.store.create(resource, obj)

    def mutate(
        self,
        resource: str,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        *,
        operation: str | None = None,
    ) -> Obj:
        if operation:
            self.faults.check(operation, name)
        return self.store.mutate(resource, namespace, name, change)

    # -- deletes ---------------------------------------------------------------------------------
    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        grace_seconds: int | None = None,
        propagation: str = "Background",
        uid: str | None = None,
        operation: str | None = None,
    ) -> Obj | None:
        """Delete like the API server; returns the object as left (None when removed)."""
        if operation:
            self.faults.check(operation, name)
        with self.store.lock:
            current = self.store.get(resource, namespace, name)
            if current is None:
                raise not_found(resource, name, _GROUPS.get(resource, ""))
            if uid and current["metadata"].get("uid") != uid:
                raise SimApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {current['metadata'].get('uid')}",
                )
            return self._delete_locked(resource, current, grace_seconds, propagation)

    def _delete_locked(self, resource: str, current: Obj, grace: int | None, propagation: str) -> Obj | None:
        meta = current["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        now = self.now()
        if resource == "pods":
            if grace is None:
                grace = int(current.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            unbound = not current.get("spec", {}).get("nodeName")
            if unbound or pod_phase(current) in ("Failed", "Succeeded"):
                grace = 0
            if grace == 0 and not finalizers:
                return self.store.remove(resource, namespace, name) and None
            if meta.get("deletionTimestamp") and grace >= int(meta.get("deletionGracePeriodSeconds") or 0):
                return current

            def mark(pod: Obj) -> None:
                pod["metadata"]["deletionTimestamp"] = ts(now + timedelta(seconds=grace))
                pod["metadata"]["deletionGracePeriodSeconds"] = grace
                pod["metadata"]["finalizers"] = finalizers or None
                if not pod["metadata"]["finalizers"]:
                    del pod["metadata"]["finalizers"]

            return self.store.mutate(resource, namespace, name, mark)
        if not finalizers:
            self.store.remove(resource, namespace, name)
            return None
        if meta.get("deletionTimestamp") and finalizers == (meta.get("finalizers") or []):
            return current

        def mark_other(obj: Obj) -> None:
            obj["metadata"].setdefault("deletionTimestamp", ts(now))
            obj["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            obj["metadata"]["finalizers"] = finalizers

        return self.store.mutate(resource, namespace, name, mark_other)

    def remove_finalizer(self, resource: str, namespace: str, name: str, finalizer: str) -> None:
        """Drop one finalizer; an object being deleted with none left is removed (and its grace is over)."""
        with self.store.lock:
            current = self.store.get(resource, namespace, name)
            if current is None or finalizer not in (current["metadata"].get("finalizers") or []):
                return

            def drop(obj: Obj) -> None:
                rest = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
                if rest:
                    obj["metadata"]["finalizers"] = rest
                else:
                    del obj["metadata"]["finalizers"]

            updated = self.store.mutate(resource, namespace, name, drop)
            meta = updated["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                if (
                    resource != "pods"
                    or not updated.get("spec", {}).get("nodeName")
                    or int(meta.get("deletionGracePeriodSeconds") or 0) == 0
                ):
                    self.store.remove(resource, namespace, name)
