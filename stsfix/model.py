"""What stsfix reads, as frozen dataclasses, and the pure parse from raw API JSON.

Live reads (`stsfix.kube`) and offline dumps (`-f FILE`) both end here, so analysis never sees a
raw object. Standard library only; no clock reads (ages are computed elsewhere with `now=`).
Raw API objects are plain dicts named `raw_*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NewType

Ordinal = NewType("Ordinal", int)
RawObject = dict[str, Any]

REVISION_LABEL: Final = "controller-revision-hash"
POD_NAME_LABEL: Final = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL: Final = "apps.kubernetes.io/pod-index"
RESTARTED_AT_ANNOTATION: Final = "kubectl.kubernetes.io/restartedAt"
LAST_REPAIR_ANNOTATION: Final = "stsfix.dev/last-repair"

_ORDINAL_RE: Final = re.compile(r"^(.*)-([0-9]+)$")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp as the API server writes it; None for missing or malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """Format a datetime as the API server does: RFC 3339, UTC, second precision."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ordinal_of(pod_name: str, set_name: str) -> Ordinal | None:
    """The ordinal in `<set>-<ordinal>`, or None when the name does not belong to the set."""
    match = _ORDINAL_RE.match(pod_name)
    if match is None or match.group(1) != set_name:
        return None
    return Ordinal(int(match.group(2)))


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


