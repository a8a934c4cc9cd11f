"""Findings group by code and cause (one finding, every pod listed, evidence of the first few), and
the capacity-stuck set: Pending pods the scheduler cannot place while their revision is fine."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from stsfix.analysis.diagnose import diagnose
from stsfix.analysis.findings import Diagnosis, Finding, Severity
from stsfix.analysis.grouping import FIRST_FEW, name_list
from stsfix.analysis.progress import RolloutState
from stsfix.analysis.serialize import diagnosis_to_dict
from stsfix.cli.diagnose import diagnosis_text
from tests.unit.builders import (
    GOOD,
    MIN,
    T0,
    make_event,
    make_node,
    make_pod,
    make_revision,
    make_snapshot,
    revision_name,
)

TOO_MANY = "0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
NO_CPU = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."


def run(snapshot: Any) -> Diagnosis:
    return diagnose(snapshot, now=T0)


def _requesting(cpu: str) -> dict[str, Any]:
    template = copy.deepcopy(GOOD)
    template["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": "64Mi"}}
    return template


def _full_parallel(replicas: int, placed: int, message: str = TOO_MANY, **kwargs: Any) -> Any:
    """Parallel, every pod on revision 1; the first `placed` Ready, the rest Pending for 54 minutes."""
    pods = [
        make_pod(o)
        if o < placed
        else make_pod(o, state="unschedulable", created=-54 * MIN, scheduler_message=message)
        for o in range(replicas)
    ]
    return make_snapshot(pods, replicas=replicas, policy="Parallel", **kwargs)


def _one(diagnosis: Diagnosis, code: str) -> Finding:
    found = [x for x in diagnosis.findings if x.code == code]
    assert len(found) == 1, diagnosis.codes
    return found[0]


def test_a_thousand_pod_set_out_of_room_is_stuck_with_one_small_finding() -> None:
    diagnosis = run(_full_parallel(1000, 330))
    assert diagnosis.verdict is RolloutState.STUCK
    assert diagnosis.codes == ("unschedulable",)
    finding = diagnosis.findings[0]
    assert finding.severity is Severity.CRITICAL and finding.cause == "unschedulable"
    assert len(finding.pods) == 670 and finding.pods[:2] == ("web-330", "web-331")
    assert finding.message.startswith("670 of 1000 pods (web-330, web-331, web-332 and 667 more)")
    assert "the scheduler says: 0/3 nodes are available: 3 Too many pods (670 pods)." in finding.message
    assert finding.evidence[0] == "scheduler (670 pods): 0/3 nodes are available: 3 Too many pods"
    assert (
        sum(line.startswith("web-") for line in finding.evidence) == 2 * FIRST_FEW
    )  # head + PodScheduled each
    assert (
        "... and 667 more pods with the same evidence: web-333, web-334, web-335 and 664 more"
        in finding.evidence
    )
    assert finding.repair is not None and finding.repair.steps == ()
    options = [(o.action.value, dict(o.params), o.command) for o in finding.repair.options]
    assert options == [
        (
            "add-capacity",
            {"pods": 670, "short": "pods"},
            "",
        ),  # Too many pods: a smaller request would not help
        ("scale", {"replicas": 330}, "kubectl scale statefulset web -n default --replicas=330"),
    ]
    assert len(json.dumps(diagnosis_to_dict(diagnosis))) < 25_000


def test_the_text_names_the_first_few_pods_and_the_count_and_lists_the_options() -> None:
    text = diagnosis_text(run(_full_parallel(1000, 330)))
    assert "critical: unschedulable [web-330, web-331, web-332, ... (670 pods)]:" in text
    assert "    options:\n      - add-capacity: " in text
    assert "        kubectl scale statefulset web -n default --replicas=330" in text
    assert len(text.splitlines()) < 40  # wrapped at 80 columns; 670 findings were thousands of lines


def test_a_shortage_of_a_requested_resource_offers_a_lower_request() -> None:
    finding = _one(run(_full_parallel(8, 6, NO_CPU, template=_requesting("1500m"))), "unschedulable")
    assert finding.repair is not None
    options = {o.action.value: o for o in finding.repair.options}
    assert list(options) == ["add-capacity", "lower-request", "scale"]
    assert options["lower-request"].params == {"container": "web", "resource": "cpu", "request": "1500m"}
    assert "one at a time" in options["lower-request"].summary
    assert "whenScaled: Retain" in options["scale"].summary


def test_scale_down_warns_when_the_claims_of_removed_ordinals_are_deleted() -> None:
    snapshot = _full_parallel(8, 6, NO_CPU)
    snapshot = replace(snapshot, statefulset=replace(snapshot.statefulset, when_scaled="Delete"))
    finding = _one(run(snapshot), "unschedulable")
    assert finding.repair is not None
    scale = next(o for o in finding.repair.options if o.action.value == "scale")
    assert "whenScaled is Delete" in scale.summary and "deleted with their data" in scale.summary


def test_ordered_ready_stops_at_the_first_pod_that_does_not_fit() -> None:
    pods = [make_pod(o) for o in range(6)] + [
        make_pod(6, state="unschedulable", created=-20 * MIN, scheduler_message=NO_CPU)
    ]
    diagnosis = run(make_snapshot(pods, replicas=8, template=_requesting("1500m")))
    assert diagnosis.verdict is RolloutState.STUCK and diagnosis.codes == ("unschedulable",)
    finding = diagnosis.findings[0]
    assert finding.pods == ("web-6",)
    assert finding.message.startswith("web-6 on revision ")
    assert finding.message.endswith("OrderedReady creates web-7 only once web-6 is Ready.")
    assert finding.repair is not None
    options = {o.action.value: o for o in finding.repair.options}
    assert options["add-capacity"].params["pods"] == 2  # web-6 and web-7, not created yet
    assert "OrderedReady keeps waiting on web-6" in options["lower-request"].summary
    assert options["scale"].params == {"replicas": 6}


def test_ordered_ready_pending_pod_of_an_older_template_is_deleted_after_the_request_was_lowered() -> None:
    fitting = _requesting("500m")
    revisions = [make_revision(_requesting("1500m"), 1), make_revision(fitting, 2, created=-2 * MIN)]
    old = revision_name(_requesting("1500m"))
    pods = [make_pod(o, old) for o in range(6)] + [
        make_pod(6, old, state="unschedulable", created=-20 * MIN, scheduler_message=NO_CPU)
    ]
    snapshot = make_snapshot(pods, replicas=8, template=fitting, revisions=revisions,
                             current_revision=old, update_revision=revision_name(fitting))  # fmt: skip
    finding = _one(run(snapshot), "unschedulable")
    assert finding.repair is not None and finding.repair.options == ()
    assert [(s.action.value, s.params) for s in finding.repair.steps] == [("delete-pod", {"pod": "web-6"})]
    assert "kubernetes/kubernetes#67250" in finding.message


def test_a_pod_the_scheduler_cannot_place_for_other_reasons_gets_no_capacity_options() -> None:
    message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    finding = _one(run(_full_parallel(4, 3, message)), "unschedulable")
    assert finding.severity is Severity.CRITICAL
    assert finding.repair is not None and finding.repair.options == () and finding.repair.steps == ()
    assert "node selectors" in finding.repair.summary
    assert finding.message.endswith("The set cannot reach its replicas until it is placed.")


def test_different_scheduler_messages_are_counted_in_one_finding() -> None:
    pods = [make_pod(0)] + [
        make_pod(o, state="unschedulable", created=-20 * MIN, scheduler_message=TOO_MANY if o < 4 else NO_CPU)
        for o in range(1, 6)
    ]
    finding = _one(run(make_snapshot(pods, replicas=6, policy="Parallel")), "unschedulable")
    assert finding.evidence[:2] == (
        "scheduler (3 pods): 0/3 nodes are available: 3 Too many pods",
        "scheduler (2 pods): 0/3 nodes are available: 3 Insufficient cpu",
    )
    assert "1 more scheduler message(s) in the evidence" in finding.message
    assert finding.repair is not None
    assert dict(finding.repair.options[0].params) == {"pods": 5, "short": "pods,cpu"}


@pytest.mark.parametrize(
    ("names", "text"),
    [
        pytest.param(["web-1"], "web-1", id="one"),
        pytest.param(["web-1", "web-2", "web-3"], "web-1, web-2, web-3", id="the few"),
        pytest.param(["web-1", "web-2", "web-3", "web-4"], "web-1, web-2, web-3 and 1 more", id="more"),
    ],
)
def test_name_list(names: list[str], text: str) -> None:
    assert name_list(names) == text


def test_crash_looping_pods_of_one_cause_share_one_finding() -> None:
    pods = [
        make_pod(0),
        make_pod(1, state="crashloop"),
        make_pod(2, state="crashloop"),
        make_pod(3, state="readiness", created=-10 * MIN),
    ]
    diagnosis = run(make_snapshot(pods, replicas=4, policy="Parallel"))
    findings = [x for x in diagnosis.findings if x.code == "pod-not-ready"]
    assert [(x.cause, x.pods) for x in findings] == [
        ("crash-loop", ("web-1", "web-2")),
        ("readiness-failing", ("web-3",)),
    ]
    assert findings[0].message.startswith("2 pods (web-1, web-2) are not Ready: web-1 is CrashLoopBackOff")


def test_pods_terminating_on_a_lost_node_share_one_finding_with_one_node_check() -> None:
    pods = [
        make_pod(0),
        make_pod(1, deleted=-10 * MIN, node="node-2"),
        make_pod(2, deleted=-10 * MIN, node="node-2"),
    ]
    snapshot = make_snapshot(
        pods, nodes=[make_node("node-1"), make_node("node-2", "Unknown")], policy="Parallel"
    )
    finding = _one(run(snapshot), "pod-stuck-terminating")
    assert finding.pods == ("web-1", "web-2") and finding.cause == "node-lost"
    assert finding.repair is not None
    assert [(s.action.value, s.params) for s in finding.repair.steps] == [
        ("verify-node-gone", {"node": "node-2"}),
        ("force-delete-pod", {"pod": "web-1", "node": "node-2"}),
        ("force-delete-pod", {"pod": "web-2", "node": "node-2"}),
    ]
    assert "node node-2 is Ready=Unknown" in finding.message and "(web-1, web-2)" in finding.message


def test_guard_metrics_count_one_finding_per_code() -> None:
    """The guard exports one stsfix_statefulset_finding series per (code, severity, playbook): a grouped
    finding keeps the label set unique however many pods it covers."""
    diagnosis = run(_full_parallel(40, 30))
    labels = [(x.code, x.severity, x.playbook) for x in diagnosis.findings]
    assert len(labels) == len(set(labels))


def test_events_of_the_quoted_pods_only() -> None:
    events = [make_event("Pod", f"web-{o}", "FailedScheduling", TOO_MANY, count=3) for o in range(1, 40)]
    finding = _one(run(_full_parallel(40, 1, events=events)), "unschedulable")
    assert sum(line.startswith("event Pod/") for line in finding.evidence) == FIRST_FEW


@pytest.mark.parametrize(
    ("message", "reason", "short"),
    [
        pytest.param(NO_CPU, "0/3 nodes are available: 3 Insufficient cpu", ("cpu",), id="simulator"),
        pytest.param(
            "0/3 nodes are available: 3 Insufficient cpu. no new claims to deallocate, preemption: 0/3 nodes are "
            "available: 3 No preemption victims found for incoming pod.",
            "0/3 nodes are available: 3 Insufficient cpu",
            ("cpu",),
            id="kube-scheduler v1.34.4 (post-filter note)",
        ),
        pytest.param(
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
            "2 Insufficient memory, 2 Too many pods.",
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
            "2 Insufficient memory, 2 Too many pods",
            ("memory", "pods"),
            id="a lost node and full ones",
        ),
        pytest.param(
            'persistentvolumeclaim "data-web-1" not found',
            'persistentvolumeclaim "data-web-1" not found',
            (),
            id="not the available-nodes form",
        ),
    ],
)
def test_scheduler_reasons_and_shortages(message: str, reason: str, short: tuple[str, ...]) -> None:
    from stsfix.analysis.findings_capacity import scheduler_reason, shortages

    pod = make_pod(1, state="unschedulable", scheduler_message=message)
    assert scheduler_reason(pod) == reason
    assert shortages(reason) == short


def test_the_claim_retention_policy_is_read_with_retain_as_the_default() -> None:
    from stsfix.model import parse_statefulset
    from tests.unit.builders import raw_statefulset

    raw = raw_statefulset()
    assert (parse_statefulset(raw).when_scaled, parse_statefulset(raw).when_deleted) == ("Retain", "Retain")
    raw["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenScaled": "Delete", "whenDeleted": "Retain"}
    assert parse_statefulset(raw).when_scaled == "Delete"
