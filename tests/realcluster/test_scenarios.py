"""Every simulator scenario on the real control plane: the same diagnosis, then the repair.

Each scenario of stsfix/sim/scenarios that a real cluster can be in is replayed on the real
StatefulSet controller (v1.34.4 with MaxUnavailableStatefulSet on, so `parallel-maxunavailable`
is stuck here as on 1.35.0, semantics reference §7) and on the simulator modelling that same
version and gate, its clock stopped at the scenario's starting state. `stsfix diagnose
--stuck-after 0s` must give the same exit code, verdict, finding codes (as a set: codes may be
grouped) and playbooks on both. Then the incident is repaired on the real
cluster with the playbook diagnose names (`stsfix playbook run NAME --yes`, as the repair user),
and it must end healthy, or page with the evidence where stsfix cannot fix it (storage). The
apiserver's audit log shows every DELETE: only the pods the repair should delete, each once,
never a claim.

The replays run concurrently, each in its own namespace (they mostly wait for the kwok kubelets),
and each is diagnosed the moment it reaches its starting state, since `rollout-in-progress` moves
on by itself. `stuck-terminating` loses a node (stops its kwok process), so it runs alone, after
all the others: it waits the pod's 30 s grace plus diagnose's 60 s slack in real time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stsfix.cli.sim import parse_feature_gates
from stsfix.errors import ExitCode
from stsfix.sim.cluster import SimCluster
from tests.conftest import run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget, replay
from tests.realcluster.tools import (
    REPAIR,
    carried_out,
    drop_namespace,
    identity_without,
    new_namespace,
    stsfix,
    writes,
)

TIMEOUT = "120s"


@dataclass(frozen=True)
class Repair:
    """How a scenario is repaired: the playbook (None: nothing to repair), its parameters, the
    outcome it ends with, and exactly the pods stsfix deletes, in order."""

    playbook: str | None
    params: tuple[str, ...] = ()
    outcome: str = "done"
    deletes: tuple[str, ...] = ()


_FORCED = ("-p", "stuck_after=0s", "-p", f"timeout={TIMEOUT}")
REPAIRS = {
    "rollout-in-progress": Repair(None),  # first: the longest replay (pods Ready 20 s after start)
    "healthy": Repair("safe-restart", ("-p", f"timeout={TIMEOUT}")),  # the scheduled restart it is for
    "forced-rollback": Repair("forced-rollback", _FORCED, deletes=("web-4",)),
    "forced-rollback-reverted": Repair("forced-rollback", _FORCED, deletes=("web-4",)),
    "image-pull": Repair("forced-rollback", _FORCED, deletes=("web-2",)),
    "never-ready": Repair("forced-rollback", _FORCED, deletes=("web-2",)),
    "unschedulable": Repair("forced-rollback", _FORCED, deletes=("web-2",)),
    # created broken, then fixed: rollback rolls forward to the update revision, deleting web-0
    "parallel-maxunavailable": Repair("forced-rollback", _FORCED, deletes=("web-0",)),
    "pending-pvc": Repair("pvc-pending", ("-p", "stuck_after=0s", "-p", "recheck_after=5s"), outcome="paged"),
    "partition-canary": Repair("canary-partition", ("-p", "soak=5s", "-p", f"timeout={TIMEOUT}")),
    # OnDelete replaces nothing itself: the playbook deletes the outdated (Ready) pods, a canary first
    "ondelete": Repair("ondelete-update", ("-p", f"timeout={TIMEOUT}"), deletes=("web-2", "web-1", "web-0")),
}
#: The order the tests run in: rollout-in-progress last, when it has had time to finish by itself.
ORDER = [name for name in REPAIRS if name != "rollout-in-progress"] + ["rollout-in-progress"]


# -- the simulator's diagnosis, at the scenario's starting state ------------------------------------
Summary = tuple[int, str, frozenset[str], frozenset[str]]


def summary(code: int, body: dict[str, Any]) -> Summary:
    """(exit code, verdict, finding codes, playbooks named) of the one set diagnosed."""
    (item,) = body["items"]
    findings = item["findings"]
    return (code, item["verdict"], frozenset(f["code"] for f in findings),
            frozenset(f["playbook"] for f in findings if f.get("playbook")))  # fmt: skip


def sim_summary(plane: ControlPlane, scenario: str, tmp: Path) -> Summary:
    """diagnose on the simulator modelling the real control plane's version and gates, its clock
    stopped the moment the scenario's starting state holds (the starting state, exactly)."""
    gates = parse_feature_gates(plane.feature_gates)
    with SimCluster(scenarios=[scenario], autorun=False, k8s_version=plane.version, feature_gates=gates) as sim:
        kubeconfig = sim.write_kubeconfig(tmp / f"sim-{scenario}")
        result = run_cli("diagnose", "web", "-n", "default", "--stuck-after", STUCK_AFTER,
                         "--kubeconfig", str(kubeconfig), "-o", "json")  # fmt: skip
    assert result.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), result
    return summary(result.code, result.json())


