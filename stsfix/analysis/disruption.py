"""Whether the Eviction API would let a pod go now, under the PodDisruptionBudgets that cover it.

Restates kube-apiserver's eviction subresource (v1.34.4 `pkg/registry/core/pod/storage/eviction.go`,
`EvictionREST.Create`, `canIgnorePDB`, `checkAndDecrement`), by release:

* A terminating, Succeeded or Failed pod is deleted without consulting any budget, and so is a
  Pending pod since v1.19 (kubernetes/kubernetes#83906).
* More than one budget covering the pod: refused (500, "does not support").
* A budget whose status lags its spec (observedGeneration < generation): 429 until the disruption
  controller catches up.
* A Ready pod: allowed while the budget's `disruptionsAllowed` > 0.
* A pod that is not Ready: with `unhealthyPodEvictionPolicy: AlwaysAllow` always (the field came
  alpha in v1.26 behind PDBUnhealthyPodEvictionPolicy, off by default; beta and on from v1.27; GA in
  v1.31: kubernetes/kubernetes#113375, #123428). With `IfHealthyBudget` or the field unset, only
  while the budget is met (currentHealthy >= desiredHealthy > 0; since v1.20,
  kubernetes/kubernetes#94381), else only if `disruptionsAllowed` > 0: an unready pod of a
  disrupted application is refused (429), and a plain delete, which no budget governs, is the only
  way.

Pure: stdlib, `stsfix.model` and `stsfix.bundle` (label selectors) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stsfix.analysis.versions import ServerVersion
from stsfix.bundle import selector_matches
from stsfix.model import PdbInfo, PodState

ALWAYS_ALLOW: Final = "AlwaysAllow"
IF_HEALTHY_BUDGET: Final = "IfHealthyBudget"


@dataclass(frozen=True, slots=True)
class Eviction:
    """Would `POST pods/NAME/eviction` delete the pod now; the sentence that says why; the budget line."""

    allowed: bool
    why: str
    evidence: str = ""


def covering(pdbs: tuple[PdbInfo, ...], pod: PodState) -> list[PdbInfo]:
    """The budgets of the pod's namespace whose selector matches its labels (an empty selector
    matches nothing in policy/v1)."""
    return [
        b
        for b in pdbs
        if b.meta.namespace == pod.meta.namespace
        and b.selector
        and selector_matches(b.selector, pod.meta.labels)
    ]


def _at_least(version: ServerVersion | None, minor: int) -> bool:
    return version is None or (version.major, version.minor) >= (1, minor)


def budget_line(pdb: PdbInfo) -> str:
    policy = pdb.unhealthy_pod_eviction_policy or f"unset ({IF_HEALTHY_BUDGET})"
    return (
        f"PodDisruptionBudget {pdb.meta.name}: disruptionsAllowed {pdb.disruptions_allowed}, currentHealthy "
        f"{pdb.current_healthy}, desiredHealthy {pdb.desired_healthy}, unhealthyPodEvictionPolicy {policy}"
    )


def _unready(pod: PodState, pdb: PdbInfo, version: ServerVersion | None) -> Eviction:
    line = budget_line(pdb)
    name = pdb.meta.name
    if pdb.unhealthy_pod_eviction_policy == ALWAYS_ALLOW:
        return Eviction(
            True,
            f"{name} has unhealthyPodEvictionPolicy AlwaysAllow, so {pod.name}, not Ready, may be evicted.",
            line,
        )
    met = pdb.current_healthy >= pdb.desired_healthy > 0 and _at_least(version, 20)
    if met:
        return Eviction(True, f"{name} is met (currentHealthy {pdb.current_healthy} >= desiredHealthy "
                              f"{pdb.desired_healthy}), so {pod.name}, not Ready, may be evicted.", line)  # fmt: skip
    if pdb.disruptions_allowed > 0:
        return Eviction(True, f"{name} allows {pdb.disruptions_allowed} disruption(s) now.", line)
    since = (
        "1.27 (beta; GA in 1.31)"
        if _at_least(version, 27)
        else "1.27, beta (alpha and off by default in 1.26)"
    )
    why = (
        f"evicting {pod.name} would be refused now: {name} allows 0 disruptions (currentHealthy "
        f"{pdb.current_healthy}, desiredHealthy {pdb.desired_healthy}) and {pod.name} is not Ready. With "
        f"unhealthyPodEvictionPolicy {pdb.unhealthy_pod_eviction_policy or IF_HEALTHY_BUDGET + ' (the default)'} an "
        "unready pod may be evicted only while the budget is met; AlwaysAllow, available since "
        f"{since}, would allow it (kubernetes/kubernetes#113375). A plain delete, which no budget governs, is the "
        f"only way; {pod.name} is not serving, so deleting it does not lower currentHealthy."
    )
    return Eviction(False, why, line)


def eviction(pod: PodState, pdbs: tuple[PdbInfo, ...], version: ServerVersion | None) -> Eviction | None:
    """What the Eviction API would do with `pod` now; None when no budget covers it."""
    found = covering(pdbs, pod)
    if not found:
        return None
    names = ", ".join(b.meta.name for b in found)
    if (
        pod.deleting
        or pod.phase in ("Succeeded", "Failed")
        or (pod.phase == "Pending" and _at_least(version, 19))
    ):
        state = "terminating" if pod.deleting else pod.phase
        return Eviction(True, f"the Eviction API deletes a {state} pod without consulting {names} (since v1.19, kubernetes/kubernetes#83906).",
                        budget_line(found[0]))  # fmt: skip
    if len(found) > 1:
        return Eviction(False, f"{pod.name} is covered by {len(found)} PodDisruptionBudgets ({names}), which the "
                               "eviction subresource does not support: a plain delete is the only way.")  # fmt: skip
    pdb = found[0]
    if pdb.observed_generation < pdb.meta.generation:
        return Eviction(False, f"{pdb.meta.name} is still being processed by the disruption controller "
                               "(observedGeneration behind generation): eviction answers 429 until it catches up.",
                        budget_line(pdb))  # fmt: skip
    if pod.ready:
        allowed = pdb.disruptions_allowed > 0
        why = f"{pdb.meta.name} allows {pdb.disruptions_allowed} disruption(s) now" + (
            "."
            if allowed
            else f": evicting {pod.name}, which is Ready, would be refused (429) until it allows one."
        )
        return Eviction(allowed, why, budget_line(pdb))
    return _unready(pod, pdb, version)
