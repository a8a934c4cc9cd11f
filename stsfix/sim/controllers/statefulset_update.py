"""One StatefulSet sync's pod work: stages A-D of statefulset-semantics.md §5.3-§5.9.

`update_statefulset` is the upstream `updateStatefulSet`: it classifies claimed pods into replica
slots and condemned pods, runs processReplica for every slot (OrderedReady stops at the first
blocking slot; this is the early return that makes a forced rollback stick, kubernetes#67250),
fixes condemned claims, scales down, then runs the rolling update (legacy or maxUnavailable path
by version). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from stsfix.sim.controllers.revisions import apply_revision
from stsfix.sim.controllers.statefulset_pods import (
    claim_is_stale,
    claim_name,
    claim_owners_up_to_date,
    fix_claim_owners,
    foreign_controller,
    identity_matches,
    is_available,
    is_created,
    is_failed_or_succeeded,
    is_running_and_available,
    is_unavailable,
    new_claim,
    new_pod,
    pod_revision,
    repair_identity,
    retention,
    start_ordinal,
    storage_matches,
)
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store.client import SimClient
from stsfix.sim.store.events import EventRecorder
from stsfix.sim.store.objects import (
    REVISION_LABEL,
    Obj,
    is_running_and_ready,
    is_terminating,
    parent_and_ordinal,
    pod_phase,
)
from stsfix.sim.store.store import SimApiError

COMPONENT = "statefulset-controller"
PLACEHOLDER = "__placeholder_revision__"


@dataclass
class SyncContext:
    """Everything one sync needs; `status` is filled in as the sync goes."""

    client: SimClient
    recorder: EventRecorder
    version: KubeVersion
    now: datetime
    sts: Obj
    current: Obj
    update: Obj
    collision_count: int
    pods: list[Obj]
    status: Obj = field(default_factory=dict)
    replicas: list[Obj] = field(default_factory=list)
    condemned: list[Obj] = field(default_factory=list)
    applied: dict[str, Obj] = field(default_factory=dict)

    @property
    def monotonic(self) -> bool:
        return bool(self.sts["spec"].get("podManagementPolicy", "OrderedReady") != "Parallel")

    @property
    def min_ready(self) -> int:
        return int(self.sts["spec"].get("minReadySeconds") or 0)

    @property
    def name(self) -> str:
        return str(self.sts["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.sts["metadata"].get("namespace", "default"))

    def event(self, type_: str, reason: str, message: str) -> None:
        self.recorder.record(self.sts, type_, reason, message, component=COMPONENT)


def compute_status(ctx: SyncContext, pods: list[Obj]) -> Obj:
    """The counters of §6.1 over `pods` (placeholders are not created, so not counted)."""
    counts = dict.fromkeys(
        ("replicas", "readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"), 0
    )
    current, update = ctx.current["metadata"]["name"], ctx.update["metadata"]["name"]
    for pod in pods:
        created = is_created(pod)
        if created:
            counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_available(pod, ctx.min_ready, ctx.now, ctx.version):
                counts["availableReplicas"] += 1
        if created and not is_terminating(pod):
            revision = pod_revision(pod)
            counts["currentReplicas"] += revision == current
            counts["updatedReplicas"] += revision == update
    status: Obj = {
        "observedGeneration": ctx.sts["metadata"].get("generation", 1),
        **counts,
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": ctx.collision_count,
    }
    return status


def _placeholder(ctx: SyncContext, ordinal: int) -> Obj:
    """The pod a missing slot would get: current or update revision per §3.4."""
    spec = ctx.sts["spec"]
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    start = start_ordinal(ctx.sts, ctx.version)
    current_replicas = int((ctx.sts.get("status") or {}).get("currentReplicas") or 0)
    use_current = (
        strategy.get("type", "RollingUpdate") == "RollingUpdate"
        and rolling is None
        and ordinal < start + current_replicas
    ) or (rolling is not None and ordinal < start + int(rolling.get("partition") or 0))
    revision = ctx.current if use_current else ctx.update
    # A light stand-in (no phase = "not created"); the full pod is built only when it is created.
    name = revision["metadata"]["name"]
    return {
        "metadata": {"name": f"{ctx.name}-{ordinal}", "labels": {REVISION_LABEL: name}},
        "spec": {},
        "status": {},
        PLACEHOLDER: revision,
    }


def _materialise(ctx: SyncContext, placeholder: Obj, ordinal: int) -> Obj:
    revision = placeholder[PLACEHOLDER]
    name = revision["metadata"]["name"]
    applied = ctx.applied.get(name)
    if applied is None:
        applied = ctx.applied[name] = apply_revision(ctx.sts, revision)
    return new_pod(applied, name, ordinal, ctx.version)


# -- writes with events (§10) ----------------------------------------------------------------------
def _delete_pod(ctx: SyncContext, pod: Obj) -> None:
    name = pod["metadata"]["name"]
    try:
        ctx.client.delete("pods", ctx.namespace, name, operation="delete_pod")
    except SimApiError as err:
        ctx.event(
            "Warning",
            "FailedDelete",
            f"delete Pod {name} in StatefulSet {ctx.name} failed error: {err.message}",
        )
        raise
    ctx.event("Normal", "SuccessfulDelete", f"delete Pod {name} in StatefulSet {ctx.name} successful")


def _create_claims(ctx: SyncContext, pod: Obj, ordinal: int) -> None:
    pod_name = pod["metadata"]["name"]
    for template in ctx.sts["spec"].get("volumeClaimTemplates") or []:
        name = claim_name(template, ctx.sts, ordinal)
        existing = ctx.client.store.get("persistentvolumeclaims", ctx.namespace, name)
        if existing is not None:
            if is_terminating(existing):
                raise SimApiError(500, "InternalError", f"pvc {name} is being deleted")
            continue
        claim = new_claim(ctx.sts, template, ordinal)
        fix_claim_owners(claim, ctx.sts, pod, False, ctx.version)
        try:
            ctx.client.create("persistentvolumeclaims", claim, operation="create_pvc")
        except SimApiError as err:
            if err.reason == "AlreadyExists":
                continue
            ctx.event(
                "Warning",
                "FailedCreate",
                f"create Claim {name} for Pod {pod_name} in StatefulSet {ctx.name} failed error: {err.message}",
            )
            raise
        ctx.event(
            "Normal",
            "SuccessfulCreate",
            f"create Claim {name} Pod {pod_name} in StatefulSet {ctx.name} success",
        )


def _create_pod(ctx: SyncContext, pod: Obj, ordinal: int) -> None:
    name = pod["metadata"]["name"]
    try:
        _create_claims(ctx, pod, ordinal)
        ctx.client.create("pods", pod, operation="create_pod")
    except SimApiError as err:
        if err.reason != "AlreadyExists":
            ctx.event(
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {ctx.name} failed error: {err.message}",
            )
        raise
    ctx.event("Normal", "SuccessfulCreate", f"create Pod {name} in StatefulSet {ctx.name} successful")


def _claims_of(ctx: SyncContext, ordinal: int) -> list[Obj]:
    found = []
    for template in ctx.sts["spec"].get("volumeClaimTemplates") or []:
        claim = ctx.client.store.get(
            "persistentvolumeclaims", ctx.namespace, claim_name(template, ctx.sts, ordinal)
        )
        if claim is not None:
            found.append(claim)
    return found


def _fix_claims(ctx: SyncContext, pod: Obj, ordinal: int, condemned: bool) -> None:
    for claim in _claims_of(ctx, ordinal):
        if foreign_controller(claim, ctx.sts, pod) and retention(ctx.sts) != ("Retain", "Retain"):
            name = claim["metadata"]["name"]
            ctx.event(
                "Warning",
                "ConflictingController",
                f"PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging "
                "controller, the retention policy is ignored for this claim",
            )  # (sic), as upstream
        if claim_owners_up_to_date(claim, ctx.sts, pod, condemned, ctx.version):
            continue

        def change(obj: Obj, pod: Obj = pod) -> None:
            fix_claim_owners(obj, ctx.sts, pod, condemned, ctx.version)

        ctx.client.mutate("persistentvolumeclaims", ctx.namespace, claim["metadata"]["name"], change)


# -- stage A: processReplica (§5.4) ----------------------------------------------------------------
def process_replica(ctx: SyncContext, index: int) -> bool:
    """Returns True when the sync must stop here (monotonic) / this slot stops (burst)."""
    start = start_ordinal(ctx.sts, ctx.version)
    ordinal = start + index
    pod = ctx.replicas[index]
    if is_failed_or_succeeded(pod, ctx.version):
        if ctx.version.recreates_failed_pod_in_same_sync:
            failed = pod_phase(pod) == "Failed"
            ctx.event(
                "Warning" if failed else "Normal",
                "RecreatingFailedPod" if failed else "RecreatingTerminatedPod",
                f"StatefulSet {ctx.namespace}/{ctx.name} is recreating {'failed' if failed else 'terminated'} "
                f"Pod {pod['metadata']['name']}",
            )
            _delete_pod(ctx, pod)
            pod = ctx.replicas[index] = _placeholder(ctx, ordinal)
        else:
            if not is_terminating(pod):
                _delete_pod(ctx, pod)
            return True
    if not is_created(pod):
        if any(claim_is_stale(c, ctx.sts, ordinal) for c in _claims_of(ctx, ordinal)):
            return True
        _create_pod(ctx, _materialise(ctx, pod, ordinal) if PLACEHOLDER in pod else pod, ordinal)
        if ctx.monotonic:
            return True
        return False
    if pod_phase(pod) == "Pending" and ctx.version.recreates_claims_for_pending_pods:
        _create_claims(ctx, pod, ordinal)  # §5.4 rule 3, v1.27+ (#113270)
        _fix_claims(ctx, pod, ordinal, False)
    if ctx.monotonic and (
        is_terminating(pod)
        or not is_running_and_ready(pod)
        or not is_available(pod, ctx.min_ready, ctx.now, ctx.version)
    ):
        return True
    if (
        identity_matches(ctx.sts, pod)
        and storage_matches(ctx.sts, pod)
        and all(
            claim_owners_up_to_date(c, ctx.sts, pod, False, ctx.version) for c in _claims_of(ctx, ordinal)
        )
    ):
        return False
    _update_pod(ctx, pod, ordinal)
    return False


def _update_pod(ctx: SyncContext, pod: Obj, ordinal: int) -> None:
    name = pod["metadata"]["name"]

    def change(obj: Obj) -> None:
        repair_identity(ctx.sts, obj, ctx.version)

    try:
        if not (identity_matches(ctx.sts, pod) and storage_matches(ctx.sts, pod)):
            ctx.client.mutate("pods", ctx.namespace, name, change, operation="update_pod")
            _create_claims(ctx, pod, ordinal)
        _fix_claims(ctx, pod, ordinal, False)
    except SimApiError as err:
        ctx.event(
            "Warning",
            "FailedUpdate",
            f"update Pod {name} in StatefulSet {ctx.name} failed error: {err.message}",
        )
        raise
    ctx.event("Normal", "SuccessfulUpdate", f"update Pod {name} in StatefulSet {ctx.name} successful")


def _run_replicas(ctx: SyncContext) -> bool:
    """Stage A over all slots; True when the sync ends here."""
    if ctx.monotonic:
        return any(process_replica(ctx, i) for i in range(len(ctx.replicas)))
    # Burst: slow-start batches 1, 2, 4, ... (cap 500); stop after the first batch with an error.
    index, size, error = 0, 1, None
    while index < len(ctx.replicas):
        for i in range(index, min(index + size, len(ctx.replicas))):
            try:
                process_replica(ctx, i)
            except SimApiError as err:
                error = error or err
        index += size
        size = min(size * 2, 500)
        if error is not None:
            raise error
    return False


# -- stage C: processCondemned (§5.6) --------------------------------------------------------------
def _first_unhealthy(ctx: SyncContext) -> Obj | None:
    def unhealthy(pod: Obj) -> bool:
        if not ctx.version.updates_wait_for_available:  # ≤1.33: "unhealthy" ignores minReadySeconds
            return not is_running_and_ready(pod) or is_terminating(pod)
        return not is_running_and_available(pod, ctx.min_ready, ctx.now, ctx.version) or is_terminating(pod)

    for pod in ctx.replicas:
        if unhealthy(pod):
            return pod
    for pod in reversed(ctx.condemned):
        if unhealthy(pod):
            return pod
    return None


def _run_condemned(ctx: SyncContext, first_unhealthy: Obj | None) -> bool:
    for pod in ctx.condemned:
        if is_terminating(pod):
            if ctx.monotonic:
                return True
            continue
        if (
            ctx.monotonic
            and not is_running_and_available(pod, ctx.min_ready, ctx.now, ctx.version)
            and pod is not first_unhealthy
        ):
            return True
        _delete_pod(ctx, pod)
        if ctx.monotonic:
            return True
    return False


# -- stage D: rolling update (§5.7, §5.8) ----------------------------------------------------------
def scaled_max_unavailable(value: int | str | None, replicas: int) -> int:
    if value is None:
        return 1
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(replicas * int(value[:-1]) // 100)
    else:
        scaled = int(value)
    return max(1, scaled)


def _update_delete(ctx: SyncContext, pod: Obj) -> None:
    try:
        _delete_pod(ctx, pod)
    except SimApiError as err:
        if err.code != 404:
            raise
    ctx.status["currentReplicas"] -= 1


def _rolling_update(ctx: SyncContext) -> None:
    rolling = (ctx.sts["spec"].get("updateStrategy") or {}).get("rollingUpdate")
    partition = int((rolling or {}).get("partition") or 0)
    update = ctx.update["metadata"]["name"]
    n = len(ctx.replicas)
    unavailable = [is_unavailable(p, ctx.min_ready, ctx.now, ctx.version) for p in ctx.replicas]
    if not ctx.version.max_unavailable_gate:
        for idx in range(n - 1, partition - 1, -1):
            pod = ctx.replicas[idx]
            if pod_revision(pod) != update and not is_terminating(pod):
                _update_delete(ctx, pod)
                return
            if unavailable[idx]:
                return
        return
    max_unavailable = scaled_max_unavailable((rolling or {}).get("maxUnavailable"), n)
    unavailable_count = sum(unavailable)
    old = [
        idx
        for idx in range(n - 1, partition - 1, -1)
        if pod_revision(ctx.replicas[idx]) != update and not is_terminating(ctx.replicas[idx])
    ]
    if ctx.version.parallel_two_phase_update and not ctx.monotonic:
        broken = [idx for idx in old if unavailable[idx]]
        if unavailable_count >= max_unavailable and not broken:
            return
        for idx in broken:
            _update_delete(ctx, ctx.replicas[idx])
        budget = max_unavailable - unavailable_count
        for idx in [i for i in old if not unavailable[i]]:
            if budget <= 0:
                break
            _update_delete(ctx, ctx.replicas[idx])
            budget -= 1
        return
    if unavailable_count >= max_unavailable:
        return
    for idx in old[: max_unavailable - unavailable_count]:
        _update_delete(ctx, ctx.replicas[idx])


# -- the whole pass (§5.3) -------------------------------------------------------------------------
def update_statefulset(ctx: SyncContext) -> SimApiError | None:
    """Run stages A-D; `ctx.status` holds the computed status afterwards (also on error)."""
    spec = ctx.sts["spec"]
    n = int(spec.get("replicas", 1))
    start = start_ordinal(ctx.sts, ctx.version)
    ctx.status = compute_status(ctx, ctx.pods)
    slots: list[Obj | None] = [None] * n
    for pod in ctx.pods:
        _, ordinal = parent_and_ordinal(pod["metadata"]["name"])
        if start <= ordinal < start + n:
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            ctx.condemned.append(pod)
    ctx.replicas = [pod if pod is not None else _placeholder(ctx, start + i) for i, pod in enumerate(slots)]
    ctx.condemned.sort(key=lambda p: parent_and_ordinal(p["metadata"]["name"])[1], reverse=True)
    first_unhealthy = _first_unhealthy(ctx)
    if ctx.sts["metadata"].get("deletionTimestamp"):
        return None
    error: SimApiError | None = None
    try:
        if not _run_replicas(ctx):
            for pod in ctx.condemned:
                _, ordinal = parent_and_ordinal(pod["metadata"]["name"])
                _fix_claims(ctx, pod, ordinal, True)
            if not _run_condemned(ctx, first_unhealthy):
                ctx.status = compute_status(ctx, ctx.replicas + ctx.condemned)
                if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "OnDelete":
                    _rolling_update(ctx)
                return None
    except SimApiError as err:
        error = err
    ctx.status = compute_status(ctx, ctx.replicas + ctx.condemned)
    return error