# -- the replays, concurrently, each diagnosed at once ---------------------------------------------
#: A scenario still moving (rollout-in-progress) can be caught with a pod for a second between being
#: created and running, which --stuck-after 0s counts; so a diagnosis that differs is taken again
#: this many times, a second apart. A state that really differs keeps differing.
SAMPLES = 3


@dataclass
class Replayed:
    name: str
    namespace: str
    seconds: float = 0.0
    samples: list[tuple[Summary, dict[str, Any]]] = field(default_factory=list)  # diagnose's, in order
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # as the last diagnosis saw them

    @property
    def diagnosis(self) -> dict[str, Any]:
        return self.samples[-1][1]


def _diagnose_process(plane: ControlPlane, namespace: str) -> tuple[Summary, dict[str, Any]]:
    """diagnose in a process of its own (the in-process runner owns sys.stdout, one at a time)."""
    argv = [sys.executable, "-m", "stsfix", "diagnose", "web", "-n", namespace, "--kubeconfig",
            str(plane.kubeconfig), "--context", "readonly", "--stuck-after", STUCK_AFTER, "-o", "json"]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": os.devnull}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode in (ExitCode.OK, ExitCode.ACTION_NEEDED), done.stderr[-2000:]
    body = json.loads(done.stdout)
    return summary(done.returncode, body), body


class Replays:
    """Every scenario replayed in its own namespace on a few threads, started at once; each is
    diagnosed the moment it reaches its starting state and compared with the simulator's diagnosis
    (computed meanwhile, in the test's thread, see `expect`)."""

    def __init__(self, plane: ControlPlane, names: list[str]):
        self.plane = plane
        self.namespaces: list[str] = []
        self.lock = threading.Lock()
        self.expected: dict[str, Summary] = {}
        self.known = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="replay")
        self.futures: dict[str, Future[Replayed]] = {n: self.pool.submit(self._run, n) for n in names}

    def expect(self, tmp: Path) -> None:
        try:
            self.expected = {name: sim_summary(self.plane, name, tmp) for name in self.futures}
        finally:
            self.known.set()

    def _run(self, name: str) -> Replayed:
        namespace = new_namespace(self.plane)
        with self.lock:
            self.namespaces.append(namespace)
        target = RealTarget(self.plane, namespace)
        out = Replayed(name, namespace, seconds=replay(name, target))
        self.known.wait(timeout=300)
        for attempt in range(SAMPLES):
            out.samples.append(_diagnose_process(self.plane, namespace))
            out.pods = {p["metadata"]["name"]: p for p in target.list("pods", namespace)}
            if out.samples[-1][0] == self.expected.get(name) or attempt == SAMPLES - 1:
                return out
            time.sleep(1.0)
        return out

    def get(self, name: str) -> Replayed:
        return self.futures[name].result(timeout=500)

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.known.set()
        self.pool.shutdown(wait=True)
        for namespace in self.namespaces:
            drop_namespace(self.plane, namespace)
        self.namespaces.clear()


_active: list[Replays] = []


@pytest.fixture(scope="module")
def replays(
    control_plane: ControlPlane, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replays]:
    selected = {item.callspec.params["scenario"] for item in request.session.items
                if hasattr(item, "callspec") and item.module is request.module and "scenario" in item.callspec.params}  # fmt: skip
    started = Replays(control_plane, [name for name in REPAIRS if name in selected])
    _active.append(started)
    try:
        started.expect(tmp_path_factory.mktemp("sim"))
        yield started
    finally:
        started.close()
        _active.remove(started)


def assert_same_diagnosis(scenario: str, real: Summary, expected: Summary, body: dict[str, Any], samples: str = "") -> None:
    assert real == expected, (
        f"{scenario}: real {real} != simulator {expected}{samples}\nreal findings: "
        + json.dumps(body["items"][0]["findings"], indent=1)[:3000]
    )


