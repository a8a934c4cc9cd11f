"""kubectl against the simulated cluster with controllers running (C38, C39 and the on-call verbs).

Skipped when no kubectl is installed. Every kubectl run gets an isolated kubeconfig and cache dir.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stsfix.sim.cluster import SimCluster
from stsfix.sim.store.objects import REVISION_LABEL, is_pod_ready
from tests.sim.kubectl import kubectl_argv, run_kubectl

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(kubectl_argv() is None, reason="kubectl is not installed"),
]

Kubectl = Callable[..., "tuple[int, str, str]"]


class Env:
    def __init__(self, sim: SimCluster, tmp: Path):
        self.sim = sim
        self.kubeconfig = sim.write_kubeconfig(tmp / "kubeconfig")
        self.cache = tmp / "cache"

    def __call__(self, *args: str, timeout: float = 30.0) -> tuple[int, str, str]:
        done = run_kubectl(self.kubeconfig, self.cache, *args, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def status(self) -> dict:
        return self.sim.get("statefulsets", "default", "web").get("status") or {}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    started: list[SimCluster] = []

    def _start(scenario: str, speed: float = 100.0, version: str | None = None) -> Env:
        sim = SimCluster([scenario], speed=speed, tls=True, k8s_version=version).start()
        started.append(sim)
        return Env(sim, tmp_path)

    yield _start
    for sim in started:
        sim.stop()


def test_get_and_describe_show_the_stuck_rollout(start: Callable[..., Env]) -> None:
    kubectl = start("forced-rollback")
    code, out, err = kubectl("get", "sts,pods")
    assert code == 0, err
    assert "statefulset.apps/web   4/5" in out
    web4 = next(line for line in out.splitlines() if line.startswith("pod/web-4"))
    assert "0/1" in web4 and "CrashLoopBackOff" in web4
    code, out, err = kubectl("describe", "sts", "web")
    assert code == 0, err
    assert "Update Strategy:    RollingUpdate" in out and "SuccessfulCreate" in out
    code, out, err = kubectl("describe", "pod", "web-4")
    assert code == 0, err
    assert (
        "CrashLoopBackOff" in out and "Back-off restarting failed container web in pod web-4_default" in out
    )
    for args in ((), ("--previous",)):
        code, out, err = kubectl("logs", "web-4", *args)
        assert code == 0 and out == "starting\n", (args, err)


def test_rollout_status_waits_on_the_reverted_forced_rollback(start: Callable[..., Env]) -> None:
    kubectl = start("forced-rollback-reverted")
    code, out, err = kubectl("rollout", "status", "sts/web", "--timeout=2s")
    assert code != 0
    assert "Waiting for 1 pods to be ready..." in out
    assert "timed out" in err


def test_rollout_history_lists_renumbered_revisions_with_change_cause(start: Callable[..., Env]) -> None:
    kubectl = start("forced-rollback-reverted")
    code, out, err = kubectl("rollout", "history", "sts/web")
    assert code == 0, err
    rows = [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]
    assert rows == [["2", "web 1.28 entrypoint (broken: exits 1)"], ["3", "<none>"]]


def test_rollout_undo_leaves_forced_rollback_stuck(start: Callable[..., Env]) -> None:
    kubectl = start("forced-rollback")
    bad = kubectl.status()["updateRevision"]
    code, out, err = kubectl("rollout", "undo", "sts/web")
    assert code == 0 and "rolled back" in out, err
    sim = kubectl.sim
    assert sim.wait_for(
        lambda s: (
            kubectl.status().get("currentRevision") == kubectl.status().get("updateRevision")
            and kubectl.status().get("updatedReplicas") == 4
        ),
        timeout=10,
    )
    sim.advance(600)
    assert not sim.wait_for(lambda s: kubectl.status().get("readyReplicas") == 5, timeout=1.0)
    web4 = sim.get("pods", "default", "web-4")
    assert web4["metadata"]["labels"][REVISION_LABEL] == bad and not is_pod_ready(web4)
    code, out, _ = kubectl("delete", "pod", "web-4")
    assert code == 0 and 'pod "web-4" deleted' in out
    assert sim.wait_for(lambda s: kubectl.status().get("readyReplicas") == 5, timeout=15)
    code, out, _ = kubectl("rollout", "status", "sts/web", "--timeout=10s")
    assert code == 0 and "partitioned roll out complete: 5 new pods have been updated..." in out


def test_rollout_restart_rolls_every_pod(start: Callable[..., Env]) -> None:
    kubectl = start("healthy")
    before = kubectl.status()["updateRevision"]
    code, out, err = kubectl("rollout", "restart", "sts/web")
    assert code == 0 and "statefulset.apps/web restarted" in out, err
    assert kubectl.sim.wait_for(
        lambda s: (
            kubectl.status().get("currentRevision") == kubectl.status().get("updateRevision") != before
            and kubectl.status().get("readyReplicas") == 3
        ),
        timeout=20,
    )
    sts = kubectl.sim.get("statefulsets", "default", "web")
    assert "kubectl.kubernetes.io/restartedAt" in sts["spec"]["template"]["metadata"]["annotations"]


def test_scale_up_and_down(start: Callable[..., Env]) -> None:
    kubectl = start("healthy")
    code, out, err = kubectl("scale", "sts/web", "--replicas=5")
    assert code == 0 and "scaled" in out, err
    assert kubectl.sim.wait_for(lambda s: kubectl.status().get("readyReplicas") == 5, timeout=15)
    kubectl("scale", "sts/web", "--replicas=2")
    assert kubectl.sim.wait_for(
        lambda s: len(s.list("pods", "default")) == 2 and kubectl.status().get("replicas") == 2, timeout=15
    )
    assert {p["metadata"]["name"] for p in kubectl.sim.list("pods", "default")} == {"web-0", "web-1"}
    assert len(kubectl.sim.list("pvc", "default")) == 5  # Retain: claims stay


def test_c38_rollout_status_messages(start: Callable[..., Env]) -> None:
    kubectl = start("partition-canary", 5.0)
    code, out, _ = kubectl("rollout", "status", "sts/web", "--timeout=5s")
    assert code == 0 and "partitioned roll out complete: 2 new pods have been updated..." in out
    code, _, _ = kubectl(
        "patch",
        "sts",
        "web",
        "--type=merge",
        "-p",
        '{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}',
    )
    assert code == 0
    code, out, _ = kubectl("rollout", "status", "sts/web", "--timeout=20s")
    assert code == 0
    assert "Waiting for partitioned roll out to finish: 2 out of 4 new pods have been updated..." in out
    assert out.splitlines()[-1] == "partitioned roll out complete: 4 new pods have been updated..."
    kubectl2 = start("ondelete")
    code, _, err = kubectl2("rollout", "status", "sts/web", "--watch=false")
    assert code != 0 and "rollout status is only available for RollingUpdate strategy type" in err


def test_c39_rollout_undo_selection_and_skip(start: Callable[..., Env]) -> None:
    # The test kubectl is 1.33: it encodes `creationTimestamp: null` into the template bytes it compares,
    # so the byte skip-check only matches revisions written in the same (≤1.33) format (§9.2).
    kubectl = start("healthy", version="1.33.1")
    first = kubectl.status()["updateRevision"]
    kubectl("set", "image", "sts/web", "web=nginx:1.28")
    assert kubectl.sim.wait_for(
        lambda s: (
            kubectl.status().get("updateRevision") != first
            and kubectl.status().get("currentRevision") == kubectl.status().get("updateRevision")
        ),
        timeout=20,
    )
    second = kubectl.status()["updateRevision"]
    code, out, _ = kubectl("rollout", "undo", "sts/web")
    assert code == 0 and "statefulset.apps/web rolled back" in out
    assert kubectl.sim.wait_for(lambda s: kubectl.status().get("updateRevision") == first, timeout=10)
    numbers = {
        r["metadata"]["name"]: r["revision"] for r in kubectl.sim.list("controllerrevisions", "default")
    }
    assert numbers == {first: 3, second: 2}
    code, out, _ = kubectl("rollout", "undo", "sts/web", "--to-revision=3")
    assert code == 0 and "skipped rollback (current template already matches revision 3)" in out
    code, out, _ = kubectl("rollout", "undo", "sts/web")
    assert code == 0 and "rolled back" in out
    assert kubectl.sim.wait_for(lambda s: kubectl.status().get("updateRevision") == second, timeout=10)


def test_c38_rolling_update_without_rolling_update_block(start: Callable[..., Env]) -> None:
    kubectl = start("healthy")
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "plain", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "serviceName": "plain",
            "selector": {"matchLabels": {"app": "plain"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": {"app": "plain"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        },
    }  # fmt: skip
    kubectl.sim.apply_manifest(manifest)
    assert kubectl.sim.wait_for(
        lambda s: s.get("sts", "default", "plain").get("status", {}).get("readyReplicas") == 2, timeout=10
    )
    revision = kubectl.sim.get("sts", "default", "plain")["status"]["currentRevision"]
    code, out, _ = kubectl("rollout", "status", "sts/plain", "--timeout=5s")
    assert code == 0 and f"statefulset rolling update complete 2 pods at revision {revision}..." in out


def test_rollout_history_of_one_revision_shows_its_template(start: Callable[..., Env]) -> None:
    kubectl = start("forced-rollback-reverted")
    code, out, err = kubectl("rollout", "history", "sts/web", "--revision=2")
    assert code == 0, err
    assert "statefulset.apps/web with revision #2" in out and "echo starting; exit 1" in out
