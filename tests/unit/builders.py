"""Builders for pure tests: RAW API dicts run through `stsfix.model.parse_*`, so the parser is
exercised too (compare `newStatefulSet(n)` / `runningPod` in the controller's fakes.go).

Times are relative to T0; nothing reads the clock.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from stsfix.model import (
    EventInfo,
    NodeState,
    PodState,
    PvcState,
    RevisionInfo,
    Snapshot,
    StatefulSetState,
    format_time,
    parse_event,
    parse_node,
    parse_pod,
    parse_pvc,
    parse_revision,
    parse_statefulset,
)
from tests.unit.revision_codec import encode_revision_data, revision_data, revision_hash

T0 = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
GOOD_IMAGE = "nginx:1.25"
BAD_IMAGE = "nginx:does-not-exist"


def ts(delta: timedelta) -> str:
    """T0 + delta as the API server writes it."""
    return format_time(T0 + delta)


def make_template(
    image: str = GOOD_IMAGE,
    *,
    env: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A defaulted pod template with one container `web`, like the API server returns it."""
    container: dict[str, Any] = {
        "name": "web",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if env:
        container["env"] = env
    meta: dict[str, Any] = {"labels": {"app": "web"}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "metadata": meta,
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }


GOOD = make_template(GOOD_IMAGE)
BAD = make_template(BAD_IMAGE)


def revision_name(template: dict[str, Any], set_name: str = "web") -> str:
    """The name the controller gives the revision of `template`."""
    return f"{set_name}-{revision_hash(encode_revision_data(revision_data(template)), 0)}"


REV_A = revision_name(GOOD)
REV_B = revision_name(BAD)


def raw_revision(
    template: dict[str, Any], number: int, *, set_name: str = "web", created: timedelta = -60 * MIN
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(template, set_name),
            "namespace": "default",
            "uid": f"uid-rev-{number}",
            "creationTimestamp": ts(created),
            "labels": {"app": "web"},
            "ownerReferences": [
                {"kind": "StatefulSet", "name": set_name, "uid": "uid-sts", "controller": True}
            ],
        },
        "data": revision_data(template),
        "revision": number,
    }


def make_revision(template: dict[str, Any], number: int, **kwargs: Any) -> RevisionInfo:
    return parse_revision(raw_revision(template, number, **kwargs))


