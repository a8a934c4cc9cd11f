"""Pending pods waiting on a claim: Pending (no volume yet) or missing (deleted, or being deleted).

One finding per code and cause, whatever the number of pods. A Pending claim is the cause only
when the scheduler does not name something else (with WaitForFirstConsumer a claim stays Pending
while its pod is unschedulable for other reasons).

A missing claim is recreated by the controller only when it creates the pod, and, since v1.27,
also for a Pending pod its sync reaches (kubernetes/kubernetes#113270; v1.34.4
`pkg/controller/statefulset/stateful_set_control.go`, `processReplica`: `isPending` ->
`createMissingPersistentVolumeClaims`; semantics reference §5.4 rule 3). The controller syncs a set
only when the set or one of its pods changes, and OrderedReady's sync stops at the first pod that
is not Ready. So the repair is version-aware: before 1.27, and whenever the controller has not
acted, the step is deleting the Pending pod (delete-pod: uid/resourceVersion preconditions, never
a Ready pod), which makes the controller recreate the pod and a new, empty claim. A claim being
deleted under a scheduled pod is held by pvc-protection until the pod is gone: the same step. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, blocks, delete_steps
from stsfix.analysis.grouping import FIRST_FEW, Stuck, group_evidence, grouped, name_list, them
from stsfix.analysis.pods import event_lines, unscheduled
from stsfix.analysis.versions import recreates_missing_claims
from stsfix.model import PodState, PvcState

_FIX: Final = "kubernetes/kubernetes#113270"


@dataclass(frozen=True, slots=True)
class ClaimProblem:
    """A stuck Pending pod and its first claim problem: `state` is pending, absent or deleting."""

    pod: PodState
    evidence: tuple[str, ...]
    code: str
    claim: str
    state: str
    words: str


def _waits_for_volume(pod: PodState) -> bool:
    scheduled = pod.condition("PodScheduled")
    if not unscheduled(pod) or scheduled is None:
        return True
    return any(word in scheduled.message.lower() for word in ("persistentvolumeclaim", "volume"))


def claim_problem(
    pod: PodState, evidence: tuple[str, ...], claims: dict[str, PvcState]
) -> ClaimProblem | None:
    """The first claim of a Pending pod that is Pending, missing or being deleted (None if none);
    `claims` is the snapshot's claims by name."""
    if pod.phase != "Pending":
        return None
    for claim in pod.claim_names:
        pvc = claims.get(claim)
        if pvc is None:
            words = f"claim {claim} of {pod.name} does not exist"
            return ClaimProblem(pod, evidence, f.PVC_MISSING, claim, "absent", words)
        if pvc.meta.deletion_timestamp is not None:
            words = f"claim {claim} of {pod.name} is being deleted"
            return ClaimProblem(pod, evidence, f.PVC_MISSING, claim, "deleting", words)
        if pvc.phase == "Pending" and _waits_for_volume(pod):
            words = f"claim {claim} of {pod.name} is Pending (storage class {pvc.storage_class or '<none>'})"
            return ClaimProblem(pod, evidence, f.PVC_PENDING, claim, "pending", words)
    return None


def split_claim_problems(ctx: Context, stuck: list[Stuck]) -> tuple[list[ClaimProblem], list[Stuck]]:
    """The stuck pods with a claim problem, and the others (all of them when claims were not read)."""
    if ctx.snapshot.pvcs is None:
        return [], list(stuck)
    claims = {c.name: c for c in ctx.snapshot.pvcs}
    problems: list[ClaimProblem] = []
    rest: list[Stuck] = []
    for pod, evidence in stuck:
        problem = claim_problem(pod, evidence, claims)
        if problem is None:
            rest.append((pod, evidence))
        else:
            problems.append(problem)
    return problems, rest


def _reached(ctx: Context, pod: PodState) -> bool:
    """The controller's sync gets to this pod: Parallel always, OrderedReady when no lower ordinal
    stops it (processReplica returns at the first pod that is not Ready, §5.4)."""
    wait = ctx.wait
    return ctx.sts.pod_management_policy == "Parallel" or wait is None or wait.ordinal >= (pod.ordinal or 0)


