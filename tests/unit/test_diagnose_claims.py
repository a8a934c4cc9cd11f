"""A Pending pod whose claim is gone: the repair depends on whether the server's controller recreates
missing claims of Pending pods (v1.27+, kubernetes/kubernetes#113270) and whether its sync reaches
the pod."""

from __future__ import annotations

from stsfix.analysis.diagnose import diagnose
from stsfix.analysis.findings import Finding, Severity
from stsfix.analysis.versions import parse_version, recreates_missing_claims
from tests.unit.builders import MIN, T0, make_pod, make_pvc, make_snapshot

NOT_FOUND = '0/3 nodes are available: persistentvolumeclaim "data-web-2" not found. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.'


def _missing(server_version: str, *, web1: str = "ready", claim_deleting: bool = False) -> Finding:
    pods = [
        make_pod(0),
        make_pod(1, state=web1, created=-20 * MIN),
        make_pod(2, state="unschedulable", created=-20 * MIN, scheduler_message=NOT_FOUND),
    ]
    pvcs = [make_pvc("data-web-0"), make_pvc("data-web-1")]
    if claim_deleting:
        pvcs.append(make_pvc("data-web-2", deleted=-5 * MIN))
    diagnosis = diagnose(make_snapshot(pods, pvcs=pvcs, server_version=server_version), now=T0)
    finding = diagnosis.finding("pvc-missing")
    assert finding is not None, diagnosis.codes
    return finding


def _steps(finding: Finding) -> list[tuple[str, dict]]:
    assert finding.repair is not None
    return [(s.action.value, dict(s.params)) for s in finding.repair.steps]


def test_before_1_27_the_pending_pod_is_deleted_so_the_controller_recreates_it_and_an_empty_claim() -> None:
    finding = _missing("v1.26.15")
    assert finding.severity is Severity.CRITICAL
    assert _steps(finding) == [("delete-pod", {"pod": "web-2"})]
    assert "On v1.26.15 the controller creates claims only when it creates a pod" in finding.message
    assert "kubernetes/kubernetes#113270" in finding.message
    assert finding.repair is not None and "new, empty claims data-web-2" in finding.repair.summary
    assert "the data of the deleted claim is not in them" in finding.repair.summary
    assert finding.repair.steps[0].command == "stsfix delete-pod -n default web 2"


def test_from_1_27_the_controller_should_recreate_it_and_the_delete_is_the_way_to_make_it_act() -> None:
    finding = _missing("v1.34.2")
    assert _steps(finding) == [("delete-pod", {"pod": "web-2"})]
    assert "Since v1.27 the controller recreates a missing claim of a Pending pod" in finding.message
    assert "syncs a set only when the set or one of its pods changes" in finding.message


def test_from_1_27_an_ordered_ready_sync_stopped_below_the_pod_recreates_the_claim_later() -> None:
    finding = _missing("v1.34.2", web1="crashloop")
    assert finding.severity is Severity.WARNING and _steps(finding) == []
    assert "once its sync gets past web-1" in finding.message
    assert finding.repair is not None and finding.repair.summary.startswith("Make web-1 Ready")


def test_before_1_27_the_lower_pod_does_not_matter() -> None:
    assert _steps(_missing("v1.26.15", web1="crashloop")) == [("delete-pod", {"pod": "web-2"})]


def test_a_claim_being_deleted_is_held_until_the_pod_goes_on_every_version() -> None:
    for version in ("v1.26.15", "v1.34.2"):
        finding = _missing(version, claim_deleting=True)
        assert "is being deleted" in finding.message and "pvc-protection" in finding.message
        assert _steps(finding) == [("delete-pod", {"pod": "web-2"})]


def test_missing_claims_of_pending_pods_are_recreated_from_1_27() -> None:
    assert [recreates_missing_claims(parse_version(v)) for v in ("1.26.15", "1.27.0", "v1.34.4")] == [
        False,
        True,
        True,
    ]
    assert recreates_missing_claims(None) is True