def raw_statefulset(
    *,
    name: str = "web",
    replicas: int = 3,
    template: dict[str, Any] | None = None,
    policy: str | None = None,
    strategy: str = "RollingUpdate",
    partition: int | None = 0,
    max_unavailable: int | str | None = None,
    rolling_update: bool = True,
    min_ready_seconds: int = 0,
    generation: int = 2,
    observed_generation: int | None = None,
    current_revision: str = REV_A,
    update_revision: str = REV_A,
    status: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
    managers: list[str] | None = None,
    ordinals_start: int = 0,
    created: timedelta = -24 * 60 * MIN,
) -> dict[str, Any]:
    update: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate" and rolling_update:
        update["rollingUpdate"] = {"partition": partition or 0}
        if max_unavailable is not None:
            update["rollingUpdate"]["maxUnavailable"] = max_unavailable
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "serviceName": name,
        "template": copy.deepcopy(template if template is not None else GOOD),
        "updateStrategy": update,
        "minReadySeconds": min_ready_seconds,
        "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
    }
    if policy:
        spec["podManagementPolicy"] = policy
    if ordinals_start:
        spec["ordinals"] = {"start": ordinals_start}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": "uid-sts",
        "resourceVersion": "100",
        "generation": generation,
        "creationTimestamp": ts(created),
        "labels": labels or {"app": "web"},
    }
    if owners:
        meta["ownerReferences"] = owners
    if managers:
        meta["managedFields"] = [
            {"manager": m, "operation": "Update", "time": ts(-60 * MIN)} for m in managers
        ]
    raw_status = {
        "observedGeneration": generation if observed_generation is None else observed_generation,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
        **(status or {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": spec,
        "status": raw_status,
    }


def make_statefulset(**kwargs: Any) -> StatefulSetState:
    return parse_statefulset(raw_statefulset(**kwargs))


def _container_status(kind: str, image: str, restarts: int, since: timedelta) -> dict[str, Any]:
    running = {"running": {"startedAt": ts(since)}}
    states: dict[str, tuple[dict[str, Any], bool, dict[str, Any]]] = {
        "ready": (running, True, {}),
        "readiness": (running, False, {}),
        "crashloop": ({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=web"}}, False, {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": ts(-1 * MIN)}}),
        "oom": ({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}, False, {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": ts(-1 * MIN)}}),
        "imagepull": ({"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}, False, {}),
        "errimagepull": ({"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}, False, {}),
        "createconfig": ({"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "db" not found'}}, False, {}),
        "creating": ({"waiting": {"reason": "ContainerCreating"}}, False, {}),
        "waitinit": ({"waiting": {"reason": "PodInitializing"}}, False, {}),
    }  # fmt: skip
    state, ready, last = states[kind]
    return {
        "name": "web",
        "image": image,
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
        "lastState": last,
    }


def raw_pod(
    ordinal: int,
    revision: str = REV_A,
    *,
    state: str = "ready",
    set_name: str = "web",
    image: str | None = None,
    created: timedelta = -30 * MIN,
    changed: timedelta | None = None,
    restarts: int | None = None,
    node: str = "node-1",
    deleted: timedelta | None = None,
    grace: int = 30,
    finalizers: list[str] | None = None,
    reason: str = "",
    scheduler_message: str = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available.",
) -> dict[str, Any]:
    """A pod of the set. `state`: ready, readiness, crashloop, oom, imagepull, errimagepull,
    createconfig, creating, init, unschedulable, pending, evicted, failed. `changed` is when the
    Ready condition last flipped (defaults to shortly after creation). `deleted` is the
    deletionTimestamp (end of the grace period) relative to T0."""
    name = f"{set_name}-{ordinal}"
    image = image or (BAD_IMAGE if revision == REV_B else GOOD_IMAGE)
    changed = created + 10 * SEC if changed is None else changed
    restarts = restarts if restarts is not None else (7 if state in ("crashloop", "oom") else 0)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}-{revision[-4:]}",
        "resourceVersion": "10",
        "creationTimestamp": ts(created),
        "labels": {
            "app": "web",
            "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": name,
        },
        "ownerReferences": [{"kind": "StatefulSet", "name": set_name, "uid": "uid-sts", "controller": True}],
    }
    if deleted is not None:
        meta["deletionTimestamp"] = ts(deleted)
        meta["deletionGracePeriodSeconds"] = grace
    if finalizers:
        meta["finalizers"] = finalizers
    spec = {
        "containers": [{"name": "web", "image": image}],
        "nodeName": node if state not in ("unschedulable", "pending") else "",
        "terminationGracePeriodSeconds": grace,
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}}],
    }
    status = _pod_status(state, image, restarts, created, changed, reason, scheduler_message)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _pod_status(
    state: str, image: str, restarts: int, created: timedelta, changed: timedelta, reason: str, message: str
) -> dict[str, Any]:
    ready = state == "ready"
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(created)},
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(changed)},
    ]
    if state in ("unschedulable", "pending"):
        conditions[0] = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": ts(created),
        }
        if state == "pending":
            conditions[0] = {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(created)}
        return {"phase": "Pending", "conditions": conditions}
    if state in ("evicted", "failed"):
        return {
            "phase": "Failed",
            "reason": "Evicted" if state == "evicted" else reason,
            "message": "The node was low on resource: memory.",
        }
    status: dict[str, Any] = {"phase": "Running", "conditions": conditions, "startTime": ts(created)}
    if state in ("imagepull", "errimagepull", "createconfig", "creating", "init"):
        status["phase"] = "Pending"
    if state == "init":
        status["initContainerStatuses"] = [
            {
                "name": "init-db",
                "image": "busybox",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ]
        status["containerStatuses"] = [_container_status("waitinit", image, 0, created)]
    else:
        status["containerStatuses"] = [_container_status(state, image, restarts, created + 5 * SEC)]
    return status  # fmt: skip


def make_pod(ordinal: int, revision: str = REV_A, **kwargs: Any) -> PodState:
    return parse_pod(raw_pod(ordinal, revision, **kwargs), set_name=kwargs.get("set_name", "web"))


def raw_event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    *,
    type_: str = "Warning",
    count: int = 1,
    first: timedelta = -20 * MIN,
    last: timedelta = -1 * MIN,
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.{reason.lower()}", "namespace": "default"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "default"},
        "type": type_,
        "reason": reason,
        "message": message,
        "count": count,
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
    }


