"""diagnose on every simulated incident, live and from its collect file: verdict, codes, causes, steps.

The negative cases matter as much: a rollout in progress, a partition held on purpose and OnDelete
waiting for deletes must not be called stuck.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stsfix.errors import ExitCode

CASES = [
    # scenario, verdict, first finding code, its cause, its repair actions (each step's, then its effects')
    pytest.param("healthy", "complete", "rollout-complete", "unknown", [], id="healthy is complete"),
    pytest.param("rollout-in-progress", "progressing", "rollout-in-progress", "unknown", [],
                 id="fresh rollout is progressing, not stuck"),
    pytest.param("forced-rollback", "stuck", "forced-rollback-needed", "crash-loop", ["revert-template", "delete-pod"],
                 id="crash-looping update revision needs revert then delete"),
    pytest.param("forced-rollback-reverted", "stuck", "forced-rollback-needed", "crash-loop", ["delete-pod"],
                 id="reverted template needs the delete only"),
    pytest.param("image-pull", "stuck", "forced-rollback-needed", "image-pull", ["revert-template", "delete-pod"],
                 id="image pull back-off on the update revision"),
    pytest.param("never-ready", "stuck", "forced-rollback-needed", "readiness-failing", ["revert-template", "delete-pod"],
                 id="readiness never passing"),
    pytest.param("unschedulable", "stuck", "forced-rollback-needed", "unschedulable", ["revert-template", "delete-pod"],
                 id="update revision asks for more than any node has"),
    pytest.param("pending-pvc", "stuck", "pvc-pending", "pvc-pending", [], id="claim pending on a missing class"),
    pytest.param("stuck-terminating", "stuck", "pod-stuck-terminating", "node-lost",
                 ["verify-node-gone", "force-delete-pod"], id="terminating on a lost node"),
    pytest.param("partition-canary", "paused", "partition-holds-rollout", "unknown", ["set-partition"],
                 id="partition held on purpose is paused"),
    pytest.param("ondelete", "paused", "ondelete-pending", "unknown", ["replace-outdated-pods"], id="OnDelete waiting for deletes is paused"),
    pytest.param("parallel-maxunavailable", "stuck", "maxunavailable-regression", "crash-loop", ["delete-pod"],
                 id="1.35.0 Parallel and maxUnavailable regression"),
    pytest.param("missing-claim", "stuck", "pvc-missing", "pvc-missing", ["delete-pod"],
                 id="1.26: a claim deleted under a Pending pod needs the pod deleted"),
    pytest.param("capacity", "stuck", "unschedulable", "unschedulable", [],
                 id="Parallel set larger than the cluster"),
    pytest.param("capacity-ordered", "stuck", "unschedulable", "unschedulable", [],
                 id="OrderedReady set larger than the cluster"),
]  # fmt: skip


def _summary(body: dict) -> tuple[str, str, str, list[str]]:
    item = body["items"][0]
    finding = item["findings"][0]
    steps = (finding["repair"] or {}).get("steps", [])
    actions = [a for s in steps for a in [s["action"], *(e["action"] for e in s["effects"])]]
    return item["verdict"], finding["code"], finding["cause"], actions


@pytest.mark.parametrize(("scenario", "verdict", "code", "cause", "actions"), CASES)
def test_diagnose_scenario_live_and_offline(
    cli, make_sim, tmp_path: Path, scenario: str, verdict: str, code: str, cause: str, actions: list[str]
) -> None:
    env = make_sim(scenario, speed=30.0)
    # a minute of simulated time: enough evidence at --stuck-after 30s; but rollout-in-progress
    # finishes about 66 s after its starting state, so it gets half (a second of real time is 30 s)
    env.sim.advance(30 if scenario == "rollout-in-progress" else 60)
    live = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json"))
    expected_exit = ExitCode.ACTION_NEEDED if verdict == "stuck" else ExitCode.OK
    assert live.code == expected_exit, live
    assert _summary(live.json()) == (verdict, code, cause, actions)
    finding = live.json()["items"][0]["findings"][0]
    if verdict == "stuck":
        assert finding["evidence"] and finding["severity"] == "critical"

    saved = tmp_path / "collect.yaml"
    assert cli(*env.args("collect", "web", "--save", str(saved))).code == ExitCode.OK
    offline = cli("diagnose", "-f", str(saved), "--stuck-after", "30s", "-o", "json")
    assert offline.code == expected_exit, offline
    assert _summary(offline.json()) == (verdict, code, cause, actions)


def test_terminating_within_grace_is_not_stuck_and_past_it_names_the_finalizer(cli, make_sim) -> None:
    env = make_sim("healthy", speed=1.0)
    env.sim.patch("pods", "default", "web-2", {"metadata": {"finalizers": ["example.com/hold"]}})
    env.sim.delete("pods", "default", "web-2", grace_seconds=30)
    early = cli(*env.args("diagnose", "web", "-o", "json")).json()["items"][0]
    assert early["verdict"] != "stuck"
    assert "pod-stuck-terminating" not in [f["code"] for f in early["findings"]]

    env.sim.advance(120)  # past the grace period, the finalizer still holds the pod
    late = cli(*env.args("diagnose", "web", "-o", "json"))
    assert late.code == ExitCode.ACTION_NEEDED, late
    finding = next(f for f in late.json()["items"][0]["findings"] if f["code"] == "pod-stuck-terminating")
    assert "example.com/hold" in finding["message"] + " ".join(finding["evidence"])
    # A finalizer holds it: find what does, never force-delete; there is no command to run.
    assert finding["repair"]["steps"] == [] and "do not force-delete" in finding["repair"]["summary"]


def _set(name: str, **spec: object) -> dict:
    manifest: dict = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 3,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]
                },
            },
        },
    }
    manifest["spec"].update(spec)
    return manifest


def _codes(body: dict, name: str) -> list[tuple[str, str, list[str]]]:
    item = next(i for i in body["items"] if i["statefulset"]["name"] == name)
    return [
        (f["code"], f["cause"], [s["action"] for s in (f["repair"] or {}).get("steps", [])])
        for f in item["findings"]
    ]


def _diagnose_live_and_offline(cli, env, tmp_path: Path, name: str) -> tuple[dict, int]:
    """Diagnose live and from a collect file; both must agree. Returns the live body and exit code.

    NB: the simulated clock stands still meanwhile, so a crash-looping container cannot move from
    waiting to running (another cause) between the live read and the collect.
    """
    speed, env.sim.clock.speed = env.sim.clock.speed, 0.0
    live = cli(*env.args("diagnose", name, "--stuck-after", "30s", "-o", "json"))
    saved = tmp_path / f"{name}.yaml"
    assert cli(*env.args("collect", name, "--save", str(saved))).code == ExitCode.OK
    env.sim.clock.speed = speed
    offline = cli("diagnose", "-f", str(saved), "--stuck-after", "30s", "-o", "json")
    assert (live.code, _codes(live.json(), name)) == (offline.code, _codes(offline.json(), name))
    return live.json(), live.code


def test_parallel_bad_revision_needs_only_the_revert(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("healthy", speed=60.0)
    env.sim.apply_manifest(_set("par", podManagementPolicy="Parallel"))
    assert env.sim.wait_for(
        lambda s: s.get("sts", "default", "par").get("status", {}).get("readyReplicas") == 3
    )
    crash = {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "command": ["sh", "-c", "exit 1"]}]}}}
    }
    env.sim.patch("statefulsets", "default", "par", crash)
    assert env.sim.wait_for(
        lambda s: any(
            any(c.get("restartCount", 0) >= 1 for c in p.get("status", {}).get("containerStatuses", []))
            for p in s.list("pods", "default")
            if p["metadata"]["name"].startswith("par-")
        ),
        timeout=20,
    )
    env.sim.advance(120)
    body, code = _diagnose_live_and_offline(cli, env, tmp_path, "par")
    assert code == ExitCode.ACTION_NEEDED
    assert _codes(body, "par")[0] == ("bad-update-revision", "crash-loop", ["revert-template"])


def test_operator_managed_set_is_a_warning_naming_the_manager(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("healthy")
    env.sim.patch(
        "statefulsets", "default", "web", {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}}
    )
    body, code = _diagnose_live_and_offline(cli, env, tmp_path, "web")
    assert code == ExitCode.OK
    finding = next(f for f in body["items"][0]["findings"] if f["code"] == "operator-managed")
    assert finding["severity"] == "warning" and "Helm" in finding["message"]


def test_unschedulable_first_revision_is_the_unschedulable_code(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("healthy")
    manifest = _set("sel")
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "nvme"}
    env.sim.apply_manifest(manifest)
    assert env.sim.wait_for(lambda s: s.get("pods", "default", "sel-0") is not None)
    env.sim.advance(120)
    body, code = _diagnose_live_and_offline(cli, env, tmp_path, "sel")
    assert code == ExitCode.ACTION_NEEDED
    finding = next(f for f in body["items"][0]["findings"] if f["code"] == "unschedulable")
    assert any("nodes are available" in line for line in finding["evidence"])


def test_controller_not_observing_a_new_generation(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("healthy", autorun=False)  # the controller never runs after the scenario is set up
    env.sim.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
    )
    env.sim.clock.advance(900)
    body, code = _diagnose_live_and_offline(cli, env, tmp_path, "web")
    assert "controller-not-observing" in [c for c, _, _ in _codes(body, "web")]


@pytest.mark.parametrize(
    ("scenario", "certain", "code"),
    [
        pytest.param("image-pull", "lookup registry.invalid: no such host", ExitCode.ACTION_NEEDED,
                     id="a registry host that does not resolve is certain: exit 3 at once"),
        pytest.param("unschedulable", "requests 64 cpu, more than any node can allocate", ExitCode.ACTION_NEEDED,
                     id="requests no node can allocate are certain"),
    ],
)  # fmt: skip
def test_failing_before_stuck_after_says_how_long_and_exits_3_only_when_certain(
    cli, make_sim, scenario: str, certain: str, code: ExitCode
) -> None:
    env = make_sim(scenario, speed=30.0)
    result = cli(*env.args("diagnose", "web", "--stuck-after", "10h", "-o", "json"))
    assert result.code == code, result
    item = result.json()["items"][0]
    finding = item["findings"][0]
    assert item["verdict"] == "failing" and finding["severity"] == "critical", item
    assert 0 < finding["stuckInSeconds"] <= 10 * 3600
    assert certain in finding["certain"]
    text = cli(*env.args("inspect", "web", "--stuck-after", "10h")).stdout
    assert "Rollout:   FAILING: " in text and "counts as stuck in" in " ".join(text.split())


@pytest.mark.parametrize(
    ("scenario", "pods"),
    [pytest.param("capacity", 2, id="Parallel"), pytest.param("capacity-ordered", 1, id="OrderedReady")],
)
def test_a_set_out_of_room_offers_capacity_request_or_scale_and_scaling_heals_it(
    cli, make_sim, scenario: str, pods: int
) -> None:
    env = make_sim(scenario, speed=30.0)
    env.sim.advance(60)
    result = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json"))
    assert result.code == ExitCode.ACTION_NEEDED, result
    [finding] = result.json()["items"][0]["findings"]
    assert len(finding["pods"]) == pods and finding["evidence"][0] == (
        f"scheduler ({pods} pod{'s' if pods > 1 else ''}): 0/3 nodes are available: 3 Insufficient cpu"
    )
    options = {o["action"]: o for o in finding["repair"]["options"]}
    assert list(options) == ["add-capacity", "lower-request", "scale"]
    assert options["add-capacity"]["params"] == {"pods": 2, "short": "cpu"}
    assert options["lower-request"]["params"] == {"container": "web", "resource": "cpu", "request": "1500m"}
    assert options["scale"]["command"] == "kubectl scale statefulset web -n default --replicas=6"

    env.sim.patch(
        "statefulsets", "default", "web", {"spec": {"replicas": options["scale"]["params"]["replicas"]}}
    )
    assert env.sim.wait_for(
        lambda s: (
            (s.get("sts", "default", "web") or {}).get("status", {}).get("readyReplicas") == 6
            and len([p for p in s.list("pods", "default") if p["metadata"]["name"].startswith("web-")]) == 6
        ),
        timeout=20,
    )
    healed = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json"))
    assert healed.code == ExitCode.OK, healed
    assert healed.json()["items"][0]["verdict"] == "complete"


def test_deleting_the_pending_pod_of_a_missing_claim_heals_the_set_on_1_26(cli, make_sim) -> None:
    env = make_sim("missing-claim", speed=30.0)
    env.sim.advance(60)
    result = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json"))
    [finding] = [f for f in result.json()["items"][0]["findings"] if f["severity"] == "critical"]
    assert "new, empty claims www-web-2" in finding["repair"]["summary"]
    [step] = finding["repair"]["steps"]
    assert step["command"].startswith("stsfix delete-pod -n default web 2")
    uid = env.sim.get("pods", "default", "web-2")["metadata"]["uid"]
    done = cli(*env.args(*step["command"].split()[1:], "--yes", "-o", "json"))
    assert done.code == ExitCode.OK, done
    assert env.sim.get("pods", "default", "web-2")["metadata"]["uid"] != uid
    healed = cli(*env.args("diagnose", "web", "--stuck-after", "30s", "-o", "json"))
    assert healed.code == ExitCode.OK and healed.json()["items"][0]["verdict"] == "complete", healed
