"""The vocabulary of a diagnosis: findings, their causes and severities, and repair steps.

A `Finding` is not an error (kubectl's `CheckDiffErr` rule): it names what is wrong, shows the
evidence, and proposes a `Repair` whose steps carry the stsfix command that performs them. The
string values of the enums and the `code`s are an API (JSON output, runbooks): keep them stable.
Pure: stdlib and `stsfix.model` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Final

from stsfix.analysis.progress import RolloutState
from stsfix.model import StatefulSetState

Verdict = RolloutState

# Finding codes (stable API; documented in docs/output.md by the CLI).
FORCED_ROLLBACK_NEEDED: Final = "forced-rollback-needed"
BAD_UPDATE_REVISION: Final = "bad-update-revision"
POD_STUCK_TERMINATING: Final = "pod-stuck-terminating"
PVC_PENDING: Final = "pvc-pending"
PVC_MISSING: Final = "pvc-missing"
UNSCHEDULABLE: Final = "unschedulable"
POD_NOT_READY: Final = "pod-not-ready"
POD_CREATE_FAILED: Final = "pod-create-failed"
PARTITION_HOLDS_ROLLOUT: Final = "partition-holds-rollout"
ONDELETE_PENDING: Final = "ondelete-pending"
MAXUNAVAILABLE_REGRESSION: Final = "maxunavailable-regression"
CONTROLLER_NOT_OBSERVING: Final = "controller-not-observing"
OPERATOR_MANAGED: Final = "operator-managed"
ROLLOUT_IN_PROGRESS: Final = "rollout-in-progress"
ROLLOUT_COMPLETE: Final = "rollout-complete"

# Playbook names.
PLAYBOOK_FORCED_ROLLBACK: Final = "forced-rollback"
PLAYBOOK_STUCK_TERMINATING: Final = "stuck-terminating"
PLAYBOOK_PVC_PENDING: Final = "pvc-pending"
PLAYBOOK_CANARY_PARTITION: Final = "canary-partition"
PLAYBOOK_SAFE_RESTART: Final = "safe-restart"
PLAYBOOK_ONDELETE_UPDATE: Final = "ondelete-update"


class Severity(StrEnum):
    """How urgent a finding is: critical blocks the rollout, warning needs a look, info is context."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Cause(StrEnum):
    """Why a pod is unhealthy, in the words of its status."""

    CRASH_LOOP = "crash-loop"
    IMAGE_PULL = "image-pull"
    READINESS_FAILING = "readiness-failing"
    CREATE_CONTAINER_ERROR = "create-container-error"
    INIT_FAILURE = "init-failure"
    OOM_KILLED = "oom-killed"
    UNSCHEDULABLE = "unschedulable"
    PVC_PENDING = "pvc-pending"
    PVC_MISSING = "pvc-missing"
    NODE_LOST = "node-lost"
    EVICTED = "evicted"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"


class RepairAction(StrEnum):
    """What one repair step does; `params` keys per action are listed on the step constructors."""

    REVERT_TEMPLATE = "revert-template"
    DELETE_POD = "delete-pod"
    EVICT_POD = "evict-pod"
    VERIFY_NODE_GONE = "verify-node-gone"
    FORCE_DELETE_POD = "force-delete-pod"
    SET_PARTITION = "set-partition"
    REPLACE_OUTDATED_PODS = "replace-outdated-pods"
    # Options only (`Repair.options`): alternatives for a person to choose from, never run in order.
    ADD_CAPACITY = "add-capacity"
    LOWER_REQUEST = "lower-request"
    SCALE = "scale"


@dataclass(frozen=True, slots=True)
class RepairStep:
    """One step: the action, its parameters, and the command line that carries it out.

    `effects` are what that command does itself beyond the action (a rollback's pod deletions):
    shown as what it will do, never as further commands. An effect has no command of its own.
    """

    action: RepairAction
    params: dict[str, str | int] = field(hash=False)
    command: str
    effects: tuple[RepairStep, ...] = field(default=(), hash=False)

    def describe(self) -> str:
        """One line for people: `delete pod web-4`, `revert the template to revision 1`, ..."""
        words = {
            RepairAction.REVERT_TEMPLATE: "revert the template to revision {toRevision}",
            RepairAction.DELETE_POD: "delete pod {pod}",
            RepairAction.EVICT_POD: "evict pod {pod}",
            RepairAction.VERIFY_NODE_GONE: "verify that node {node} is gone",
            RepairAction.FORCE_DELETE_POD: "force-delete pod {pod} (node {node})",
            RepairAction.SET_PARTITION: "set the partition to {value}",
            RepairAction.REPLACE_OUTDATED_PODS: "replace the outdated pods one at a time (count {count})",
        }
        return words[self.action].format(**self.params)


