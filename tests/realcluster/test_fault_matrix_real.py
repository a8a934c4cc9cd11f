"""The cells of the fault matrix that matter most, on the real control plane: rollback, delete-pod and
force-delete under a 409 from a real concurrent patch, a 500, the target pod's node lost mid-repair,
and SIGKILL followed by the same command.

stsfix is a real process with the repair service account's token, talking to the real API server
through tests/realcluster/faultproxy.py (which injects the 500, or lands the concurrent `kubectl
patch` just before stsfix's write so the real server answers 409). The audit log is the record:
every DELETE and PATCH the server carried out, with the pod as the DELETE found it (the audit
policy logs those at RequestResponse). Each cell asserts what the simulated matrix asserts
(tests/reliability/test_fault_matrix.py): every deleted pod was not Ready and off the target
revision (force-delete: the named pod, its node not Ready), no PVC deleted, no pod deleted twice,
healthy or an honest 4/6, and the envelope reports what was done. Six cells, each real seconds: the
rest of the matrix runs on the simulator.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.errors import ExitCode
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.faultproxy import FaultProxy
from tests.realcluster.replay import RealTarget, replay
from tests.reliability import figures
from tests.reliability.harness import Proc, Run, process_env, run, stsfix_argv

SUITE = "fault matrix (real control plane)"
REPAIR = "system:serviceaccount:stsfix:stsfix-repair"


@pytest.fixture(scope="module", autouse=True)
def _figures_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return figures.bind(tmp_path_factory)


class Cell:
    """One cell: a proxy in front of the real API server, a kubeconfig through it, the audit record."""

    def __init__(self, plane: ControlPlane, real: RealTarget, tmp: Path):
        self.plane, self.real, self.tmp = plane, real, tmp
        doc = yaml.safe_load(Path(plane.kubeconfig).read_text())
        token = next(u["user"]["token"] for u in doc["users"] if u["name"] == "repair")
        self.proxy = FaultProxy(plane.server, str(plane.pki / "ca.crt")).start()
        self.kubeconfig = tmp / "through-the-proxy.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "repair",
            "clusters": [{"name": "real", "cluster": {"server": self.proxy.url}}],
            "users": [{"name": "repair", "user": {"token": token}}],
            "contexts": [{"name": "repair", "context": {"cluster": "real", "user": "repair", "namespace": real.namespace}}],
        }))  # fmt: skip
        self.env = process_env(tmp / "home")
        self.mark = len(plane.audit_events())

    def args(self, *words: str) -> list[str]:
        return [*words, "--kubeconfig", str(self.kubeconfig), "-o", "json", "--progress=jsonl", "--timeout", "120s"]

    def stsfix(self, *words: str) -> Run:
        return run(self.args(*words), env=self.env, timeout=300)

    def killed_at(self, kind: str, *words: str) -> Run:
        proc = Proc(stsfix_argv(*self.args(*words)), env=self.env)
        if proc.wait_for(lambda line: line.startswith("{") and '"event": "step"' in line and f'"kind": "{kind}"' in line):
            proc.signal(signal.SIGKILL)
        return proc.finish()

    def writes(self, since: int | None = None, until: int | None = None) -> list[dict[str, Any]]:
        """The writes of the repair service account the API server carried out (2xx), in order,
        between two positions of the audit log (default: since the cell began)."""
        out = []
        for e in self.plane.audit_events()[self.mark if since is None else since : until]:
            ref = e.get("objectRef") or {}
            code = (e.get("responseStatus") or {}).get("code", 0)
            if (e.get("user") or {}).get("username") != REPAIR or ref.get("namespace") != self.real.namespace:
                continue
            if e.get("stage") == "ResponseComplete" and 200 <= code < 300 and "dryRun" not in e.get("requestURI", ""):
                out.append(e)
        return out

    def stop(self) -> None:
        self.proxy.stop()


@pytest.fixture
def cell(control_plane: ControlPlane, real: RealTarget, tmp_path: Path) -> Iterator[Cell]:
    made = Cell(control_plane, real, tmp_path)
    try:
        yield made
    finally:
        made.stop()


def _deletions(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in writes if e["verb"] == "delete" and e["objectRef"].get("resource") == "pods"
            and not e["objectRef"].get("subresource")]  # fmt: skip


def _spec_patches(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in writes if e["verb"] == "patch" and e["objectRef"].get("resource") == "statefulsets"
            and "spec" in (e.get("requestObject") or {})]  # fmt: skip


def _applied(doc: Any) -> int:
    if isinstance(doc, list):
        return sum(_applied(v) for v in doc)
    if not isinstance(doc, dict):
        return 0
    own = int({"index", "kind", "status"} <= doc.keys() and doc["status"] == "applied")
    return own + sum(_applied(v) for v in doc.values())


def _healthy(real: RealTarget) -> bool:
    sts = real.get("statefulsets", real.namespace, "web") or {}
    status = sts.get("status") or {}
    if status.get("observedGeneration", 0) < sts["metadata"]["generation"] or not status.get("updateRevision"):
        return False
    pods = real.list("pods", real.namespace)
    ready = [p for p in pods if not p["metadata"].get("deletionTimestamp")
             and p["metadata"]["labels"].get("controller-revision-hash") == status["updateRevision"]
             and any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())]  # fmt: skip
    return status.get("currentRevision") == status["updateRevision"] and len(ready) == len(pods) == sts["spec"]["replicas"]


def judge(cell: Cell, runs: list[tuple[Run, int]], *, may_delete: Callable[[dict[str, Any]], bool],
          expect: str, pvcs_before: dict[str, str]) -> list[str]:  # fmt: skip
    """Figures and problems of a cell; `runs` are (run, audit index when it started)."""
    writes = cell.writes()
    deletions = _deletions(writes)
    wrong = [e["objectRef"]["name"] for e in deletions if not may_delete(e.get("responseObject") or {})]
    uids = collections.Counter((e.get("responseObject") or {}).get("metadata", {}).get("uid") for e in deletions)
    doubles = [f"{uid} deleted {n} times" for uid, n in uids.items() if n > 1]
    pvcs = [e["objectRef"]["name"] for e in writes if e["objectRef"].get("resource") == "persistentvolumeclaims"]
    after = {c["metadata"]["name"]: c["metadata"]["uid"] for c in cell.real.list("persistentvolumeclaims", cell.real.namespace)}
    pvcs += [f"claim {n} gone or replaced" for n, uid in pvcs_before.items() if after.get(n) != uid]
    healed = _healthy(cell.real)
    dishonest = []
    for index, (result, since) in enumerate(runs):
        if result.code == -signal.SIGKILL:
            continue
        own = cell.writes(since, runs[index + 1][1] if index + 1 < len(runs) else None)
        done = len(_deletions(own)) + len(_spec_patches(own))
        doc = result.envelope()
        if result.code == 0 and not healed:
            dishonest.append("exit 0 but not healthy")
        if result.code not in (0, 4, 5, 6) or doc is None:
            dishonest.append(f"exit {result.code}, envelope {'missing' if doc is None else 'present'}")
        elif done != _applied(doc):
            dishonest.append(f"{done} change(s) carried out, {_applied(doc)} reported applied")
    figures.count(SUITE, "cells run")
    figures.count(SUITE, "healed", int(healed))
    figures.count(SUITE, "wrong deletions", len(wrong))
    figures.count(SUITE, "PVC deletions", len(pvcs))
    figures.count(SUITE, "double deletions", len(doubles))
    figures.count(SUITE, "dishonest exits", len(dishonest))
    problems = [f"wrong deletion {w}" for w in wrong] + pvcs + doubles + dishonest
    final = runs[-1][0].code
    if expect == "healed" and not healed:
        problems.append(f"not healed (last exit {final})")
    if expect == "honest" and not healed and final not in (ExitCode.REFUSED, ExitCode.NOT_CONVERGED):
        problems.append(f"not healthy and the last exit {final} is not 4 or 6")
    if problems:
        figures.detail(SUITE, "; ".join(problems))
    return problems


def _not_ready_off(target: str) -> Callable[[dict[str, Any]], bool]:
    def rule(pod: dict[str, Any]) -> bool:
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or ())
        return bool(pod) and not ready and pod["metadata"]["labels"].get("controller-revision-hash") != target

    return rule


def _claims(real: RealTarget) -> dict[str, str]:
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in real.list("persistentvolumeclaims", real.namespace)}


def _stuck(real: RealTarget) -> str:
    replay("forced-rollback", real)
    return str((real.get("statefulsets", real.namespace, "web") or {})["status"]["currentRevision"])


PODS = r"/api/v1/namespaces/{ns}/pods/{pod}$"
STS = r"/apis/apps/v1/namespaces/{ns}/statefulsets/web$"


def test_rollback_under_a_500_on_the_revert(cell: Cell) -> None:
    target = _stuck(cell.real)
    claims = _claims(cell.real)
    cell.proxy.faults.add(method="PATCH", path_re=STS.format(ns=cell.real.namespace), status=500, times=1)
    since = len(cell.plane.audit_events())
    result = cell.stsfix("rollback", "web", "--yes")
    problems = judge(cell, [(result, since)], may_delete=_not_ready_off(target), expect="healed", pvcs_before=claims)
    assert result.code == 0 and problems == [], (problems, result)


def test_rollback_under_a_409_from_a_real_concurrent_patch_of_the_set(cell: Cell) -> None:
    target = _stuck(cell.real)
    claims = _claims(cell.real)
    ns = cell.real.namespace

    def kubectl_patch() -> None:
        cell.real.patch("statefulsets", ns, "web", {"metadata": {"labels": {"touched-by": "kubectl-patch"}}})

    fault = cell.proxy.faults.add(method="PATCH", path_re=STS.format(ns=ns), action=kubectl_patch, times=1)
    since = len(cell.plane.audit_events())
    result = cell.stsfix("rollback", "web", "--yes")
    conflicts = [e for e in cell.plane.audit_events()[since:] if (e.get("user") or {}).get("username") == REPAIR
                 and e.get("verb") == "patch" and (e.get("responseStatus") or {}).get("code") == 409]  # fmt: skip
    problems = judge(cell, [(result, since)], may_delete=_not_ready_off(target), expect="healed", pvcs_before=claims)
    assert fault.hits == 1 and conflicts, "the real server answered the stale patch 409"
    assert result.code == 0 and problems == [], (problems, result)


def test_rollback_when_the_target_pods_node_is_lost_mid_repair_ends_honestly(cell: Cell) -> None:
    target = _stuck(cell.real)
    claims = _claims(cell.real)
    ns = cell.real.namespace

    def lose_the_node() -> None:
        pod = cell.real.get("pods", ns, "web-4") or {}
        cell.real.set_node(pod["spec"]["nodeName"], "Lost")

    cell.proxy.faults.add(method="DELETE", path_re=PODS.format(ns=ns, pod="web-4"), action=lose_the_node, times=1)
    since = len(cell.plane.audit_events())
    result = run([*cell.args("rollback", "web", "--yes")[:-2], "--timeout", "25s"], env=cell.env, timeout=300)
    problems = judge(cell, [(result, since)], may_delete=_not_ready_off(target), expect="honest", pvcs_before=claims)
    assert problems == [], (problems, result)


def test_rollback_killed_at_the_delete_and_run_again_takes_its_lease_over_at_once(cell: Cell) -> None:
    target = _stuck(cell.real)
    claims = _claims(cell.real)
    first_at = len(cell.plane.audit_events())
    killed = cell.killed_at("DeletePod", "rollback", "web", "--yes")
    again_at = len(cell.plane.audit_events())
    began = time.monotonic()
    again = cell.stsfix("rollback", "web", "--yes")
    problems = judge(cell, [(killed, first_at), (again, again_at)], may_delete=_not_ready_off(target),
                     expect="healed", pvcs_before=claims)  # fmt: skip
    assert killed.code == -signal.SIGKILL, killed
    # the real clock: a lease left by the killed run is live for 60 s; its own holder does not wait
    assert again.code == 0 and time.monotonic() - began < 60 and problems == [], (problems, again)
    assert "took over the repair lease" in again.stderr


def test_delete_pod_under_a_409_from_a_real_concurrent_patch_of_the_pod(cell: Cell, control_plane: ControlPlane) -> None:
    replay("forced-rollback", cell.real)
    argv = [str(control_plane.bin_dir / "kubectl"), "--kubeconfig", str(control_plane.kubeconfig),
            "-n", cell.real.namespace, "rollout", "undo", "statefulset/web"]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    assert cell.real.run_until(lambda r: (lambda s: s["status"].get("observedGeneration") == s["metadata"]["generation"]
                               and s["status"].get("updateRevision") == s["status"].get("currentRevision"))(
                               r.get("statefulsets", r.namespace, "web") or {}))  # fmt: skip
    target = str((cell.real.get("statefulsets", cell.real.namespace, "web") or {})["status"]["updateRevision"])
    claims = _claims(cell.real)
    ns = cell.real.namespace

    def kubectl_patch() -> None:
        cell.real.patch("pods", ns, "web-4", {"metadata": {"labels": {"touched-by": "kubectl-patch"}}})

    cell.proxy.faults.add(method="DELETE", path_re=PODS.format(ns=ns, pod="web-4"), action=kubectl_patch, times=1)
    since = len(cell.plane.audit_events())
    result = cell.stsfix("delete-pod", "web", "4", "--yes")
    problems = judge(cell, [(result, since)], may_delete=_not_ready_off(target), expect="healed", pvcs_before=claims)
    assert result.code == 0 and problems == [], (problems, result)


def test_force_delete_killed_at_the_delete_and_run_again(cell: Cell) -> None:
    replay("healthy", cell.real)
    ns = cell.real.namespace
    node = (cell.real.get("pods", ns, "web-1") or {})["spec"]["nodeName"]
    cell.real.set_node(node, "Lost")

    def evicted_from_a_node_lost_for_a_while(r: RealTarget) -> bool:
        ready = next(c for c in (cell.plane.get(f"/api/v1/nodes/{node}") or {})["status"]["conditions"]
                     if c["type"] == "Ready")  # fmt: skip
        since = datetime.fromisoformat(ready["lastTransitionTime"].replace("Z", "+00:00"))
        deleting = ((r.get("pods", ns, "web-1") or {}).get("metadata") or {}).get("deletionTimestamp")
        return bool(deleting) and ready["status"] != "True" and datetime.now(UTC) - since > timedelta(seconds=4)

    assert cell.real.run_until(evicted_from_a_node_lost_for_a_while)
    claims = _claims(cell.real)

    def lost(pod: dict[str, Any]) -> bool:
        return pod.get("metadata", {}).get("name") == "web-1" and not cell.plane.node_ready(node)

    first_at = len(cell.plane.audit_events())
    killed = cell.killed_at("ForceDeletePod", "force-delete", "web", "1", "--node-lost-after", "2s", "--yes")
    again_at = len(cell.plane.audit_events())
    again = cell.stsfix("force-delete", "web", "1", "--node-lost-after", "2s", "--yes")
    problems = judge(cell, [(killed, first_at), (again, again_at)], may_delete=lost, expect="healed",
                     pvcs_before=claims)  # fmt: skip
    # a re-run finds web-1 already replaced on a Ready node and refuses (4), or finishes the wait (0)
    assert again.code in (0, 4) and problems == [], (problems, killed, again)
