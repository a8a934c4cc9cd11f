"""The dumps `sim serve --load` rehearses on, created (spec only) on the real control plane (issue 19).

For each dump of tests/sim/test_load_dump.py (collect bundles of the scenarios, and the hand-written
List whose StatefulSet is written as a user writes it), the StatefulSet is created spec-only in a fresh
namespace of kube-apiserver v1.34.4. What the real server stores must be what the simulator holds after
loading the dump (its defaulting), and the real StatefulSet controller must name its revision as the
loaded set's revision. The 422s the simulator answers are replayed against the real server too, so the
recorded fixtures stay true.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from stsfix.sim.cluster import SimCluster
from tests.controlplane.cluster import ControlPlane
from tests.sim.test_load_dump import _as_written, _write, collected, load

INVALID = json.loads((Path(__file__).parents[1] / "sim/data/real-v1.34.4/invalid.json").read_text())["requests"]
SCENARIOS = ("healthy", "forced-rollback", "partition-canary", "ondelete", "rollout-in-progress", "pending-pvc")


def _spec_only(sts: dict[str, Any], namespace: str) -> dict[str, Any]:
    meta = sts["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": meta["name"], "namespace": namespace,
                     **{k: meta[k] for k in ("labels", "annotations") if meta.get(k)}},
        "spec": copy.deepcopy(sts["spec"]),
    }  # fmt: skip


def _real_revision(plane: ControlPlane, namespace: str, name: str) -> str:
    """The name of the revision the real controller makes for the set's template."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sts = plane.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}") or {}
        revision = (sts.get("status") or {}).get("updateRevision")
        if revision:
            return str(revision)
        time.sleep(0.25)
    raise AssertionError(f"the real controller never set updateRevision of {namespace}/{name}")


def _compare(plane: ControlPlane, namespace: str, loaded: SimCluster, sts: dict[str, Any]) -> None:
    body = _spec_only(sts, namespace)
    body["spec"]["replicas"] = 0  # the stored spec and the revision do not depend on pods running
    created = plane.post(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", body)
    if "MaxUnavailableStatefulSet=true" in plane.feature_gates:
        # This control plane turns the gate on, which 1.34 releases ship off (the simulator models the
        # release): the only default that differs, and it is not part of the revision.
        assert created["spec"]["updateStrategy"].get("rollingUpdate", {}).pop("maxUnavailable", 1) == 1
    ours = copy.deepcopy(loaded.get("statefulsets", sts["metadata"].get("namespace", "default"), sts["metadata"]["name"]))
    ours["spec"]["replicas"] = 0
    assert created["spec"] == ours["spec"], "the simulator loads the spec the real server stores"
    assert _real_revision(plane, namespace, body["metadata"]["name"]) == ours["status"]["updateRevision"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_collected_dump_is_stored_and_revisioned_as_by_the_real_server(
    scenario: str, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    live, path = collected(scenario, tmp_path, k8s_version="1.34.4")
    loaded = load(path)
    loaded.settle()
    _compare(control_plane, namespace, loaded, live.get("statefulsets", "default", "web"))


def test_a_dump_written_without_defaults_is_defaulted_as_the_real_server_defaults_it(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    live = SimCluster(["forced-rollback"], serve=False, autorun=False, k8s_version="1.34.4").start()
    items = _as_written(live)
    loaded = load(_write(tmp_path, items))
    loaded.settle()
    sts = next(o for o in items if o["kind"] == "StatefulSet")
    _compare(control_plane, namespace, loaded, sts)


@pytest.mark.parametrize("request_", INVALID, ids=[r["case"] for r in INVALID])
def test_the_recorded_rejections_are_still_the_real_servers(
    request_: dict[str, Any], control_plane: ControlPlane, namespace: str
) -> None:
    body = copy.deepcopy(request_["body"])
    body["metadata"]["namespace"] = namespace
    path = request_["path"].replace("/namespaces/default/", f"/namespaces/{namespace}/")
    code, raw = control_plane.request("POST", path + "?dryRun=All", body)
    expected = request_
    rolling = ((request_["body"].get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    if "maxUnavailable" in rolling and "MaxUnavailableStatefulSet=true" in control_plane.feature_gates:
        expected = _gate_on_answer(request_)  # recorded with the gate off, as 1.34 ships
    assert code == expected["code"]
    if expected["status"] is not None:
        status = json.loads(raw)
        assert status["message"] == expected["status"]["message"]
        assert status.get("details") == expected["status"].get("details")


def _gate_on_answer(request_: dict[str, Any]) -> dict[str, Any]:
    """What the simulator answers where MaxUnavailableStatefulSet is on (1.35.0)."""
    from stsfix.sim.store.store import SimApiError

    sim = SimCluster(serve=False, autorun=False, k8s_version="1.35.0", nodes=[]).start()
    try:
        sim.api.create("statefulsets", "default", copy.deepcopy(request_["body"]), dry_run=True)
    except SimApiError as err:
        return {"code": err.code, "status": {"message": str(err), "details": err.details}}
    return {"code": 201, "status": None}
