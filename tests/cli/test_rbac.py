"""RBAC: deploy/rbac-*.yaml grant exactly what stsfix sends, and the simulated cluster's readonly and
repair users get what those roles allow: allowed work succeeds, the rest exits 5 naming the permission."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.errors import ExitCode
from stsfix.sim.apiserver import auth
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]

#: What stsfix reads: (resource, verb). The list the manifests and the simulator are checked against.
READS = {
    ("statefulsets", "get"),
    ("statefulsets", "list"),
    ("statefulsets", "watch"),
    ("controllerrevisions", "list"),
    ("pods", "list"),
    ("pods", "watch"),
    ("pods/log", "get"),
    ("persistentvolumeclaims", "list"),
    ("events", "list"),
    ("poddisruptionbudgets", "list"),
    ("nodes", "list"),
}
#: What the repairs write.
WRITES = {
    ("statefulsets", "patch"),
    ("pods", "delete"),
    ("pods/eviction", "create"),
    ("leases", "get"),
    ("leases", "create"),
    ("leases", "update"),
    ("events", "create"),
}


def _grants(path: Path, service_account: str) -> set[tuple[str, str]]:
    """(resource, verb) pairs granted to the ServiceAccount by the roles bound in the file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ClusterRole", "Role")}
    granted: set[tuple[str, str]] = set()
    for binding in (d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]
        ):
            continue
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], "no wildcards"
            granted |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    return granted


def test_rbac_readonly_grants_exactly_the_reads() -> None:
    assert _grants(REPO / "deploy" / "rbac-readonly.yaml", "stsfix-readonly") == READS


def test_rbac_repair_grants_exactly_the_reads_and_the_repair_writes() -> None:
    assert _grants(REPO / "deploy" / "rbac-repair.yaml", "stsfix-repair") == READS | WRITES


def test_the_simulated_users_are_allowed_what_the_manifests_grant() -> None:
    assert all(auth.is_allowed("readonly", verb, resource) for resource, verb in READS)
    assert all(auth.is_allowed("repair", verb, resource) for resource, verb in READS | WRITES)
    assert not any(
        auth.is_allowed("readonly", verb, resource) for resource, verb in WRITES - {("leases", "get")}
    )


# -- what the commands really send ---------------------------------------------------------------
_PATH_RE = re.compile(
    r"^/(?:api/v1|apis/[^/]+/v1)(?:/namespaces/[^/]+)?/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?$"
)
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _requested(records: list[Any]) -> set[tuple[str, str]]:
    out = set()
    for r in records:
        match = _PATH_RE.match(r.path)
        if match is None:
            continue
        resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
        if r.method == "GET":
            verb = "watch" if r.query.get("watch") in ("1", "true") else ("get" if match["name"] else "list")
        else:
            verb = _VERBS[r.method]
        out.add((resource, verb))
    return out


def test_every_command_sends_only_what_the_manifests_grant_and_together_all_of_it(make_sim) -> None:
    env = make_sim("forced-rollback")
    stuck = make_sim("stuck-terminating")
    ok, action = ExitCode.OK, ExitCode.ACTION_NEEDED
    runs = [
        (env, ("inspect", "web"), ok),
        (env, ("diagnose", "-A"), action),
        (env, ("diagnose", "web"), action),
        (env, ("history", "web"), ok),
        (env, ("collect", "web"), ok),
        (env, ("rollback", "web", "--yes", "--timeout", "60s"), ok),
        (env, ("delete-pod", "web", "2", "--force", "--evict", "--yes", "--timeout", "60s"), ok),
        (env, ("partition", "web", "--hold", "--yes"), ok),
        (stuck, ("force-delete", "web", "1", "--dry-run=server"), action),
    ]
    for sim_env, args, code in runs:
        result = run_cli(*sim_env.args(*args, "-n", "default"))
        assert result.code == code, (args, result)
    sent = _requested(list(env.sim.requests) + list(stuck.sim.requests))
    assert sent == READS | WRITES


