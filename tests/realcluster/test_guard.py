"""`stsfix guard` on the real control plane: real guard processes with deploy/guard.yaml's RBAC.

The forced-rollback scenario is replayed (OrderedReady web, 5 replicas, web-4 crash-looping on a
bad template) next to a healthy set `db`. Two guards run as separate ServiceAccounts, both bound to
the manifest's ClusterRole `stsfix-guard` (in the cluster the two replicas share one account; two
here let the audit log tell them apart). The test proves, from the guards' /metrics and the
apiserver's audit log:

- the metrics reflect the real sets: web stuck with blocking ordinal 4, db complete;
- without `stsfix.dev/auto-repair` nothing is written to the sets, pods or claims (the leader only
  reports, with an Event, and renews its Lease);
- with it, the leader repairs web through the real StatefulSet controller: exactly one pod
  deletion carried out (web-4), no claim deleted, the auto-repair history and last-repair
  annotations written, the repair counters at 1; the follower writes nothing but never leads;
- the leader Lease is taken, renewed and, on SIGTERM, released on the real apiserver, and the other
  guard takes it over and, the set being healed and rate-limited, repairs nothing.

Every wait re-checks a condition until a deadline and fails saying what it waited for.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.sim.scenarios import load_scenario
from tests.controlplane.cluster import REPO, ControlPlane
from tests.guard.harness import GuardProcess
from tests.realcluster.replay import RealTarget, replay
from tests.realcluster.tools import access_review, carried_out, code_of, resource_of, writes

GUARD_MANIFEST = REPO / "deploy" / "guard.yaml"
AUTO_REPAIR = "stsfix.dev/auto-repair"
HISTORY = "stsfix.dev/auto-repair-history"
LAST_REPAIR = "stsfix.dev/last-repair"
LEASE = "stsfix-guard"
#: Fast settings for real time: a Lease of 4 s renewed every 0.5 s, a pass every second.
FLAGS = (
    "--stuck-after", "0s", "--resync-period", "1s", "--leader-lease-duration", "4s",
    "--leader-renew-deadline", "3s", "--leader-retry-period", "0.5s", "--repair-lease-duration", "30s",
    "--repair-timeout", "120s", "--log-format", "json",
)  # fmt: skip
#: The writes the guard may send (its ClusterRole) and the ones it sends without repairing.
BOOKKEEPING = {"leases", "events"}


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Re-check until `check()` is truthy and return it; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}", pytrace=False)
        time.sleep(0.25)


@dataclass
class GuardAccount:
    user: str
    kubeconfig: str


def guard_rbac(plane: ControlPlane) -> list[dict[str, Any]]:
    """deploy/guard.yaml's Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding (the
    Deployment, PodDisruptionBudget and Service are the tests' own processes here)."""
    kinds = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    return [d for d in yaml.safe_load_all(GUARD_MANIFEST.read_text()) if d and d["kind"] in kinds]


def kubeconfig_for(plane: ControlPlane, namespace: str, sa: str, folder: Path) -> str:
    doc = yaml.safe_load(plane.kubeconfig.read_text())
    doc["users"] = [{"name": sa, "user": {"token": plane.service_account_token(namespace, sa)}}]
    doc["contexts"] = [{"name": sa, "context": {"cluster": doc["clusters"][0]["name"], "user": sa}}]
    doc["current-context"] = sa
    path = folder / f"kubeconfig-{sa}"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def accounts(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[list[GuardAccount]]:
    """The manifest's stsfix-guard account, and a second one bound to the same ClusterRole."""
    objects = guard_rbac(control_plane)
    role = next(d for d in objects if d["kind"] == "ClusterRole")["metadata"]["name"]
    home = next(d for d in objects if d["kind"] == "ServiceAccount")["metadata"]["namespace"]
    second = f"rc-guard-{uuid.uuid4().hex[:6]}"
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": second},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": [{"kind": "ServiceAccount", "name": second, "namespace": home}]}  # fmt: skip
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": second, "namespace": home}}
    control_plane.apply([*objects, sa, binding])
    names = [next(d for d in objects if d["kind"] == "ServiceAccount")["metadata"]["name"], second]
    users = [f"system:serviceaccount:{home}:{n}" for n in names]
    wanted = [
        ("coordination.k8s.io", "leases", "update"),
        ("", "pods", "delete"),
        ("apps", "statefulsets", "patch"),
    ]
    eventually(lambda: all(access_review(control_plane, u, *t, namespace) for u in users for t in wanted),
               "the guard's ClusterRole to reach the authorizer", timeout=30)  # fmt: skip
    try:
        yield [
            GuardAccount(u, kubeconfig_for(control_plane, home, n, tmp_path))
            for u, n in zip(users, names, strict=True)
        ]
    finally:
        control_plane.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{second}")
        control_plane.request("DELETE", f"/api/v1/namespaces/{home}/serviceaccounts/{second}")


