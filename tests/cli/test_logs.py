"""Crash-loop log tails over HTTP: diagnose shows the previous run's last lines, collect keeps them,
secrets are masked, and a log that cannot be read is said so without failing the diagnosis."""

from __future__ import annotations

from pathlib import Path

from stsfix.errors import ExitCode

LOGGED = "web-4: container web logged before its last restart (1 line):\nstarting"


def _evidence(result) -> list[str]:
    return [e for f in result.json()["items"][0]["findings"] for e in f["evidence"]]


def test_diagnose_shows_the_previous_runs_log_and_collect_keeps_it(cli, make_sim, tmp_path: Path) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    live = cli(*env.args("diagnose", "web", "-o", "json"))
    assert live.code == ExitCode.ACTION_NEEDED, live
    assert LOGGED in _evidence(live)
    logs = [r for r in env.sim.requests if r.path.endswith("/log")]
    assert [(r.path, r.query.get("previous"), r.query.get("tailLines")) for r in logs] == [
        ("/api/v1/namespaces/default/pods/web-4/log", "true", "20")
    ]
    text = cli(*env.args("diagnose", "web")).stdout
    assert (
        "      - web-4: container web logged before its last restart (1 line):\n        | starting\n" in text
    )

    saved = tmp_path / "incident.yaml"
    assert cli(*env.args("collect", "web", "--save", str(saved))).code == ExitCode.OK
    assert "stsfix.dev/previous-logs" in saved.read_text()
    offline = cli("diagnose", "-f", str(saved), "-o", "json")
    assert LOGGED in _evidence(offline)


def test_secrets_in_the_log_are_masked(cli, make_sim) -> None:
    env = make_sim("healthy", speed=60.0)
    env.sim.patch("statefulsets", "default", "web", {"spec": {"template": {"spec": {"containers": [{
        "name": "web",
        "env": [{"name": "DB_PASSWORD", "value": "s3cr3t-pass"}],
        "command": ["sh", "-c", "echo login as app with s3cr3t-pass and api_token=abc123xyz; exit 1"],
    }]}}}})  # fmt: skip

    def crash_looping(sim) -> bool:
        statuses = (sim.get("pods", "default", "web-2") or {}).get("status", {}).get("containerStatuses") or [
            {}
        ]
        return int(statuses[0].get("restartCount") or 0) >= 1

    assert env.sim.wait_for(crash_looping, timeout=60)
    result = cli(*env.args("diagnose", "web", "--stuck-after", "0s", "-o", "json"))
    (logged,) = [e for e in _evidence(result) if "logged before its last restart" in e]
    assert logged.endswith("login as app with <hidden> and api_token=<hidden>")
    assert "s3cr3t-pass" not in result.stdout.split('"evidence"', 1)[1] and "abc123xyz" not in result.stdout


def test_a_log_that_cannot_be_read_is_said_so_and_the_diagnosis_stands(cli, make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    env.sim.server.faults.add(method="GET", path_re=r"pods/web-4/log", status=502, times=None,
                              message="the kubelet on sim-worker2 serves no logs")  # fmt: skip
    result = cli(*env.args("diagnose", "web", "-o", "json"))
    assert result.code == ExitCode.ACTION_NEEDED, result
    (line,) = [e for e in _evidence(result) if "previous run could not be read" in e]
    assert line.startswith("web-4: the log of container web's previous run could not be read: ")
    assert result.json()["items"][0]["findings"][0]["code"] == "forced-rollback-needed"
    assert len([r for r in env.sim.requests if r.path.endswith("/log")]) == 1  # not retried
