"""Garbage collection by ownerReferences, plus the PVC-protection finalizer.

Background: a dependent whose owners (by uid) are all gone is deleted (pods gracefully), and
dangling refs are dropped from dependents that still have a live owner. Foreground: an owner
carrying `foregroundDeletion` has its dependents deleted and is removed once none is left. Orphan:
an owner carrying `orphan` has its refs stripped from dependents and is then removed. A claim
being deleted keeps `kubernetes.io/pvc-protection` while a non-terminated pod bound to a node uses it. Deleting a
StatefulSet therefore removes its pods and ControllerRevisions, and claims owned through the
retention policy (§8.3). Standard library only.
"""

from __future__ import annotations

from stsfix.sim.store.client import SimClient
from stsfix.sim.store.objects import Obj, is_terminating, pod_phase
from stsfix.sim.store.store import SimApiError, WatchEvent

Key = tuple[str, str, str]
TRACKED = ("pods", "persistentvolumeclaims", "controllerrevisions", "statefulsets", "poddisruptionbudgets")
PVC_PROTECTION = "kubernetes.io/pvc-protection"


class GarbageCollector:
    """Event-driven owner-reference GC over the tracked resources."""

    def __init__(self, client: SimClient):
        self.client = client
        self.store = client.store
        self._live: dict[str, Key] = {}
        self._seen: set[str] = set()  # owners never seen alive (partial dumps) are treated as alive
        self._dependents: dict[str, set[Key]] = {}
        self._refs: dict[Key, tuple[str, ...]] = {}
        self._gone: set[str] = set()
        self._deleting: set[Key] = set()
        self._claims: set[Key] = set()

    def prime(self) -> None:
        """Index what is already in the store (e.g. loaded manifests)."""
        for resource in TRACKED:
            for obj in self.store.list(resource)[0]:
                self.observe(WatchEvent(0, "ADDED", resource, obj))

    def next_due(self) -> None:
        return None

    def observe(self, event: WatchEvent) -> None:
        if event.resource not in TRACKED:
            return
        meta = event.obj["metadata"]
        key = (event.resource, meta.get("namespace", ""), meta["name"])
        uid = meta.get("uid", "")
        for owner in self._refs.pop(key, ()):
            self._dependents.get(owner, set()).discard(key)
        if event.type == "DELETED":
            self._live.pop(uid, None)
            self._gone.add(uid)
            if event.resource == "pods":
                self._claims.update(
                    ("persistentvolumeclaims", key[1], name) for name in _claim_names(event.obj)
                )
            return
        self._live[uid] = key
        self._seen.add(uid)
        refs = tuple(r["uid"] for r in meta.get("ownerReferences") or [] if r.get("uid"))
        if refs:
            self._refs[key] = refs
            for owner in refs:
                self._dependents.setdefault(owner, set()).add(key)
                if owner in self._seen and owner not in self._live:
                    self._gone.add(owner)
        if is_terminating(event.obj):
            self._deleting.add(key)
            if event.resource == "persistentvolumeclaims":
                self._claims.add(key)
        if event.resource == "pods" and (
            is_terminating(event.obj) or pod_phase(event.obj) in ("Succeeded", "Failed")
        ):
            self._claims.update(("persistentvolumeclaims", key[1], name) for name in _claim_names(event.obj))

    def work(self) -> bool:
        did = False
        gone, self._gone = self._gone, set()
        for uid in sorted(gone):
            if uid in self._live:
                continue
            for key in sorted(self._dependents.get(uid, set())):
                did |= self._collect(key)
        deleting, self._deleting = sorted(self._deleting), set()
        for key in deleting:
            did |= self._finish_owner(key)
        claims, self._claims = sorted(self._claims), set()
        for key in claims:
            did |= self._release_claim(key)
        return did

    def _collect(self, key: Key) -> bool:
        obj = self.store.get(*key)
        if obj is None:
            return False
        refs = obj["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if r.get("uid") in self._live or r.get("uid") not in self._seen]
        try:
            if not alive:
                if is_terminating(obj):
                    return False
                self.client.delete(*key)
                return True
            if len(alive) != len(refs):
                self.store.mutate(*key, lambda o: _keep_refs(o, {r["uid"] for r in alive}))
                return True
        except SimApiError:
            return False
        return False

    def _finish_owner(self, key: Key) -> bool:
        obj = self.store.get(*key)
        if obj is None or not is_terminating(obj):
            return False
        finalizers = obj["metadata"].get("finalizers") or []
        uid = obj["metadata"]["uid"]
        dependents = [k for k in sorted(self._dependents.get(uid, set())) if self.store.get(*k) is not None]
        did = False
        if "orphan" in finalizers:
            for dep in dependents:
                self.store.mutate(*dep, lambda o: _drop_ref(o, uid))
            self.client.remove_finalizer(*key, "orphan")
            return True
        if "foregroundDeletion" in finalizers:
            for dep in dependents:
                current = self.store.get(*dep)
                if current is not None and not is_terminating(current):
                    try:
                        self.client.delete(*dep)
                        did = True
                    except SimApiError:
                        continue
            if not [k for k in dependents if self.store.get(*k) is not None]:
                self.client.remove_finalizer(*key, "foregroundDeletion")
                did = True
        return did

    def _release_claim(self, key: Key) -> bool:
        claim = self.store.get(*key)
        if (
            claim is None
            or not is_terminating(claim)
            or PVC_PROTECTION not in (claim["metadata"].get("finalizers") or [])
        ):
            return False
        pods, _ = self.store.list("pods", key[1])
        for pod in pods:
            # Only a pod bound to a node holds its claim: the kubelet sees pods once they are
            # scheduled (v1.34.4 pkg/controller/volume/pvcprotection/pvc_protection_controller.go,
            # podUsesPVC), so a claim deleted under an unscheduled Pending pod goes at once.
            if (
                key[2] in _claim_names(pod)
                and pod.get("spec", {}).get("nodeName")
                and pod_phase(pod) not in ("Succeeded", "Failed")
            ):
                return False
        self.client.remove_finalizer(*key, PVC_PROTECTION)
        return True


def _claim_names(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in (pod.get("spec") or {}).get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]


def _keep_refs(obj: Obj, uids: set[str]) -> None:
    obj["metadata"]["ownerReferences"] = [
        r for r in obj["metadata"]["ownerReferences"] if r.get("uid") in uids
    ]


def _drop_ref(obj: Obj, uid: str) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)