def healthy_db() -> list[dict[str, Any]]:
    """The healthy scenario's set, renamed `db` so that it sits next to the forced-rollback `web`."""
    text = json.dumps(load_scenario("healthy").manifests).replace('"web"', '"db"')
    objects: list[dict[str, Any]] = json.loads(text)
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            obj["spec"]["replicas"] = 2
    return objects


def rolled_out(real: RealTarget, name: str) -> bool:
    sts = real.get("statefulsets", real.namespace, name) or {}
    status = sts.get("status") or {}
    return bool(
        status.get("observedGeneration") == sts["metadata"]["generation"]
        and status.get("currentRevision") == status.get("updateRevision")
        and status.get("readyReplicas") == status.get("updatedReplicas") == sts["spec"]["replicas"]
    )


def lease(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    found = plane.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}")
    return dict((found or {}).get("spec") or {})


def by(events: list[dict[str, Any]], user: str) -> list[tuple[str, str, str, int]]:
    """(verb, resource, name, code) of every audited write `user` sent, in order."""
    return [(e["verb"], resource_of(e), (e.get("objectRef") or {}).get("name", ""), code_of(e))
            for e in events if e["user"]["username"] == user]  # fmt: skip


def not_bookkeeping(events: list[dict[str, Any]], user: str) -> list[tuple[str, str, str, int]]:
    return [w for w in by(events, user) if w[1] not in BOOKKEEPING]


def start(account: GuardAccount, namespace: str, identity: str, folder: Path) -> GuardProcess:
    # no --leader-election-namespace: the Lease goes to -n's namespace (in a pod without -n: the pod's)
    args = ["--kubeconfig", account.kubeconfig, "-n", namespace, "--listen", "127.0.0.1:0", "--identity", identity,
            *FLAGS]  # fmt: skip
    return GuardProcess(args, folder / f"{identity}.log")


def passes(g: GuardProcess, n: int, what: str) -> None:
    """Wait until `g` has completed `n` more passes over the sets (its last-sync time moves n times)."""
    seen: list[float] = []

    def moved() -> bool:
        value = g.value("stsfix_guard_last_sync_timestamp_seconds") or 0.0
        if not seen or value > seen[-1]:
            seen.append(value)
        return len(seen) > n

    eventually(moved, f"{n} more passes of {what}", timeout=30)


