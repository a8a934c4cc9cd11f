"""The guard's pure policy: the opt-in annotation, managed-by, grace, the hourly and cluster-wide
limits, dry run; the plans it runs are the CLI's; which sets the per-set metrics export."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from stsfix.analysis.diagnose import diagnose
from stsfix.errors import RefusedError
from stsfix.guard.policy import (
    AUTO_REPAIR_ANNOTATION,
    HISTORY_ANNOTATION,
    Action,
    GuardPolicy,
    decide,
    parse_history,
    parse_opt_in,
    record_history,
    stuck_since,
)
from stsfix.guard.repairs import plan_for
from stsfix.guard.state import SetStatus, Statuses, summarize
from stsfix.model import Snapshot, format_time
from stsfix.planner import plan_rollback
from tests.unit.builders import BAD, MIN, REV_B, SEC, T0, ab_revisions, make_node, make_pod, make_snapshot

STUCK_AFTER = 5 * MIN
POLICY = GuardPolicy(stuck_after=STUCK_AFTER, max_per_hour=1, max_concurrent=1)


def trapped(*, annotations: dict[str, str] | None = None, created: timedelta = -20 * MIN, **kwargs: Any) -> Snapshot:
    """web-0..3 Ready at A, web-4 crash-looping at B (the bad template), since `created`."""
    pods = [make_pod(o) for o in range(4)] + [make_pod(4, REV_B, state="crashloop", created=created)]
    snapshot = make_snapshot(pods, replicas=5, template=BAD, update_revision=REV_B, revisions=ab_revisions(), **kwargs)
    return annotate(snapshot, annotations or {})


def annotate(snapshot: Snapshot, annotations: dict[str, str]) -> Snapshot:
    sts = snapshot.statefulset
    meta = replace(sts.meta, annotations={**sts.meta.annotations, **annotations})
    return replace(snapshot, statefulset=replace(sts, meta=meta))


def opted(value: str = "forced-rollback", **extra: str) -> dict[str, str]:
    return {AUTO_REPAIR_ANNOTATION: value, **extra}


def history(*ago: timedelta) -> dict[str, str]:
    return {HISTORY_ANNOTATION: json.dumps([format_time(T0 - a) for a in ago])}


def verdict(snapshot: Snapshot, policy: GuardPolicy = POLICY, *, running: int = 0, **kwargs: Any):
    found = diagnose(snapshot, now=T0, stuck_after=policy.stuck_after)
    return decide(found, snapshot, now=T0, policy=policy, running=running, **kwargs)


# -- the annotation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "codes", "allow_managed", "invalid"),
    [
        pytest.param("forced-rollback", {"forced-rollback-needed", "bad-update-revision", "maxunavailable-regression"},
                     False, (), id="a playbook allows every code it answers"),
        pytest.param("pod-stuck-terminating", {"pod-stuck-terminating"}, False, (), id="a finding code allows itself"),
        pytest.param(" Forced-Rollback , stuck-terminating ", {"forced-rollback-needed", "bad-update-revision",
                     "maxunavailable-regression", "pod-stuck-terminating"}, False, (), id="two playbooks, spaces and case"),
        pytest.param("stuck-terminating,allow-managed", {"pod-stuck-terminating"}, True, (), id="allow-managed"),
        pytest.param("off", set(), False, (), id="off allows nothing"),
        pytest.param("", set(), False, (), id="empty allows nothing"),
        pytest.param("forced-rollback,delete-everything,pvc-pending", {"forced-rollback-needed", "bad-update-revision",
                     "maxunavailable-regression"}, False, ("delete-everything", "pvc-pending"),
                     id="unknown tokens and playbooks without an unattended repair are reported"),
    ],
)  # fmt: skip
def test_parse_opt_in(value: str, codes: set[str], allow_managed: bool, invalid: tuple[str, ...]) -> None:
    opt_in = parse_opt_in({AUTO_REPAIR_ANNOTATION: value})
    assert (set(opt_in.codes), opt_in.allow_managed, opt_in.invalid) == (codes, allow_managed, invalid)


def test_no_annotation_allows_nothing() -> None:
    assert parse_opt_in({}).codes == frozenset()


# -- decide -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("snapshot", "action", "reason"),
    [
        pytest.param(make_snapshot(), Action.NONE, "not_stuck",
                     id="a healthy set is left alone"),
        pytest.param(trapped(), Action.REPORT, "not_opted_in", id="a stuck set without the annotation is only reported"),
        pytest.param(trapped(annotations=opted("stuck-terminating")), Action.REPORT, "finding_not_allowed",
                     id="the annotation allows another playbook"),
        pytest.param(trapped(annotations=opted(), managers=["helm"]), Action.REPORT, "managed",
                     id="a set managed by helm is only reported"),
        pytest.param(trapped(annotations=opted("forced-rollback,allow-managed"), managers=["argocd-controller"]),
                     Action.REPAIR, "due", id="allow-managed lets the guard act on a managed set"),
        pytest.param(trapped(annotations=opted(), created=-2 * MIN), Action.WAIT, "grace",
                     id="stuck for 2m of a 5m grace: wait"),
        pytest.param(trapped(annotations=opted()), Action.REPAIR, "due", id="stuck for 20m, opted in: repair"),
        pytest.param(trapped(annotations=opted(**history(30 * MIN))), Action.HOLD, "rate_limited",
                     id="repaired 30m ago with a limit of 1 per hour: held"),
        pytest.param(trapped(annotations=opted(**history(61 * MIN))), Action.REPAIR, "due",
                     id="repaired 61m ago: due again"),
    ],
)  # fmt: skip
def test_decide(snapshot: Snapshot, action: Action, reason: str) -> None:
    decision = verdict(snapshot)
    assert (decision.action, decision.reason) == (action, reason), decision.message


def test_grace_is_judged_from_the_pods_own_timestamps_and_says_when() -> None:
    decision = verdict(trapped(annotations=opted(), created=-2 * MIN))
    since = stuck_since(trapped(created=-2 * MIN), decision.finding)  # type: ignore[arg-type]
    # web-4 went not-Ready 10s after it was created, 2m ago: due 5m after that.
    assert since == T0 - 2 * MIN + 10 * SEC and decision.retry_at == since + STUCK_AFTER


def test_the_hourly_limit_names_when_the_next_attempt_may_run() -> None:
    decision = verdict(trapped(annotations=opted(**history(50 * MIN, 30 * MIN))),
                       replace(POLICY, max_per_hour=2))  # fmt: skip
    assert decision.action is Action.HOLD and decision.retry_at == T0 + 10 * MIN


def test_the_cluster_wide_limit_holds_a_due_repair() -> None:
    decision = verdict(trapped(annotations=opted()), replace(POLICY, max_concurrent=2), running=2)
    assert (decision.action, decision.reason) == (Action.HOLD, "concurrency")
    assert verdict(trapped(annotations=opted()), replace(POLICY, max_concurrent=2), running=1).action is Action.REPAIR


def test_a_repair_under_way_is_not_started_twice() -> None:
    assert verdict(trapped(annotations=opted()), in_progress=True).reason == "in_progress"


def test_dry_run_would_repair_and_ignores_the_history() -> None:
    decision = verdict(trapped(annotations=opted(**history(10 * MIN))), replace(POLICY, dry_run=True))
    assert (decision.action, decision.playbook) == (Action.WOULD_REPAIR, "forced-rollback")


def test_history_keeps_the_last_hour_only_and_at_most_the_limit() -> None:
    before = (T0 - 90 * MIN, T0 - 40 * MIN, T0 - 20 * MIN)
    value = record_history(before, now=T0, keep=2)
    assert parse_history({HISTORY_ANNOTATION: value}) == (T0 - 20 * MIN, T0)
    assert parse_history({HISTORY_ANNOTATION: "not json"}) == ()


# -- the plans are the CLI's ------------------------------------------------------------------
def test_forced_rollback_runs_exactly_the_plan_of_stsfix_rollback() -> None:
    snapshot = trapped(annotations=opted())
    decision = verdict(snapshot)
    plan = plan_for("forced-rollback", decision.finding, snapshot, now=T0, node_lost_after=5 * MIN)  # type: ignore[arg-type]
    assert plan.to_dict() == plan_rollback(snapshot, now=T0).to_dict()


def lost_node_snapshot(node_down: timedelta) -> Snapshot:
    pods = [make_pod(0), make_pod(1, state="ready", deleted=-10 * MIN, node="node-2"), make_pod(2)]
    nodes = [make_node("node-1"), make_node("node-2", "Unknown", since=-node_down)]
    return annotate(make_snapshot(pods, nodes=nodes), opted("stuck-terminating"))


def test_stuck_terminating_force_deletes_only_with_evidence_the_node_is_lost() -> None:
    snapshot = lost_node_snapshot(20 * MIN)
    decision = verdict(snapshot)
    assert (decision.action, decision.playbook) == (Action.REPAIR, "stuck-terminating"), decision.message
    plan = plan_for("stuck-terminating", decision.finding, snapshot, now=T0, node_lost_after=5 * MIN)  # type: ignore[arg-type]
    assert [s.kind for s in plan.steps] == ["ForceDeletePod", "AwaitReady"]
    with pytest.raises(RefusedError, match="node-2 has been Ready=Unknown for only"):
        plan_for("stuck-terminating", decision.finding, snapshot, now=T0, node_lost_after=60 * MIN)  # type: ignore[arg-type]


# -- what the per-set metrics export -----------------------------------------------------------
def status(name: str, verdict_: str) -> SetStatus:
    return SetStatus("default", name, verdict_, (), None, None, (), "none", "not_stuck", "")


def test_per_set_metrics_export_the_most_urgent_sets_first_and_count_the_rest() -> None:
    statuses = Statuses(limit=2)
    for name, v in [("a", "complete"), ("b", "stuck"), ("c", "progressing"), ("d", "complete")]:
        statuses.put(status(name, v))
    exported, left_out = statuses.select()
    assert [s.name for s in exported] == ["b", "c"] and left_out == 2
    assert statuses.counts()["complete"] == 2 and statuses.counts()["stuck"] == 1


def test_summary_of_a_stuck_set_has_codes_seconds_and_the_opt_in() -> None:
    snapshot = trapped(annotations=opted())
    found = diagnose(snapshot, now=T0, stuck_after=STUCK_AFTER)
    summary = summarize(found, verdict(snapshot), snapshot, now=T0, blocking_ordinal=4)
    assert summary.verdict == "stuck" and summary.blocking_ordinal == 4
    assert [(x.code, x.severity, x.playbook) for x in summary.findings] == [
        ("forced-rollback-needed", "critical", "forced-rollback")
    ]
    assert summary.stuck_seconds is not None and 19 * 60 <= summary.stuck_seconds <= 20 * 60
    assert summary.auto_repair == ("forced-rollback",) and (summary.action, summary.reason) == ("repair", "due")
