"""The plan the guard runs for a playbook: the CLI's own plan builders, nothing of its own.

`forced-rollback` is `stsfix rollback` (`plan_rollback`: revert to currentRevision, wait until
observed, delete only the stuck pods, highest ordinal first); `stuck-terminating` is
`stsfix force-delete` of the finding's first pod (`plan_force_delete`, which refuses unless the
node is gone or NotReady beyond `node_lost_after`). A refusal is the planner's `RefusedError`,
exactly as the CLI would report it. Pure: stdlib, `stsfix.model`, `stsfix.planner` and
`stsfix.analysis` only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from stsfix.analysis import findings as f
from stsfix.analysis.diagnose import DEFAULT_STUCK_AFTER
from stsfix.analysis.findings import Finding
from stsfix.errors import RefusedError
from stsfix.model import Snapshot
from stsfix.planner import Plan, plan_force_delete, plan_rollback


def plan_for(
    playbook: str,
    finding: Finding,
    snapshot: Snapshot,
    *,
    now: datetime,
    node_lost_after: timedelta,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
) -> Plan:
    """The CLI's plan for `playbook` against this snapshot; RefusedError when it would refuse.

    `stuck_after` is the policy's: rollback re-checks that diagnose blames the template, and must
    judge as the guard did."""
    if playbook == f.PLAYBOOK_FORCED_ROLLBACK:
        return plan_rollback(snapshot, now=now, stuck_after=stuck_after)
    if playbook == f.PLAYBOOK_STUCK_TERMINATING:
        pods = [p for p in snapshot.pods if p.name in finding.pods and p.ordinal is not None]
        if not pods:
            raise RefusedError(f"{finding.code}: none of {', '.join(finding.pods)} is still there")
        return plan_force_delete(snapshot, int(pods[0].ordinal or 0), now=now, node_lost_after=node_lost_after)
    raise RefusedError(f"playbook {playbook} has no unattended repair", code="no_auto_repair")


def describe_plan(plan: Plan) -> str:
    """One line for an Event: the steps, numbered."""
    steps = "; ".join(f"{i}. {s.describe()}" for i, s in enumerate(plan.steps, 1))
    return f"{plan.request.command} ({plan.fingerprint[:19]}): {steps or 'nothing to do'}"
