"""Server-side printing: `meta.k8s.io/v1 Table` answers for `Accept: ...;as=Table`, as kubectl gets.

Columns follow the API server's printers (`pkg/printers/internalversion/printers.go`): sts NAME
READY AGE; pods NAME READY STATUS RESTARTS AGE with STATUS computed as kubectl shows it
(container waiting/terminated reasons such as CrashLoopBackOff, `Terminating` when a
deletionTimestamp is set); nodes, pvcs, controllerrevisions, events, leases, pdbs and namespaces
have their own; anything else gets NAME AGE. Ages are rendered by the server from the simulated
clock, like `HumanDuration`. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from stsfix.sim.store.resources import Resource

Obj = dict[str, Any]
Column = tuple[str, str, int]  # (name, type, priority)
Cells = Callable[[Obj, datetime], list[Any]]


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return f"{hours // 24 // 365}y{(hours // 24) % 365}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None, now: datetime) -> str:
    when = _parse(ts)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def pod_status_reason(pod: Obj) -> tuple[str, int, int, str]:
    """(STATUS, ready containers, restarts, last restart time) as kubectl's printPod computes."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    restarts, ready, has_running, last_restart = 0, 0, False, ""
    initializing = False
    init_specs = (pod.get("spec") or {}).get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing:
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            last_restart = max(last_restart, finished or "")
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = (
                    f"Signal:{term['signal']}"
                    if term.get("signal")
                    else f"ExitCode:{term.get('exitCode', 0)}"
                )
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conditions = status.get("conditions") or []
            ok = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if ok else "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts, last_restart


def _pod_cells(pod: Obj, now: datetime) -> list[Any]:
    reason, ready, restarts, last = pod_status_reason(pod)
    total = len((pod.get("spec") or {}).get("containers") or [])
    restart_text = f"{restarts} ({age(last, now)} ago)" if restarts and last else str(restarts)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return [_name(pod), f"{ready}/{total}", reason, restart_text, age(pod["metadata"].get("creationTimestamp"), now),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]  # fmt: skip


def _sts_cells(sts: Obj, now: datetime) -> list[Any]:
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [_name(sts), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            age(sts["metadata"].get("creationTimestamp"), now),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)]  # fmt: skip


def _node_cells(node: Obj, now: datetime) -> list[Any]:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [_name(node), text, "<none>", age(node["metadata"].get("creationTimestamp"), now), version]


