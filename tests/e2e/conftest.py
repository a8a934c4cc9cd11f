"""The real-cluster tier: runs only when STSFIX_E2E_KUBECONFIG names a kubeconfig (docs/e2e.md).

kr8s-style fixtures: one session-wide connection check, a fresh namespace per test (deleted after it).
`RealCluster` gives the simulator's scenario runner (stsfix.sim.scenarios) the same small interface
the SimCluster has (get/list/patch/delete/apply_manifest/run_until/clock), so a scenario's real
manifests and steps replay on the real cluster exactly as on the simulated one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ENV = "STSFIX_E2E_KUBECONFIG"
SKIP_REASON = f"set {ENV} to the kubeconfig of a disposable cluster (kind create cluster --config kind-config.yaml; docs/e2e.md)"
#: Real seconds a scenario may take to reach each of its states (image pulls, crash-loop back-off).
WAIT_S = float(os.environ.get("STSFIX_E2E_WAIT", "300"))

_KINDS = {
    "pods": ("v1", "Pod"),
    "services": ("v1", "Service"),
    "events": ("v1", "Event"),
    "nodes": ("v1", "Node"),
    "namespaces": ("v1", "Namespace"),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "controllerrevisions": ("apps/v1", "ControllerRevision"),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if not os.environ.get(ENV):
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


class _Clock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class RealCluster:
    """The scenario runner's view of a real cluster, with `default` mapped to the test's namespace."""

    def __init__(self, kubeconfig: str, namespace: str):
        from kubernetes import config, dynamic

        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.client = dynamic.DynamicClient(config.new_client_from_config(config_file=kubeconfig))
        self.clock = _Clock()

    def _ns(self, namespace: str | None) -> str | None:
        return self.namespace if namespace in (None, "", "default") else namespace

    def _resource(self, resource: str) -> Any:
        from stsfix.sim.cluster import resource_of

        api_version, kind = _KINDS[resource_of(resource)]
        return self.client.resources.get(api_version=api_version, kind=kind)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._resource(resource).get(name=name, namespace=self._ns(namespace)).to_dict()
        except NotFoundError:
            return None

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self._resource(resource).get(namespace=self._ns(namespace)).to_dict()["items"])

    def patch(
        self,
        resource: str,
        namespace: str,
        name: str,
        patch: Any,
        *,
        content_type: str = "application/strategic-merge-patch+json",
    ) -> dict[str, Any]:
        res = self._resource(resource)
        return res.patch(
            name=name, namespace=self._ns(namespace), body=patch, content_type=content_type
        ).to_dict()

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        grace_seconds: int | None = None,
        propagation: str | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if propagation:
            body["propagationPolicy"] = propagation
        self._resource(resource).delete(name=name, namespace=self._ns(namespace), body=body)

    def apply_manifest(self, objects: Any) -> list[dict[str, Any]]:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        out = []
        for obj in objects if isinstance(objects, list) else [objects]:
            obj = {
                **obj,
                "metadata": {**obj["metadata"], "namespace": self._ns(obj["metadata"].get("namespace"))},
            }
            try:
                res = self.client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            except ResourceNotFoundError:  # e.g. a Service on a rehearsal against `stsfix sim serve`
                continue
            out.append(res.create(body=obj, namespace=obj["metadata"]["namespace"]).to_dict())
        return out

    def set_node(self, name: str, state: str = "Ready") -> None:
        pytest.skip(
            f"the scenario needs node {name} to become {state}: not done to a shared cluster (docs/e2e.md)"
        )

    def advance(self, seconds: float) -> None:
        time.sleep(min(float(seconds), WAIT_S))

    def settle(self) -> None:
        time.sleep(1.0)

    def run_until(
        self,
        predicate: Callable[[RealCluster], bool],
        *,
        max_seconds: float = 3600.0,
        tick: float | None = None,
    ) -> bool:
        # NB: scenario conditions such as `elapsed: 300` are real seconds here; the grace lets them hold.
        deadline = time.monotonic() + min(max_seconds, WAIT_S) + 10.0
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(2.0)
        return predicate(self)


@pytest.fixture(scope="session")
def e2e_kubeconfig() -> str:
    path = os.environ.get(ENV)
    if not path:
        pytest.skip(SKIP_REASON)
    from kubernetes import client, config

    version = client.VersionApi(config.new_client_from_config(config_file=path)).get_code()
    print(f"e2e cluster: Kubernetes {version.git_version}")
    return path


@pytest.fixture
def namespace(e2e_kubeconfig: str) -> Iterator[str]:
    """A fresh namespace per test, deleted (in the background) afterwards."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=e2e_kubeconfig))
    name = f"stsfix-e2e-{uuid.uuid4().hex[:8]}"
    api.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "stsfix-e2e"})
        )
    )
    try:
        yield name
    finally:
        if not os.environ.get("STSFIX_E2E_KEEP"):
            api.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def real_cluster(e2e_kubeconfig: str, namespace: str) -> RealCluster:
    return RealCluster(e2e_kubeconfig, namespace)
