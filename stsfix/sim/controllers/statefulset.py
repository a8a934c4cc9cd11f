"""The simulated StatefulSet controller: one `sync` = upstream `syncStatefulSet` (§5.1-§5.2, §6).

A sync claims pods and revisions (adopt/release, §3.5, §2.8), chooses the current and update
revisions (§2.3), runs the pod stages (statefulset_update), applies the completion rule (§6.3),
writes the status only when a compared field changed (§6.2) and truncates history (§2.7).
Standard library only; never imports stsfix.analysis or stsfix.planner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from stsfix.sim.controllers.revisions import set_revisions, truncate_history
from stsfix.sim.controllers.statefulset_update import SyncContext, update_statefulset
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.index import NamespaceIndex
from stsfix.sim.store.objects import (
    Obj,
    condition,
    controller_ref,
    is_pod_ready,
    labels_of,
    owner_ref_to,
    parent_and_ordinal,
    parse_ts,
    selector_matches,
)
from stsfix.sim.store.store import SimApiError

_COMPARED = (
    "replicas",
    "currentReplicas",
    "readyReplicas",
    "updatedReplicas",
    "currentRevision",
    "availableReplicas",
    "updateRevision",
)
_OMIT_ZERO = ("readyReplicas", "currentReplicas", "updatedReplicas", "observedGeneration")


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync asks of the runner: an error (requeue with back-off) and/or a timed requeue."""

    error: str | None = None
    requeue_after: float | None = None


class StatefulSetController:
    """Reconciles StatefulSets in a Store; driven by the runner (or by tests, one sync at a time)."""

    def __init__(
        self, client: SimClient, recorder: EventRecorder, *, version: KubeVersion, now: Callable[[], datetime]
    ):
        self.client = client
        self.store = client.store
        self.recorder = recorder
        self.version = version
        self.now = now
        self.index = NamespaceIndex(self.store)

    # -- claiming (§3.5, §2.8) -------------------------------------------------------------------
    def _claim(self, resource: str, sts: Obj, member: Callable[[Obj], bool]) -> list[Obj]:
        meta = sts["metadata"]
        namespace, uid = meta.get("namespace", "default"), meta["uid"]
        selector = sts["spec"].get("selector")
        objs = self.index.list(resource, namespace)
        claimed = []
        for obj in objs:
            ref = controller_ref(obj)
            matches = selector_matches(selector, labels_of(obj)) and member(obj)
            name = obj["metadata"]["name"]
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if not matches and resource == "pods":
                    self._set_owner(resource, namespace, name, uid, None)
                    continue
                claimed.append(obj)
            elif (
                matches and not meta.get("deletionTimestamp") and not obj["metadata"].get("deletionTimestamp")
            ):
                claimed.append(self._set_owner(resource, namespace, name, uid, sts))
        return claimed

    def _set_owner(self, resource: str, namespace: str, name: str, uid: str, owner: Obj | None) -> Obj:
        def change(obj: Obj) -> None:
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if owner is not None:
                refs.append(owner_ref_to(owner))
            if refs:
                obj["metadata"]["ownerReferences"] = refs
            else:
                obj["metadata"].pop("ownerReferences", None)

        return self.store.mutate(resource, namespace, name, change)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, namespace: str, name: str) -> SyncResult:
        """One reconcile of one set. Never raises for API errors: they come back in the result."""
        sts = self.store.get("statefulsets", namespace, name)
        if sts is None or not sts["spec"].get("selector"):
            return SyncResult()
        set_name = sts["metadata"]["name"]
        try:
            revisions = self._claim("controllerrevisions", sts, lambda _: True)
            pods = self._claim(
                "pods", sts, lambda p: parent_and_ordinal(p["metadata"]["name"])[0] == set_name
            )
            current, update, collision_count = set_revisions(self.client, sts, revisions, self.version)
        except SimApiError as err:
            return SyncResult(error=err.message)
        now = self.now()
        ctx = SyncContext(
            self.client, self.recorder, self.version, now, sts, current, update, collision_count, pods
        )
        error = update_statefulset(ctx)
        errors = [error.message] if error else []
        try:
            self._write_status(sts, ctx.status)
        except SimApiError as err:
            errors.append(err.message)
        try:
            truncate_history(self.client, sts, pods, revisions, current, update)
        except SimApiError as err:
            errors.append(err.message)
        return SyncResult(
            error=errors[0] if errors else None, requeue_after=self._requeue_after(sts, ctx, now)
        )

    def _write_status(self, sts: Obj, status: Obj) -> None:
        spec = sts["spec"]
        target = int(spec.get("replicas", 1))
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if not self.version.completion_uses_spec_replicas:
            target = status["replicas"]
        if (
            (strategy == "RollingUpdate" or self.version.ondelete_promotes_current)
            and status["updatedReplicas"] == target
            and status["readyReplicas"] == target
            and status["replicas"] == target
        ):
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = sts.get("status") or {}
        changed = int(status["observedGeneration"]) > int(old.get("observedGeneration") or 0) or any(
            status[key] != old.get(key, 0 if key.endswith("Replicas") or key == "replicas" else None)
            for key in _COMPARED
        )
        if not changed:
            return
        new_status = {k: v for k, v in status.items() if not (k in _OMIT_ZERO and not v)}

        def change(obj: Obj) -> None:
            obj["status"] = new_status

        meta = sts["metadata"]
        self.client.mutate(
            "statefulsets", meta.get("namespace", "default"), meta["name"], change, operation="update_status"
        )

    def _requeue_after(self, sts: Obj, ctx: SyncContext, now: datetime) -> float | None:
        """minReadySeconds needs a clock-driven requeue (§5.1): when the next pod becomes available."""
        min_ready = ctx.min_ready
        if min_ready <= 0 or ctx.status.get("availableReplicas") == int(sts["spec"].get("replicas", 1)):
            return None
        due: list[float] = []
        for pod in ctx.pods:
            since = parse_ts((condition(pod, "Ready") or {}).get("lastTransitionTime"))
            if is_pod_ready(pod) and since is not None:
                delta = (since + timedelta(seconds=min_ready) - now).total_seconds()
                if delta >= 0:
                    due.append(delta + 1.0)
        return min(due) if due else float(min_ready)
