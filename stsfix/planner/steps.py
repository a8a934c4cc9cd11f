"""Plan data: the steps, their preconditions, the Plan and its canonical (fingerprinted) form.

A `Plan` is what dry-run prints, what `plan --save` writes and what the executor interprets. Each
step names the object it acts on with the uid/revision it was planned against; the executor
re-reads before each step and runs the step's "already done" and precondition checks (see
`stsfix.executor`). Nothing here performs I/O or reads a clock: `now` is passed in (the server's).

PURE: standard library, `stsfix.model`, `stsfix.errors` and `stsfix.analysis` only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Literal

from stsfix.analysis import pods, revisions
from stsfix.errors import UsageError
from stsfix.model import PodState, RevisionInfo, Snapshot, StatefulSetState, format_time

#: 2: camelCase keys, as every other stsfix JSON payload (1, snake_case, is refused: re-save the plan).
PLAN_VERSION: Final = "2"
Command = Literal["rollback", "delete-pod", "force-delete", "partition", "restart"]

DEFAULT_NODE_LOST_AFTER: Final = timedelta(minutes=5)


def template_matches(statefulset: StatefulSetState, revision: RevisionInfo) -> bool:
    """True if the set's template is the revision's template (kubectl's rollback skip check)."""
    return revisions.template_matches(statefulset.template, revision)


# ---------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True, slots=True)
class RevertTemplate:
    """Replace spec.template with the one stored in ControllerRevision `to_revision`."""

    kind: ClassVar[str] = "RevertTemplate"
    mutating: ClassVar[bool] = True
    to_revision: str
    to_revision_number: int
    from_revision: str

    def describe(self) -> str:
        return f"Revert the pod template to {self.to_revision} (revision {self.to_revision_number})"


@dataclass(frozen=True, slots=True)
class AwaitObserved:
    """The controller has seen the latest generation and its updateRevision is `update_revision`."""

    kind: ClassVar[str] = "AwaitObserved"
    mutating: ClassVar[bool] = False
    update_revision: str

    def describe(self) -> str:
        return f"Wait until the controller observes the template (updateRevision {self.update_revision})"


@dataclass(frozen=True, slots=True)
class DeletePod:
    """Delete one pod, with uid and resourceVersion preconditions.

    `requires_update_revision`: the step only runs once the controller's updateRevision is this
    revision, so the replacement is created from it (delete only after the revert is observed).
    """

    kind: ClassVar[str] = "DeletePod"
    mutating: ClassVar[bool] = True
    ordinal: int
    pod_name: str
    pod_uid: str
    resource_version: str
    revision: str
    reason: str
    requires_update_revision: str = ""
    allow_ready: bool = False

    def describe(self) -> str:
        return f"Delete pod {self.pod_name} (uid {self.pod_uid[:8]}, revision {self.revision}): {self.reason}"


@dataclass(frozen=True, slots=True)
class EvictPod:
    """Evict one pod through the Eviction API, so PodDisruptionBudgets are honoured."""

    kind: ClassVar[str] = "EvictPod"
    mutating: ClassVar[bool] = True
    ordinal: int
    pod_name: str
    pod_uid: str
    resource_version: str
    revision: str
    reason: str
    requires_update_revision: str = ""
    allow_ready: bool = False

    def describe(self) -> str:
        return f"Evict pod {self.pod_name} (uid {self.pod_uid[:8]}, revision {self.revision}): {self.reason}"


@dataclass(frozen=True, slots=True)
class ForceDeletePod:
    """Delete with gracePeriodSeconds=0: only for a pod whose node is verified lost."""

    kind: ClassVar[str] = "ForceDeletePod"
    mutating: ClassVar[bool] = True
    ordinal: int
    pod_name: str
    pod_uid: str
    resource_version: str
    node_name: str
    node_lost_after_seconds: int
    evidence: str

    def describe(self) -> str:
        return f"Force-delete pod {self.pod_name} (uid {self.pod_uid[:8]}) on lost node {self.node_name}: {self.evidence}"


@dataclass(frozen=True, slots=True)
class SetPartition:
    """Set spec.updateStrategy.rollingUpdate.partition."""

    kind: ClassVar[str] = "SetPartition"
    mutating: ClassVar[bool] = True
    partition: int
    from_partition: int | None

    def describe(self) -> str:
        return f"Set the partition to {self.partition} (was {self.from_partition})"


@dataclass(frozen=True, slots=True)
class AwaitReady:
    """The pod at `ordinal` is Running, Ready and Available at `revision` (and is not `replaces_uid`)."""

    kind: ClassVar[str] = "AwaitReady"
    mutating: ClassVar[bool] = False
    ordinal: int
    pod_name: str
    revision: str
    min_ready_seconds: int
    replaces_uid: str = ""

    def describe(self) -> str:
        extra = f" for {self.min_ready_seconds}s" if self.min_ready_seconds else ""
        return f"Wait for {self.pod_name} to be Ready{extra} at revision {self.revision}"


@dataclass(frozen=True, slots=True)
class AwaitRolloutComplete:
    """Every replica runs `revision`, Ready, and the controller promoted it to currentRevision."""

    kind: ClassVar[str] = "AwaitRolloutComplete"
    mutating: ClassVar[bool] = False
    revision: str
    replicas: int

    def describe(self) -> str:
        return f"Wait for the rollout to complete: {self.replicas} of {self.replicas} pods Ready at {self.revision}"


@dataclass(frozen=True, slots=True)
class RestartTemplate:
    """Stamp kubectl's restartedAt annotation on spec.template (a rolling restart), guarded by
    resourceVersion; already done when the template carries this exact value."""

    kind: ClassVar[str] = "RestartTemplate"
    mutating: ClassVar[bool] = True
    restarted_at: str
    from_revision: str

    def describe(self) -> str:
        return f"Stamp kubectl.kubernetes.io/restartedAt={self.restarted_at} on the pod template"


@dataclass(frozen=True, slots=True)
class AwaitRestartObserved:
    """The controller observed the restart: its updateRevision's template carries restartedAt."""

    kind: ClassVar[str] = "AwaitRestartObserved"
    mutating: ClassVar[bool] = False
    restarted_at: str

    def describe(self) -> str:
        return "Wait until the controller observes the restart (a new updateRevision)"


@dataclass(frozen=True, slots=True)
class RestartPod:
    """Delete one pod for a restart under OnDelete, with uid and resourceVersion preconditions, only
    once the controller creates pods from the restarted template; done when it already restarted."""

    kind: ClassVar[str] = "RestartPod"
    mutating: ClassVar[bool] = True
    ordinal: int
    pod_name: str
    pod_uid: str
    resource_version: str
    revision: str
    restarted_at: str

    def describe(self) -> str:
        return f"Delete pod {self.pod_name} (uid {self.pod_uid[:8]}, revision {self.revision}) so it restarts"


@dataclass(frozen=True, slots=True)
class AwaitRestartedPod:
    """The pod at `ordinal` was replaced (not `replaces_uid`), carries restartedAt=`restarted_at`,
    and is Running, Ready and Available."""

    kind: ClassVar[str] = "AwaitRestartedPod"
    mutating: ClassVar[bool] = False
    ordinal: int
    pod_name: str
    restarted_at: str
    min_ready_seconds: int
    replaces_uid: str = ""

    def describe(self) -> str:
        extra = f" for {self.min_ready_seconds}s" if self.min_ready_seconds else ""
        return f"Wait for {self.pod_name} to restart and be Ready{extra}"


Step = (
    RevertTemplate
    | AwaitObserved
    | DeletePod
    | EvictPod
    | ForceDeletePod
    | SetPartition
    | AwaitReady
    | AwaitRolloutComplete
    | RestartTemplate
    | AwaitRestartObserved
    | RestartPod
    | AwaitRestartedPod
)
STEP_TYPES: Final[dict[str, type[Any]]] = {
    t.kind: t
    for t in (
        RevertTemplate,
        AwaitObserved,
        DeletePod,
        EvictPod,
        ForceDeletePod,
        SetPartition,
        AwaitReady,
        AwaitRolloutComplete,
        RestartTemplate,
        AwaitRestartObserved,
        RestartPod,
        AwaitRestartedPod,
    )
}


def camel(name: str) -> str:
    """`resource_version` -> `resourceVersion`: the key style of every stsfix JSON payload."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def to_camel(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict with camelCase keys (field values are plain JSON already)."""
    return {camel(k): v for k, v in asdict(obj).items()}


def from_camel(cls: type, raw: Any, what: str) -> dict[str, Any]:
    """The constructor arguments of dataclass `cls` from its camelCase dict; unknown keys refused."""
    if not isinstance(raw, dict):
        raise TypeError(f"{what} is not a mapping")
    names = {camel(f.name): f.name for f in fields(cls)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise TypeError(f"{what} has unknown keys {unknown}")
    return {names[k]: v for k, v in raw.items()}


def step_to_dict(step: Step) -> dict[str, Any]:
    return {"kind": step.kind, **to_camel(step)}


def step_from_dict(raw: dict[str, Any]) -> Step:
    kind = raw.get("kind")
    cls = STEP_TYPES.get(str(kind))
    if cls is None:
        raise UsageError(f"unknown plan step kind {kind!r}")
    names = {camel(f.name): f.name for f in fields(cls)}
    unknown = sorted(set(raw) - set(names) - {"kind"})
    if unknown:  # an edit that adds a key is an edit: nothing in a plan file goes unread
        raise UsageError(f"malformed {kind} step: unknown keys {unknown}")
    try:
        return cls(**{names[k]: v for k, v in raw.items() if k in names})  # type: ignore[no-any-return]
    except TypeError as err:
        raise UsageError(f"malformed {kind} step: {err}") from None


# ---------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True, slots=True)
class SetPrecondition:
    uid: str
    generation: int
    resource_version: str
    update_revision: str
    current_revision: str


@dataclass(frozen=True, slots=True)
class PodPrecondition:
    ordinal: int
    name: str
    uid: str
    resource_version: str
    revision: str
    ready: bool
    node_name: str


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What the user asked for: enough to make a fresh plan (--replan) from a fresh snapshot."""

    command: Command
    ordinal: int | None = None
    to_revision: int | None = None
    evict: bool = False
    force: bool = False
    node_lost_after_seconds: int = int(DEFAULT_NODE_LOST_AFTER.total_seconds())
    wait: bool = True
    # partition and restart (stsfix.planner.partition): the absolute partition to reach, the one
    # seen when asked, ordinals per step; the restartedAt value to stamp, and the rollout gates.
    partition: int | None = None
    partition_from: int | None = None
    count: int = 1
    restarted_at: str = ""
    wait_for_rollout: bool = False
    delete_pods: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    namespace: str
    name: str
    request: PlanRequest
    statefulset: SetPrecondition
    pods: tuple[PodPrecondition, ...]
    steps: tuple[Step, ...]
    target_revision: str = ""
    target_revision_number: int = 0
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def mutations(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.mutating)

    @property
    def is_empty(self) -> bool:
        """True when the plan changes nothing (it may still wait)."""
        return not self.mutations

    def body(self) -> dict[str, Any]:
        return {
            "planVersion": PLAN_VERSION,
            "namespace": self.namespace,
            "name": self.name,
            "request": to_camel(self.request),
            "preconditions": {
                "statefulset": to_camel(self.statefulset),
                "pods": [to_camel(p) for p in self.pods],
            },
            "targetRevision": self.target_revision,
            "targetRevisionNumber": self.target_revision_number,
            "steps": [step_to_dict(s) for s in self.steps],
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "createdAt": self.created_at,
        }

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the plan (sorted keys, no whitespace)."""
        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "fingerprint": self.fingerprint}


def plan_from_dict(raw: dict[str, Any]) -> Plan:
    """Parse a plan file; `UsageError` if malformed or if its fingerprint does not match its content."""
    try:
        if "plan_version" in raw:
            raise UsageError(
                f"the plan file is of an older stsfix (plan_version {raw.get('plan_version')!r}, snake_case keys): "
                "make it again with `stsfix plan ... --save`"
            )
        if str(raw.get("planVersion")) != PLAN_VERSION:
            raise UsageError(f"unsupported planVersion {raw.get('planVersion')!r} (expected {PLAN_VERSION})")
        pre = raw["preconditions"]
        plan = Plan(
            namespace=str(raw["namespace"]),
            name=str(raw["name"]),
            request=PlanRequest(**from_camel(PlanRequest, raw["request"], "request")),
            statefulset=SetPrecondition(**from_camel(SetPrecondition, pre["statefulset"], "preconditions.statefulset")),
            pods=tuple(PodPrecondition(**from_camel(PodPrecondition, p, "a pod precondition")) for p in pre.get("pods") or ()),
            steps=tuple(step_from_dict(s) for s in raw.get("steps") or ()),
            target_revision=str(raw.get("targetRevision") or ""),
            target_revision_number=int(raw.get("targetRevisionNumber") or 0),
            reasons=tuple(raw.get("reasons") or ()),
            warnings=tuple(raw.get("warnings") or ()),
            created_at=str(raw.get("createdAt") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UsageError(f"malformed plan file: {err!r}") from None
    expected = raw.get("fingerprint")
    if not expected:
        # Without it an edited plan could not be told from a saved one: refuse, as for a mismatch.
        raise UsageError("the plan file has no fingerprint: save plans with `stsfix plan ... --save`")
    if expected != plan.fingerprint:
        raise UsageError(
            "the plan file was edited after it was saved: its fingerprint does not match its content"
        )
    return plan


def _set_precondition(sts: StatefulSetState) -> SetPrecondition:
    return SetPrecondition(
        uid=sts.meta.uid,
        generation=sts.meta.generation,
        resource_version=sts.meta.resource_version,
        update_revision=sts.update_revision,
        current_revision=sts.current_revision,
    )


def pod_precondition(pod: PodState) -> PodPrecondition:
    return PodPrecondition(
        ordinal=int(pod.ordinal if pod.ordinal is not None else -1),
        name=pod.name,
        uid=pod.meta.uid,
        resource_version=pod.meta.resource_version,
        revision=pod.revision,
        ready=pods.is_healthy(pod),
        node_name=pod.node_name,
    )


def new_plan(
    snapshot: Snapshot,
    request: PlanRequest,
    steps: list[Step],
    pods: list[PodState],
    now: datetime,
    **kw: Any,
) -> Plan:
    sts = snapshot.statefulset
    return Plan(
        namespace=sts.namespace,
        name=sts.name,
        request=request,
        statefulset=_set_precondition(sts),
        pods=tuple(pod_precondition(p) for p in sorted(pods, key=lambda p: p.ordinal or 0)),
        steps=tuple(steps),
        created_at=format_time(now),
        **kw,
    )
