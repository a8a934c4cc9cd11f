"""Admission in the simulated API server: defaulting, validation (422), immutability, generation."""

from __future__ import annotations

from typing import Any

import pytest

from stsfix.sim.apiserver.admission import max_unavailable_gate
from stsfix.sim.apiserver.server import ApiServer
from tests.sim.conftest import Http, pod_manifest, sts_manifest

STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"
MERGE = "application/merge-patch+json"


def create(http: Http, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    code, obj, _ = http("POST", STS, body)
    return code, obj


def test_statefulset_defaults(http: Http) -> None:
    body = sts_manifest()
    del body["spec"]["replicas"]
    code, obj = create(http, body)
    spec = obj["spec"]
    assert code == 201
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == ("Always", "ClusterFirst",
                                                                            "default-scheduler")  # fmt: skip
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    assert pod["containers"][0] == {
        "name": "app", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {},
    }  # fmt: skip


def test_explicit_rolling_update_without_rolling_update_stays_nil(http: Http) -> None:
    _, obj = create(http, sts_manifest(updateStrategy={"type": "RollingUpdate"}))
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate"}


def test_on_delete_gets_no_rolling_update(http: Http) -> None:
    _, obj = create(http, sts_manifest(updateStrategy={"type": "OnDelete"}))
    assert obj["spec"]["updateStrategy"] == {"type": "OnDelete"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
     ("registry:5000/app", "Always"), ("registry:5000/app:v2", "IfNotPresent"), ("app@sha256:abc", "IfNotPresent")],
)  # fmt: skip
def test_image_pull_policy_default(http: Http, image: str, policy: str) -> None:
    _, obj = create(http, sts_manifest(image=image))
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize(
    ("version", "gate"),
    [
        ("1.34.0", False),
        ("1.35.0", True),
        ("1.35.3", True),
        ("1.35.4", False),
        ("1.36.1", False),
        ("1.37.0", True),
    ],
)
def test_max_unavailable_default_follows_the_gate(
    http: Http, server: ApiServer, version: str, gate: bool
) -> None:
    assert max_unavailable_gate(version) is gate
    server.set_version(version)
    _, obj = create(http, sts_manifest())
    rolling = obj["spec"]["updateStrategy"]["rollingUpdate"]
    assert rolling == ({"partition": 0, "maxUnavailable": 1} if gate else {"partition": 0})
    assert http("GET", "/version")[1]["gitVersion"] == f"v{version}"


def test_pod_defaults_and_initial_status(http: Http) -> None:
    code, pod, _ = http("POST", PODS, pod_manifest("p"))
    assert code == 201 and pod["status"]["phase"] == "Pending"
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["terminationGracePeriodSeconds"] == 30
    assert pod["spec"]["containers"][0]["terminationMessagePolicy"] == "File"


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels",
                     "`selector` does not match template `labels`", id="selector mismatch"),
        pytest.param({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 0}}},
                     "spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'",
                     id="OnDelete with rollingUpdate"),
        pytest.param({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
                     "spec.updateStrategy.rollingUpdate.partition", "must be greater than or equal to 0",
                     id="negative partition"),
        pytest.param({"updateStrategy": {"type": "Sometimes"}}, "spec.updateStrategy",
                     "must be 'RollingUpdate' or 'OnDelete'", id="unknown strategy"),
        pytest.param({"replicas": -1}, "spec.replicas", "must be greater than or equal to 0", id="negative replicas"),
    ],
)  # fmt: skip
def test_statefulset_validation_is_422_with_causes(http: Http, change: dict[str, Any], field: str,
                                                   fragment: str) -> None:  # fmt: skip
    code, status = create(http, sts_manifest(**change))
    assert code == 422 and status["reason"] == "Invalid" and status["kind"] == "Status"
    assert status["message"].startswith('StatefulSet.apps "web" is invalid: ')
    assert status["details"]["kind"] == "StatefulSet" and status["details"]["group"] == "apps"
    cause = next(c for c in status["details"]["causes"] if c["field"] == field)
    assert fragment in cause["message"]


