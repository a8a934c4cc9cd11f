"""kubectl parity gaps of issue 19 (item 7), with every kubectl version this machine has.

Each call behaves as against kube-apiserver v1.34.4 (checked by hand with the same binaries):
`apply`, `create -f`, `diff` and `edit` without `--validate=false` (1.27/1.28 read /openapi/v2),
`drain --disable-eviction` (1.33+ deletes with a protobuf DeleteOptions body), field selectors
(per kind, with the server's two refusal wordings), `wait --for=delete`, `cluster-info` (lists
Services), and `auth whoami` (SelfSubjectReview; 1.27 knows only the beta API, which a 1.34
server no longer serves, so it fails there too).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stsfix.cli.sim import serving_kubelet
from stsfix.sim.cluster import SimCluster
from tests.sim.kubectl import kubectl_versions, run_version

VERSIONS = kubectl_versions()
pytestmark = [pytest.mark.kubectl, pytest.mark.skipif(not VERSIONS, reason="no versioned kubectl here")]

MANIFEST = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: extra, namespace: default}
spec:
  serviceName: extra
  replicas: 1
  selector: {matchLabels: {app: extra}}
  template:
    metadata: {labels: {app: extra}}
    spec:
      containers: [{name: a, image: "nginx:1.27"}]
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimCluster]:
    cluster = SimCluster(["healthy"], speed=60.0, tls=True, kubelet=serving_kubelet(60.0)).start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=VERSIONS, ids=[v for v, _ in VERSIONS])
def kubectl(request: pytest.FixtureRequest, sim: SimCluster, tmp_path: Path):  # type: ignore[no-untyped-def]
    version, argv = request.param
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        done = run_version(argv, kubeconfig, tmp_path / "cache", *args, env=env)
        return done.returncode, done.stdout, done.stderr

    def start(*args: str) -> subprocess.Popen[str]:
        cmd = [*argv, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(KUBECACHEDIR=str(tmp_path / "cache"), HOME=str(tmp_path))
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    run.version = version  # type: ignore[attr-defined]
    run.start = start  # type: ignore[attr-defined]
    return run


def test_apply_create_diff_and_edit_validate_on_the_server(kubectl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "extra.yaml"
    manifest.write_text(MANIFEST)
    code, out, err = kubectl("create", "-f", str(manifest), "--dry-run=server")
    assert code == 0 and "statefulset.apps/extra created (server dry run)" in out, err
    code, out, err = kubectl("diff", "-f", str(manifest))
    assert code == 1 and "+  name: extra" in out, err  # 1: there are differences (a new object)
    code, out, err = kubectl("apply", "-f", str(manifest))
    assert code == 0 and "statefulset.apps/extra created" in out, err
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 1/replicas: 2/' \"$1\"\n")
    editor.chmod(0o755)
    code, out, err = kubectl("edit", "sts", "extra", env={"KUBE_EDITOR": str(editor)})
    assert code == 0 and "statefulset.apps/extra edited" in out, err
    code, out, err = kubectl("delete", "-f", str(manifest))
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        pytest.param(("pods", "--field-selector=spec.restartPolicy=Always"), "", id="pod spec.restartPolicy"),
        pytest.param(("pods", "--field-selector=spec.hostNetwork=false"), "", id="pod spec.hostNetwork"),
        pytest.param(("pods", "--field-selector=status.phase!=Failed"), "", id="pod status.phase"),
        pytest.param(("events", "--field-selector=reportingComponent=kubelet"), "", id="event reportingComponent"),
        pytest.param(("nodes", "--field-selector=spec.unschedulable=false"), "", id="node spec.unschedulable"),
        pytest.param(("pods", "--field-selector=metadata.uid=x"), "field label not supported: metadata.uid",
                     id="pod metadata.uid"),
        pytest.param(("nodes", "--field-selector=metadata.namespace=x"),
                     "field label not supported: metadata.namespace", id="node metadata.namespace"),
        pytest.param(("pvc", "--field-selector=status.phase=Bound"),
                     '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"',
                     id="pvc status.phase"),
        pytest.param(("pods", "--field-selector=nonsense"), "invalid selector: 'nonsense'; can't understand 'nonsense'",
                     id="malformed"),
    ],
)  # fmt: skip
def test_field_selectors_are_accepted_and_refused_per_kind(kubectl, args: tuple[str, ...], refusal: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = kubectl("get", *args, "-o", "name")
    if refusal:
        assert code == 1 and refusal in err
    else:
        assert code == 0, err


def test_drain_without_eviction_deletes_the_pods(kubectl, sim: SimCluster) -> None:  # type: ignore[no-untyped-def]
    node = sim.get("pods", "default", "web-2")["spec"]["nodeName"]
    code, out, err = kubectl("drain", node, "--disable-eviction", "--ignore-daemonsets", "--force", "--timeout=90s")
    assert code == 0 and f"node/{node} drained" in out, err
    code, _, err = kubectl("uncordon", node)
    assert code == 0, err


def test_wait_for_delete_sees_a_pod_deleted_without_waiting(kubectl, sim: SimCluster) -> None:  # type: ignore[no-untyped-def]
    # The clock stands still while kubectl starts: the pod stays Terminating until its watch is
    # open, whatever the machine's load (under `sim serve` it is half a real second, serving_kubelet).
    sim.clock.speed = 0.0
    try:
        code, _, err = kubectl("delete", "pod", "web-0", "--wait=false")
        assert code == 0, err
        before = len(sim.requests)
        waiting = kubectl.start("wait", "--for=delete", "pod/web-0", "--timeout=60s")
        deadline = time.monotonic() + 60  # a bound on failure only, never a timing assertion
        while not [r for r in sim.requests.snapshot()[before:]
                   if r.query.get("watch") == "true" and "metadata.name=web-0" in r.query.get("fieldSelector", "")]:
            assert waiting.poll() is None and time.monotonic() < deadline, "kubectl never watched web-0"
            time.sleep(0.05)
    finally:
        sim.clock.speed = 60.0
        sim.runner.wake()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "pod/web-0 condition met" in out, err
    assert sim.wait_for(lambda s: (p := s.get("pods", "default", "web-0")) is not None
                        and not p["metadata"].get("deletionTimestamp"), timeout=60)  # fmt: skip


def test_cluster_info_and_auth_whoami(kubectl) -> None:  # type: ignore[no-untyped-def]
    code, out, err = kubectl("cluster-info")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)  # 1.27 and 1.28 colour it even when piped
    assert code == 0 and "Kubernetes control plane is running at https://127.0.0.1:" in plain, err
    code, out, err = kubectl("auth", "whoami")
    if kubectl.version == "1.27":
        assert code == 1 and "the selfsubjectreviews API is not enabled in the cluster" in err
    else:
        assert code == 0 and "admin" in out and "system:authenticated" in out, err


def test_the_serving_kubelet_stops_containers_in_half_a_real_second() -> None:
    assert serving_kubelet(60.0).stop_seconds == 30.0 and serving_kubelet(1.0).stop_seconds == 1.0


def test_create_namespace_posts_protobuf_and_is_created(kubectl) -> None:  # type: ignore[no-untyped-def]
    name = "ns-" + kubectl.version.replace(".", "-")
    code, out, err = kubectl("create", "namespace", name)
    assert code == 0 and f"namespace/{name} created" in out, err
    code, out, err = kubectl("get", "namespace", name, "-o", "jsonpath={.metadata.labels}")
    assert code == 0 and f'"kubernetes.io/metadata.name":"{name}"' in out, err
