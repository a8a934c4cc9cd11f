"""Findings about the rollout as a whole: held by a partition, OnDelete pods waiting for deletion,
an unobserved spec, a managing operator, and the in-progress / complete summaries.

Rules from the semantics reference §3.4, §5.9, §6.3, §7.1 and the anchors' operator-ownership
guard. Pure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, has_ready_pod, in_range, revision_label, set_pods
from stsfix.analysis.controller import update_floor
from stsfix.analysis.pods import human_duration
from stsfix.analysis.progress import RolloutProgress, paused_reason

#: Substrings of managedFields managers that belong to tools which re-apply a template.
KNOWN_MANAGERS: Final = (
    "helm",
    "argocd",
    "kustomize-controller",
    "flux",
    "operator",
    "pulumi",
    "terraform",
    "spinnaker",
)
#: Labels and annotations that name who manages an object.
MANAGED_BY_KEYS: Final = (
    "app.kubernetes.io/managed-by",
    "meta.helm.sh/release-name",
    "argocd.argoproj.io/instance",
)


def partition_finding(ctx: Context) -> f.Finding | None:
    """partition-holds-rollout: every ordinal ≥ the partition is updated and Ready, the rest wait."""
    sts = ctx.sts
    reason = paused_reason(ctx.snapshot, ctx.now)
    if sts.update_strategy != "RollingUpdate" or not reason:
        return None
    held = [p.name for p in set_pods(ctx) if in_range(ctx, p) and p.revision != sts.update_revision]
    partition = sts.partition or 0
    value = max(0, min(partition, sts.replicas) - 1)
    message = (
        f"The rollout to {revision_label(ctx, sts.update_revision)} is paused by partition {partition}: every ordinal "
        f"from {update_floor(sts)} is updated and Ready; {', '.join(held)} {'stays' if len(held) == 1 else 'stay'} at {revision_label(ctx, sts.current_revision)}."
    )
    summary = (
        f"Lower the partition one ordinal at a time (canary), or to 0 to finish the rollout (next: {value})."
    )
    return f.Finding(
        f.PARTITION_HOLDS_ROLLOUT, f.Severity.INFO, f.Cause.UNKNOWN, message, tuple(held), (reason,),
        f.Repair(summary, (f.set_partition(sts, value),)), f.PLAYBOOK_CANARY_PARTITION,
    )  # fmt: skip


def ondelete_finding(ctx: Context) -> f.Finding | None:
    """ondelete-pending: OnDelete pods on older revisions; steps only once the update revision has a Ready pod."""
    sts = ctx.sts
    if sts.update_strategy != "OnDelete" or not ctx.observed:
        return None
    outdated = [p for p in reversed(set_pods(ctx)) if in_range(ctx, p) and p.revision != sts.update_revision]
    outdated = [p for p in outdated if not p.deleting]
    if not outdated:
        return None
    names = tuple(p.name for p in reversed(outdated))
    head = (
        f"OnDelete: {', '.join(names)} keep older revisions until deleted; the update revision is "
        f"{revision_label(ctx, sts.update_revision)}."
    )
    if not has_ready_pod(ctx, sts.update_revision):
        message = (
            f"{head} No pod runs it Ready yet, so it is unproven: replace {names[-1]} (the highest ordinal) "
            "first, as a canary, and check it."
        )
        canary = f.Repair(
            f"Replace {names[-1]} as a canary (stsfix deletes it and waits until it is Ready at the update "
            "revision), then re-run diagnose.",
            (f.replace_outdated_pods(sts, 1),),
        )
        return f.Finding(
            f.ONDELETE_PENDING, f.Severity.WARNING, f.Cause.UNKNOWN, message, names, (), canary,
            f.PLAYBOOK_ONDELETE_UPDATE,
        )  # fmt: skip
    summary = (
        "Replace the outdated pods one at a time, highest ordinal first, each once the one before is Ready "
        "at the update revision."
    )
    return f.Finding(
        f.ONDELETE_PENDING, f.Severity.INFO, f.Cause.UNKNOWN, head, names, (),
        f.Repair(summary, (f.replace_outdated_pods(sts),)), f.PLAYBOOK_ONDELETE_UPDATE,
    )  # fmt: skip


def _newest_change(ctx: Context) -> datetime | None:
    times = [ctx.sts.meta.created] + [p.meta.created for p in ctx.snapshot.pods]
    times += [r.meta.created for r in ctx.snapshot.revisions]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def not_observing_finding(ctx: Context) -> f.Finding | None:
    """controller-not-observing: observedGeneration < generation with no pod, revision (or the set
    itself) created for at least `stuck_after`.

    NB: the API records no time for a generation change (managedFields times are not in the
    model), so the newest pod/revision creation stands in for "the controller last acted".
    """
    sts = ctx.sts
    if ctx.observed:
        return None
    newest = _newest_change(ctx)
    if newest is not None and ctx.now - newest < ctx.stuck_after:
        return None
    quiet = (
        f"nothing was created for {human_duration(ctx.now - newest)}"
        if newest
        else "no pods or revisions were found"
    )
    message = (
        f"The controller has not observed generation {sts.meta.generation} (observedGeneration {sts.observed_generation}) and "
        f"{quiet}: check that kube-controller-manager is running, or wait and diagnose again."
    )
    evidence = (
        f"metadata.generation {sts.meta.generation}, status.observedGeneration {sts.observed_generation}",
    )
    return f.Finding(f.CONTROLLER_NOT_OBSERVING, f.Severity.INFO, f.Cause.UNKNOWN, message, (), evidence)


def _managers(ctx: Context) -> list[str]:
    meta = ctx.sts.meta
    found = [f"owner {o.kind}/{o.name}" for o in meta.owners if o.controller]
    found += [
        f"{k}={v}" for k, v in sorted({**meta.annotations, **meta.labels}.items()) if k in MANAGED_BY_KEYS
    ]
    found += [f"manager {m}" for m in meta.managers if any(k in m.lower() for k in KNOWN_MANAGERS)]
    return found


def operator_finding(ctx: Context) -> f.Finding | None:
    """operator-managed: an owner, label or field manager says another tool applies this set."""
    managers = _managers(ctx)
    if not managers:
        return None
    message = (
        f"{ctx.sts.name} is managed by {managers[0]}: it may re-apply the template and undo a manual fix. "
        "Make the same change in its source (chart values, manifest, custom resource)."
    )
    return f.Finding(f.OPERATOR_MANAGED, f.Severity.WARNING, f.Cause.UNKNOWN, message, (), tuple(managers))


def _wait_text(ctx: Context) -> str:
    """What the controller is doing while the rollout progresses."""
    if not ctx.observed:
        return "Waiting for statefulset spec update to be observed."
    return ctx.wait.why if ctx.wait is not None else "The controller is replacing pods."


def summary_finding(ctx: Context, progress: RolloutProgress, *, complete: bool) -> f.Finding:
    """rollout-complete or rollout-in-progress, with the controller's current wait as the message."""
    sts = ctx.sts
    counts = f"{progress.updated_pods} of {sts.replicas} pods updated, {sts.ready_replicas} ready"
    if complete:
        message = (
            f"Rollout complete: {sts.replicas} pods at revision {revision_label(ctx, sts.update_revision)}."
        )
        return f.Finding(f.ROLLOUT_COMPLETE, f.Severity.INFO, f.Cause.UNKNOWN, message, (), (counts,))
    waiting = [r.pod for r in progress.rows if r.waiting]
    message = f"Rolling out {revision_label(ctx, sts.update_revision)}: {counts}. {_wait_text(ctx)}"
    return f.Finding(
        f.ROLLOUT_IN_PROGRESS, f.Severity.INFO, f.Cause.UNKNOWN, message, tuple(waiting), (counts,)
    )
