"""Defaulting, the Go round trip and quantities match a real v1.34.4 API server, byte for byte.

The fixtures in data/real-v1.34.4/ were recorded from kube-apiserver and kube-controller-manager
v1.34.4 (the same manifests created with kubectl v1.34.4; the stored objects and the
ControllerRevisions the real StatefulSet controller made). The simulator must store the same spec
and make the same revision: the same name (hash) and the same data.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.sim.cluster import SimCluster
from stsfix.sim.store.defaults import default_object
from stsfix.sim.store.quantity import canonical_quantity

DATA = Path(__file__).parent / "data" / "real-v1.34.4"
REAL: dict[str, Any] = json.loads((DATA / "statefulsets.json").read_text())
MANIFESTS = {"rich": "sts-rich.yaml", "more": "sts-more.yaml", "mini": "sts-min.yaml"}


def _created(manifest: dict[str, Any]) -> SimCluster:
    sim = SimCluster(serve=False, autorun=False, k8s_version="1.34.4", nodes=[]).start()
    sim.apply_manifest(manifest)
    sim.settle()
    return sim


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_a_created_statefulset_is_stored_and_revisioned_as_the_real_server_does(name: str) -> None:
    manifest = yaml.safe_load((DATA / MANIFESTS[name]).read_text())
    sim = _created(manifest)
    real = REAL["statefulsets"][name]
    assert sim.get("statefulsets", "default", name)["spec"] == real["spec"]
    (revision,) = sim.list("controllerrevisions", "default")
    assert revision["metadata"]["name"] == real["revision"]
    assert revision["data"] == real["data"]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_defaulting_is_idempotent_on_what_the_real_server_stored(name: str) -> None:
    # A dump of a real v1.34 object must come back unchanged, or its revision hash would move.
    stored = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
              "spec": copy.deepcopy(REAL["statefulsets"][name]["spec"])}  # fmt: skip
    again = copy.deepcopy(stored)
    default_object("statefulsets", again, max_unavailable_gate=False)
    assert again == stored


@pytest.mark.parametrize("scenario", sorted(REAL["scenario_first_revisions"]))
def test_every_scenario_starts_from_the_revision_the_real_controller_makes(scenario: str) -> None:
    doc = yaml.safe_load((Path(__file__).parents[2] / "stsfix/sim/scenarios" / f"{scenario}.yaml").read_text())
    sets = [m for m in doc["manifests"] if m["kind"] == "StatefulSet"]
    sim = _created(sets)
    names = sorted(r["metadata"]["name"] for r in sim.list("controllerrevisions", "default"))
    assert names == [REAL["scenario_first_revisions"][scenario]]


@pytest.mark.parametrize(("given", "stored"), json.loads((DATA / "quantities.json").read_text()))
def test_quantities_are_stored_in_the_real_servers_canonical_form(given: object, stored: str) -> None:
    assert canonical_quantity(given) == stored


def test_the_round_trip_drops_omitempty_zeros_and_keeps_pointer_zeros() -> None:
    sts = {"spec": {"template": {"spec": {
        "hostNetwork": False, "nodeSelector": {}, "serviceAccountName": "", "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": False, "sysctls": []},
        "containers": [{"name": "a", "image": "x:1", "command": [], "env": [{"name": "E", "value": ""}],
                        "resources": None, "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": False}]}],
        "volumes": [{"name": "v"}, {"name": "h", "hostPath": {"path": "/h"}}],
    }}}}  # fmt: skip
    default_object("statefulsets", sts, max_unavailable_gate=False)
    spec = sts["spec"]["template"]["spec"]
    assert "hostNetwork" not in spec and "nodeSelector" not in spec and "serviceAccountName" not in spec
    assert spec["automountServiceAccountToken"] is False and spec["securityContext"] == {"runAsNonRoot": False}
    (container,) = spec["containers"]
    assert "command" not in container and container["env"] == [{"name": "E"}] and container["resources"] == {}
    assert container["volumeMounts"] == [{"name": "v", "mountPath": "/v"}]
    assert spec["volumes"] == [{"name": "v", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/h", "type": ""}}]


INVALID: list[dict[str, Any]] = json.loads((DATA / "invalid.json").read_text())["requests"]


@pytest.fixture(scope="module")
def served() -> Any:
    sim = SimCluster(serve=True, autorun=False, k8s_version="1.34.4").start()
    yield sim
    sim.stop()


@pytest.mark.parametrize("request_", INVALID, ids=[r["case"] for r in INVALID])
def test_requests_are_admitted_or_rejected_with_the_real_servers_status(served: SimCluster, request_: dict) -> None:
    """Each body was POSTed (dryRun=All) to kube-apiserver v1.34.4: the same code, message and causes."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        served.url + request_["path"] + "?dryRun=All", data=json.dumps(request_["body"]).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer admin-token"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            code, status = response.status, None
    except urllib.error.HTTPError as err:
        code, status = err.code, json.loads(err.read())
    assert code == request_["code"]
    if request_["status"] is not None:
        assert status is not None
        assert status["message"] == request_["status"]["message"]
        assert status.get("details") == request_["status"].get("details")
        assert status["reason"] == request_["status"]["reason"]