def _missing_repair(ctx: Context, problems: list[ClaimProblem]) -> tuple[str, f.Repair]:
    """(the message's last sentences, the repair) for pvc-missing."""
    itself = recreates_missing_claims(ctx.version)
    blocked = [x for x in problems if x.state == "absent" and itself and not _reached(ctx, x.pod)]
    victims = sorted((x for x in problems if x not in blocked), key=lambda x: -(x.pod.ordinal or 0))
    notes = []
    if any(x.state == "absent" for x in victims):
        if itself:
            notes.append(
                f"Since v1.27 the controller recreates a missing claim of a Pending pod when its sync reaches the "
                f"pod ({_FIX}), but it has not: it syncs a set only when the set or one of its pods changes."
            )
        else:
            notes.append(
                f"On {ctx.version} the controller creates claims only when it creates a pod; recreating the "
                f"claims of a Pending pod came in v1.27 ({_FIX})."
            )
    if any(x.state == "deleting" for x in victims):
        notes.append(
            "A claim being deleted is held by kubernetes.io/pvc-protection until the pod using it is gone."
        )
    if blocked:
        first = f"{ctx.sts.name}-{ctx.wait.ordinal}" if ctx.wait is not None else "the lower ordinals"
        notes.append(
            f"The controller recreates {name_list([x.claim for x in blocked])} itself once its sync gets past "
            f"{first} (OrderedReady stops at the first pod that is not Ready)."
        )
        if not victims:
            return " " + " ".join(notes), f.Repair(f"Make {first} Ready; the claims are then recreated.")
    names, claims = [x.pod.name for x in victims], [x.claim for x in victims]
    empty = (
        f"Delete {name_list(names)} (highest ordinal first): the controller recreates {them(len(names))} with new, "
        f"empty claims {name_list(claims)} (the data of the deleted {'claim is' if len(claims) == 1 else 'claims are'} "
        "not in them)."
    )
    steps = tuple(delete_steps(ctx, [x.pod for x in victims]))
    return " " + " ".join([*notes, empty]), f.Repair(empty, steps)


def _finding(ctx: Context, group: list[ClaimProblem]) -> f.Finding:
    code = group[0].code
    pods = [x.pod for x in group]
    waits = any(blocks(ctx, p) for p in pods)
    words = "; ".join(x.words for x in group[:FIRST_FEW])
    if len(pods) == 1:
        message = f"{pods[0].name} cannot start: {words}." + (" OrderedReady waits for it." if waits else "")
    else:
        more = f"; and {len(pods) - FIRST_FEW} more" if len(pods) > FIRST_FEW else ""
        message = f"{len(pods)} pods ({name_list([p.name for p in pods])}) cannot start: {words}{more}." + (
            " OrderedReady waits for them." if waits else ""
        )
    if code == f.PVC_MISSING:
        extra, repair = _missing_repair(ctx, group)
        message += extra
        waits = waits and bool(repair.steps)  # else the lower pod that stops the sync is the finding
    else:
        one = len(pods) == 1
        repair = f.Repair(
            "Fix the storage (provisioner, storage class, quota) or recreate the claim; "
            f"the {'pod then starts' if one else 'pods then start'} on {'its' if one else 'their'} own."
        )
    claim_events = [
        line
        for p in pods[:FIRST_FEW]
        for c in p.claim_names
        for line in event_lines(ctx.snapshot.events, kind="PersistentVolumeClaim", name=c, now=ctx.now)
    ]
    evidence = (*group_evidence(ctx.snapshot, ctx.now, [(x.pod, x.evidence) for x in group]), *claim_events)
    cause = f.Cause.PVC_PENDING if code == f.PVC_PENDING else f.Cause.PVC_MISSING
    return f.Finding(
        code, f.Severity.CRITICAL if waits else f.Severity.WARNING, cause, message, tuple(p.name for p in pods),
        evidence, repair, f.PLAYBOOK_PVC_PENDING,
    )  # fmt: skip


def claim_findings(ctx: Context, problems: list[ClaimProblem]) -> list[f.Finding]:
    """pvc-pending and pvc-missing, one finding each for all the pods concerned."""
    return [_finding(ctx, group) for group in grouped(problems, key=lambda x: x.code)]
