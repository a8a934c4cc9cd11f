"""Mutations, each guarded by a precondition and able to run as a server-side dry run (dryRun=All).

- the template revert is kubectl's rollout-undo patch (strategic merge, `$patch: replace` on
  spec.template) plus `metadata.resourceVersion`, so the API server answers 409 if the set changed
  since it was read (optimistic concurrency);
- pod deletions carry DeleteOptions preconditions {uid, resourceVersion};
- eviction goes through POST pods/{name}/eviction so PodDisruptionBudgets apply (429 when they forbid it).

NB: there is deliberately no function here that deletes a PersistentVolumeClaim, a StatefulSet or
anything but a single named pod: stsfix never deletes data.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

from stsfix.kube.client import Connection, path_for
from stsfix.model import StatefulSetState, format_time, parse_statefulset

SMP: Final = "application/strategic-merge-patch+json"
MERGE: Final = "application/merge-patch+json"
FIELD_MANAGER: Final = "stsfix"


def _guarded_patch(
    conn: Connection, namespace: str, name: str, body: dict[str, Any], *, dry_run: bool
) -> StatefulSetState:
    """A strategic-merge PATCH of the set whose body carries metadata.resourceVersion: 409 if it moved."""
    raw = conn.request(
        "PATCH",
        path_for("statefulsets", namespace, name),
        query={"fieldManager": FIELD_MANAGER},
        body=body,
        content_type=SMP,
        dry_run=dry_run,
    )
    return parse_statefulset(raw)


def patch_template(
    conn: Connection,
    namespace: str,
    name: str,
    *,
    template: dict[str, Any],
    resource_version: str,
    dry_run: bool,
) -> StatefulSetState:
    """Replace spec.template wholesale, only if the set's resourceVersion is still `resource_version`."""
    body = {
        "metadata": {"resourceVersion": resource_version},
        "spec": {"template": {**{k: v for k, v in template.items() if k != "$patch"}, "$patch": "replace"}},
    }
    return _guarded_patch(conn, namespace, name, body, dry_run=dry_run)


def patch_template_annotations(
    conn: Connection,
    namespace: str,
    name: str,
    *,
    annotations: dict[str, str],
    resource_version: str,
    dry_run: bool,
) -> StatefulSetState:
    """Merge annotations into spec.template.metadata (`kubectl rollout restart`'s patch), only if
    the set's resourceVersion is still `resource_version`. Nothing else in the template changes."""
    body = {
        "metadata": {"resourceVersion": resource_version},
        "spec": {"template": {"metadata": {"annotations": annotations}}},
    }
    return _guarded_patch(conn, namespace, name, body, dry_run=dry_run)


def set_partition(
    conn: Connection, namespace: str, name: str, *, partition: int, resource_version: str, dry_run: bool
) -> StatefulSetState:
    """Set spec.updateStrategy.rollingUpdate.partition, guarded by resourceVersion."""
    body = {
        "metadata": {"resourceVersion": resource_version},
        "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
    }
    return _guarded_patch(conn, namespace, name, body, dry_run=dry_run)


def annotate_statefulset(
    conn: Connection, namespace: str, name: str, *, annotations: dict[str, str | None], dry_run: bool
) -> None:
    """Merge annotations into the set's metadata (a None value removes the key). Never touches spec."""
    conn.request(
        "PATCH",
        path_for("statefulsets", namespace, name),
        query={"fieldManager": FIELD_MANAGER},
        body={"metadata": {"annotations": annotations}},
        content_type=MERGE,
        dry_run=dry_run,
    )


def _preconditions(uid: str, resource_version: str | None) -> dict[str, str]:
    pre = {"uid": uid}
    if resource_version:
        pre["resourceVersion"] = resource_version
    return pre


def delete_pod(
    conn: Connection,
    namespace: str,
    name: str,
    *,
    uid: str,
    resource_version: str | None,
    grace_period_seconds: int | None,
    dry_run: bool,
) -> None:
    """DELETE one pod with preconditions; gracePeriodSeconds=0 is a force delete."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": _preconditions(uid, resource_version),
    }
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        body["dryRun"] = ["All"]
    conn.request("DELETE", path_for("pods", namespace, name), body=body, dry_run=dry_run)


def evict_pod(
    conn: Connection, namespace: str, name: str, *, uid: str, resource_version: str | None, dry_run: bool
) -> None:
    """POST an Eviction for one pod with preconditions (PodDisruptionBudgets apply)."""
    delete_options: dict[str, Any] = {"preconditions": _preconditions(uid, resource_version)}
    if dry_run:
        delete_options["dryRun"] = ["All"]
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
        "deleteOptions": delete_options,
    }
    conn.request("POST", path_for("pods", namespace, name, "eviction"), body=body, dry_run=dry_run)


def record_event(
    conn: Connection, namespace: str, name: str, *, uid: str, reason: str, message: str, type_: str = "Normal"
) -> None:
    """Create a core/v1 Event on the StatefulSet (the audit trail `kubectl describe sts` shows).

    Named as client-go's recorder names events, `<set>.<hex nanoseconds>` (tools/record/event.go
    makeEvent): the API server lists by name, so `kubectl get events` shows the trail in time order.
    """
    now = format_time(conn.server_now())
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{_event_stamp():x}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "stsfix"},
        "reportingComponent": "stsfix",
        "reportingInstance": "stsfix",
    }
    conn.request("POST", path_for("events", namespace), body=body)


_stamp_lock = threading.Lock()
_last_stamp = 0


def _event_stamp() -> int:
    """Nanoseconds since the epoch, strictly increasing in this process (two events never share a name)."""
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(time.time_ns(), _last_stamp + 1)
        return _last_stamp
