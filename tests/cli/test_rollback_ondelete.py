"""The forced rollback under OnDelete: diagnose's steps and rollback agree, and the set ends healthy."""

from __future__ import annotations

from stsfix.errors import ExitCode


def _crash_looping(sim) -> bool:
    pod = sim.get("pods", "default", "web-2")
    statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
    return bool(statuses) and statuses[0].get("restartCount", 0) >= 3


def test_ondelete_bad_revision_is_rolled_back_by_revert_then_delete(cli, make_sim) -> None:
    env = make_sim("ondelete", speed=120.0)
    bad = {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "command": ["sh", "-c", "exit 1"]}]}}}
    }
    env.sim.patch("statefulsets", "default", "web", bad)
    env.sim.delete("pods", "default", "web-2")
    assert env.sim.wait_for(_crash_looping, timeout=30)

    diagnosis = cli(*env.args("diagnose", "web", "--stuck-after", "10s", "-o", "json"))
    assert diagnosis.code == ExitCode.ACTION_NEEDED
    finding = next(
        f for f in diagnosis.json()["items"][0]["findings"] if f["code"] == "forced-rollback-needed"
    )
    (step,) = finding["repair"]["steps"]
    assert step["action"] == "revert-template"
    assert step["effects"] == [{"action": "delete-pod", "params": {"pod": "web-2"}}]

    env.sim.requests.clear()
    command = step["command"].split()  # what diagnose proposes, as written
    assert command[:2] == ["stsfix", "rollback"]
    result = cli(*env.args(*command[1:], "--yes", "--timeout", "2m", "-o", "json"))
    assert result.code == ExitCode.OK, result
    deletes = [r.path for r in env.sim.requests if r.method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/default/pods/web-2"]
    assert cli(*env.args("diagnose", "web")).code == ExitCode.OK