# -- the simulated users -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(("diagnose", "web"), ExitCode.ACTION_NEEDED, id="diagnose"),
        pytest.param(("inspect", "web"), ExitCode.OK, id="inspect"),
        pytest.param(("history", "web"), ExitCode.OK, id="history"),
        pytest.param(("collect", "web"), ExitCode.OK, id="collect"),
        pytest.param(("diff", "web", "1", "2"), ExitCode.OK, id="diff"),
        pytest.param(("inspect", "-A"), ExitCode.OK, id="inspect fleet"),
        pytest.param(("rollback", "web", "--dry-run=client"), ExitCode.ACTION_NEEDED, id="client dry run"),
        pytest.param(("plan", "rollback", "web"), ExitCode.ACTION_NEEDED, id="plan"),
        pytest.param(
            ("playbook", "run", "forced-rollback", "-p", "statefulset=web", "--dry-run=client"),
            ExitCode.OK,
            id="playbook plan",
        ),
    ],
)
def test_the_readonly_user_can_read(make_sim, tmp_path: Path, args: tuple[str, ...], code: ExitCode) -> None:
    env = make_sim("forced-rollback")
    kubeconfig = env.sim.write_kubeconfig(tmp_path / "readonly", current="readonly")
    result = run_cli(*args, "-n", "default", "--kubeconfig", str(kubeconfig))
    assert result.code == code, result
    assert "forbidden" not in result.stderr.lower()


@pytest.mark.parametrize(
    ("args", "verb", "resource"),
    [
        pytest.param(("rollback", "web", "--yes"), "create", "leases", id="rollback"),
        pytest.param(
            ("rollback", "web", "--dry-run=server"), "patch", "statefulsets", id="rollback server dry run"
        ),
        pytest.param(("delete-pod", "web", "4", "--yes"), "create", "leases", id="delete-pod"),
        pytest.param(("partition", "web", "--hold", "--yes"), "create", "leases", id="partition"),
    ],
)
def test_the_readonly_user_is_refused_writes_with_exit_5_naming_the_permission(
    make_sim, tmp_path: Path, args: tuple[str, ...], verb: str, resource: str
) -> None:
    env = make_sim("forced-rollback")
    kubeconfig = env.sim.write_kubeconfig(tmp_path / "readonly", current="readonly")
    result = run_cli(*args, "-n", "default", "--kubeconfig", str(kubeconfig), "-o", "json")
    assert result.code == ExitCode.CLUSTER_ERROR, result
    wanted = f'User "readonly" cannot {verb} resource "{resource}"'
    assert any(wanted in line for line in result.stderr.splitlines()), result.stderr
    assert any(e["code"] == "access_denied" and wanted in e["message"] for e in result.json()["errors"])
    assert [
        r for r in env.sim.requests if r.method != "GET" and r.status < 400 and r.user == "readonly"
    ] == []


def test_the_readonly_user_is_refused_by_a_playbook_run_which_pages_with_exit_5(
    make_sim, tmp_path: Path
) -> None:
    env = make_sim("forced-rollback")
    kubeconfig = env.sim.write_kubeconfig(tmp_path / "readonly", current="readonly")
    result = run_cli(
        "playbook", "run", "forced-rollback", "-n", "default", "-p", "statefulset=web", "--yes",
        "--kubeconfig", str(kubeconfig), "-o", "json",
    )  # fmt: skip
    assert result.code == ExitCode.CLUSTER_ERROR, result
    body = result.json()
    assert [(s["id"], s["exitCode"]) for s in body["steps"]] == [("diagnose", 3), ("plan", 5)]
    assert 'User "readonly" cannot patch resource "statefulsets"' in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("scenario", "args", "code"),
    [
        pytest.param(
            "forced-rollback", ("rollback", "web", "--yes", "--timeout", "60s"), ExitCode.OK, id="rollback"
        ),
        pytest.param(
            "forced-rollback-reverted",
            ("delete-pod", "web", "4", "--evict", "--yes", "--timeout", "60s"),
            ExitCode.OK,
            id="evict",
        ),
        pytest.param("healthy", ("restart", "web", "--yes", "--timeout", "60s"), ExitCode.OK, id="restart"),
        pytest.param(
            "partition-canary",
            ("partition", "web", "--step", "--yes", "--timeout", "60s"),
            ExitCode.OK,
            id="partition",
        ),
        pytest.param(
            "stuck-terminating",
            ("force-delete", "web", "1", "--dry-run=server"),
            ExitCode.ACTION_NEEDED,
            id="force-delete dry run",
        ),
    ],
)
def test_the_repair_user_can_repair(
    make_sim, tmp_path: Path, scenario: str, args: tuple[str, ...], code: ExitCode
) -> None:
    env = make_sim(scenario)
    kubeconfig = env.sim.write_kubeconfig(tmp_path / "repair", current="repair")
    result = run_cli(*args, "-n", "default", "--kubeconfig", str(kubeconfig))
    assert result.code == code, result
    assert "forbidden" not in result.stderr.lower()
    assert {r.user for r in env.sim.requests if r.method != "GET"} <= {"repair"}