@dataclass(frozen=True, slots=True)
class RepairOption:
    """One alternative way out: what it does in a sentence, its parameters, and the command line
    that carries it out ("" when it is not a command, such as adding nodes)."""

    action: RepairAction
    summary: str
    params: dict[str, str | int] = field(hash=False)
    command: str = ""


@dataclass(frozen=True, slots=True)
class Repair:
    """What to do about a finding: a one-line summary, ordered steps (may be empty), and options:
    alternatives a person chooses between (add capacity, lower the request, scale down), which are
    never steps because running them all in order would be wrong."""

    summary: str
    steps: tuple[RepairStep, ...] = ()
    options: tuple[RepairOption, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosed fact: a stable code, severity, cause, the pods concerned, a full-sentence
    message, evidence lines, a repair, and the playbook that fits (or None)."""

    code: str
    severity: Severity
    cause: Cause
    message: str
    pods: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    repair: Repair | None = None
    playbook: str | None = None
    #: Failing, not stuck yet: how long until it counts as stuck (None: stuck, or not about a pod).
    stuck_in: timedelta | None = None
    #: Why waiting will not fix it ("" when it may still heal): a certain failure is acted on now.
    certain: str = ""


@dataclass(frozen=True, slots=True)
class RevisionRef:
    """A revision by name and number (number None when the ControllerRevision was not found)."""

    name: str
    number: int | None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The diagnosis of one StatefulSet: the verdict and the sentence explaining it, revisions,
    findings and what data was missing."""

    namespace: str
    name: str
    verdict: Verdict
    message: str
    current_revision: RevisionRef
    update_revision: RevisionRef
    findings: tuple[Finding, ...]
    missing: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    def finding(self, code: str) -> Finding | None:
        """The first finding with `code`, or None."""
        return next((f for f in self.findings if f.code == code), None)


# --- step constructors: the command lines are the CLI's (keep in step with stsfix --help) ----------


def _target(sts: StatefulSetState) -> str:
    return f"-n {sts.namespace} {sts.name}"


def revert_template(sts: StatefulSetState, number: int, *, deletes: tuple[str, ...] = ()) -> RepairStep:
    """params: toRevision. `stsfix rollback` reverts, waits until the controller observes the
    revert, then deletes the stuck pods itself: `deletes` (highest ordinal first) are its effects."""
    return RepairStep(
        RepairAction.REVERT_TEMPLATE,
        {"toRevision": number},
        f"stsfix rollback {_target(sts)} --to-revision {number}",
        tuple(RepairStep(RepairAction.DELETE_POD, {"pod": pod}, "") for pod in deletes),
    )


def delete_pod(sts: StatefulSetState, pod: str, ordinal: int, *, wait: bool = True) -> RepairStep:
    """params: pod. `wait=False` adds --no-wait: the replacement cannot come yet (OrderedReady
    recreates it only once every lower ordinal is Ready), so waiting for it would fail."""
    command = f"stsfix delete-pod {_target(sts)} {ordinal}" + ("" if wait else " --no-wait")
    return RepairStep(RepairAction.DELETE_POD, {"pod": pod}, command)


def evict_pod(sts: StatefulSetState, pod: str, ordinal: int) -> RepairStep:
    """params: pod."""
    return RepairStep(
        RepairAction.EVICT_POD, {"pod": pod}, f"stsfix delete-pod {_target(sts)} {ordinal} --evict"
    )


def verify_node_gone(node: str) -> RepairStep:
    """params: node."""
    return RepairStep(RepairAction.VERIFY_NODE_GONE, {"node": node}, f"kubectl get node {node}")


def force_delete_pod(sts: StatefulSetState, pod: str, ordinal: int, node: str) -> RepairStep:
    """params: pod, node."""
    return RepairStep(
        RepairAction.FORCE_DELETE_POD,
        {"pod": pod, "node": node},
        f"stsfix force-delete {_target(sts)} {ordinal}",
    )


def scale(sts: StatefulSetState, replicas: int, summary: str) -> RepairOption:
    """params: replicas. kubectl's command: stsfix has no scale command of its own."""
    return RepairOption(
        RepairAction.SCALE,
        summary,
        {"replicas": replicas},
        f"kubectl scale statefulset {sts.name} -n {sts.namespace} --replicas={replicas}",
    )


def set_partition(sts: StatefulSetState, value: int) -> RepairStep:
    """params: value."""
    return RepairStep(
        RepairAction.SET_PARTITION, {"value": value}, f"stsfix partition {_target(sts)} --set {value}"
    )


def replace_outdated_pods(sts: StatefulSetState, count: int = 0) -> RepairStep:
    """params: count (0: every pod off the update revision). OnDelete only: one at a time, highest first."""
    flags = f" --count {count}" if count else ""
    return RepairStep(
        RepairAction.REPLACE_OUTDATED_PODS,
        {"count": count},
        f"stsfix delete-pod {_target(sts)} --outdated{flags}",
    )
