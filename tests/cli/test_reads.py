"""inspect, diagnose, history, diff and collect against the simulated cluster over HTTP, and offline."""

from __future__ import annotations

from pathlib import Path

import yaml

from stsfix.errors import ExitCode


def _requests(env) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in env.sim.requests if not r.path.startswith("/_sim")]


def test_inspect_marks_the_ordinal_the_controller_waits_on(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    result = cli(*env.args("inspect", "web", "-n", "default"))
    assert result.code == ExitCode.OK, result
    assert "STUCK" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["web-4"])
    assert row.startswith("*4")
    assert "* web-4:" in result.stdout


def test_inspect_json_carries_the_header_and_every_ordinal(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    body = cli(*env.args("inspect", "sts/web", "-o", "json")).json()
    assert body["apiVersion"] == "stsfix.dev/v1" and body["kind"] == "Inspection"
    assert body["state"] == "stuck" and body["waitingOrdinal"] == 4
    assert [o["ordinal"] for o in body["ordinals"]] == [0, 1, 2, 3, 4]
    assert (
        body["ordinals"][4]["revision"]["role"] == "update"
        and body["ordinals"][4]["reason"] == "CrashLoopBackOff"
    )
    assert body["currentRevision"]["number"] == 1 and body["updateRevision"]["number"] == 2


def test_inspect_yaml_is_an_envelope(cli, make_sim) -> None:
    env = make_sim("healthy")
    result = cli(*env.args("inspect", "web", "-o", "yaml"))
    body = yaml.safe_load(result.stdout)
    assert body["kind"] == "Inspection" and body["state"] == "complete" and body["exitCode"] == 0


def test_inspect_makes_diagnose_s_requests_whatever_the_replica_count(cli, make_sim) -> None:
    env = make_sim("healthy")
    big = yaml.safe_load(
        """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: big, namespace: default}
spec:
  replicas: 30
  podManagementPolicy: Parallel
  serviceName: big
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec: {containers: [{name: c, image: busybox:1.36, command: [sleep, infinity]}]}
"""
    )
    env.sim.apply_manifest(big)
    assert env.sim.wait_for(
        lambda s: (
            len([p for p in s.list("pods", "default") if p["metadata"]["name"].startswith("big-")]) == 30
        )
    )
    counts = {}
    for name in ("web", "big"):
        env.sim.requests.clear()
        assert cli(*env.args("inspect", name)).code == ExitCode.OK
        counts[name] = _requests(env)
    env.sim.requests.clear()
    assert cli(*env.args("diagnose", "big")).code == ExitCode.OK
    # inspect shows diagnose's verdict, so it reads what diagnose reads: the set, its pods, revisions,
    # events, claims, nodes, disruption budgets and the server version. One request each.
    assert len(counts["web"]) == len(counts["big"]) == 8 and counts["big"] == _requests(env)
    assert [m for m, _ in counts["big"]] == ["GET"] * 8
    assert counts["big"][1][1].endswith("/pods") and counts["big"][2][1].endswith("/controllerrevisions")


def test_fleet_view_makes_a_constant_number_of_requests(cli, make_sim) -> None:
    env = make_sim("healthy")
    env.sim.requests.clear()
    one = cli(*env.args("inspect", "-A", "-o", "json"))
    small = len(_requests(env))
    for i in range(4):
        env.sim.apply_manifest(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": f"s{i}", "namespace": f"ns{i}"},
                "spec": {
                    "replicas": 2,
                    "serviceName": f"s{i}",
                    "selector": {"matchLabels": {"app": f"s{i}"}},
                    "template": {
                        "metadata": {"labels": {"app": f"s{i}"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
                    },
                },
            }
        )
    env.sim.requests.clear()
    many = cli(*env.args("inspect", "-A", "-o", "json"))
    assert len(one.json()["items"]) == 1 and len(many.json()["items"]) == 5
    assert len(_requests(env)) == small == 8


def test_fleet_view_filters_by_state(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    stuck = cli(*env.args("inspect", "--state", "stuck", "-o", "json")).json()["items"]
    complete = cli(*env.args("inspect", "--state", "complete", "-o", "json")).json()["items"]
    assert [i["statefulset"]["name"] for i in stuck] == ["web"] and stuck[0]["blockingPod"] == "web-4"
    assert complete == []
    assert cli(*env.args("inspect", "--state", "broken")).code == ExitCode.USAGE


def test_diagnose_forced_rollback_exits_3_with_one_rollback_that_deletes_web_4(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    result = cli(*env.args("diagnose", "web", "-o", "json"))
    assert result.code == ExitCode.ACTION_NEEDED, result
    body = result.json()
    assert body["kind"] == "DiagnosisList" and body["status"] == "action_needed"
    item = body["items"][0]
    assert item["verdict"] == "stuck"
    finding = next(f for f in item["findings"] if f["code"] == "forced-rollback-needed")
    assert finding["cause"] == "crash-loop" and finding["pods"] == ["web-4"]
    (step,) = finding["repair"]["steps"]
    assert step["action"] == "revert-template" and step["command"].startswith("stsfix rollback")
    assert step["effects"] == [{"action": "delete-pod", "params": {"pod": "web-4"}}]
    text = cli(*env.args("diagnose", "web")).stdout
    assert "1. stsfix rollback -n default web --to-revision 1\n         which will delete pod web-4" in text
    assert "stsfix delete-pod" not in text


def test_diagnose_reverted_template_needs_delete_only(cli, make_sim) -> None:
    env = make_sim("forced-rollback-reverted")
    body = cli(*env.args("diagnose", "web", "-o", "json")).json()
    finding = next(f for f in body["items"][0]["findings"] if f["code"] == "forced-rollback-needed")
    assert [s["action"] for s in finding["repair"]["steps"]] == ["delete-pod"]


def test_diagnose_healthy_exits_0(cli, make_sim) -> None:
    env = make_sim("healthy")
    result = cli(*env.args("diagnose", "web"))
    assert result.code == ExitCode.OK, result
    assert "COMPLETE" in result.stdout


def test_history_shows_revisions_roles_and_changes(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    body = cli(*env.args("history", "web", "-o", "json")).json()
    items = body["items"]
    assert [i["revision"] for i in items] == [1, 2]
    assert items[0]["current"] and items[0]["pods"] == 4
    assert items[1]["update"] and items[1]["pods"] == 1 and "command" in items[1]["change"]


def test_diff_shows_the_template_change(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    result = cli(*env.args("diff", "web", "1", "2"))
    assert result.code == ExitCode.OK
    assert "exit 1" in result.stdout and result.stdout.startswith("--- revision 1")
    assert cli(*env.args("diff", "web", "9")).code == ExitCode.USAGE


def test_collect_then_diagnose_offline_agrees_with_live(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback")
    saved = tmp_path / "incident.yaml"
    assert cli(*env.args("collect", "web", "--save", str(saved))).code == ExitCode.OK
    document = yaml.safe_load(saved.read_text())
    kinds = {item["kind"] for item in document["items"]}
    assert {"StatefulSet", "Pod", "ControllerRevision", "Event", "Node"} <= kinds
    assert document["metadata"]["annotations"]["stsfix.dev/collected-at"]
    env.sim.stop()
    offline = cli("diagnose", "-f", str(saved), "-o", "json")
    assert offline.code == ExitCode.ACTION_NEEDED, offline
    codes = [f["code"] for f in offline.json()["items"][0]["findings"]]
    assert "forced-rollback-needed" in codes
    assert cli("inspect", "web", "-f", str(saved)).code == ExitCode.OK


def test_offline_plain_kubectl_list_works_and_says_what_is_missing(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback")
    items = [
        {"kind": kind, **obj}
        for kind, resource in (("StatefulSet", "statefulsets"), ("Pod", "pods"))
        for obj in env.sim.list(resource, "default")
    ]
    path = tmp_path / "get.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    result = cli("diagnose", "-f", str(path), "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    item = result.json()["items"][0]
    revisions = [f"controllerrevision/{item[k]['name']}" for k in ("currentRevision", "updateRevision")]
    assert item["missing"] == ["events", "persistentvolumeclaims", "nodes", "poddisruptionbudgets", *revisions]
    assert "forced-rollback-needed" in [f["code"] for f in item["findings"]]


def test_offline_now_sets_the_time_ages_are_judged_against(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback")
    saved = tmp_path / "incident.yaml"
    cli(*env.args("collect", "web", "--save", str(saved)))
    pod = env.sim.get("pods", "default", "web-4")
    created = pod["metadata"]["creationTimestamp"]
    early = cli("inspect", "web", "-f", str(saved), "--now", created, "-o", "json").json()
    assert early["ordinals"][4]["ageSeconds"] == 0
    default = cli("inspect", "web", "-f", str(saved), "-o", "json").json()
    assert default["ordinals"][4]["ageSeconds"] > 60  # judged at the collection time, not the local clock
    assert cli("diagnose", "-f", str(saved), "--now", "yesterday").code == ExitCode.USAGE


def test_offline_bad_file_is_exit_2(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("items: [\n")
    result = cli("inspect", "web", "-f", str(bad))
    assert result.code == ExitCode.USAGE and "line" in result.stderr
    assert cli("inspect", "web", "-f", str(tmp_path / "missing.yaml")).code == ExitCode.USAGE


def test_inspect_watch_redraws_until_the_rollout_completes(cli, make_sim) -> None:
    env = make_sim("healthy", speed=4.0)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
    env.sim.patch("statefulsets", "default", "web", patch)
    result = cli(*env.args("inspect", "web", "--watch"))
    assert result.code == ExitCode.OK, result
    frames = result.stdout.split("---\n")
    assert len([f for f in frames if f.strip()]) >= 2
    assert "PROGRESSING" in result.stdout and "COMPLETE" in frames[-1]
    assert "rollout complete" in result.stderr


def test_diagnose_makes_a_constant_number_of_requests(cli, make_sim) -> None:
    env = make_sim("forced-rollback")
    env.sim.requests.clear()
    assert cli(*env.args("diagnose", "web")).code == ExitCode.ACTION_NEEDED
    single = len(_requests(env))
    env.sim.requests.clear()
    cli(*env.args("diagnose", "-A", "-o", "json"))
    fleet_one = len(_requests(env))
    for i in range(3):
        env.sim.apply_manifest(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": f"d{i}", "namespace": f"team{i}"},
                "spec": {
                    "replicas": 3,
                    "serviceName": f"d{i}",
                    "selector": {"matchLabels": {"app": f"d{i}"}},
                    "template": {
                        "metadata": {"labels": {"app": f"d{i}"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
                    },
                },
            }
        )
    env.sim.requests.clear()
    body = cli(*env.args("diagnose", "-A", "-o", "json")).json()
    assert len(body["items"]) == 4
    assert len(_requests(env)) == fleet_one
    # one set: 8 LISTs/GETs, plus at most MAX_TAILS previous-run logs (here web-4's); a fleet reads none
    from stsfix.analysis.logs import MAX_TAILS

    assert [path for _, path in _requests(env) if path.endswith("/log")] == []
    assert single <= 8 + 1 <= 8 + MAX_TAILS and fleet_one <= 8


def test_diff_masks_secret_looking_env_values_unless_asked(cli, make_sim) -> None:
    env = make_sim("healthy")
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "env": [
                                {"name": "DB_PASSWORD", "value": "hunter2"},
                                {"name": "MODE", "value": "fast"},
                            ],
                        }
                    ]
                }
            }
        }
    }
    env.sim.patch("statefulsets", "default", "web", patch)
    masked = cli(*env.args("diff", "web", "1"))
    assert masked.code == ExitCode.OK
    assert "DB_PASSWORD" in masked.stdout and "hunter2" not in masked.stdout and "<hidden>" in masked.stdout
    assert "fast" in masked.stdout
    shown = cli(*env.args("diff", "web", "1", "--show-values"))
    assert "hunter2" in shown.stdout


def _quota_incident(path: Path, *, count: int) -> None:
    """web-1 is missing and the controller fails to create it (exceeded quota); FailedCreate first
    seen 20 minutes before T0, `count` times."""
    from stsfix.offline import COLLECTED_AT
    from tests.unit.builders import (
        GOOD,
        MIN,
        T0,
        format_time,
        raw_event,
        raw_pod,
        raw_revision,
        raw_statefulset,
    )

    sts = raw_statefulset(
        status={
            "replicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "currentReplicas": 2,
            "updatedReplicas": 2,
        }
    )
    event = raw_event(
        "StatefulSet",
        "web",
        "FailedCreate",
        'create Pod web-1 in StatefulSet web failed error: pods "web-1" is forbidden: exceeded quota: compute',
        count=count,
        first=-20 * MIN,
    )
    items = [
        sts,
        raw_pod(0),
        raw_pod(2),
        raw_revision(GOOD, 1),
        {"apiVersion": "v1", "kind": "Event", **event},
    ]
    document = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"annotations": {COLLECTED_AT: format_time(T0)}},
        "items": items,
    }
    path.write_text(yaml.safe_dump(document))


def test_inspect_and_diagnose_agree_on_a_set_stuck_on_quota(cli, tmp_path: Path) -> None:
    saved = tmp_path / "quota.yaml"
    _quota_incident(saved, count=1)
    fleet = cli("inspect", "-A", "--state", "stuck", "-f", str(saved), "-o", "json")
    assert fleet.code == ExitCode.OK, fleet
    assert [i["statefulset"]["name"] for i in fleet.json()["items"]] == ["web"]
    single = cli("inspect", "web", "-f", str(saved), "-o", "json").json()
    assert single["state"] == "stuck" and "exceeded quota" in single["message"]
    verdict = cli("diagnose", "web", "-f", str(saved), "-o", "json").json()["items"][0]["verdict"]
    assert verdict == single["state"]


def test_inspect_stuck_after_is_the_threshold_diagnose_uses(cli, tmp_path: Path) -> None:
    saved = tmp_path / "quota.yaml"
    _quota_incident(saved, count=1)  # one FailedCreate, 20 minutes old
    for threshold, expected in (("10m", "stuck"), ("30m", "progressing")):
        inspected = cli("inspect", "web", "-f", str(saved), "--stuck-after", threshold, "-o", "json")
        assert inspected.code == ExitCode.OK, inspected
        diagnosed = cli("diagnose", "web", "-f", str(saved), "--stuck-after", threshold, "-o", "json")
        assert (inspected.json()["state"], diagnosed.json()["items"][0]["verdict"]) == (expected, expected)


def test_inspect_watch_of_a_fleet_redraws_as_it_changes_until_ctrl_c(make_sim) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    env = make_sim("rollout-in-progress", speed=5.0)  # slow enough to see it move: ~12 s to complete
    proc = subprocess.Popen(
        [sys.executable, "-m", "stsfix", "inspect", "-A", "--watch", "-o", "json", "--kubeconfig", env.kubeconfig],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    import threading

    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while '"state": "complete"' not in "".join(lines) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    stderr = proc.stderr.read() if proc.stderr else ""
    stdout = "".join(lines)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    frames, text, decoder = [], stdout.strip(), json.JSONDecoder()
    while text:
        frame, end = decoder.raw_decode(text)
        frames.append(frame)
        text = text[end:].strip()
    fleet = [f for f in frames if f["kind"] == "FleetInspection"]
    states = [f["items"][0]["state"] for f in fleet]
    assert len(fleet) >= 2 and states[0] == "progressing" and states[-1] == "complete", states
    assert all(a != b for a, b in zip(fleet, fleet[1:], strict=False))  # redrawn only when it changed