def _pvc_cells(pvc: Obj, now: datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    capacity = (status.get("capacity") or {}).get("storage", "")
    modes = ",".join({"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                      "ReadWriteOncePod": "RWOP"}.get(m, m) for m in status.get("accessModes") or [])  # fmt: skip
    return [
        _name(pvc),
        status.get("phase", ""),
        spec.get("volumeName", ""),
        capacity,
        modes,
        spec.get("storageClassName") or "<unset>",
        "<unset>",
        age(pvc["metadata"].get("creationTimestamp"), now),
    ]


def _revision_cells(cr: Obj, now: datetime) -> list[Any]:
    owner = next((o for o in cr["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
    controller = (
        f"{owner['kind'].lower()}.{owner['apiVersion'].split('/')[0]}/{owner['name']}" if owner else "<none>"
    )
    if owner and "/" not in owner.get("apiVersion", ""):
        controller = f"{owner['kind'].lower()}/{owner['name']}"
    return [_name(cr), controller, cr.get("revision", 0), age(cr["metadata"].get("creationTimestamp"), now)]


def _event_cells(ev: Obj, now: datetime) -> list[Any]:
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    inv = ev.get("involvedObject") or {}
    return [age(last, now), ev.get("type", ""), ev.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}", ev.get("message", "")]  # fmt: skip


def _lease_cells(lease: Obj, now: datetime) -> list[Any]:
    holder = (lease.get("spec") or {}).get("holderIdentity", "")
    return [_name(lease), holder, age(lease["metadata"].get("creationTimestamp"), now)]


def _pdb_cells(pdb: Obj, now: datetime) -> list[Any]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    return [_name(pdb), str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
            status.get("disruptionsAllowed", 0), age(pdb["metadata"].get("creationTimestamp"), now)]  # fmt: skip


def _ns_cells(ns: Obj, now: datetime) -> list[Any]:
    phase = (ns.get("status") or {}).get("phase", "Active")
    return [_name(ns), phase, age(ns["metadata"].get("creationTimestamp"), now)]


def _svc_cells(svc: Obj, now: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [_name(svc), spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", "<none>", ports,
            age(svc["metadata"].get("creationTimestamp"), now), selector]  # fmt: skip


def _generic_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), age(obj.get("metadata", {}).get("creationTimestamp"), now)]


PRINTERS: Final[dict[str, tuple[list[Column], Cells]]] = {
    "pods": ([("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
              ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
              ("Readiness Gates", "string", 1)], _pod_cells),
    "statefulsets": ([("Name", "string", 0), ("Ready", "string", 0), ("Age", "string", 0),
                      ("Containers", "string", 1), ("Images", "string", 1)], _sts_cells),
    "nodes": ([("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
               ("Version", "string", 0)], _node_cells),
    "persistentvolumeclaims": ([("Name", "string", 0), ("Status", "string", 0), ("Volume", "string", 0),
                                ("Capacity", "string", 0), ("Access Modes", "string", 0),
                                ("StorageClass", "string", 0), ("VolumeAttributesClass", "string", 0),
                                ("Age", "string", 0)], _pvc_cells),
    "controllerrevisions": ([("Name", "string", 0), ("Controller", "string", 0), ("Revision", "integer", 0),
                             ("Age", "string", 0)], _revision_cells),
    "events": ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
                ("Object", "string", 0), ("Message", "string", 0)], _event_cells),
    "leases": ([("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)], _lease_cells),
    "poddisruptionbudgets": ([("Name", "string", 0), ("Min Available", "string", 0),
                              ("Max Unavailable", "string", 0), ("Allowed Disruptions", "integer", 0),
                              ("Age", "string", 0)], _pdb_cells),
    "namespaces": ([("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)], _ns_cells),
    "services": ([("Name", "string", 0), ("Type", "string", 0), ("Cluster-IP", "string", 0),
                  ("External-IP", "string", 0), ("Port(s)", "string", 0), ("Age", "string", 0),
                  ("Selector", "string", 1)], _svc_cells),
}  # fmt: skip
GENERIC: Final[tuple[list[Column], Cells]] = ([("Name", "string", 0), ("Age", "string", 0)], _generic_cells)


def wants_table(accept: str | None) -> bool:
    """Does the Accept header ask for a Table (first acceptable type wins, as content negotiation)?"""
    return bool(accept) and "as=Table" in accept.split(",")[0] if accept else False


def wants_metadata(accept: str | None) -> bool:
    """Does the Accept header ask for PartialObjectMetadata(List) (the metadata-only client)?"""
    return bool(accept) and "as=PartialObjectMetadata" in accept.split(",")[0] if accept else False


def partial(obj: Obj) -> Obj:
    """An object as `meta.k8s.io/v1 PartialObjectMetadata`."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


def table(
    res: Resource,
    objects: list[Obj],
    *,
    now: datetime,
    rv: str = "",
    include: str = "Metadata",
    headers: bool = True,
    continue_token: str = "",
    remaining: int = 0,
) -> bytes:
    """The Table document (JSON bytes) for these objects."""
    columns, cells = PRINTERS.get(res.plural, GENERIC)
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj, now)}
        partial = _row_object(obj, include)
        if partial is not None:
            row["object"] = partial
        rows.append(row)
    meta: Obj = {"resourceVersion": rv}
    if continue_token:
        meta["continue"] = continue_token
        meta["remainingItemCount"] = remaining
    doc = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": "", "priority": p}
            for n, t, p in columns
        ] if headers else [],
        "rows": rows,
    }  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode()
