"""The guard's cache (stsfix.kube.informer) against the simulated API server over HTTP: it lists,
follows the watch, and after a 410 Gone lists afresh, reporting what vanished in the gap."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stsfix.kube.client import KubeTarget, connect_raw, path_for
from stsfix.kube.informer import Informer, trim
from stsfix.kube.watches import _Watcher
from stsfix.model import POD_NAME_LABEL
from stsfix.sim.cluster import SimCluster


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Re-check a condition until it holds (a wait for a state, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SimCluster]:
    # autorun=False: no controller recreates what the test deletes
    sim = SimCluster(scenarios=["healthy"], autorun=False).start()
    sim.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield sim
    finally:
        sim.stop()


def test_an_informer_lists_then_follows_changes(cluster: SimCluster, tmp_path: Path) -> None:
    conn = connect_raw(KubeTarget(kubeconfig=str(tmp_path / "kubeconfig")))
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    informer = Informer(conn, "pods", "Pod", label_selector=POD_NAME_LABEL, stop=stop,
                        listener=lambda t, o: seen.append((t, o["metadata"]["name"]))).start()  # fmt: skip
    try:
        assert informer.synced.wait(10)
        assert sorted(o["metadata"]["name"] for o in informer.items("default")) == ["web-0", "web-1", "web-2"]
        cluster.delete("pods", "default", "web-1", grace_seconds=0)
        assert eventually(lambda: informer.get("default", "web-1") is None), informer.items()
        assert ("DELETED", "web-1") in seen and informer.relists == 0
    finally:
        stop.set()


def test_after_410_the_informer_lists_afresh_and_reports_what_vanished_in_the_gap(
    cluster: SimCluster, tmp_path: Path
) -> None:
    conn = connect_raw(KubeTarget(kubeconfig=str(tmp_path / "kubeconfig")))
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    informer = Informer(conn, "pods", "Pod", stop=stop, listener=lambda t, o: seen.append((t, o["metadata"]["name"])))
    old_rv = informer._relist()  # the first list, as the supervisor does it
    # While nobody watches, web-2 goes away and the server compacts its history past our version.
    cluster.delete("pods", "default", "web-2", grace_seconds=0)
    cluster.store.compact()
    signals: queue.Queue[object] = queue.Queue()
    watcher = _Watcher(conn, path_for("pods"), {}, out=signals, stop=stop, rv=old_rv,
                       on_event=informer._apply, relist=informer._relist)  # fmt: skip
    watcher.start()
    try:
        assert eventually(lambda: informer.relists == 1)
        assert signals.get(timeout=5) == "expired"
        assert informer.get("default", "web-2") is None and ("DELETED", "web-2") in seen
        assert informer.get("default", "web-0") is not None
    finally:
        stop.set()


def test_trim_keeps_what_the_analysis_reads_and_drops_the_bulk() -> None:
    raw = {
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}, {"manager": "kubelet"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...big...}", "a": "b"},
        },
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "images": [{"names": ["x"] * 50}]},
    }
    kept = trim(raw)
    assert kept["metadata"]["managedFields"] == [{"manager": "kubelet"}]
    assert kept["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "", "a": "b"}
    assert kept["status"] == {"conditions": [{"type": "Ready", "status": "True"}]} and kept["spec"] == raw["spec"]
    assert raw["status"]["images"], "the original is not modified"
