"""Repair plans as data: steps with their preconditions, built from one Snapshot.

A `Plan` is what dry-run prints, what `plan --save` writes and what the executor interprets. Each
step names the object it acts on with the uid/revision it was planned against; the executor
re-reads before each step and runs the step's "already done" and precondition checks (see
`stsfix.executor`). Nothing here performs I/O or reads a clock: `now` is passed in (the server's).

PURE: standard library, `stsfix.model`, `stsfix.errors` and `stsfix.analysis` only.
"""

from __future__ import annotations

from stsfix.planner.pods import (
    expected_revision,
    node_lost_evidence,
    outdated_pods,
    plan_delete_outdated,
    plan_delete_pod,
    plan_force_delete,
)
from stsfix.planner.rules import check_preconditions, choose_target, plan_rollback, replan
from stsfix.planner.steps import (
    DEFAULT_NODE_LOST_AFTER,
    AwaitObserved,
    AwaitReady,
    AwaitRestartedPod,
    AwaitRestartObserved,
    AwaitRolloutComplete,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    Plan,
    PlanRequest,
    PodPrecondition,
    RestartPod,
    RestartTemplate,
    RevertTemplate,
    SetPartition,
    SetPrecondition,
    Step,
    plan_from_dict,
    step_to_dict,
    template_matches,
)

__all__ = [
    "DEFAULT_NODE_LOST_AFTER",
    "AwaitObserved",
    "AwaitReady",
    "AwaitRestartObserved",
    "AwaitRestartedPod",
    "AwaitRolloutComplete",
    "DeletePod",
    "EvictPod",
    "ForceDeletePod",
    "Plan",
    "PlanRequest",
    "PodPrecondition",
    "RestartPod",
    "RestartTemplate",
    "RevertTemplate",
    "SetPartition",
    "SetPrecondition",
    "Step",
    "check_preconditions",
    "choose_target",
    "expected_revision",
    "node_lost_evidence",
    "outdated_pods",
    "plan_delete_outdated",
    "plan_delete_pod",
    "plan_force_delete",
    "plan_from_dict",
    "plan_rollback",
    "replan",
    "step_to_dict",
    "template_matches",
]