# -- the end state ---------------------------------------------------------------------------------
def final_diagnosis(kubeconfig: str, namespace: str) -> dict[str, Any]:
    after = stsfix(kubeconfig, namespace, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json",
                   context="readonly")  # fmt: skip
    assert after.code == ExitCode.OK, after
    return after.json()["items"][0]


def wait_complete(target: RealTarget, *, seconds: float = 120.0) -> dict[str, Any]:
    """Every replica Ready at the update revision, as the controller reports it; under RollingUpdate
    currentRevision promoted too (OnDelete promotes it only from 1.37, §6.3)."""
    deadline = time.monotonic() + seconds
    while True:
        sts = target.get("statefulsets", target.namespace, "web") or {}
        status, spec = sts.get("status") or {}, sts.get("spec") or {}
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        done = (
            status.get("observedGeneration") == sts["metadata"]["generation"]
            and (status.get("currentRevision") == status.get("updateRevision") or not rolling)
            and status.get("readyReplicas") == spec.get("replicas") == status.get("updatedReplicas")
        )
        if done or time.monotonic() > deadline:
            assert done, status
            return sts
        time.sleep(1.0)


def wait_moved_on(target: RealTarget, replayed: Replayed, *, seconds: float = 120.0) -> None:
    """More pods Ready at the update revision than when diagnose called the rollout progressing."""
    (item,) = replayed.diagnosis["items"]
    update = item["updateRevision"]["name"] if isinstance(item.get("updateRevision"), dict) else item.get("updateRevision")
    updated = sum(1 for p in replayed.pods.values()
                  if p["metadata"]["labels"].get("controller-revision-hash") == update and is_ready(p))  # fmt: skip
    deadline = time.monotonic() + seconds
    while True:
        now = sum(1 for p in target.list("pods", target.namespace)
                  if p["metadata"]["labels"].get("controller-revision-hash") == update and is_ready(p))  # fmt: skip
        if now > updated or time.monotonic() > deadline:
            assert now > updated, (now, updated)
            return
        time.sleep(1.0)


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def assert_no_claim_deleted(plane: ControlPlane, namespace: str) -> None:
    claims = [e for e in writes(plane, namespace) if e.get("verb") == "delete"
              and (e.get("objectRef") or {}).get("resource") == "persistentvolumeclaims"]  # fmt: skip
    assert claims == [], claims


# -- the tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ORDER)
def test_the_scenario_is_diagnosed_as_on_the_simulator_and_repaired_by_its_playbook(
    control_plane: ControlPlane, replays: Replays, scenario: str, tmp_path: Path
) -> None:
    replayed = replays.get(scenario)
    print(f"{scenario}: replayed in {replayed.seconds:.1f}s, diagnosed {len(replayed.samples)} time(s)")
    ns, kubeconfig = replayed.namespace, str(control_plane.kubeconfig)
    real = replayed.samples[-1][0]
    assert_same_diagnosis(scenario, real, replays.expected[scenario], replayed.diagnosis,
                          f" (samples: {[s for s, _ in replayed.samples]})")  # fmt: skip
    repair = REPAIRS[scenario]
    named = real[3]
    assert named <= {repair.playbook}, (scenario, named)
    target = RealTarget(control_plane, ns)
    start = len(control_plane.audit_events())

    if repair.playbook is not None:
        extra: tuple[str, ...] = ("-p", f"record={tmp_path / 'record.yaml'}") if repair.outcome == "paged" else ()
        run = stsfix(kubeconfig, ns, "playbook", "run", repair.playbook, "-p", "statefulset=web",
                     *repair.params, *extra, "--yes", "-o", "json")  # fmt: skip
        body = run.json()
        assert body["outcome"] == repair.outcome, (run.code, [(s["id"], s["exitCode"]) for s in body["steps"]], body["errors"])
        if repair.outcome == "paged":
            assert run.code == ExitCode.ACTION_NEEDED and "pvc-pending" in body["errors"][0]["message"], body["errors"]
            assert "fast-ssd" in (tmp_path / "record.yaml").read_text()  # the evidence for the storage team
        else:
            assert run.code == ExitCode.OK, run

    if repair.playbook is None:  # progressing: it moves on by itself, and stsfix touched nothing
        wait_moved_on(target, replayed)
        assert [e for e in writes(control_plane, ns, since=start) if e["user"]["username"] == REPAIR] == []
    elif repair.outcome == "done":
        wait_complete(target)
        healed = final_diagnosis(kubeconfig, ns)
        assert (healed["verdict"], [f["code"] for f in healed["findings"]]) == ("complete", ["rollout-complete"]), healed
    trail = writes(control_plane, ns, since=start)
    deleted = carried_out(trail, user=REPAIR, verb="delete", resource="pods")
    assert tuple(deleted) == repair.deletes, deleted
    attempted = {(e.get("objectRef") or {}).get("name") for e in trail if e["user"]["username"] == REPAIR
                 and e.get("verb") == "delete" and "dryRun=All" not in e.get("requestURI", "")}  # fmt: skip
    assert attempted <= set(repair.deletes), attempted  # a refused repeat, too, only for those pods
    if scenario != "ondelete":  # the one playbook that deletes Ready pods, one at a time behind readiness gates
        assert not [n for n in deleted if is_ready(replayed.pods[n])], "stsfix deleted a Ready pod"
    assert_no_claim_deleted(control_plane, ns)


