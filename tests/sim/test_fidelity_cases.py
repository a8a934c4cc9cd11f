"""Scenario cases C1..C37 of statefulset-semantics.md §12 against the simulated controller.

Controller-level cases use `Harness` (one sync at a time, pod phases moved by hand, like the
upstream unit tests); the docs/issue-derived cases (C34-C37) run the whole simulated cluster in
stepped virtual time. C18, C19 and C21 live in test_revisions.py; C38 and C39 (kubectl) in
test_kubectl_fidelity.py.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from stsfix.sim.cluster import SimCluster
from stsfix.sim.controllers.statefulset_pods import claim_owners_up_to_date, desired_claim_owners
from stsfix.sim.controllers.statefulset_update import scaled_max_unavailable
from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.scenarios import load_scenario, rollout_undo
from stsfix.sim.store.objects import POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL, is_pod_ready
from tests.sim.controller_harness import Harness, new_statefulset


def _image(h: Harness, name: str) -> str:
    return h.pods()[name]["spec"]["containers"][0]["image"]


# -- creation and scaling ----------------------------------------------------------------------------
def test_c1_orderedready_creates_one_pod_at_a_time_in_order() -> None:
    h = Harness(new_statefulset(3))
    for ordinal in range(3):
        h.sync()
        assert h.creates == [f"foo-{i}" for i in range(ordinal + 1)]
        h.sync()  # still Pending: nothing new
        h.set_phase(f"foo-{ordinal}", "Running", ready=False)
        h.sync()
        assert len(h.creates) == ordinal + 1
        h.make_ready(f"foo-{ordinal}")
    h.sync()
    pod = h.pods()["foo-1"]
    assert pod["metadata"]["labels"][POD_NAME_LABEL] == "foo-1"
    assert pod["metadata"]["labels"][POD_INDEX_LABEL] == "1"
    assert pod["metadata"]["labels"][REVISION_LABEL] == h.status["updateRevision"]
    assert pod["spec"]["hostname"] == "foo-1" and pod["spec"]["subdomain"] == "governingsvc"
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "datadir")
    # readOnly: false is an omitempty zero: the server does not store it (as a real pod shows).
    assert claim["persistentVolumeClaim"] == {"claimName": "datadir-foo-1"}
    assert (h.status["replicas"], h.status["readyReplicas"], h.status["updatedReplicas"]) == (3, 3, 3)


def test_c2_parallel_creates_all_pods_in_the_first_sync() -> None:
    h = Harness(new_statefulset(3, podManagementPolicy="Parallel"))
    h.sync()
    assert h.creates == ["foo-0", "foo-1", "foo-2"]
    h.converge()
    assert (h.status["replicas"], h.status["readyReplicas"], h.status["updatedReplicas"]) == (3, 3, 3)


def test_c3_scale_up_creates_the_next_ordinal_from_the_update_revision() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    h.update_spec(lambda spec: spec.__setitem__("replicas", 4))
    h.sync()
    assert h.creates[-1] == "foo-3" and h.revision("foo-3") == h.status["updateRevision"]
    h.make_ready("foo-3")
    h.sync()
    assert (h.status["replicas"], h.status["readyReplicas"], h.status["updatedReplicas"]) == (4, 4, 4)


def test_c4_orderedready_scale_down_waits_for_full_removal() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    h.update_spec(lambda spec: spec.__setitem__("replicas", 0))
    for expected in ("foo-2", "foo-1", "foo-0"):
        h.sync()
        assert h.deletes[-1] == expected
        h.sync()  # terminating, not yet gone: no further delete
        assert h.deletes.count(expected) == 1 and len(h.deletes) == 3 - int(expected[-1])
        h.finish_deletions()
    h.sync()
    assert (h.status["replicas"], h.status.get("readyReplicas", 0), h.status.get("updatedReplicas", 0)) == (
        0,
        0,
        0,
    )


def test_c5_start_ordinal_shifts_pod_names() -> None:
    h = Harness(new_statefulset(3, ordinals={"start": 2}))
    h.converge()
    assert list(h.pods()) == ["foo-2", "foo-3", "foo-4"]
    assert h.pods()["foo-3"]["metadata"]["labels"][POD_INDEX_LABEL] == "3"
    assert (h.status["replicas"], h.status["readyReplicas"]) == (3, 3)


def test_c6_missing_pods_are_replaced_in_order() -> None:
    h = Harness(new_statefulset(5))
    h.converge()
    for name in ("foo-0", "foo-2", "foo-4"):
        h.remove(name)
    h.creates.clear()
    for expected in ("foo-0", "foo-2", "foo-4"):
        h.sync()
        h.sync()
        assert h.creates[-1] == expected and h.creates.count(expected) == 1
        h.make_ready(expected)
    h.sync()
    assert h.status["replicas"] == 5
    claim = h.store.get("persistentvolumeclaims", "default", "datadir-foo-0")
    assert not claim["metadata"].get("ownerReferences")


@pytest.mark.parametrize(("start", "end"), [(3, 30), (10, 1), (0, 1000)])
def test_c7_parallel_bulk_scaling_reaches_the_target_within_two_syncs(start: int, end: int) -> None:
    h = Harness(new_statefulset(start, podManagementPolicy="Parallel"))
    if start:
        h.converge()
    h.update_spec(lambda spec: spec.__setitem__("replicas", end))
    h.sync()
    h.finish_deletions()
    h.sync()
    h.finish_deletions()
    assert len(h.pods()) == end


def test_c8_terminating_pod_blocks_scale_up() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    h.update_spec(lambda spec: spec.__setitem__("replicas", 5))
    h.mark_terminating("foo-0")
    h.creates.clear()
    h.sync()
    assert h.creates == [] and len(h.pods()) == 3
    h.finish_deletions()
    h.sync()
    assert h.creates == ["foo-0"]
    h.make_ready("foo-0")
    h.sync()
    assert h.creates == ["foo-0", "foo-3"]


def test_c9_terminating_condemned_pods_are_waited_for() -> None:
    h = Harness(new_statefulset(5))
    h.converge()
    h.mark_terminating("foo-3")
    h.mark_terminating("foo-4")
    h.update_spec(lambda spec: spec.__setitem__("replicas", 3))
    h.creates.clear()
    h.sync()
    assert h.deletes == [] and h.creates == [] and len(h.pods()) == 5
    h.finish_deletions()
    h.update_spec(lambda spec: spec.__setitem__("replicas", 0))
    h.converge()
    assert h.pods() == {}


def test_c10_scale_down_is_blocked_by_min_ready_seconds() -> None:
    h = Harness(new_statefulset(3, minReadySeconds=30))
    h.converge()
    for name in list(h.pods()):
        h.make_ready(name, since=h.clock.now() - timedelta(seconds=10))
    h.update_spec(lambda spec: spec.__setitem__("replicas", 1))
    h.sync()
    assert h.deletes == [] and len(h.pods()) == 3 and h.status["availableReplicas"] == 0


# -- failure handling --------------------------------------------------------------------------------
@pytest.mark.parametrize(("policy", "total_creates"), [("OrderedReady", 2), ("Parallel", 4)])
@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_c11_c12_failed_or_succeeded_pod_is_deleted_then_recreated_later(
    policy: str, total_creates: int, phase: str
) -> None:
    h = Harness(new_statefulset(3, podManagementPolicy=policy))
    h.sync()
    h.set_phase("foo-0", phase)
    for name in list(h.pods())[1:]:
        h.set_phase(name, "Pending")
    h.sync()
    assert h.deletes == ["foo-0"] and "foo-0" not in h.pods()
    h.sync()
    assert h.pods()["foo-0"]["status"]["phase"] == "Pending"
    assert len(h.creates) == total_creates
    assert not h.events("RecreatingFailedPod") and not h.events("RecreatingTerminatedPod")


def test_c11_before_1_31_failed_pods_are_recreated_in_the_same_sync() -> None:
    h = Harness(new_statefulset(3), version="1.30.5")
    h.sync()
    h.set_phase("foo-0", "Failed")
    h.sync()
    assert h.deletes == ["foo-0"] and h.creates == ["foo-0", "foo-0"]
    assert h.events("RecreatingFailedPod")[0]["type"] == "Warning"


def test_c13_failed_delete_of_a_failed_pod_is_retried() -> None:
    h = Harness(new_statefulset(3))
    h.sync()
    h.set_phase("foo-0", "Failed")
    h.client.faults.fail("delete_pod")
    assert h.sync().error
    assert h.deletes == ["foo-0"] and "foo-0" in h.pods()
    assert h.events("FailedDelete")
    assert not h.sync().error
    assert "foo-0" not in h.pods()
    h.sync()
    assert h.pods()["foo-0"]["status"]["phase"] == "Pending"


def test_c14_create_failure_is_retried_until_converged() -> None:
    h = Harness(new_statefulset(3))
    h.client.faults.fail("create_pod", after=2)
    errors = []
    for _ in range(20):
        errors.append(h.sync().error)
        h.make_all_ready()
    assert any(errors) and h.events("FailedCreate")
    h.converge()
    assert (h.status["replicas"], h.status["readyReplicas"], h.status["updatedReplicas"]) == (3, 3, 3)


def test_c15_identity_repair_failure_is_an_error_then_repaired() -> None:
    h = Harness(new_statefulset(3))
    h.converge()

    def strip(pod: dict) -> None:
        del pod["metadata"]["labels"][POD_NAME_LABEL]

    h.store.mutate("pods", "default", "foo-0", strip)
    h.client.faults.fail("update_pod")
    failed = h.sync().error
    assert failed is not None and "injected fault" in failed
    assert h.events("FailedUpdate")
    assert not h.sync().error
    assert h.pods()["foo-0"]["metadata"]["labels"][POD_NAME_LABEL] == "foo-0"
    assert h.events("SuccessfulUpdate")


def test_c16_status_write_failure_converges_and_pod_errors_win() -> None:
    h = Harness(new_statefulset(3))
    h.client.faults.fail("update_status", after=2)
    h.converge()
    assert (h.status["replicas"], h.status["readyReplicas"], h.status["updatedReplicas"]) == (3, 3, 3)
    h2 = Harness(new_statefulset(3))
    h2.client.faults.fail("create_pod")
    h2.client.faults.fail("update_status")
    result = h2.sync()
    assert result.error is not None and "create_pod" in result.error
    assert h2.client.faults.calls["update_status"] == 1


@pytest.mark.parametrize(
    ("version", "recreated"),
    [
        pytest.param("1.34.0", True, id="1.34: RecreatesPVCForPendingPod"),
        pytest.param("1.27.0", True, id="1.27: since kubernetes/kubernetes#113270"),
        pytest.param("1.26.15", False, id="1.26: claims only with a new pod"),
    ],
)
def test_c17_pvc_of_a_pending_pod_is_recreated_from_1_27(version: str, recreated: bool) -> None:
    h = Harness(new_statefulset(3), version=version)
    h.sync()
    h.store.remove("persistentvolumeclaims", "default", "datadir-foo-0")
    h.sync()
    assert (h.store.get("persistentvolumeclaims", "default", "datadir-foo-0") is not None) is recreated


# -- revisions ---------------------------------------------------------------------------------------
def test_c20_upgrade_from_1_33_makes_no_writes_from_1_34_2() -> None:
    h = Harness(new_statefulset(3), version="1.33.5")
    h.converge()
    revisions = h.store.list("controllerrevisions", "default")[0]
    assert len(revisions) == 1
    assert revisions[0]["data"]["spec"]["template"]["metadata"]["creationTimestamp"] is None
    for version, writes_expected in (("1.35.0", False), ("1.34.2", False), ("1.34.0", True)):
        h.controller.version = KubeVersion.parse(version)
        before = h.store.resource_version
        h.sync()
        assert (h.store.resource_version != before) is writes_expected, version
        assert len(h.store.list("controllerrevisions", "default")[0]) == (2 if writes_expected else 1)


# -- rolling updates ---------------------------------------------------------------------------------
def _roll(h: Harness, *, max_syncs: int = 100) -> list[str]:
    """Drive syncs, finishing deletions and readying pods one step at a time; return delete order."""
    for _ in range(max_syncs):
        h.sync()
        h.finish_deletions()
        _assert_update_invariants(h)
        h.make_all_ready()
        status = h.status
        if status.get("currentRevision") == status.get("updateRevision") and status.get(
            "readyReplicas"
        ) == len(h.pods()):
            h.sync()
            return h.deletes
    return h.deletes


def _assert_update_invariants(h: Harness) -> None:
    status = h.status
    if status.get("currentRevision") == status.get("updateRevision"):
        return
    pods = list(h.pods().values())
    for pod in pods[: status.get("currentReplicas", 0)]:
        assert pod["metadata"]["labels"][REVISION_LABEL] == status["currentRevision"]


@pytest.mark.parametrize("policy", ["OrderedReady", "Parallel"])
def test_c22_rolling_update_goes_from_the_top_one_pod_at_a_time(policy: str) -> None:
    h = Harness(new_statefulset(3, podManagementPolicy=policy))
    h.converge()
    h.set_image("foo")
    assert _roll(h) == ["foo-2", "foo-1", "foo-0"]
    assert all(_image(h, name) == "foo" for name in h.pods())
    assert h.status["currentRevision"] == h.status["updateRevision"] and h.status["currentReplicas"] == 3


@pytest.mark.parametrize("replicas", [5, 1])
def test_c22_rolling_update_with_scaling_ends_at_the_new_image(replicas: int) -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    h.update_spec(
        lambda spec: (
            spec.__setitem__("replicas", replicas),
            spec["template"]["spec"]["containers"][0].__setitem__("image", "foo"),
        )
    )
    _roll(h)
    assert len(h.pods()) == replicas and all(_image(h, name) == "foo" for name in h.pods())


def test_c23_delete_failure_during_update_keeps_current_replicas() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    h.set_image("foo")
    h.client.faults.fail("delete_pod")
    assert h.sync().error
    assert h.status["currentReplicas"] == 3 and h.status["currentRevision"] != h.status["updateRevision"]
    assert not h.sync().error
    assert h.deletes == ["foo-2", "foo-2"] and h.status["currentReplicas"] == 2


@pytest.mark.parametrize("replicas", [3, 5])
def test_c24_partition_updates_only_ordinals_at_or_above_it(replicas: int) -> None:
    h = Harness(new_statefulset(3))
    h.converge()

    def change(spec: dict) -> None:
        spec["replicas"] = replicas
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        spec["template"]["spec"]["containers"][0]["image"] = "foo"

    h.update_spec(change)
    _roll(h, max_syncs=40)
    images = [_image(h, f"foo-{i}") for i in range(replicas)]
    assert images == ["nginx", "nginx"] + ["foo"] * (replicas - 2)
    assert h.status["currentRevision"] != h.status["updateRevision"]


def test_c25_rollback_by_template_revert_reuses_the_old_revision() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    first = h.status["updateRevision"]
    h.set_image("foo")
    _roll(h)
    h.set_image("nginx")
    _roll(h)
    revisions = {
        r["metadata"]["name"]: r["revision"] for r in h.store.list("controllerrevisions", "default")[0]
    }
    assert h.status["updateRevision"] == first and revisions[first] == 3 and len(revisions) == 2
    assert all(_image(h, name) == "nginx" for name in h.pods())


@pytest.mark.parametrize("partition", [None, 2])
def test_c26_min_ready_seconds_gates_the_update(partition: int | None) -> None:
    replicas = 2 if partition is None else 4
    h = Harness(new_statefulset(replicas, minReadySeconds=30))
    h.converge()
    for name in list(h.pods()):
        h.make_ready(name, since=h.clock.now() - timedelta(seconds=10))

    def change(spec: dict) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = "foo"
        if partition is not None:
            spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}

    h.update_spec(change)
    result = h.sync()
    assert h.status["availableReplicas"] == 0 and h.deletes == []
    assert result.requeue_after is not None and result.requeue_after <= 30
    h.clock.advance(60)
    h.sync()
    assert h.status["availableReplicas"] == replicas
    assert h.deletes == [f"foo-{replicas - 1}"]


@pytest.mark.parametrize(
    ("min_ready", "ready_ago", "available"), [(3600, 120 * 60, 1), (3600, 30 * 60, 0), (0, 0, 1)]
)
def test_c27_availability_counting(min_ready: int, ready_ago: int, available: int) -> None:
    h = Harness(new_statefulset(1, minReadySeconds=min_ready))
    h.sync()
    h.make_ready("foo-0", since=h.clock.now() - timedelta(seconds=ready_ago))
    h.sync()
    assert h.status["availableReplicas"] == available


def test_c27_availability_boundary_is_inclusive_from_1_34() -> None:
    for version, available in (("1.33.0", 0), ("1.34.0", 1)):
        h = Harness(new_statefulset(1, minReadySeconds=30), version=version)
        h.sync()
        h.make_ready("foo-0", since=h.clock.now() - timedelta(seconds=30))
        h.sync()
        assert h.status["availableReplicas"] == available, version


def test_c28_ondelete_never_replaces_pods_on_its_own() -> None:
    h = Harness(new_statefulset(3, updateStrategy={"type": "OnDelete"}, minReadySeconds=30))
    h.converge()
    h.set_image("foo")
    for _ in range(5):
        h.sync()
        h.make_all_ready(since=h.clock.now() - timedelta(hours=1))
    assert h.deletes == [] and all(_image(h, f"foo-{i}") == "nginx" for i in range(3))
    assert h.status["currentRevision"] != h.status["updateRevision"]
    h.update_spec(lambda spec: spec.__setitem__("replicas", 5))
    for _ in range(6):
        h.sync()
        h.make_all_ready(since=h.clock.now() - timedelta(hours=1))
    assert [_image(h, f"foo-{i}") for i in range(5)] == ["nginx"] * 3 + ["foo"] * 2
    h.update_spec(lambda spec: spec.__setitem__("replicas", 0))
    for _ in range(10):
        h.sync()
        h.finish_deletions()
    h.update_spec(lambda spec: spec.__setitem__("replicas", 3))
    for _ in range(6):
        h.sync()
        h.make_all_ready(since=h.clock.now() - timedelta(hours=1))
    assert all(_image(h, name) == "foo" for name in h.pods())
    assert h.status["currentRevision"] != h.status["updateRevision"]  # never promoted before 1.37


def test_c28_ondelete_promotes_current_revision_from_1_37() -> None:
    h = Harness(new_statefulset(2, updateStrategy={"type": "OnDelete"}), version="1.37.0")
    h.converge()
    h.set_image("foo")
    h.sync()
    for name in list(h.pods()):
        h.store.remove("pods", "default", name)
    for _ in range(6):
        h.sync()
        h.make_all_ready()
    assert h.status["currentRevision"] == h.status["updateRevision"]


# -- maxUnavailable ----------------------------------------------------------------------------------
def _max_unavailable_set(policy: str) -> dict:
    return new_statefulset(
        6,
        podManagementPolicy=policy,
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 3, "maxUnavailable": 2}},
    )


def test_c29_max_unavailable_orderedready_deletes_two_recreates_in_order() -> None:
    h = Harness(_max_unavailable_set("OrderedReady"), version="1.35.0")
    h.converge()
    h.set_image("foo")
    h.creates.clear()
    h.sync()
    assert h.deletes == ["foo-5", "foo-4"]
    h.finish_deletions()
    h.sync()
    assert h.creates == ["foo-4"]
    h.make_ready("foo-4")
    h.sync()
    assert h.creates == ["foo-4", "foo-5"]
    h.make_ready("foo-5")
    h.sync()
    assert h.deletes == ["foo-5", "foo-4", "foo-3"]
    _roll(h, max_syncs=20)
    assert [_image(h, f"foo-{i}") for i in range(6)] == ["nginx"] * 3 + ["foo"] * 3


def test_c30_max_unavailable_parallel_uses_the_remaining_budget() -> None:
    h = Harness(_max_unavailable_set("Parallel"), version="1.35.0")
    h.converge()
    h.set_image("foo")
    h.creates.clear()
    h.sync()
    assert h.deletes == ["foo-5", "foo-4"]
    h.finish_deletions()
    h.sync()
    assert sorted(h.creates) == ["foo-4", "foo-5"]
    h.make_ready("foo-4")
    h.set_phase("foo-5", "Running", ready=False)
    h.sync()
    assert h.deletes[-1] == "foo-3" and set(h.pods()) == {"foo-0", "foo-1", "foo-2", "foo-4", "foo-5"} | {
        "foo-3"
    }


@pytest.mark.parametrize(("terminating", "deleted"), [((), 2), ((2,), 1), ((1,), 1), ((1, 2), 0)])
def test_c31_max_unavailable_budget_counts_terminating_pods(
    terminating: tuple[int, ...], deleted: int
) -> None:
    h = Harness(_max_unavailable_set("Parallel"), version="1.35.0")
    h.converge()
    for ordinal in terminating:
        h.mark_terminating(f"foo-{ordinal}")
    h.set_image("foo")
    h.sync()
    assert len(h.deletes) == deleted


@pytest.mark.parametrize(
    ("value", "replicas", "expected"),
    [
        ("20%", 10, 2),
        ("25%", 8, 2),
        ("80%", 5, 4),
        ("10%", 25, 2),
        ("50%", 5, 2),
        ("10%", 5, 1),
        ("100%", 5, 5),
        (0, 5, 1),
        ("0%", 5, 1),
        (3, 5, 3),
        (None, 5, 1),
    ],
)
def test_c31_max_unavailable_percentages_round_down_with_minimum_one(
    value: object, replicas: int, expected: int
) -> None:
    assert scaled_max_unavailable(value, replicas) == expected  # type: ignore[arg-type]


# -- claiming and PVC ownership ----------------------------------------------------------------------
def test_c32_adopt_matching_orphans_and_release_mismatches() -> None:
    h = Harness(new_statefulset(3))
    h.converge()
    uid = h.sts["metadata"]["uid"]

    def orphan(name: str, labels: dict) -> None:
        h.store.create(
            "pods",
            {
                "metadata": {"name": name, "namespace": "default", "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running"},
            },
        )

    h.store.remove("pods", "default", "foo-2")
    orphan("foo-2", {"foo": "bar"})
    orphan("foo-7", {"other": "x"})
    orphan("xfoo-1", {"foo": "bar"})

    def unlabel(pod: dict) -> None:
        pod["metadata"]["labels"] = {"unrelated": "yes"}

    h.store.mutate("pods", "default", "foo-1", unlabel)
    h.sync()
    owners = {
        name: [r["uid"] for r in p["metadata"].get("ownerReferences") or []] for name, p in h.pods().items()
    }
    assert owners["foo-0"] == [uid] and owners["foo-2"] == [uid]
    assert owners["foo-7"] == [] and owners["xfoo-1"] == [] and owners["foo-1"] == []


@pytest.mark.parametrize(
    ("when_scaled", "when_deleted", "condemned", "in_range"),
    [
        ("Retain", "Retain", (False, False), (False, False)),
        ("Retain", "Delete", (True, False), (True, False)),
        ("Delete", "Retain", (False, True), (False, False)),
        ("Delete", "Delete", (False, True), (True, False)),
    ],
)
def test_c33_retention_policy_owner_references(
    when_scaled: str, when_deleted: str, condemned: tuple[bool, bool], in_range: tuple[bool, bool]
) -> None:
    policy = {"whenScaled": when_scaled, "whenDeleted": when_deleted}
    h = Harness(new_statefulset(3, persistentVolumeClaimRetentionPolicy=policy))
    h.converge()
    version = KubeVersion.parse("1.34.0")
    pods = h.pods()
    assert desired_claim_owners(h.sts, pods["foo-2"], True, version) == condemned
    assert desired_claim_owners(h.sts, pods["foo-1"], False, version) == in_range
    h.update_spec(lambda spec: spec.__setitem__("replicas", 2))
    h.sync()
    sts = h.sts
    for ordinal, expect in ((2, condemned), (1, in_range)):
        claim = h.store.get("persistentvolumeclaims", "default", f"datadir-foo-{ordinal}")
        refs = {r["kind"] for r in claim["metadata"].get("ownerReferences") or []}
        assert ("StatefulSet" in refs, "Pod" in refs) == expect, ordinal
        assert claim_owners_up_to_date(claim, sts, pods[f"foo-{ordinal}"], ordinal == 2, version)


# -- docs / issue derived, end to end ------------------------------------------------------------------
BAD = {"spec": {"template": {"spec": {"containers": [{"name": "web", "command": ["sh", "-c", "exit 1"]}]}}}}


def _cluster(
    *,
    replicas: int = 3,
    policy: str = "OrderedReady",
    version: str = "1.34.0",
    partition: int | None = None,
    broken: bool = False,
) -> SimCluster:
    manifests = copy.deepcopy(load_scenario("healthy").manifests)
    spec = manifests[1]["spec"]
    spec["replicas"], spec["podManagementPolicy"] = replicas, policy
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    if broken:
        spec["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 1"]
    sim = SimCluster(serve=False, autorun=False, k8s_version=version).start()
    sim.apply_manifest(manifests)
    if not broken:
        assert sim.run_until(lambda s: _status(s).get("readyReplicas") == replicas, max_seconds=600)
    return sim


def _status(sim: SimCluster) -> dict:
    return sim.get("statefulsets", "default", "web").get("status") or {}


def _pod(sim: SimCluster, name: str) -> dict | None:
    return sim.get("pods", "default", name)


def _label(sim: SimCluster, name: str) -> str:
    return (_pod(sim, name) or {"metadata": {"labels": {}}})["metadata"]["labels"].get(REVISION_LABEL, "")


def test_c34_forced_rollback_orderedready_stays_stuck_after_revert() -> None:
    sim = _cluster()
    rev_a = _status(sim)["updateRevision"]
    uids = {n: _pod(sim, n)["metadata"]["uid"] for n in ("web-0", "web-1")}
    sim.patch("statefulsets", "default", "web", BAD)
    assert sim.run_until(
        lambda s: _label(s, "web-2") == _status(s)["updateRevision"] != rev_a, max_seconds=300
    )
    rev_b = _status(sim)["updateRevision"]
    sim.advance(3600)
    status = _status(sim)
    assert (
        status["updateRevision"],
        status["currentRevision"],
        status["updatedReplicas"],
        status["readyReplicas"],
    ) == (rev_b, rev_a, 1, 2)
    assert {n: _pod(sim, n)["metadata"]["uid"] for n in uids} == uids  # nothing else happens
    reverted_at = len(sim.controller.client.faults.log)  # the controller's calls from the revert on
    rollout_undo(sim, "default", "web")
    sim.advance(60)
    bad_uid = _pod(sim, "web-2")["metadata"]["uid"]
    revisions = {r["metadata"]["name"]: r["revision"] for r in sim.list("controllerrevisions", "default")}
    assert revisions == {rev_a: 3, rev_b: 2}
    sim.advance(3600)
    status = _status(sim)
    assert status["updateRevision"] == status["currentRevision"] == rev_a
    assert (status["updatedReplicas"], status["currentReplicas"], status["readyReplicas"]) == (2, 2, 2)
    assert (
        _pod(sim, "web-2")["metadata"]["uid"] == bad_uid and _label(sim, "web-2") == rev_b
    )  # NOT deleted (#67250)
    assert ("delete_pod", "web-2") not in sim.controller.client.faults.log[reverted_at:]
    sim.delete("pods", "default", "web-2")
    assert sim.run_until(lambda s: _status(s).get("readyReplicas") == 3, max_seconds=600)
    assert _label(sim, "web-2") == rev_a


def test_c35_forced_rollback_parallel_recovers_by_revert_alone() -> None:
    sim = _cluster(policy="Parallel")
    rev_a = _status(sim)["updateRevision"]
    sim.patch("statefulsets", "default", "web", BAD)
    assert sim.run_until(
        lambda s: _label(s, "web-2") == _status(s)["updateRevision"] != rev_a, max_seconds=300
    )
    sim.advance(600)
    assert [_label(sim, f"web-{i}") == rev_a for i in range(3)] == [
        True,
        True,
        False,
    ]  # waits on the broken pod
    rollout_undo(sim, "default", "web")
    assert sim.run_until(
        lambda s: _status(s).get("readyReplicas") == 3 and _label(s, "web-2") == rev_a, max_seconds=600
    )


@pytest.mark.parametrize(
    ("version", "replaced"),
    [
        ("1.35.0", False),
        ("1.35.3", False),
        ("1.35.4", True),
        ("1.36.0", True),
        ("1.37.0", True),
        ("1.34.0", True),
    ],
)
def test_c36_parallel_max_unavailable_regression_by_version(version: str, replaced: bool) -> None:
    sim = _cluster(replicas=1, policy="Parallel", version=version, broken=True)
    assert sim.run_until(
        lambda s: "CrashLoopBackOff" in str(_pod(s, "web-0")), max_seconds=300
    )
    sim.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "command": None}]}}}},
    )
    fixed = sim.run_until(lambda s: _status(s).get("readyReplicas") == 1, max_seconds=1800)
    assert fixed is replaced
    assert (_label(sim, "web-0") == _status(sim)["updateRevision"]) is replaced


def test_c37_partition_above_replicas_updates_nothing() -> None:
    sim = _cluster(partition=5)
    before = {n: _pod(sim, n)["metadata"]["uid"] for n in ("web-0", "web-1", "web-2")}
    old = _status(sim)["updateRevision"]
    sim.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
    )
    sim.advance(600)
    status = _status(sim)
    assert status["updateRevision"] != old and status["currentRevision"] == old
    assert status.get("updatedReplicas", 0) == 0
    assert {n: _pod(sim, n)["metadata"]["uid"] for n in before} == before
    assert all(is_pod_ready(_pod(sim, n)) for n in before)


def test_c33_foreign_controllers_and_unrelated_refs_on_claims() -> None:
    policy = {"whenScaled": "Delete", "whenDeleted": "Delete"}
    h = Harness(new_statefulset(3, persistentVolumeClaimRetentionPolicy=policy))
    h.converge()
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": "foreign-uid",
        "controller": True,
    }
    unrelated = {"apiVersion": "v1", "kind": "ConfigMap", "name": "note", "uid": "note-uid"}

    def add(ref: dict, *, replace: bool) -> object:
        def change(claim: dict) -> None:
            refs = [] if replace else list(claim["metadata"].get("ownerReferences") or [])
            claim["metadata"]["ownerReferences"] = [*refs, ref]

        return change

    h.store.mutate("persistentvolumeclaims", "default", "datadir-foo-1", add(foreign, replace=True))
    h.store.mutate("persistentvolumeclaims", "default", "datadir-foo-0", add(unrelated, replace=False))
    h.update_spec(lambda spec: spec.__setitem__("replicas", 1))
    for _ in range(6):
        h.sync()
        h.finish_deletions()
    refs = {
        name: {
            r["uid"]
            for r in h.store.get("persistentvolumeclaims", "default", name)["metadata"]["ownerReferences"]
        }
        for name in ("datadir-foo-0", "datadir-foo-1")
    }
    assert refs["datadir-foo-1"] == {"foreign-uid"}
    assert refs["datadir-foo-0"] == {"note-uid", h.sts["metadata"]["uid"]}
    assert h.events("ConflictingController")


def test_c12_before_1_29_succeeded_pods_are_not_replaced() -> None:
    h = Harness(new_statefulset(3), version="1.28.4")
    h.sync()
    h.set_phase("foo-0", "Succeeded")
    for _ in range(3):
        h.sync()
    assert h.deletes == [] and h.creates == ["foo-0"]
    h30 = Harness(new_statefulset(3), version="1.30.0")
    h30.sync()
    h30.set_phase("foo-0", "Succeeded")
    h30.sync()
    assert h30.deletes == ["foo-0"] and h30.events("RecreatingTerminatedPod")[0]["type"] == "Normal"


def test_completion_compared_with_status_replicas_before_1_29() -> None:
    """#119684: a missing pod below the partition let a partitioned rollout complete on ≤1.28."""
    for version, completes in (("1.28.0", True), ("1.29.0", False)):
        h = Harness(new_statefulset(3), version=version)
        h.converge()

        def change(spec: dict) -> None:
            spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
            spec["template"]["spec"]["containers"][0]["image"] = "bar"

        h.update_spec(change)
        _roll(h, max_syncs=30)
        assert h.status["updatedReplicas"] == 2 and h.status["currentRevision"] != h.status["updateRevision"]
        h.store.remove("pods", "default", "foo-0")
        h.sync()
        status = h.status
        assert (status["currentRevision"] == status["updateRevision"]) is completes, version