def test_plan_review_with_two_roles_readonly_plans_and_repair_applies(make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback")
    readonly = env.sim.write_kubeconfig(tmp_path / "readonly", current="readonly")
    repair = env.sim.write_kubeconfig(tmp_path / "repair", current="repair")
    plan = tmp_path / "plan.yaml"
    made = run_cli(
        "plan", "rollback", "web", "-n", "default", "--save", str(plan), "--kubeconfig", str(readonly)
    )
    assert made.code == ExitCode.ACTION_NEEDED and plan.exists(), made
    refused = run_cli("apply", str(plan), "--yes", "--kubeconfig", str(readonly))
    assert (
        refused.code == ExitCode.CLUSTER_ERROR
        and 'User "readonly" cannot create resource "leases"' in refused.stderr
    )
    applied = run_cli("apply", str(plan), "--yes", "--timeout", "60s", "--kubeconfig", str(repair))
    assert applied.code == ExitCode.OK, applied


def test_the_readonly_user_cannot_force_delete_a_pod_on_a_lost_node(make_sim, tmp_path: Path) -> None:
    env = make_sim("stuck-terminating")
    kubeconfig = env.sim.write_kubeconfig(tmp_path / "readonly", current="readonly")
    result = run_cli(
        "force-delete", "web", "1", "-n", "default", "--dry-run=server", "--kubeconfig", str(kubeconfig)
    )
    assert result.code == ExitCode.CLUSTER_ERROR, result
    assert 'User "readonly" cannot delete resource "pods"' in result.stderr


# -- stsfix guard --------------------------------------------------------------------------------
#: What the guard reads: the watches (list + watch) of everything the diagnosis needs, and the fresh
#: read of a set before it repairs it.
GUARD_READS = {
    ("statefulsets", "get"),
    ("statefulsets", "list"),
    ("statefulsets", "watch"),
    ("controllerrevisions", "list"),
    ("controllerrevisions", "watch"),
    ("pods", "list"),
    ("pods", "watch"),
    ("persistentvolumeclaims", "list"),
    ("persistentvolumeclaims", "watch"),
    ("nodes", "list"),
    ("nodes", "watch"),
    ("poddisruptionbudgets", "list"),
    ("poddisruptionbudgets", "watch"),
}
#: What its repairs (rollback, force-delete), leases and Events write.
GUARD_WRITES = {
    ("statefulsets", "patch"),
    ("pods", "delete"),
    ("leases", "get"),
    ("leases", "create"),
    ("leases", "update"),
    ("events", "create"),
}


def test_rbac_guard_grants_exactly_the_guards_reads_and_writes() -> None:
    assert _grants(REPO / "deploy" / "guard.yaml", "stsfix-guard") == GUARD_READS | GUARD_WRITES


def test_the_guard_sends_only_what_its_manifest_grants_and_all_of_it(make_sim, tmp_path: Path) -> None:
    from tests.guard.harness import eventually, opt_in, start_guard

    runs = [
        (make_sim("forced-rollback"), "forced-rollback"),
        (make_sim("stuck-terminating"), "stuck-terminating"),
    ]
    for n, (env, playbook) in enumerate(runs, 1):
        opt_in(env.sim, playbook)
        # as the simulator's "repair" user: its grants are enough for everything the guard does
        guard = start_guard(env.sim, tmp_path, n, user="repair")
        try:
            eventually(lambda g=guard, p=playbook: g.value("stsfix_guard_repairs_succeeded_total", namespace="default",
                                                            statefulset="web", playbook=p) == 1, what=playbook)  # fmt: skip
        finally:
            assert guard.terminate() == 0
    records = [r for env, _ in runs for r in env.sim.requests]
    assert not [r for r in records if r.status in (401, 403)]
    assert _requested(records) == GUARD_READS | GUARD_WRITES