def test_the_guard_reports_repairs_only_an_opted_in_set_and_hands_its_lease_over(
    control_plane: ControlPlane, real: RealTarget, accounts: list[GuardAccount], tmp_path: Path
) -> None:
    began = time.monotonic()
    ns = real.namespace
    web, db = {"namespace": ns, "statefulset": "web"}, {"namespace": ns, "statefulset": "db"}
    real.apply_manifest(healthy_db())
    replay("forced-rollback", real)
    eventually(lambda: rolled_out(real, "db"), "db to be rolled out")
    first, second = accounts
    mark = len(control_plane.audit_events())

    a = start(first, ns, "guard-a", tmp_path)
    b = None
    try:
        # -- the metrics of a real stuck set and a real healthy one, and the leader Lease taken --
        eventually(lambda: a.value("stsfix_guard_leader") == 1, "guard-a to lead")
        taken = lease(control_plane, ns)
        assert taken["holderIdentity"] == "guard-a" and taken["leaseDurationSeconds"] == 4, taken
        eventually(
            lambda: a.value("stsfix_statefulset_verdict", **web, verdict="stuck") == 1,
            "web stuck on /metrics",
        )
        assert a.value("stsfix_statefulset_blocking_ordinal", **web) == 4
        codes = {labels["code"] for name, labels, v in a.samples() if name == "stsfix_statefulset_finding"
                 and labels.get("statefulset") == "web" and v == 1}  # fmt: skip
        assert "forced-rollback-needed" in codes, codes
        assert a.value("stsfix_statefulset_guard_action", **web, action="report", reason="not_opted_in") == 1
        eventually(
            lambda: a.value("stsfix_statefulset_verdict", **db, verdict="complete") == 1, "db complete"
        )
        db_series = [(name, labels) for name, labels, _ in a.samples() if labels.get("statefulset") == "db"]
        assert db_series == [("stsfix_statefulset_verdict", {**db, "verdict": "complete"})], db_series

        # -- a second guard follows: same verdicts, never the Lease --
        b = start(second, ns, "guard-b", tmp_path)
        eventually(lambda: b.value("stsfix_guard_synced") == 1, "guard-b to sync")
        eventually(
            lambda: b.value("stsfix_statefulset_verdict", **web, verdict="stuck") == 1, "web stuck on guard-b"
        )
        assert b.value("stsfix_statefulset_blocking_ordinal", **web) == 4
        assert b.value("stsfix_guard_leader") == 0

        # -- not opted in: reported (an Event), nothing written to the sets, pods or claims --
        eventually(lambda: [e for e in real.list("events", ns) if e.get("reason") == "StsfixGuardStuck"],
                   "the StsfixGuardStuck Event")  # fmt: skip
        renewed = lease(control_plane, ns)["renewTime"]
        passes(a, 3, "guard-a")
        eventually(lambda: lease(control_plane, ns)["renewTime"] > renewed, "guard-a to renew its Lease")
        trail = writes(control_plane, since=mark)
        assert not_bookkeeping(trail, first.user) == [], by(trail, first.user)
        assert by(trail, second.user) == [], "guard-b wrote while guard-a led"
        sts = real.get("statefulsets", ns, "web") or {}
        assert HISTORY not in (sts["metadata"].get("annotations") or {})

        # -- opted in: the leader repairs through the real controller --
        opted = len(control_plane.audit_events())
        web4 = (real.get("pods", ns, "web-4") or {})["metadata"]["uid"]
        real.patch("statefulsets", ns, "web", {"metadata": {"annotations": {AUTO_REPAIR: "forced-rollback"}}},
                   content_type="application/merge-patch+json")  # fmt: skip
        eventually(lambda: a.value("stsfix_guard_repairs_succeeded_total", **web, playbook="forced-rollback") == 1,
                   "guard-a's repair of web to succeed", timeout=150)  # fmt: skip
        eventually(lambda: rolled_out(real, "web"), "web to be rolled out")
        repaired = time.monotonic()
        trail = writes(control_plane, since=opted)
        ours = not_bookkeeping(trail, first.user)
        assert carried_out(trail, user=first.user, verb="delete", resource="pods") == ["web-4"], ours
        # a crash-looping pod's resourceVersion moves with each restart, and the controller's status
        # writes move the set's: a write guarded by an older read answers 409 and stsfix reads again
        # (a conflict means re-check), never a blind second write
        refused = {(verb, name, code) for verb, resource, name, code in ours if code >= 300}
        assert refused <= {("delete", "web-4", 409), ("patch", "web", 409)}, ours
        sent = [(verb, resource, name) for verb, resource, name, code in ours if code < 300]
        # the history annotation, the revert, the one deletion, the last-repair annotation
        assert sent == [("patch", "statefulsets", "web"), ("patch", "statefulsets", "web"),
                        ("delete", "pods", "web-4"), ("patch", "statefulsets", "web")], ours  # fmt: skip
        assert not [
            e for e in trail if resource_of(e) == "persistentvolumeclaims" and e.get("verb") == "delete"
        ]
        assert by(trail, second.user) == [], "guard-b wrote while guard-a led"
        denied = [
            w
            for u in (first.user, second.user)
            for w in by(writes(control_plane, since=mark), u)
            if w[3] == 403
        ]
        assert denied == [], denied
        assert (real.get("pods", ns, "web-4") or {})["metadata"]["uid"] != web4
        annotations = (real.get("statefulsets", ns, "web") or {})["metadata"]["annotations"]
        assert len(json.loads(annotations[HISTORY])) == 1, annotations
        last = json.loads(annotations[LAST_REPAIR])
        assert (last["command"], last["result"]) == ("rollback", "ok"), last
        assert a.value("stsfix_guard_repairs_attempted_total", **web, playbook="forced-rollback") == 1
        assert b.value("stsfix_guard_repairs_attempted_total", **web, playbook="forced-rollback") is None
        eventually(
            lambda: a.value("stsfix_statefulset_verdict", **web, verdict="complete") == 1, "web complete"
        )
        reasons = sorted({str(e.get("reason")) for e in real.list("events", ns)
                          if str(e.get("reason", "")).startswith("Stsfix")})  # fmt: skip
        assert {
            "StsfixGuardRepairStarted",
            "StsfixRevertTemplate",
            "StsfixDeletePod",
            "StsfixRepairSucceeded",
        } <= set(reasons), reasons
        repair_lease = [w for w in by(trail, first.user) if w[1] == "leases" and w[2] == "stsfix-web"]
        assert repair_lease and all(code < 300 for *_, code in repair_lease), repair_lease
        claims = sorted(c["metadata"]["name"] for c in real.list("persistentvolumeclaims", ns))
        assert claims == ["www-db-0", "www-db-1"] + [f"www-web-{i}" for i in range(5)], claims

        # -- SIGTERM: guard-a releases the Lease, guard-b takes it over and repairs nothing --
        for g in (a, b):  # every read was allowed and every watch held (reads are not audited)
            errors = [(n, labels, v) for n, labels, v in g.samples()
                      if n in ("stsfix_guard_api_errors_total", "stsfix_guard_watch_errors_total") and v > 0]  # fmt: skip
            assert errors == [], errors
        before = lease(control_plane, ns)
        handed = len(control_plane.audit_events())
        assert a.terminate() == 0
        released = [w for w in by(writes(control_plane, since=handed), first.user) if w[1] == "leases"]
        assert released and released[-1] == ("update", "leases", LEASE, 200), released
        eventually(lambda: lease(control_plane, ns).get("holderIdentity") == "guard-b", "guard-b to take the Lease",
                   timeout=30)  # fmt: skip
        took = lease(control_plane, ns)
        assert took["leaseTransitions"] == int(before.get("leaseTransitions") or 0) + 1, (before, took)
        eventually(lambda: b.value("stsfix_guard_leader") == 1, "guard-b to report leading")
        passes(b, 3, "guard-b")
        assert not_bookkeeping(writes(control_plane, since=mark), second.user) == []
        assert b.value("stsfix_statefulset_verdict", **web, verdict="complete") == 1
        assert b.terminate() == 0
        internal = [e["message"] for g in (a, b) for e in g.events("internal_error")]
        assert internal == []
        print(f"guard on the real control plane: {time.monotonic() - began:.1f}s in all, "
              f"repair done {repaired - began:.1f}s in")  # fmt: skip
    finally:
        for g in (a, b):
            if g is not None and g.proc.poll() is None:
                g.kill()