def test_a_pod_stuck_terminating_on_a_lost_node_is_diagnosed_as_on_the_simulator_and_force_deleted(
    control_plane: ControlPlane, real: RealTarget, tmp_path: Path
) -> None:
    for running in list(_active):  # never lose a node under another scenario's pods
        running.close()
    replay("stuck-terminating", real)
    pods = {p["metadata"]["name"]: p for p in real.list("pods", real.namespace)}
    lost = pods["web-1"]["spec"]["nodeName"]
    assert [n for n, p in pods.items() if p["spec"].get("nodeName") == lost] == ["web-1"], (
        "the scheduler put another pod of web on web-1's node", {n: p["spec"].get("nodeName") for n, p in pods.items()}
    )  # fmt: skip
    diagnosis = stsfix(real.kubeconfig, real.namespace, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json",
                       context="readonly")  # fmt: skip
    found = summary(diagnosis.code, diagnosis.json())
    assert_same_diagnosis("stuck-terminating", found, sim_summary(control_plane, "stuck-terminating", tmp_path), diagnosis.json())
    assert found[3] == {"stuck-terminating"}
    assert_force_delete_needs_its_permissions(control_plane, real, tmp_path)
    start = len(control_plane.audit_events())

    run = stsfix(real.kubeconfig, real.namespace, "playbook", "run", "stuck-terminating", "-p", "statefulset=web",
                 "-p", "ordinal=1", "-p", "node_lost_after=30s", "-p", f"timeout={TIMEOUT}", "--yes", "-o", "json")  # fmt: skip
    assert run.code == ExitCode.OK, (run.code, run.json()["steps"], run.json()["errors"])
    wait_complete(real)
    healed = final_diagnosis(real.kubeconfig, real.namespace)
    assert healed["verdict"] == "complete", healed
    trail = writes(control_plane, real.namespace, since=start)
    assert carried_out(trail, user=REPAIR, verb="delete", resource="pods") == ["web-1"]
    replacement = real.get("pods", real.namespace, "web-1") or {}
    assert replacement["metadata"]["uid"] != pods["web-1"]["metadata"]["uid"] and replacement["spec"]["nodeName"] != lost
    assert_no_claim_deleted(control_plane, real.namespace)


def assert_force_delete_needs_its_permissions(plane: ControlPlane, real: RealTarget, tmp_path: Path) -> None:
    """The one repair that needs a lost node, so its RBAC is checked here (test_rbac.py has the rest):
    readonly is refused the DELETE (exit 5); without `list nodes` stsfix cannot prove the node is lost
    and refuses to force-delete; with the manifest as shipped the server dry run passes."""
    args = ("force-delete", "web", "1", "--node-lost-after", "30s", "--dry-run=server", "-o", "json")
    refused = stsfix(real.kubeconfig, real.namespace, *args, context="readonly")
    assert refused.code == ExitCode.CLUSTER_ERROR and 'cannot delete resource "pods"' in refused.stderr, refused
    blind = identity_without(plane, real.namespace, [real.namespace], ("", "nodes", "list"), tmp_path)
    try:
        unproven = run_cli(*args, "-n", real.namespace, "--kubeconfig", blind.kubeconfig)
    finally:
        blind.delete(plane)
    assert unproven.code == ExitCode.REFUSED, unproven
    assert "could not be read, so there is no evidence it is lost" in unproven.stderr, unproven
    allowed = stsfix(real.kubeconfig, real.namespace, *args)
    assert allowed.code == ExitCode.ACTION_NEEDED, allowed