def make_event(kind: str, name: str, reason: str, message: str, **kwargs: Any) -> EventInfo:
    return parse_event(raw_event(kind, name, reason, message, **kwargs))


def make_pvc(
    name: str,
    phase: str = "Bound",
    *,
    deleted: timedelta | None = None,
    created: timedelta = -60 * MIN,
    storage_class: str = "standard",
) -> PvcState:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "creationTimestamp": ts(created),
    }
    if deleted is not None:
        meta["deletionTimestamp"] = ts(deleted)
        meta["finalizers"] = ["kubernetes.io/pvc-protection"]
    return parse_pvc(
        {"metadata": meta, "spec": {"storageClassName": storage_class}, "status": {"phase": phase}}
    )


def make_node(name: str = "node-1", ready: str = "True", *, since: timedelta = -60 * MIN) -> NodeState:
    return parse_node(
        {
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": ts(since)}]},
        }
    )


def _status_from_pods(sts: dict[str, Any], pods: list[PodState]) -> dict[str, Any]:
    current, update = sts["status"]["currentRevision"], sts["status"]["updateRevision"]
    live = [p for p in pods if not p.deleting]
    return {
        "replicas": len(pods),
        "readyReplicas": sum(1 for p in pods if p.phase == "Running" and p.ready),
        "availableReplicas": sum(1 for p in pods if p.phase == "Running" and p.ready),
        "currentReplicas": sum(1 for p in live if p.revision == current),
        "updatedReplicas": sum(1 for p in live if p.revision == update),
    }


def make_snapshot(
    pods: list[PodState] | None = None,
    *,
    revisions: list[RevisionInfo] | None = None,
    events: list[EventInfo] | None = None,
    pvcs: list[PvcState] | None = None,
    nodes: list[NodeState] | None = None,
    server_version: str = "v1.34.2",
    missing: tuple[str, ...] = (),
    **sts_kwargs: Any,
) -> Snapshot:
    """A snapshot whose status counters are computed from the pods unless `status=` overrides them."""
    replicas = sts_kwargs.get("replicas", 3)
    if pods is None:
        pods = [make_pod(o) for o in range(replicas)]
    raw = raw_statefulset(**sts_kwargs)
    raw["status"] = {**_status_from_pods(raw, pods), **raw["status"]}
    return Snapshot(
        statefulset=parse_statefulset(raw),
        pods=tuple(pods),
        revisions=tuple(revisions if revisions is not None else [make_revision(GOOD, 1)]),
        events=tuple(events or ()),
        pvcs=tuple(pvcs) if pvcs is not None else None,
        nodes=tuple(nodes) if nodes is not None else None,
        server_version=server_version,
        missing=missing,
    )


def ab_revisions(*, a: int = 1, b: int = 2) -> list[RevisionInfo]:
    """Revision A (good image) and B (bad image) with the given numbers."""
    return [make_revision(GOOD, a), make_revision(BAD, b, created=-20 * MIN)]
