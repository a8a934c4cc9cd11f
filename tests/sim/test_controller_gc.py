"""Garbage collection and PVC retention end to end (§8.3, §8.5; test-cluster-notes §7)."""

from __future__ import annotations

import copy

import pytest

from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import load_scenario
from stsfix.sim.store.objects import REVISION_LABEL


def _web(policy: dict | None = None, replicas: int = 3) -> SimCluster:
    manifests = copy.deepcopy(load_scenario("healthy").manifests)
    manifests[1]["spec"]["replicas"] = replicas
    if policy:
        manifests[1]["spec"]["persistentVolumeClaimRetentionPolicy"] = policy
    sim = SimCluster(serve=False, autorun=False).start()
    sim.apply_manifest(manifests)
    assert sim.run_until(
        lambda s: s.get("sts", "default", "web")["status"].get("readyReplicas") == replicas, max_seconds=600
    )
    return sim


def _names(sim: SimCluster, resource: str) -> set[str]:
    return {o["metadata"]["name"] for o in sim.list(resource, "default")}


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_the_set_removes_pods_and_revisions_but_keeps_claims(propagation: str) -> None:
    sim = _web()
    sim.delete("statefulsets", "default", "web", propagation=propagation)
    sim.advance(120)
    assert sim.get("sts", "default", "web") is None
    assert _names(sim, "pods") == set() and _names(sim, "controllerrevisions") == set()
    assert _names(sim, "pvc") == {"www-web-0", "www-web-1", "www-web-2"}


def test_foreground_delete_keeps_the_owner_until_dependents_are_gone() -> None:
    sim = _web()
    sim.delete("statefulsets", "default", "web", propagation="Foreground")
    sim.settle()
    sts = sim.get("sts", "default", "web")
    assert sts is not None and "foregroundDeletion" in sts["metadata"]["finalizers"]
    sim.advance(120)
    assert sim.get("sts", "default", "web") is None


def test_orphan_delete_leaves_pods_running_without_owner() -> None:
    sim = _web()
    sim.delete("statefulsets", "default", "web", propagation="Orphan")
    sim.advance(120)
    assert sim.get("sts", "default", "web") is None
    pods = sim.list("pods", "default")
    assert len(pods) == 3 and all(not p["metadata"].get("ownerReferences") for p in pods)
    revisions = sim.list("controllerrevisions", "default")
    assert revisions and all(not r["metadata"].get("ownerReferences") for r in revisions)


def test_when_deleted_delete_removes_claims_with_the_set() -> None:
    sim = _web({"whenDeleted": "Delete", "whenScaled": "Retain"})
    sim.delete("statefulsets", "default", "web")
    sim.advance(120)
    assert _names(sim, "pvc") == set()


def test_when_scaled_delete_removes_the_condemned_claim_after_its_pod() -> None:
    sim = _web({"whenDeleted": "Retain", "whenScaled": "Delete"})
    sim.patch("statefulsets", "default", "web", {"spec": {"replicas": 2}})
    sim.advance(120)
    assert _names(sim, "pods") == {"web-0", "web-1"}
    assert _names(sim, "pvc") == {"www-web-0", "www-web-1"}
    sim.patch("statefulsets", "default", "web", {"spec": {"replicas": 3}})
    assert sim.run_until(
        lambda s: s.get("sts", "default", "web")["status"].get("readyReplicas") == 3, max_seconds=300
    )
    assert "www-web-2" in _names(sim, "pvc")


def test_claim_deleted_under_a_running_pod_waits_for_the_pod() -> None:
    sim = _web()
    sim.delete("persistentvolumeclaims", "default", "www-web-2")
    sim.advance(30)
    claim = sim.get("pvc", "default", "www-web-2")
    assert claim is not None and claim["metadata"]["deletionTimestamp"]
    before = sim.get("pods", "default", "web-2")["metadata"]["labels"][REVISION_LABEL]
    sim.delete("pods", "default", "web-2")
    assert sim.run_until(
        lambda s: (
            s.get("sts", "default", "web")["status"].get("readyReplicas") == 3
            and s.get("pvc", "default", "www-web-2") is not None
            and not s.get("pvc", "default", "www-web-2")["metadata"].get("deletionTimestamp")
        ),
        max_seconds=300,
    )
    assert sim.get("pods", "default", "web-2")["metadata"]["labels"][REVISION_LABEL] == before