def test_restart_policy_must_be_always(http: Http) -> None:
    body = sts_manifest()
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    code, status = create(http, body)
    assert code == 422 and "spec.template.spec.restartPolicy: Unsupported value" in status["message"]


def test_immutable_statefulset_fields_are_forbidden(http: Http) -> None:
    create(http, sts_manifest())
    code, status, _ = http("PATCH", STS + "/web", {"spec": {"serviceName": "other"}}, content_type=MERGE)
    assert code == 422
    assert status["message"] == (
        'StatefulSet.apps "web" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )
    assert status["details"]["causes"] == [{"reason": "FieldValueForbidden", "field": "spec", "message": (
        status["message"].split("spec: ", 1)[1])}]  # fmt: skip


def test_mutable_statefulset_fields_bump_generation_only_on_spec_change(http: Http) -> None:
    create(http, sts_manifest())
    for patch in ({"spec": {"replicas": 3}}, {"spec": {"minReadySeconds": 5}},
                  {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}):  # fmt: skip
        assert http("PATCH", STS + "/web", patch, content_type=MERGE)[0] == 200
    _, obj, _ = http("PATCH", STS + "/web", {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE)
    assert obj["metadata"]["generation"] == 4
    _, obj, _ = http("PATCH", STS + "/web/status", {"status": {"replicas": 3}}, content_type=MERGE)
    assert obj["metadata"]["generation"] == 4


def test_pod_spec_is_immutable_except_image(http: Http) -> None:
    http("POST", PODS, pod_manifest("p", node="n1"))
    patch = {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}
    code, pod, _ = http("PATCH", PODS + "/p", patch, content_type="application/strategic-merge-patch+json")
    assert code == 200 and pod["spec"]["containers"][0]["image"] == "nginx:2"
    assert pod["metadata"]["generation"] == 1
    code, status, _ = http("PATCH", PODS + "/p", {"spec": {"hostname": "x"}}, content_type=MERGE)
    assert code == 422 and "pod updates may not change fields" in status["message"]
    assert status["message"].startswith('Pod "p" is invalid: spec: Forbidden')


def test_pod_binding_may_set_node_name_once(http: Http) -> None:
    http("POST", PODS, pod_manifest("p"))
    assert http("PATCH", PODS + "/p", {"spec": {"nodeName": "n1"}}, content_type=MERGE)[0] == 200
    assert http("PATCH", PODS + "/p", {"spec": {"nodeName": "n2"}}, content_type=MERGE)[0] == 422


def test_pdb_with_both_bounds_is_invalid(http: Http) -> None:
    pdb = {"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {}}}
    assert http("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb)[0] == 422


def test_invalid_names_are_422(http: Http) -> None:
    code, status, _ = http("POST", PODS, pod_manifest("Web_0"))
    assert code == 422
    assert status["message"].startswith('Pod "Web_0" is invalid: metadata.name: Invalid value: "Web_0": a lowercase '
                                        "RFC 1123 subdomain")  # fmt: skip


@pytest.mark.parametrize(("version", "stored"), [("1.34.0", None), ("1.35.0", "rejected"), ("1.37.0", "rejected")])
def test_max_unavailable_is_dropped_without_its_gate_and_validated_with_it(version: str, stored: str | None) -> None:
    # dropStatefulSetDisabledFields: with MaxUnavailableStatefulSet off the field is cleared before
    # validation (kube-apiserver v1.34.4 admits maxUnavailable: 0 and stores no maxUnavailable).
    from stsfix.sim.cluster import SimCluster
    from stsfix.sim.store.store import SimApiError

    sim = SimCluster(serve=False, autorun=False, k8s_version=version, nodes=[]).start()
    body = sts_manifest(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}})
    if stored is None:
        created = sim.api.create("statefulsets", "default", body)
        assert created["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 0}
        return
    with pytest.raises(SimApiError) as err:
        sim.api.create("statefulsets", "default", body)
    assert err.value.code == 422
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0" in str(err.value)
