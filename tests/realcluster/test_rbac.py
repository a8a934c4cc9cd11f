"""RBAC on the real apiserver: deploy/rbac-*.yaml as shipped, judged by the apiserver's own authorizer.

- The repair and readonly users may do exactly what their manifests grant (`kubectl auth can-i
  --list`), no more; the repair user's writes stop at the namespaces it is bound in.
- The readonly user is refused every write command cleanly: exit 5, one line naming the permission,
  nothing changed.
- Minimal: for every permission deploy/rbac-repair.yaml grants (each verb of each rule, which is
  stricter than each rule), a fresh ServiceAccount bound to copies of its roles without just that
  permission makes the command that needs it fail with the apiserver's 403 (exit 5), or, for the
  reads stsfix can do without by design (claims, events, budgets, nodes), report it as not read.
  Each identity is checked first with SubjectAccessReview: it lacks exactly that one permission.
- Sufficient: with the manifest as shipped, every command runs (the scenario tests run every
  playbook as the repair user too), and the audit log holds no 403 for the repair user.

The command list is tests/cli/test_rbac.py's (which records the requests on the simulator).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from tests.cli.test_rbac import READS, WRITES
from tests.conftest import CliRun, run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import RealTarget, replay
from tests.realcluster.tools import (
    READONLY,
    REPAIR,
    REPAIR_MANIFEST,
    Identity,
    denied,
    drop_namespace,
    identity_without,
    kubectl,
    manifest_grants,
    new_namespace,
    stsfix,
    writes,
)

TIMEOUT = "120s"


@dataclass
class Sets:
    """Two namespaces: `stuck` (forced-rollback: web-4 crash-looping) and `healthy`."""

    stuck: str
    healthy: str
    kubeconfig: str


@pytest.fixture(scope="module")
def sets(control_plane: ControlPlane) -> Iterator[Sets]:
    names = {"forced-rollback": new_namespace(control_plane), "healthy": new_namespace(control_plane)}
    failures: list[BaseException] = []

    def run(scenario: str) -> None:
        try:
            replay(scenario, RealTarget(control_plane, names[scenario]))
        except BaseException as err:  # noqa: BLE001 - reported below
            failures.append(err)

    threads = [threading.Thread(target=run, args=(s,)) for s in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not failures, failures
        yield Sets(names["forced-rollback"], names["healthy"], str(control_plane.kubeconfig))
    finally:
        for ns in names.values():
            drop_namespace(control_plane, ns)


@pytest.fixture(scope="module")
def identities(control_plane: ControlPlane) -> Iterator[list[Identity]]:
    made: list[Identity] = []
    yield made
    for ident in made:
        ident.delete(control_plane)


def as_identity(ident: Identity, namespace: str, *args: str) -> CliRun:
    return run_cli(*args, "-n", namespace, "--kubeconfig", ident.kubeconfig, "-o", "json")


def forbidden_line(result: CliRun, verb: str, resource: str) -> str:
    """The error, the last line on stderr, names the refused permission; no traceback. (A refused
    step also says so on its own progress line before it.)"""
    assert "Traceback" not in result.stderr, result.stderr
    wanted = f'cannot {verb} resource "{resource}"'
    last = result.stderr.strip().splitlines()[-1]
    assert wanted in last, (wanted, result.stderr[-2000:])
    return last


# -- exactly what the manifests grant --------------------------------------------------------------
def can_i(plane: ControlPlane, user: str, namespace: str) -> set[tuple[str, str]]:
    """(resource, verb) the apiserver's authorizer allows `user` in `namespace`, without the
    self-reviews every authenticated user may create."""
    out = kubectl(plane, "auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    found = set()
    for line in out.splitlines()[1:]:
        columns = line.split()
        if not columns or columns[0].startswith("["):  # a non-resource URL
            continue
        resource = columns[0].split(".", 1)[0]
        if resource.startswith("selfsubject"):
            continue
        verbs = line[line.rindex("[") + 1 : line.rindex("]")].split()
        found |= {(resource, v) for v in verbs}
    return found


def test_the_repair_and_readonly_users_may_do_exactly_what_their_manifests_grant(
    control_plane: ControlPlane, sets: Sets
) -> None:
    assert can_i(control_plane, REPAIR, sets.stuck) == READS | WRITES
    assert can_i(control_plane, READONLY, sets.stuck) == READS
    # the writes are bound per namespace (one RoleBinding each); the reads are cluster-wide
    assert can_i(control_plane, REPAIR, "kube-public") == READS


# -- the readonly user -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "args", "verb", "resource"),
    [
        pytest.param("stuck", ("rollback", "web", "--yes"), "get", "leases", id="rollback"),
        pytest.param("stuck", ("rollback", "web", "--dry-run=server"), "patch", "statefulsets", id="rollback server dry run"),
        pytest.param("stuck", ("delete-pod", "web", "4", "--yes"), "get", "leases", id="delete-pod"),
        pytest.param("stuck", ("delete-pod", "web", "4", "--dry-run=server"), "delete", "pods", id="delete-pod server dry run"),
        pytest.param("stuck", ("delete-pod", "web", "4", "--evict", "--dry-run=server"), "create", "pods/eviction", id="evict server dry run"),
        pytest.param("stuck", ("partition", "web", "--hold", "--yes"), "get", "leases", id="partition"),
        pytest.param("healthy", ("restart", "web", "--yes"), "get", "leases", id="restart"),
        pytest.param("healthy", ("restart", "web", "--dry-run=server"), "patch", "statefulsets", id="restart server dry run"),
    ],
)  # fmt: skip
def test_the_readonly_user_is_refused_each_write_command_with_exit_5_and_nothing_changes(
    control_plane: ControlPlane, sets: Sets, where: str, args: tuple[str, ...], verb: str, resource: str
) -> None:
    namespace = getattr(sets, where)
    start = len(control_plane.audit_events())
    result = stsfix(sets.kubeconfig, namespace, *args, "-o", "json", context="readonly")
    assert result.code == ExitCode.CLUSTER_ERROR, result
    line = forbidden_line(result, verb, resource)
    assert READONLY in line
    (error,) = result.json()["errors"]
    assert error["code"] == "access_denied" and f'cannot {verb} resource "{resource}"' in error["message"], error
    trail = writes(control_plane, namespace, since=start)
    assert [e for e in trail if e["user"]["username"] == READONLY and e["responseStatus"]["code"] < 300] == []


def test_the_readonly_user_plans_but_cannot_apply_and_a_playbook_run_pages_with_exit_5(
    control_plane: ControlPlane, sets: Sets, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    made = stsfix(sets.kubeconfig, sets.stuck, "plan", "rollback", "web", "--save", str(plan), context="readonly")
    assert made.code == ExitCode.ACTION_NEEDED and plan.exists(), made
    start = len(control_plane.audit_events())
    applied = run_cli("apply", str(plan), "--yes", "--kubeconfig", sets.kubeconfig, "--context", "readonly")
    assert applied.code == ExitCode.CLUSTER_ERROR, applied
    forbidden_line(applied, "get", "leases")
    run = stsfix(sets.kubeconfig, sets.stuck, "playbook", "run", "forced-rollback", "-p", "statefulset=web",
                 "-p", "stuck_after=0s", "--yes", "-o", "json", context="readonly")  # fmt: skip
    assert run.code == ExitCode.CLUSTER_ERROR, run
    body = run.json()
    assert body["outcome"] == "paged" and [(s["id"], s["exitCode"]) for s in body["steps"]] == [("diagnose", 3), ("plan", 5)]
    assert 'cannot patch resource "statefulsets"' in body["errors"][0]["message"]
    assert [e for e in writes(control_plane, sets.stuck, since=start) if e["responseStatus"]["code"] < 300
            and e["user"]["username"] == READONLY] == []  # fmt: skip


# -- every permission of the repair manifest is needed ---------------------------------------------
def _watch(ident_kubeconfig: str, context: str | None, namespace: str, seconds: float) -> subprocess.CompletedProcess[str] | None:
    """`stsfix inspect --watch` in a process of its own; None if it was still watching after `seconds`."""
    argv = [sys.executable, "-m", "stsfix", "inspect", "web", "--watch", "-n", namespace, "--kubeconfig", ident_kubeconfig]
    argv += ["--context", context] if context else []
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=seconds, env={**os.environ, "KUBECONFIG": os.devnull})
    except subprocess.TimeoutExpired:
        return None


#: (apiGroup, resource, verb) -> the command that needs it, on the stuck set (forced-rollback), and what
#: it does without it: "403" (exit 5 naming the permission), "not read" (diagnose lists it as missing)
#: or "evidence says not allowed" (the finding's evidence says the read was refused).
NEEDED_BY: dict[tuple[str, str, str], tuple[tuple[str, ...], str]] = {
    ("apps", "statefulsets", "get"): (("diagnose", "web"), "403"),
    ("apps", "statefulsets", "list"): (("diagnose", "-A"), "403"),
    ("apps", "statefulsets", "watch"): (("inspect", "web", "--watch"), "403"),
    ("apps", "controllerrevisions", "list"): (("history", "web"), "403"),
    ("", "pods", "list"): (("diagnose", "web"), "403"),
    ("", "pods", "watch"): (("inspect", "web", "--watch"), "403"),
    ("", "persistentvolumeclaims", "list"): (("diagnose", "web"), "not read"),
    ("", "events", "list"): (("diagnose", "web"), "not read"),
    ("policy", "poddisruptionbudgets", "list"): (("diagnose", "web"), "not read"),
    ("", "nodes", "list"): (("diagnose", "web"), "not read"),  # and force-delete cannot prove a node lost: test_scenarios
    # the crash-looping web-4's last log lines in the evidence (kwok serves none, so only the reason differs)
    ("", "pods/log", "get"): (("diagnose", "web", "--stuck-after", "0s"), "evidence says not allowed"),
    ("apps", "statefulsets", "patch"): (("rollback", "web", "--dry-run=server"), "403"),
    ("", "pods", "delete"): (("delete-pod", "web", "4", "--dry-run=server"), "403"),
    ("", "pods/eviction", "create"): (("delete-pod", "web", "4", "--evict", "--dry-run=server"), "403"),
    # the lease and the audit Event: below, in order, on the healthy set (real writes)
}
_ORDERED = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")} | {("", "events", "create")}


def test_the_permission_list_covers_the_whole_manifest() -> None:
    granted = {t for triples in manifest_grants(REPAIR_MANIFEST).values() for t in triples}
    assert set(NEEDED_BY) | _ORDERED == granted


@pytest.mark.parametrize("permission", list(NEEDED_BY), ids=lambda p: f"{p[2]} {p[1]}")
def test_without_this_one_permission_the_command_that_needs_it_fails(
    control_plane: ControlPlane, sets: Sets, identities: list[Identity], tmp_path: Path, permission: tuple[str, str, str]
) -> None:
    args, effect = NEEDED_BY[permission]
    _, resource, verb = permission
    ident = identity_without(control_plane, sets.stuck, [sets.stuck], permission, tmp_path)
    identities.append(ident)
    if args[-1] == "--watch":
        # with every permission it keeps watching the stuck set; without this one it stops at once
        assert _watch(sets.kubeconfig, "repair", sets.stuck, 8) is None
        done = _watch(ident.kubeconfig, None, sets.stuck, 60)
        assert done is not None and done.returncode == ExitCode.CLUSTER_ERROR, done
        assert f'cannot {verb} resource "{resource}"' in done.stderr and "Traceback" not in done.stderr, done.stderr
        return
    control = stsfix(sets.kubeconfig, sets.stuck, *args, "-o", "json")
    assert control.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), control
    result = as_identity(ident, sets.stuck, *args)
    if effect == "403":
        assert result.code == ExitCode.CLUSTER_ERROR, result
        assert ident.user in forbidden_line(result, verb, resource)
    elif effect.startswith("evidence"):
        assert result.code == control.code, result
        said = [json.dumps(f["evidence"]) for f in result.json()["items"][0]["findings"]]
        before = [json.dumps(f["evidence"]) for f in control.json()["items"][0]["findings"]]
        assert any(f"not allowed to get {resource}" in e for e in said), said
        assert not any(f"not allowed to get {resource}" in e for e in before), before
    else:
        assert result.code == control.code, result
        missing = result.json()["items"][0]["missing"]
        assert control.json()["items"][0]["missing"] == [] and missing == [resource], missing


def test_without_a_lease_or_event_permission_a_repair_fails_or_leaves_no_audit_event(
    control_plane: ControlPlane, sets: Sets, identities: list[Identity], tmp_path: Path
) -> None:
    """The repair lease: GET (is it held?), POST (take it the first time), PUT (take it again, renew,
    release); the Event each applied step records. On the healthy set, toggling its partition."""
    ns = sets.healthy

    def without(permission: tuple[str, str, str] | None) -> Identity:
        ident = identity_without(control_plane, ns, [ns], permission, tmp_path)
        identities.append(ident)
        return ident

    lease = "coordination.k8s.io", "leases"
    hold = ("partition", "web", "--hold", "--yes")
    release = ("partition", "web", "--set", "0", "--yes", "--timeout", TIMEOUT)
    for verb in ("create", "get"):  # no lease exists yet
        result = as_identity(without((*lease, verb)), ns, *hold)
        assert result.code == ExitCode.CLUSTER_ERROR, result
        forbidden_line(result, verb, "leases")
    assert (sts_partition := _partition(control_plane, ns)) == 0, sts_partition  # nothing was changed

    taken = as_identity(without(None), ns, *hold)  # every permission: takes the lease, releases it (PUT)
    assert taken.code == ExitCode.OK, taken
    assert _partition(control_plane, ns) == 3
    result = as_identity(without((*lease, "update")), ns, *release)  # the lease exists: taking it is a PUT
    assert result.code == ExitCode.CLUSTER_ERROR, result
    forbidden_line(result, "update", "leases")
    assert _partition(control_plane, ns) == 3

    start = len(control_plane.audit_events())
    quiet = without(("", "events", "create"))
    result = as_identity(quiet, ns, *release)
    assert result.code == ExitCode.OK, result  # audit failures are warnings (docs/repairs.md)
    assert _partition(control_plane, ns) == 0
    assert any("could not record the audit event" in line and 'cannot create resource "events"' in line
               for line in result.stderr.splitlines()), result.stderr[-2000:]  # fmt: skip
    refused = denied(writes(control_plane, ns, since=start), user=quiet.user)
    assert refused and all((verb, resource) == ("create", "events") for verb, resource, _ in refused), refused


def _partition(plane: ControlPlane, namespace: str) -> int:
    sts: dict[str, Any] = plane.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/web")
    return int(((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)


# -- sufficient --------------------------------------------------------------------------------------
def test_the_repair_manifest_as_shipped_is_enough_for_every_command(control_plane: ControlPlane, sets: Sets) -> None:
    start = len(control_plane.audit_events())
    runs = [
        (sets.stuck, ("inspect", "web")),
        (sets.stuck, ("diagnose", "-A")),
        (sets.stuck, ("diagnose", "web", "--stuck-after", "0s")),
        (sets.stuck, ("history", "web")),
        (sets.stuck, ("diff", "web", "1", "2")),
        (sets.stuck, ("collect", "web")),
        (sets.stuck, ("rollback", "web", "--yes", "--timeout", TIMEOUT)),
        (sets.stuck, ("delete-pod", "web", "2", "--force", "--evict", "--yes", "--timeout", TIMEOUT)),
        (sets.stuck, ("partition", "web", "--hold", "--yes")),
        (sets.stuck, ("partition", "web", "--until", "0", "--yes", "--timeout", TIMEOUT)),
        (sets.healthy, ("restart", "web", "--yes", "--timeout", TIMEOUT)),
    ]  # force-delete, the last command: test_scenarios, on a lost node
    for namespace, args in runs:
        result = stsfix(sets.kubeconfig, namespace, *args, "-o", "json")
        assert result.code in (ExitCode.OK, ExitCode.ACTION_NEEDED), (args, result)
        assert "forbidden" not in result.stderr.lower(), (args, result.stderr[-2000:])
    assert denied(writes(control_plane, since=start), user=REPAIR) == []
    healed = control_plane.get(f"/apis/apps/v1/namespaces/{sets.stuck}/statefulsets/web")["status"]
    assert healed["readyReplicas"] == 5 and healed["currentRevision"] == healed["updateRevision"], healed
