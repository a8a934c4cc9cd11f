"""PodDisruptionBudgets on the pods a repair deletes: evict where the budget allows it, else say why
a plain delete is the only way (see `disruption` for the Eviction API's rules by release).

Applied to every finding after the rules ran: each `delete-pod` step whose pod a budget covers
becomes `evict-pod` (`stsfix delete-pod ... --evict`, same flags) when eviction would be allowed
now, and stays a delete otherwise; a rollback whose own deletions (its effects) may all be evicted
gets `--evict`. The summary says which, and the evidence quotes the budget.
Pure.
"""

from __future__ import annotations

from dataclasses import replace

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context
from stsfix.analysis.disruption import Eviction, eviction
from stsfix.model import PodState


def _evict(step: f.RepairStep) -> f.RepairStep:
    return f.RepairStep(f.RepairAction.EVICT_POD, dict(step.params), f"{step.command} --evict", step.effects)


def _checked(
    ctx: Context, step: f.RepairStep, pods: dict[str, PodState]
) -> tuple[f.RepairStep, list[tuple[str, Eviction]]]:
    """The step with evictions where they are allowed, and the verdict for each pod it deletes.

    A delete-pod step becomes evict-pod. A rollback that deletes pods itself (its effects) gets
    `--evict` only when every pod it deletes may be evicted now: it evicts all or none."""
    if step.action is f.RepairAction.DELETE_POD:
        pod = pods.get(str(step.params.get("pod", "")))
        verdict = eviction(pod, ctx.snapshot.pdbs, ctx.version) if pod is not None else None
        if pod is None or verdict is None:
            return step, []
        return (_evict(step) if verdict.allowed else step), [(pod.name, verdict)]
    deletes = [e for e in step.effects if e.action is f.RepairAction.DELETE_POD]
    if step.action is not f.RepairAction.REVERT_TEMPLATE or not deletes:
        return step, []
    found = []
    for effect in deletes:
        pod = pods.get(str(effect.params.get("pod", "")))
        verdict = eviction(pod, ctx.snapshot.pdbs, ctx.version) if pod is not None else None
        if pod is not None and verdict is not None:
            found.append((pod.name, verdict))
    if found and all(v.allowed for _, v in found):
        effects = tuple(
            f.RepairStep(f.RepairAction.EVICT_POD, dict(e.params), e.command) if e in deletes else e
            for e in step.effects
        )
        step = f.RepairStep(step.action, dict(step.params), f"{step.command} --evict", effects)
    return step, found


def _with_budget(ctx: Context, finding: f.Finding) -> f.Finding:
    repair = finding.repair
    if repair is None:
        return finding
    pods = {p.name: p for p in ctx.snapshot.pods}
    steps: list[f.RepairStep] = []
    verdicts: list[tuple[str, Eviction]] = []
    for step in repair.steps:
        checked, found = _checked(ctx, step, pods)
        steps.append(checked)
        verdicts += found
    if not verdicts:
        return finding
    allowed = [name for name, v in verdicts if v.allowed]
    words = []
    if allowed and len(allowed) == len(verdicts):
        words.append(
            f"Eviction is allowed now for {', '.join(allowed)}, so the step evicts (the budget is respected):"
        )
    elif allowed:
        words.append(f"Eviction is allowed now for {', '.join(allowed)} only:")
    words += [v.why[0].upper() + v.why[1:] for _, v in verdicts]
    summary = f"{repair.summary} {' '.join(words)}"
    lines = tuple(dict.fromkeys(v.evidence for _, v in verdicts if v.evidence))
    return replace(
        finding,
        evidence=(*finding.evidence, *lines),
        repair=replace(repair, summary=summary, steps=tuple(steps)),
    )


def with_budgets(ctx: Context, found: list[f.Finding]) -> list[f.Finding]:
    """The findings with their delete steps checked against the PodDisruptionBudgets (no budgets: as is)."""
    if not ctx.snapshot.pdbs:
        return found
    return [_with_budget(ctx, x) for x in found]
