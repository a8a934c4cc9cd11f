"""Pending pods waiting on a claim: Pending (no volume yet) or missing (deleted, or being deleted).

One finding per code and cause, whatever the number of pods. A Pending claim is the cause only
when the scheduler does not name something else (with WaitForFirstConsumer a claim stays Pending
while its pod is unschedulable for other reasons). Pure.
"""

from __future__ import annotations

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, blocks
from stsfix.analysis.grouping import FIRST_FEW, Stuck, group_evidence, grouped, name_list
from stsfix.analysis.pods import event_lines, unscheduled
from stsfix.model import PodState, PvcState

#: (pod, its evidence, (code, sentence)) for each Pending pod with a claim problem.
ClaimProblem = tuple[PodState, tuple[str, ...], tuple[str, str]]


def _waits_for_volume(pod: PodState) -> bool:
    scheduled = pod.condition("PodScheduled")
    if not unscheduled(pod) or scheduled is None:
        return True
    return any(word in scheduled.message.lower() for word in ("persistentvolumeclaim", "volume"))


def claim_problem(ctx: Context, pod: PodState, claims: dict[str, PvcState]) -> tuple[str, str] | None:
    """(code, sentence) when a claim of a Pending pod is Pending, missing or being deleted;
    `claims` is the snapshot's claims by name."""
    if pod.phase != "Pending" or ctx.snapshot.pvcs is None:
        return None
    for claim in pod.claim_names:
        pvc = claims.get(claim)
        if pvc is None:
            return f.PVC_MISSING, f"claim {claim} of {pod.name} does not exist"
        if pvc.meta.deletion_timestamp is not None:
            return f.PVC_MISSING, f"claim {claim} of {pod.name} is being deleted"
        if pvc.phase == "Pending" and _waits_for_volume(pod):
            return (
                f.PVC_PENDING,
                f"claim {claim} of {pod.name} is Pending (storage class {pvc.storage_class or '<none>'})",
            )
    return None


def _finding(ctx: Context, group: list[ClaimProblem]) -> f.Finding:
    code = group[0][2][0]
    pods = [p for p, _, _ in group]
    stuck: list[Stuck] = [(p, e) for p, e, _ in group]
    waits = any(blocks(ctx, p) for p in pods)
    words = "; ".join(w for _, _, (_, w) in group[:FIRST_FEW])
    if len(pods) == 1:
        message = f"{pods[0].name} cannot start: {words}." + (" OrderedReady waits for it." if waits else "")
    else:
        more = f"; and {len(pods) - FIRST_FEW} more" if len(pods) > FIRST_FEW else ""
        message = f"{len(pods)} pods ({name_list([p.name for p in pods])}) cannot start: {words}{more}." + (
            " OrderedReady waits for them." if waits else ""
        )
    claim_events = [
        line
        for p in pods[:FIRST_FEW]
        for c in p.claim_names
        for line in event_lines(ctx.snapshot.events, kind="PersistentVolumeClaim", name=c, now=ctx.now)
    ]
    summary = (
        "Fix the storage (provisioner, storage class, quota) or recreate the claim; "
        f"the {'pod then starts' if len(pods) == 1 else 'pods then start'} on {'its' if len(pods) == 1 else 'their'} own."
    )
    cause = f.Cause.PVC_PENDING if code == f.PVC_PENDING else f.Cause.PVC_MISSING
    return f.Finding(
        code, f.Severity.CRITICAL if waits else f.Severity.WARNING, cause, message, tuple(p.name for p in pods),
        (*group_evidence(ctx.snapshot, ctx.now, stuck), *claim_events), f.Repair(summary), f.PLAYBOOK_PVC_PENDING,
    )  # fmt: skip


def split_claim_problems(ctx: Context, stuck: list[Stuck]) -> tuple[list[ClaimProblem], list[Stuck]]:
    """The stuck pods with a claim problem, and the others."""
    claims = {c.name: c for c in ctx.snapshot.pvcs or ()}
    problems: list[ClaimProblem] = []
    rest: list[Stuck] = []
    for pod, evidence in stuck:
        problem = claim_problem(ctx, pod, claims)
        if problem is None:
            rest.append((pod, evidence))
        else:
            problems.append((pod, evidence, problem))
    return problems, rest


def claim_findings(ctx: Context, problems: list[ClaimProblem]) -> list[f.Finding]:
    """pvc-pending and pvc-missing, one finding each for all the pods concerned."""
    return [_finding(ctx, group) for group in grouped(problems, key=lambda x: x[2][0])]
