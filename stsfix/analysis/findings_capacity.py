"""Pods the scheduler cannot place: one `unschedulable` finding for all of them, the scheduler's
reasons counted, and the ways out when the nodes are simply full.

A set whose pods stay Pending with PodScheduled=False while their revision is not to blame (the
forced-rollback rules blame a revision first, see `findings_pods`) is stuck: nothing changes until
the cluster has room or the set asks for less. When the scheduler reports a shortage (`Insufficient
cpu`, `Too many pods`, ...), the repair lists the options a person chooses between: add capacity,
lower the request (only for a resource the pods request), or scale down to the pods placed now
(`Repair.options`, never steps: they are alternatives). Other reasons (node selectors, affinity,
taints) are named, with no option. Pure.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Final

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, delete_steps, in_range, revision_label, set_pods
from stsfix.analysis.controller import is_monotonic, update_floor
from stsfix.analysis.grouping import FIRST_FEW, Stuck, group_evidence, name_list, them
from stsfix.analysis.pods import human_duration, not_ready_since
from stsfix.model import PodState

_PREEMPTION: Final = re.compile(r"\s*preemption:.*$", re.DOTALL)
#: `0/3 nodes are available: <reasons>.` then, since 1.34, post-filter notes ("no new claims to
#: deallocate,") and the preemption postscript: the reasons end at the first ". ".
_AVAILABLE: Final = re.compile(r"^(\d+/\d+ nodes are available:\s*)(.*?)(?:\.\s|\.?$)", re.DOTALL)
_COUNTED: Final = re.compile(r"^\d+\s+")
#: At most this many distinct scheduler messages are quoted (with their pod counts).
_REASONS: Final = 5


def scheduler_reason(pod: PodState) -> str:
    """The scheduler's reasons from the PodScheduled message (`0/3 nodes are available: 3
    Insufficient cpu`), without what follows them (post-filter notes, the preemption postscript)."""
    scheduled = pod.condition("PodScheduled")
    text = scheduled.message.strip() if scheduled is not None else ""
    match = _AVAILABLE.match(text)
    if match is not None:
        return f"{match.group(1)}{match.group(2)}".strip()
    return (
        _PREEMPTION.sub("", text).strip().rstrip(".")
        or (scheduled.reason if scheduled else "")
        or "Unschedulable"
    )


def shortages(reason: str) -> tuple[str, ...]:
    """What the nodes lack, from `0/3 nodes are available: 3 Insufficient cpu, 2 Too many pods`:
    ("cpu", "pods"). Empty when the scheduler names no shortage (selectors, taints, affinity)."""
    match = _AVAILABLE.match(reason)
    if match is None:
        return ()
    found: list[str] = []
    for part in match.group(2).split(", "):
        text = _COUNTED.sub("", part.strip())
        if text.startswith("Insufficient "):
            found.append(text.removeprefix("Insufficient ").strip())
        elif text.startswith("Too many pods"):
            found.append("pods")
    return tuple(dict.fromkeys(found))


def _requests(ctx: Context, resources: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(container, resource, request) from the template for each short resource it requests."""
    spec: dict[str, Any] = ctx.sts.template.get("spec") or {}
    found = []
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        requests = ((container or {}).get("resources") or {}).get("requests") or {}
        for resource in resources:
            if resource in requests:
                found.append((str(container.get("name", "")), resource, str(requests[resource])))
    return found


def _placed(ctx: Context) -> int:
    """Pods of the replica range that a node runs (bound and not terminating)."""
    return sum(1 for p in set_pods(ctx) if in_range(ctx, p) and p.node_name and not p.deleting)


def _claims_note(ctx: Context) -> str:
    if not ctx.sts.claim_templates:
        return ""
    if ctx.sts.when_scaled == "Delete":
        return (
            " NB: persistentVolumeClaimRetentionPolicy.whenScaled is Delete, so the claims of the removed "
            "ordinals are deleted with their data."
        )
    return " The claims of the removed ordinals are kept (whenScaled: Retain) and reused by a later scale-up."


def _options(
    ctx: Context, pods: list[PodState], short: tuple[str, ...], reasons: str
) -> tuple[f.RepairOption, ...]:
    placed = _placed(ctx)
    count = max(len(pods), ctx.sts.replicas - placed)  # OrderedReady has not created the rest yet
    options = [
        f.RepairOption(
            f.RepairAction.ADD_CAPACITY,
            f"Add nodes, or free room on them, for {count} more pod{'s' if count != 1 else ''}: {reasons}.",
            {"pods": count, "short": ",".join(short)},
        )
    ]
    # NB: OrderedReady never replaces a Pending pod of the old revision by itself (#67250): after
    # the change, the pod must be deleted (diagnose then proposes it as forced-rollback-needed).
    rollout = (
        f" OrderedReady keeps waiting on {pods[0].name}, on the old revision, until it is deleted: run diagnose again "
        "once the change is observed."
        if is_monotonic(ctx.sts)
        else " The new revision replaces the pods one at a time."
    )
    for container, resource, value in _requests(ctx, tuple(r for r in short if r != "pods")):
        options.append(
            f.RepairOption(
                f.RepairAction.LOWER_REQUEST,
                f"Lower the {resource} request of container {container} (now {value}) in the template so the pods "
                f"fit.{rollout}",
                {"container": container, "resource": resource, "request": value},
            )
        )
    if 0 < placed < ctx.sts.replicas:
        summary = f"Scale down to {placed} replicas, the pods placed now.{_claims_note(ctx)}"
        options.append(f.scale(ctx.sts, placed, summary))
    return tuple(options)


def _reason_lines(stuck: list[Stuck]) -> tuple[list[str], list[tuple[str, int]]]:
    counted = Counter(scheduler_reason(p) for p, _ in stuck).most_common()
    lines = [f"scheduler ({n} pod{'s' if n != 1 else ''}): {reason}" for reason, n in counted[:_REASONS]]
    if len(counted) > _REASONS:
        lines.append(f"... and {len(counted) - _REASONS} more scheduler messages")
    return lines, counted


def _not_created(ctx: Context, pods: list[PodState]) -> str:
    """OrderedReady: the wanted ordinals above the Pending pod that are not created yet."""
    if not is_monotonic(ctx.sts):
        return ""
    existing = {p.ordinal for p in set_pods(ctx)}
    top = max(p.ordinal or 0 for p in pods)
    missing = [o for o in ctx.sts.ordinals if o > top and o not in existing]
    if not missing:
        return ""
    names = [f"{ctx.sts.name}-{o}" for o in missing]
    first = names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"
    return f" OrderedReady creates {first} only once {pods[-1].name} is Ready."


def _subject(ctx: Context, pods: list[PodState]) -> str:
    revisions = {p.revision for p in pods}
    on = f" on revision {revision_label(ctx, next(iter(revisions)))}" if len(revisions) == 1 else ""
    if len(pods) == 1:
        return f"{pods[0].name}{on} cannot be scheduled"
    names = name_list([p.name for p in pods])
    return f"{len(pods)} of {ctx.sts.replicas} pods ({names}){on} cannot be scheduled"


def _outdated(ctx: Context, pods: list[PodState]) -> tuple[str, f.Repair] | None:
    """OrderedReady, the template changed since these Pending pods were made (a lowered request):
    the controller never replaces them by itself (#67250), so the repair is to delete them."""
    sts = ctx.sts
    old = [
        p
        for p in pods
        if in_range(ctx, p) and p.revision != sts.update_revision and (p.ordinal or 0) >= update_floor(sts)
    ]
    if not (is_monotonic(sts) and ctx.observed and old and sts.update_strategy == "RollingUpdate"):
        return None
    old.sort(key=lambda p: -(p.ordinal or 0))
    names = [p.name for p in old]
    to = revision_label(ctx, sts.update_revision)
    message = (
        f" The template has changed since: {name_list(names)} {'is' if len(old) == 1 else 'are'} not on the update "
        f"revision {to}, and OrderedReady never replaces a Pending pod by itself (kubernetes/kubernetes#67250)."
    )
    steps = tuple(delete_steps(ctx, old))
    summary = f"Delete {name_list(names)} (highest ordinal first) so the controller recreates {them(len(old))} at {to}."
    return message, f.Repair(summary, steps)


def _capacity_repair(
    ctx: Context, pods: list[PodState], short: tuple[str, ...], top: str
) -> tuple[str, f.Repair]:
    ways = (
        "add capacity, lower the request or scale down"
        if set(short) - {"pods"}
        else "add capacity or scale down"
    )
    message = f" The nodes are full ({', '.join(short)}): nothing changes until there is room; {ways}."
    summary = (
        f"Make room or ask for less ({ways}: see the options); deleting {them(len(pods))} will not help."
    )
    return message, f.Repair(summary, (), _options(ctx, pods, short, top))


def _other_repair(ctx: Context, pods: list[PodState], blocking: bool) -> tuple[str, f.Repair]:
    summary = (
        "Fix what the scheduler names (capacity, node selectors, affinity, taints and tolerations); "
        f"deleting {them(len(pods))} will not help."
    )
    if not blocking:
        return "", f.Repair(summary)
    if ctx.wait is not None and any(p.ordinal == ctx.wait.ordinal for p in pods):
        return " The controller waits for it.", f.Repair(summary)
    placed = "it is placed" if len(pods) == 1 else "they are placed"
    return f" The set cannot reach its replicas until {placed}.", f.Repair(summary)


def unschedulable_finding(ctx: Context, stuck: list[Stuck], *, blocking: bool) -> f.Finding:
    """One finding for every pod the scheduler cannot place (`blocking`: any is in the replica range)."""
    pods = [p for p, _ in stuck]
    lines, counted = _reason_lines(stuck)
    top, top_count = counted[0]
    since = min((t for t in (not_ready_since(p) for p in pods) if t is not None), default=None)
    age = f" for {human_duration(ctx.now - since)}" if since is not None else ""
    more = f" ({top_count} pods)" if len(pods) > 1 else ""
    short = tuple(dict.fromkeys(r for reason, _ in counted for r in shortages(reason)))
    message = f"{_subject(ctx, pods)}{age}: the scheduler says: {top}{more}."
    if len(counted) > 1:
        message += f" {len(counted) - 1} more scheduler message(s) in the evidence."
    outdated = _outdated(ctx, pods) if blocking else None
    if outdated is not None:
        extra, repair = outdated
    elif short and blocking:
        extra, repair = _capacity_repair(ctx, pods, short, top)
    else:
        extra, repair = _other_repair(ctx, pods, blocking)
    message += extra + _not_created(ctx, pods)
    evidence = lines + group_evidence(ctx.snapshot, ctx.now, stuck, few=FIRST_FEW)
    if short:
        evidence.append(f"{_placed(ctx)} of {ctx.sts.replicas} replicas are placed on nodes")
    return f.Finding(
        f.UNSCHEDULABLE, f.Severity.CRITICAL if blocking else f.Severity.WARNING, f.Cause.UNSCHEDULABLE, message,
        tuple(p.name for p in pods), tuple(evidence), repair,
    )  # fmt: skip
