"""Objects written by the simulated controllers deserialize into the official client's strict models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsfix.sim.cluster import SimCluster

client = pytest.importorskip("kubernetes.client")
config = pytest.importorskip("kubernetes.config")


@pytest.fixture(
    params=["forced-rollback-reverted", "image-pull", "unschedulable", "stuck-terminating", "pending-pvc"]
)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    sim = SimCluster([request.param], speed=50.0).start()
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()
        sim.stop()


def test_controller_objects_deserialize_typed(api: Any) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    pods = core.list_namespaced_pod("default")
    assert pods.items and all(isinstance(p, client.V1Pod) for p in pods.items)
    for pod in pods.items:
        for status in pod.status.container_statuses or []:
            assert status.name and status.image is not None and status.restart_count is not None
    events = core.list_namespaced_event("default")
    assert events.items and {e.source.component for e in events.items} >= {"statefulset-controller"}
    assert all(e.involved_object.name and e.count >= 1 for e in events.items)
    assert all(isinstance(n, client.V1Node) for n in core.list_node().items)
    claims = core.list_namespaced_persistent_volume_claim("default")
    assert all(isinstance(c, client.V1PersistentVolumeClaim) for c in claims.items)
    sts = apps.read_namespaced_stateful_set("web", "default")
    assert sts.status.observed_generation == sts.metadata.generation
    revisions = apps.list_namespaced_controller_revision("default")
    assert revisions.items and all(r.revision >= 1 for r in revisions.items)
    assert all(r.metadata.owner_references[0].kind == "StatefulSet" for r in revisions.items)