_QUANTITY_RE: Final = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES: Final = {
    "": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def parse_quantity(value: object) -> float | None:
    """A resource quantity ("500m", "2", "8Gi", "1e3") as a float (cores, bytes); None if malformed."""
    match = _QUANTITY_RE.match(str(value).strip()) if value is not None else None
    if match is None or match.group(2) not in _SUFFIXES:
        return None
    try:
        return float(match.group(1)) * _SUFFIXES[match.group(2)]
    except ValueError:
        return None


def _requests(spec: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """What the scheduler fits: the sum of the containers' cpu/memory requests, or the largest init
    container's when that is more (the pod's effective request)."""

    def of(container: Any) -> dict[str, float]:
        raw = _dict(_dict(_dict(container).get("resources")).get("requests"))
        return {k: q for k in ("cpu", "memory") if (q := parse_quantity(raw.get(k))) is not None}

    total: dict[str, float] = {}
    for container in _list(spec.get("containers")):
        for key, amount in of(container).items():
            total[key] = total.get(key, 0.0) + amount
    for container in _list(spec.get("initContainers")):
        for key, amount in of(container).items():
            total[key] = max(total.get(key, 0.0), amount)
    return tuple(sorted(total.items()))


@dataclass(frozen=True, slots=True)
class OwnerRef:
    kind: str
    name: str
    uid: str
    controller: bool


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    created: datetime | None
    deletion_timestamp: datetime | None
    deletion_grace_seconds: int | None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    owners: tuple[OwnerRef, ...] = ()
    finalizers: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()


def parse_meta(raw: RawObject) -> ObjectMeta:
    meta = _dict(raw.get("metadata"))
    owners = tuple(
        OwnerRef(
            kind=_str(o.get("kind")),
            name=_str(o.get("name")),
            uid=_str(o.get("uid")),
            controller=bool(o.get("controller")),
        )
        for o in _list(meta.get("ownerReferences"))
        if isinstance(o, dict)
    )
    managers = tuple(
        sorted(
            {_str(m.get("manager")) for m in _list(meta.get("managedFields")) if isinstance(m, dict)} - {""}
        )
    )
    grace = meta.get("deletionGracePeriodSeconds")
    return ObjectMeta(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        uid=_str(meta.get("uid")),
        resource_version=_str(meta.get("resourceVersion")),
        generation=_int(meta.get("generation")),
        created=parse_time(meta.get("creationTimestamp")),
        deletion_timestamp=parse_time(meta.get("deletionTimestamp")),
        deletion_grace_seconds=grace if isinstance(grace, int) else None,
        labels={str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
        annotations={str(k): str(v) for k, v in _dict(meta.get("annotations")).items()},
        owners=owners,
        finalizers=tuple(_str(f) for f in _list(meta.get("finalizers"))),
        managers=managers,
    )


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_transition: datetime | None


def _conditions(raw_list: object) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=_str(c.get("type")),
            status=_str(c.get("status")),
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
            last_transition=parse_time(c.get("lastTransitionTime")),
        )
        for c in _list(raw_list)
        if isinstance(c, dict)
    )


@dataclass(frozen=True, slots=True)
class ContainerState:
    """One container's status: `state` is waiting, running, terminated or unknown."""

    name: str
    image: str
    ready: bool
    started: bool
    restart_count: int
    state: str
    reason: str
    message: str
    exit_code: int | None
    since: datetime | None
    last_reason: str
    last_exit_code: int | None
    last_finished: datetime | None
    init: bool = False
    #: seconds after the start by which the kubelet has run a first readiness probe: the spec's
    #: initialDelaySeconds (nothing is probed before) plus one periodSeconds (the prober's tick); 0
    #: without an initial delay, as the first tick then probes at once (kubelet prober/worker.go)
    readiness_delay_s: int = 0


def _container_state(
    raw: RawObject, *, init: bool, spec_images: dict[str, str], readiness_delays: dict[str, int] | None = None
) -> ContainerState:
    state = _dict(raw.get("state"))
    last = _dict(_dict(raw.get("lastState")).get("terminated"))
    kind, detail = next(iter(state.items()), ("unknown", {}))
    detail = _dict(detail)
    since = parse_time(detail.get("startedAt") or detail.get("finishedAt"))
    exit_code = detail.get("exitCode")
    last_exit = last.get("exitCode")
    name = _str(raw.get("name"))
    return ContainerState(
        name=name,
        image=spec_images.get(name) or _str(raw.get("image")),
        ready=bool(raw.get("ready")),
        started=bool(raw.get("started")),
        restart_count=_int(raw.get("restartCount")),
        state=kind if kind in ("waiting", "running", "terminated") else "unknown",
        reason=_str(detail.get("reason")),
        message=_str(detail.get("message")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        since=since,
        last_reason=_str(last.get("reason")),
        last_exit_code=last_exit if isinstance(last_exit, int) else None,
        last_finished=parse_time(last.get("finishedAt")),
        init=init,
        readiness_delay_s=(readiness_delays or {}).get(name, 0),
    )


@dataclass(frozen=True, slots=True)
class PodState:
    meta: ObjectMeta
    ordinal: Ordinal | None
    revision: str
    phase: str
    reason: str
    message: str
    node_name: str
    ready: bool
    ready_since: datetime | None
    conditions: tuple[Condition, ...]
    containers: tuple[ContainerState, ...]
    init_containers: tuple[ContainerState, ...]
    images: tuple[str, ...]
    claim_names: tuple[str, ...]
    grace_period_seconds: int
    controller_uid: str
    #: (resource, amount) the scheduler must fit: cpu in cores, memory in bytes.
    requests: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def deleting(self) -> bool:
        return self.meta.deletion_timestamp is not None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


def _first_probe_s(probe: dict[str, Any]) -> int:
    delay = _int(probe.get("initialDelaySeconds"))
    return delay + _int(probe.get("periodSeconds"), 10) if delay > 0 else 0


def parse_pod(raw: RawObject, *, set_name: str | None = None) -> PodState:
    meta = parse_meta(raw)
    spec = _dict(raw.get("spec"))
    status = _dict(raw.get("status"))
    conditions = _conditions(status.get("conditions"))
    ready_cond = next((c for c in conditions if c.type == "Ready"), None)
    images = {
        _str(c.get("name")): _str(c.get("image"))
        for c in _list(spec.get("containers"))
        if isinstance(c, dict)
    }
    readiness_delays = {
        _str(c.get("name")): _first_probe_s(_dict(c.get("readinessProbe")))
        for c in _list(spec.get("containers"))
        if isinstance(c, dict)
    }
    init_images = {
        _str(c.get("name")): _str(c.get("image"))
        for c in _list(spec.get("initContainers"))
        if isinstance(c, dict)
    }
    ordinal: Ordinal | None = None
    if set_name is not None:
        ordinal = ordinal_of(meta.name, set_name)
    elif (match := _ORDINAL_RE.match(meta.name)) is not None:
        ordinal = Ordinal(int(match.group(2)))
    controller = next((o for o in meta.owners if o.controller), None)
    claims = tuple(
        _str(_dict(v.get("persistentVolumeClaim")).get("claimName"))
        for v in _list(spec.get("volumes"))
        if isinstance(v, dict) and v.get("persistentVolumeClaim")
    )
    grace = spec.get("terminationGracePeriodSeconds")
    return PodState(
        meta=meta,
        ordinal=ordinal,
        revision=meta.labels.get(REVISION_LABEL, ""),
        phase=_str(status.get("phase")) or "Pending",
        reason=_str(status.get("reason")),
        message=_str(status.get("message")),
        node_name=_str(spec.get("nodeName")),
        ready=ready_cond is not None and ready_cond.status == "True",
        ready_since=ready_cond.last_transition
        if ready_cond is not None and ready_cond.status == "True"
        else None,
        conditions=conditions,
        containers=tuple(
            _container_state(c, init=False, spec_images=images, readiness_delays=readiness_delays)
            for c in _list(status.get("containerStatuses"))
            if isinstance(c, dict)
        ),
        init_containers=tuple(
            _container_state(c, init=True, spec_images=init_images)
            for c in _list(status.get("initContainerStatuses"))
            if isinstance(c, dict)
        ),
        images=tuple(images.values()),
        claim_names=claims,
        grace_period_seconds=_int(grace, 30) if grace is not None else 30,
        controller_uid=controller.uid if controller else "",
        requests=_requests(spec),
    )


@dataclass(frozen=True, slots=True)
class StatefulSetState:
    meta: ObjectMeta
    replicas: int
    ordinals_start: int
    selector: dict[str, Any] = field(hash=False)
    service_name: str
    pod_management_policy: str
    update_strategy: str
    partition: int | None
    max_unavailable: int | str | None
    min_ready_seconds: int
    revision_history_limit: int
    claim_templates: tuple[str, ...]
    template: dict[str, Any] = field(hash=False)
    observed_generation: int
    status_replicas: int
    ready_replicas: int
    available_replicas: int
    current_replicas: int
    updated_replicas: int
    current_revision: str
    update_revision: str
    collision_count: int
    #: persistentVolumeClaimRetentionPolicy (`Retain` unless set): what scale-down does to claims.
    when_scaled: str = "Retain"
    when_deleted: str = "Retain"

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def ordinals(self) -> range:
        """The ordinals the set wants: [start, start + replicas)."""
        return range(self.ordinals_start, self.ordinals_start + self.replicas)


def parse_statefulset(raw: RawObject) -> StatefulSetState:
    meta = parse_meta(raw)
    spec = _dict(raw.get("spec"))
    status = _dict(raw.get("status"))
    strategy = _dict(spec.get("updateStrategy"))
    rolling = strategy.get("rollingUpdate")
    partition: int | None = None
    max_unavailable: int | str | None = None
    if isinstance(rolling, dict):
        partition = _int(rolling.get("partition"), 0)
        mu = rolling.get("maxUnavailable")
        max_unavailable = mu if isinstance(mu, int | str) and not isinstance(mu, bool) else None
    replicas = spec.get("replicas")
    retention = _dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    return StatefulSetState(
        meta=meta,
        replicas=_int(replicas, 1) if replicas is not None else 1,
        ordinals_start=_int(_dict(spec.get("ordinals")).get("start")),
        selector=_dict(spec.get("selector")),
        service_name=_str(spec.get("serviceName")),
        pod_management_policy=_str(spec.get("podManagementPolicy")) or "OrderedReady",
        update_strategy=_str(strategy.get("type")) or "RollingUpdate",
        partition=partition,
        max_unavailable=max_unavailable,
        min_ready_seconds=_int(spec.get("minReadySeconds")),
        revision_history_limit=_int(spec.get("revisionHistoryLimit"), 10),
        claim_templates=tuple(
            _str(_dict(t.get("metadata")).get("name"))
            for t in _list(spec.get("volumeClaimTemplates"))
            if isinstance(t, dict)
        ),
        template=_dict(spec.get("template")),
        observed_generation=_int(status.get("observedGeneration")),
        status_replicas=_int(status.get("replicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        available_replicas=_int(status.get("availableReplicas")),
        current_replicas=_int(status.get("currentReplicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        current_revision=_str(status.get("currentRevision")),
        update_revision=_str(status.get("updateRevision")),
        collision_count=_int(status.get("collisionCount")),
        when_scaled=_str(retention.get("whenScaled")) or "Retain",
        when_deleted=_str(retention.get("whenDeleted")) or "Retain",
    )


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """A ControllerRevision: `template` is the pod template stored in its data (without `$patch`)."""

    meta: ObjectMeta
    revision: int
    template: dict[str, Any] = field(hash=False)
    data: dict[str, Any] = field(hash=False)

    @property
    def name(self) -> str:
        return self.meta.name


def parse_revision(raw: RawObject) -> RevisionInfo:
    data = _dict(raw.get("data"))
    template = {k: v for k, v in _dict(_dict(data.get("spec")).get("template")).items() if k != "$patch"}
    return RevisionInfo(
        meta=parse_meta(raw), revision=_int(raw.get("revision")), template=template, data=data
    )


@dataclass(frozen=True, slots=True)
class EventInfo:
    namespace: str
    name: str
    kind: str
    object_name: str
    object_uid: str
    type: str
    reason: str
    message: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None


def parse_event(raw: RawObject) -> EventInfo:
    meta = _dict(raw.get("metadata"))
    involved = _dict(raw.get("involvedObject") or raw.get("regarding"))
    series = _dict(raw.get("series"))
    last = parse_time(raw.get("lastTimestamp")) or parse_time(series.get("lastObservedTime"))
    first = parse_time(raw.get("firstTimestamp")) or parse_time(raw.get("eventTime"))
    return EventInfo(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        kind=_str(involved.get("kind")),
        object_name=_str(involved.get("name")),
        object_uid=_str(involved.get("uid")),
        type=_str(raw.get("type")) or "Normal",
        reason=_str(raw.get("reason")),
        message=_str(raw.get("message") or raw.get("note")),
        count=_int(raw.get("count"), 1) or _int(series.get("count"), 1),
        first_seen=first or last or parse_time(meta.get("creationTimestamp")),
        last_seen=last or first or parse_time(meta.get("creationTimestamp")),
    )


@dataclass(frozen=True, slots=True)
class LogTail:
    """The last lines a container logged before its last restart (`pods/log?previous=true`).

    Read only for crash-looping containers, bounded and with secrets masked at read time;
    `error` says why it could not be read (no permission, a kubelet that serves no logs), and then
    `lines` is empty.
    """

    namespace: str
    pod: str
    container: str
    lines: tuple[str, ...] = ()
    truncated: bool = False
    error: str = ""


def parse_log(raw: RawObject) -> LogTail:
    """A log tail as `stsfix collect` stores it: {namespace, pod, container, lines, truncated, error}."""
    return LogTail(
        namespace=_str(raw.get("namespace")),
        pod=_str(raw.get("pod")),
        container=_str(raw.get("container")),
        lines=tuple(str(line) for line in _list(raw.get("lines"))),
        truncated=bool(raw.get("truncated")),
        error=_str(raw.get("error")),
    )


def log_to_raw(tail: LogTail) -> RawObject:
    """The inverse of `parse_log`, for collect files and JSON."""
    return {
        "namespace": tail.namespace,
        "pod": tail.pod,
        "container": tail.container,
        "previous": True,
        "lines": list(tail.lines),
        "truncated": tail.truncated,
        "error": tail.error,
    }


@dataclass(frozen=True, slots=True)
class PvcState:
    meta: ObjectMeta
    phase: str
    storage_class: str
    volume_name: str

    @property
    def name(self) -> str:
        return self.meta.name


def parse_pvc(raw: RawObject) -> PvcState:
    spec = _dict(raw.get("spec"))
    return PvcState(
        meta=parse_meta(raw),
        phase=_str(_dict(raw.get("status")).get("phase")) or "Pending",
        storage_class=_str(spec.get("storageClassName")),
        volume_name=_str(spec.get("volumeName")),
    )


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node: `ready` is the Ready condition's status (True, False or Unknown)."""

    meta: ObjectMeta
    ready: str
    ready_since: datetime | None
    unschedulable: bool
    taints: tuple[str, ...]
    #: (resource, amount) status.allocatable: cpu in cores, memory in bytes.
    allocatable: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name


def parse_node(raw: RawObject) -> NodeState:
    conditions = _conditions(_dict(raw.get("status")).get("conditions"))
    ready = next((c for c in conditions if c.type == "Ready"), None)
    spec = _dict(raw.get("spec"))
    return NodeState(
        meta=parse_meta(raw),
        ready=ready.status if ready else "Unknown",
        ready_since=ready.last_transition if ready else None,
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(
            f"{_str(t.get('key'))}:{_str(t.get('effect'))}"
            for t in _list(spec.get("taints"))
            if isinstance(t, dict)
        ),
        allocatable=tuple(
            sorted(
                (k, q)
                for k, v in _dict(_dict(raw.get("status")).get("allocatable")).items()
                if k in ("cpu", "memory") and (q := parse_quantity(v)) is not None
            )
        ),
    )


@dataclass(frozen=True, slots=True)
class PdbInfo:
    """A PodDisruptionBudget: its spec and the disruption controller's status (what eviction checks)."""

    meta: ObjectMeta
    selector: dict[str, Any] = field(hash=False)
    disruptions_allowed: int
    min_available: int | str | None
    max_unavailable: int | str | None
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0
    observed_generation: int = 0
    #: spec.unhealthyPodEvictionPolicy as written ("" when unset: IfHealthyBudget).
    unhealthy_pod_eviction_policy: str = ""


def parse_pdb(raw: RawObject) -> PdbInfo:
    spec = _dict(raw.get("spec"))
    status = _dict(raw.get("status"))
    return PdbInfo(
        meta=parse_meta(raw),
        selector=_dict(spec.get("selector")),
        disruptions_allowed=_int(status.get("disruptionsAllowed")),
        min_available=spec.get("minAvailable"),
        max_unavailable=spec.get("maxUnavailable"),
        current_healthy=_int(status.get("currentHealthy")),
        desired_healthy=_int(status.get("desiredHealthy")),
        expected_pods=_int(status.get("expectedPods")),
        observed_generation=_int(status.get("observedGeneration")),
        unhealthy_pod_eviction_policy=_str(spec.get("unhealthyPodEvictionPolicy")),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything stsfix knows about one StatefulSet at one moment.

    `nodes` is None when nodes were not read (or could not be); an empty tuple means read and none
    found. `missing` names the pieces an offline file did not contain, so analysis can say
    "unknown" instead of guessing.
    """

    statefulset: StatefulSetState
    pods: tuple[PodState, ...]
    revisions: tuple[RevisionInfo, ...]
    events: tuple[EventInfo, ...] = ()
    pvcs: tuple[PvcState, ...] | None = None
    nodes: tuple[NodeState, ...] | None = None
    pdbs: tuple[PdbInfo, ...] = ()
    server_version: str = ""
    observed_at: datetime | None = None
    missing: tuple[str, ...] = ()
    logs: tuple[LogTail, ...] = ()

    def pod_at(self, ordinal: int) -> PodState | None:
        return next((p for p in self.pods if p.ordinal == ordinal), None)

    def revision_named(self, name: str) -> RevisionInfo | None:
        return next((r for r in self.revisions if r.name == name), None)

    def node_named(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes or () if n.name == name), None)

    def logs_of(self, pod: str) -> tuple[LogTail, ...]:
        return tuple(t for t in self.logs if t.pod == pod)
