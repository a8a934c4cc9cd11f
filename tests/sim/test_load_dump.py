"""`sim serve --load`: a loaded dump behaves like the cluster it came from (issue 19, items 1-5).

Dumps are `stsfix collect` files of the bundled scenarios (compared with what the live scenario
then does) and hand-written kubectl-style Lists: objects as written in manifests (not defaulted),
a Node after the pods bound to it, a dump taken mid-rollout, and revisions that failed in ways the
spec does not show.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import rollout_undo
from stsfix.sim.store.objects import REVISION_LABEL, is_pod_ready, parse_ts
from tests.conftest import run_cli

Obj = dict[str, Any]


def collected(scenario: str, tmp_path: Path, **kw: Any) -> tuple[SimCluster, Path]:
    """The scenario in stepped time, and `stsfix collect web` of it."""
    live = SimCluster([scenario], autorun=False, **kw).start()
    kubeconfig = live.write_kubeconfig(tmp_path / f"{scenario}.kubeconfig")
    path = tmp_path / f"{scenario}.yaml"
    done = run_cli("collect", "web", "-n", "default", "--save", str(path), "--kubeconfig", str(kubeconfig))
    assert done.code == 0, done
    live.server.stop()
    return live, path


def load(*paths: Path, **kw: Any) -> SimCluster:
    return SimCluster(serve=False, autorun=False, loads=list(paths), **kw).start()


def pods(sim: SimCluster) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in sim.list("pods", "default")}


def view(sim: SimCluster) -> dict[str, tuple[str, bool, str]]:
    """Per pod: phase, Ready, revision."""
    return {
        n: (p["status"].get("phase", ""), is_pod_ready(p), p["metadata"]["labels"].get(REVISION_LABEL, ""))
        for n, p in pods(sim).items()
    }


def counters(sim: SimCluster) -> tuple[object, ...]:
    status = sim.get("statefulsets", "default", "web")["status"]
    keys = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "currentRevision", "updateRevision")
    return tuple(status.get(k) for k in keys)


def revisions(sim: SimCluster) -> dict[str, int]:
    return {r["metadata"]["name"]: r["revision"] for r in sim.list("controllerrevisions", "default")}


# -- collect bundles of the scenarios, loaded and compared with the live scenario ---------------------
@pytest.mark.parametrize(
    "scenario",
    ["healthy", "forced-rollback", "forced-rollback-reverted", "image-pull", "never-ready", "partition-canary",
     "ondelete", "stuck-terminating", "unschedulable", "rollout-in-progress"],
)  # fmt: skip
def test_a_collected_scenario_loads_as_the_cluster_it_came_from_and_moves_on_like_it(
    scenario: str, tmp_path: Path
) -> None:
    live, path = collected(scenario, tmp_path)
    dumped = yaml.safe_load(path.read_text())
    loaded = load(path)
    # The dump defines the cluster: its clock, version, nodes, revisions and pods, nothing added.
    assert loaded.clock.now() == parse_ts(dumped["metadata"]["annotations"]["stsfix.dev/collected-at"])
    assert str(loaded.version) == str(live.version)
    assert sorted(n["metadata"]["name"] for n in loaded.list("nodes")) == sorted(
        n["metadata"]["name"] for n in live.list("nodes")
    )
    loaded.settle()
    assert revisions(loaded) == revisions(live)
    assert view(loaded) == view(live) and counters(loaded) == counters(live)
    assert {n: p["metadata"]["uid"] for n, p in pods(loaded).items()} == {
        n: p["metadata"]["uid"] for n, p in pods(live).items()
    }
    # Both then run the same ten minutes: the loaded copy does what the live cluster does.
    for sim in (live, loaded):
        sim.advance(600)
    assert view(loaded) == view(live)
    assert counters(loaded) == counters(live)
    assert revisions(loaded) == revisions(live)


def test_repairs_rehearsed_on_a_loaded_forced_rollback_go_as_on_the_live_one(tmp_path: Path) -> None:
    live, path = collected("forced-rollback", tmp_path)
    loaded = load(path)
    for sim in (live, loaded):
        rollout_undo(sim, "default", "web")  # re-uses revision 1, re-numbered 3: no new revision
        sim.advance(60)
        assert sorted(revisions(sim).values()) == [2, 3] and len(revisions(sim)) == 2
        assert not is_pod_ready(pods(sim)["web-4"]), "OrderedReady keeps the broken pod (#67250)"
        sim.delete("pods", "default", "web-4")
        assert sim.run_until(lambda s: s.get("sts", "default", "web")["status"].get("readyReplicas") == 5,
                             max_seconds=600)  # fmt: skip
    assert view(loaded) == {n: (p, r, rev) for n, (p, r, rev) in view(live).items()}


# -- hand-written dumps: manifests as written, statuses as a cluster reports them ----------------------
def _as_written(live: SimCluster) -> list[Obj]:
    """The live objects with their specs as a user wrote them (no server defaults), statuses kept."""
    manifest = next(m for m in yaml.safe_load(Path("stsfix/sim/scenarios/forced-rollback.yaml").read_text())
                    ["manifests"] if m["kind"] == "StatefulSet")  # fmt: skip
    sts = copy.deepcopy(live.get("statefulsets", "default", "web"))
    template = copy.deepcopy(manifest["spec"]["template"])
    template["spec"]["containers"][0].update(copy.deepcopy(
        {k: v for k, v in sts["spec"]["template"]["spec"]["containers"][0].items() if k in ("command", "image")}))
    sts["spec"] = {**copy.deepcopy(manifest["spec"]), "template": template}  # fmt: skip
    out: list[Obj] = [sts]
    for pod in live.list("pods", "default"):
        pod = copy.deepcopy(pod)
        for c in pod["spec"]["containers"]:
            for key in ("terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "resources"):
                c.pop(key, None)
        for key in ("dnsPolicy", "schedulerName", "securityContext", "enableServiceLinks", "restartPolicy"):
            pod["spec"].pop(key, None)
        out.append(pod)
    return out + live.list("controllerrevisions", "default") + live.list("nodes")


def _write(tmp_path: Path, items: list[Obj], name: str = "dump.yaml", collected_at: str = "") -> Path:
    path = tmp_path / name
    meta = {"annotations": {"stsfix.dev/collected-at": collected_at}} if collected_at else {}
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "metadata": meta, "items": items}))
    return path


def test_a_dump_written_without_defaults_keeps_its_revisions_through_a_partition_change(tmp_path: Path) -> None:
    live = SimCluster(["forced-rollback"], serve=False, autorun=False).start()
    loaded = load(_write(tmp_path, _as_written(live)))
    loaded.settle()
    before = {n: p["metadata"]["uid"] for n, p in pods(loaded).items()}
    assert revisions(loaded) == revisions(live), "the loaded template hashes to its revision"
    loaded.patch("statefulsets", "default", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 4}}}})
    loaded.advance(120)
    assert revisions(loaded) == revisions(live), "a partition change makes no revision"
    after = {n: p["metadata"]["uid"] for n, p in pods(loaded).items()}
    assert after == before, "and restarts no pod"
    # A patch to a loaded pod is admitted (its spec was defaulted at load, so it is not an illegal change).
    patched = loaded.patch("pods", "default", "web-0", {"metadata": {"labels": {"checked": "yes"}}})
    assert patched["metadata"]["labels"]["checked"] == "yes"


def test_rollout_undo_on_a_dump_written_without_defaults_renumbers_the_old_revision(tmp_path: Path) -> None:
    live = SimCluster(["forced-rollback"], serve=False, autorun=False).start()
    loaded = load(_write(tmp_path, _as_written(live)))
    old = {number: name for name, number in revisions(loaded).items()}
    rollout_undo(loaded, "default", "web")
    loaded.settle()
    assert revisions(loaded) == {old[1]: 3, old[2]: 2}


def _node(name: str, *, ready: str = "True", unschedulable: bool = False, capacity_only: bool = False) -> Obj:
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
    status: Obj = {"capacity": resources, "conditions": [
        {"type": "Ready", "status": ready, "lastTransitionTime": "2026-05-01T10:00:00Z",
         "lastHeartbeatTime": "2026-05-01T10:00:00Z", "reason": "NodeStatusUnknown" if ready == "Unknown" else "KubeletReady"}]}  # fmt: skip
    if not capacity_only:
        status["allocatable"] = dict(resources)
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"unschedulable": True} if unschedulable else {}, "status": status}  # fmt: skip


def test_a_node_after_the_pods_on_it_keeps_its_state_and_cordon(tmp_path: Path) -> None:
    live = SimCluster(["stuck-terminating"], serve=False, autorun=False).start()
    lost = pods(live)["web-1"]["spec"]["nodeName"]
    nodes = [_node(n["metadata"]["name"], ready="Unknown" if n["metadata"]["name"] == lost else "True",
                   unschedulable=n["metadata"]["name"] == lost) for n in live.list("nodes")]  # fmt: skip
    items = [live.get("sts", "default", "web"), *live.list("pods", "default"),
             *live.list("controllerrevisions", "default"), *nodes]  # fmt: skip
    loaded = load(_write(tmp_path, items))
    node = loaded.get("nodes", "", lost)
    assert node["status"]["conditions"][0]["status"] == "Unknown" and node["spec"]["unschedulable"] is True
    loaded.advance(600)
    web1 = pods(loaded)["web-1"]
    assert web1["metadata"].get("deletionTimestamp"), "still Terminating on the lost node"
    loaded.delete("pods", "default", "web-1", grace_seconds=0)
    assert loaded.run_until(lambda s: "web-1" in pods(s) and is_pod_ready(pods(s)["web-1"]), max_seconds=600)
    assert pods(loaded)["web-1"]["spec"]["nodeName"] != lost, "the cordoned node takes no new pod"


def test_the_dump_defines_nodes_capacity_storage_classes_and_clock(tmp_path: Path) -> None:
    sts = yaml.safe_load(Path("stsfix/sim/scenarios/healthy.yaml").read_text())["manifests"]
    sts = copy.deepcopy(next(m for m in sts if m["kind"] == "StatefulSet"))
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = "fast-ssd"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "other", "namespace": "default", "creationTimestamp": "2026-05-01T09:00:00Z"},
             "spec": {"storageClassName": "slow-hdd", "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    path = _write(tmp_path, [sts, claim, _node("n1", capacity_only=True)])
    loaded = load(path)
    assert loaded.clock.now() == parse_ts("2026-05-01T10:00:00Z"), "the newest timestamp in the dump"
    assert [n["metadata"]["name"] for n in loaded.list("nodes")] == ["n1"], "no default nodes"
    assert loaded.get("nodes", "", "n1")["status"]["allocatable"]["cpu"] == "4"
    assert loaded.run_until(lambda s: s.get("sts", "default", "web")["status"].get("readyReplicas") == 3,
                            max_seconds=600), "capacity counts as allocatable; fast-ssd exists"  # fmt: skip
    assert loaded.get("pvc", "default", "other")["status"]["phase"] == "Bound"
    extra = load(path, add_nodes=2, storage_classes=["premium"])
    assert sorted(n["metadata"]["name"] for n in extra.list("nodes")) == ["n1", "sim-worker", "sim-worker2"]
    assert set(extra.scheduler.storage_classes) == {"fast-ssd", "slow-hdd", "premium"}


def test_a_dump_taken_mid_rollout_carries_on(tmp_path: Path) -> None:
    live = SimCluster(["rollout-in-progress"], serve=False, autorun=False).start()

    def starting(s: SimCluster) -> bool:  # web-2 updated and Running, its readiness probe not passed yet
        pod, sts = pods(s).get("web-2"), s.get("sts", "default", "web")
        return bool(pod) and pod["metadata"]["labels"][REVISION_LABEL] == sts["status"]["updateRevision"] and (
            pod["status"].get("phase") == "Running" and not is_pod_ready(pod))

    assert live.run_until(starting, max_seconds=600)
    items = [live.get("sts", "default", "web"), *live.list("pods", "default"),
             *live.list("controllerrevisions", "default"), *live.list("nodes")]  # fmt: skip
    loaded = load(_write(tmp_path, items, collected_at=live.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")))
    loaded.settle()
    assert starting(loaded), "the loaded status stands until the kubelet has a reason to change it"
    loaded.advance(20)
    assert is_pod_ready(pods(loaded)["web-2"]), "then its readiness probe passes, as on a real node"

    def done(s: SimCluster) -> bool:
        status = s.get("sts", "default", "web")["status"]
        return status.get("updatedReplicas") == 5 and status.get("readyReplicas") == 5

    assert loaded.run_until(done, max_seconds=900) and live.run_until(done, max_seconds=900)
    assert counters(loaded) == counters(live)


# -- revisions that failed in the dump fail the same way when their pods are recreated ----------------
_GOOD = {"name": "db", "image": "postgres:16"}
_FAILURES: dict[str, tuple[Obj, Obj, str]] = {
    # container spec of the bad revision, the container status the dump shows, the reason expected again
    "a tag that does not exist": (
        {"name": "db", "image": "postgres:16.99"},
        {"state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "postgres:16.99": '
          'ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image '
          '"docker.io/library/postgres:16.99": docker.io/library/postgres:16.99: not found'}}, "restartCount": 0},
        "ImagePullBackOff"),
    "a missing Secret": (
        {"name": "db", "image": "postgres:16", "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "pw"}}}]},
        {"state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "pg" not found'}}, "restartCount": 0},
        "CreateContainerConfigError"),
    "a database with no password": (
        {"name": "db", "image": "postgres:16", "env": [{"name": "POSTGRES_HOST_AUTH_METHOD", "value": "md5"}]},
        {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 6, "lastState": {"terminated": {
          "exitCode": 1, "reason": "Error", "startedAt": "2026-05-01T09:58:00Z", "finishedAt": "2026-05-01T09:58:02Z"}}},
        "CrashLoopBackOff"),
    "a probe on the wrong port": (
        {"name": "db", "image": "postgres:16", "readinessProbe": {"tcpSocket": {"port": 5433}, "periodSeconds": 5}},
        {"state": {"running": {"startedAt": "2026-05-01T09:40:00Z"}}, "ready": False, "restartCount": 0},
        "not Ready"),
}  # fmt: skip


def _failed_revision_dump(tmp_path: Path, bad: Obj, bad_status: Obj) -> tuple[SimCluster, Path]:
    """A 3-replica set whose update to `bad` (partition 2: db-2 only) left db-2 failing: made live, then
    db-2's status edited to show the failure (the spec alone looks fine to the simulated kubelet)."""
    live = SimCluster(serve=False, autorun=False, nodes=[{"name": "n1"}], start=parse_ts("2026-05-01T09:00:00Z")).start()
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
           "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [_GOOD]}}}}  # fmt: skip
    live.apply_manifest(sts)
    assert live.run_until(lambda s: s.get("sts", "default", "db")["status"].get("readyReplicas") == 3)
    live.patch("statefulsets", "default", "db", {"spec": {
        "updateStrategy": {"rollingUpdate": {"partition": 2}}, "template": {"spec": {"containers": [bad]}}}})  # fmt: skip
    live.run_until(lambda s: pods(s).get("db-2", {}).get("metadata", {}).get("labels", {}).get(REVISION_LABEL)
                   == s.get("sts", "default", "db")["status"].get("updateRevision"))  # fmt: skip
    live.advance(3000 - (live.clock.now() - parse_ts("2026-05-01T09:00:00Z")).total_seconds())
    items = [copy.deepcopy(o) for o in (live.get("sts", "default", "db"), *live.list("pods", "default"),
                                        *live.list("controllerrevisions", "default"), *live.list("nodes"))]  # fmt: skip
    pod = next(o for o in items if o["kind"] == "Pod" and o["metadata"]["name"] == "db-2")
    pod["status"]["phase"] = "Running" if "running" in bad_status["state"] or bad_status["restartCount"] else "Pending"
    pod["status"]["containerStatuses"] = [{"name": "db", "image": bad["image"], "imageID": "", **bad_status}]
    for cond in pod["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond["status"] = "False"
    return live, _write(tmp_path, items, collected_at="2026-05-01T10:00:00Z")


def _reason(pod: Obj) -> str:
    cs = pod["status"]["containerStatuses"][0]
    return ((cs.get("state") or {}).get("waiting") or {}).get("reason") or ("not Ready" if not cs["ready"] else "Ready")


@pytest.mark.parametrize("failure", sorted(_FAILURES))
def test_a_pod_recreated_from_a_revision_that_failed_in_the_dump_fails_the_same_way(
    failure: str, tmp_path: Path
) -> None:
    bad, bad_status, expected = _FAILURES[failure]
    _, path = _failed_revision_dump(tmp_path, bad, bad_status)
    loaded = load(path)
    bad_revision = pods(loaded)["db-2"]["metadata"]["labels"][REVISION_LABEL]
    assert any(dict(d.rule.labels).get(REVISION_LABEL) == bad_revision for d in loaded.derived_rules), (
        "a behaviour rule derived at load")
    loaded.advance(60)
    assert _reason(pods(loaded)["db-2"]) == expected, "the loaded pod goes on failing"
    # Deleting without reverting: recreated from the same revision, and it fails the same way.
    loaded.delete("pods", "default", "db-2")
    loaded.advance(300)
    again = pods(loaded)["db-2"]
    assert again["metadata"]["labels"][REVISION_LABEL] == bad_revision and _reason(again) == expected
    # Revert, then delete: the pod comes back from the good revision, Ready.
    rollout_undo(loaded, "default", "db")
    loaded.advance(30)
    loaded.delete("pods", "default", "db-2")
    assert loaded.run_until(lambda s: s.get("sts", "default", "db")["status"].get("readyReplicas") == 3,
                            max_seconds=900)  # fmt: skip
    assert pods(loaded)["db-2"]["metadata"]["labels"][REVISION_LABEL] != bad_revision


# -- `stsfix sim serve --load` -----------------------------------------------------------------------
def test_sim_serve_reports_what_the_dump_implies_on_stderr_then_serves(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    bad, bad_status, _ = _FAILURES["a missing Secret"]
    _, path = _failed_revision_dump(tmp_path, bad, bad_status)
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stsfix", "sim", "serve", "--load", str(path), "--add-nodes", "1",
         "--storage-class", "premium", "--kubeconfig-out", str(kubeconfig), "--speed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().split()[0] == "ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    err = proc.stderr.read() if proc.stderr else ""
    assert "loaded: Kubernetes 1.34.0; clock at 2026-05-01T10:00:00Z; 2 node(s) (n1, sim-worker)" in err
    assert "storage classes premium, standard" in err
    assert "behaviour rule (derived): default: pods of revision db-" in err and "config-error" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("kind: List\nitems: [{kind: Pod}]\n", "a Pod in the dump has no metadata.name", id="no name"),
        pytest.param("items: [1, 2]\n", "expected Kubernetes objects", id="not objects"),
        pytest.param("kind: [\n", "not valid YAML or JSON", id="not yaml"),
    ],
)
def test_sim_serve_refuses_a_bad_dump_in_one_line(text: str, message: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stsfix.cli.sim import sim_app

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(sim_app, ["serve", "--load", str(path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
