"""`stsfix guard` on the simulated cluster: the metrics say what `stsfix diagnose` says, for each
incident; label sets stay bounded; /healthz and /readyz; bad flags and an unreachable cluster fail
in one line with the documented exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stsfix.errors import ExitCode
from tests.conftest import run_cli
from tests.guard.harness import eventually


def diagnose_codes(sim, tmp_path) -> tuple[str, set[str]]:
    kubeconfig = sim.write_kubeconfig(tmp_path / "diagnose.kubeconfig")
    result = run_cli("diagnose", "web", "-n", "default", "--stuck-after", "30s", "-o", "json",
                     "--kubeconfig", str(kubeconfig))  # fmt: skip
    (item,) = result.json()["items"]
    return item["verdict"], {f["code"] for f in item["findings"]} - {"rollout-complete"}


@pytest.mark.parametrize(
    ("scenario", "verdict", "code", "blocking"),
    [
        pytest.param("healthy", "complete", None, None, id="healthy: complete, no finding"),
        pytest.param("forced-rollback", "stuck", "forced-rollback-needed", 4, id="forced rollback: web-4 blocks"),
        pytest.param("stuck-terminating", "stuck", "pod-stuck-terminating", 1, id="stuck terminating: web-1 blocks"),
        pytest.param("partition-canary", "paused", "partition-holds-rollout", None, id="canary partition: paused"),
        pytest.param("pending-pvc", "stuck", "pvc-pending", 0, id="pending PVC: web-0 blocks"),
    ],
)
def test_metrics_say_what_diagnose_says_for_each_scenario(
    make_sim, guard, tmp_path, scenario: str, verdict: str, code: str | None, blocking: int | None
) -> None:
    sim = make_sim(scenario)
    g = guard(sim, "--dry-run")
    key = {"namespace": "default", "statefulset": "web"}
    eventually(lambda: g.value("stsfix_statefulset_verdict", **key, verdict=verdict), what=f"verdict {verdict}")
    cli_verdict, cli_codes = diagnose_codes(sim, tmp_path)
    exported = {labels["code"] for name, labels, _ in g.samples() if name == "stsfix_statefulset_finding"}
    assert (cli_verdict, cli_codes) == (verdict, exported)
    if code is not None:
        assert code in exported
    assert g.value("stsfix_statefulset_blocking_ordinal", **key) == blocking
    stuck = g.value("stsfix_statefulset_stuck_seconds", **key)
    assert (stuck is not None and stuck > 0) if verdict == "stuck" else stuck is None
    assert g.value("stsfix_guard_statefulsets", verdict=verdict) == 1
    assert g.value("stsfix_guard_dry_run") == 1 and g.value("stsfix_guard_leader") == 1


def test_a_stuck_set_without_the_annotation_is_reported_and_the_guard_changes_nothing(make_sim, guard) -> None:
    sim = make_sim("forced-rollback")
    g = guard(sim)  # not a dry run: the missing annotation alone keeps it from acting
    key = {"namespace": "default", "statefulset": "web"}
    eventually(lambda: g.value("stsfix_statefulset_guard_action", **key, action="report", reason="not_opted_in"))
    eventually(lambda: [e for e in sim.list("events", "default") if e.get("reason") == "StsfixGuardStuck"],
               what="a StsfixGuardStuck Event")  # fmt: skip
    assert g.value("stsfix_statefulset_auto_repair", **key, playbook="forced-rollback") is None
    writes = {(r.method, r.path.rsplit("/", 1)[0] if r.method == "PUT" else r.path) for r in sim.requests
              if r.method != "GET"}  # fmt: skip
    assert writes <= {
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases"),
        ("POST", "/api/v1/namespaces/default/events"),
    }, writes
    (event,) = [e for e in sim.list("events", "default") if e.get("reason") == "StsfixGuardStuck"]
    assert "stsfix playbook show forced-rollback" in event["message"] and event["type"] == "Warning"


def test_per_set_series_are_bounded_by_metrics_max_sets_and_the_counts_stay_exact(make_sim, guard) -> None:
    sim = make_sim("fleet", params={"size": 10})
    g = guard(sim, "--dry-run", "--metrics-max-sets", "3")
    eventually(lambda: g.value("stsfix_guard_statefulsets", verdict="complete") == 8, what="8 complete sets")
    assert g.value("stsfix_guard_statefulsets", verdict="stuck") == 2
    exported = {(labels["namespace"], labels["verdict"]) for name, labels, _ in g.samples()
                if name == "stsfix_statefulset_verdict"}  # fmt: skip
    # the two stuck sets first, then the healthy ones in name order, three in all
    assert exported == {("team-000", "stuck"), ("team-005", "stuck"), ("team-001", "complete")}
    assert g.value("stsfix_guard_statefulsets_unexported") == 7
    codes = {labels["code"] for name, labels, _ in g.samples() if name == "stsfix_statefulset_finding"}
    assert codes == {"forced-rollback-needed"}


def test_healthz_and_readyz_answer_and_unknown_paths_are_404(make_sim, guard) -> None:
    g = guard(make_sim("healthy"))
    eventually(lambda: g.get("/readyz")[0] == 200, what="ready")
    assert g.get("/healthz") == (200, "ok: the loop is running\n")
    assert g.get("/readyz")[1].startswith("ok: watching 1 statefulsets")
    assert g.get("/nope")[0] == 404
    assert g.events("internal_error") == [] and g.value("stsfix_guard_api_errors_total", code="internal") is None
    assert g.value("stsfix_guard_synced") == 1 and g.value("stsfix_guard_build_info", version="0.1.0") == 1
    assert g.value("stsfix_guard_cache_objects", resource="pods") == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(["--listen", "localhost:http"], ExitCode.USAGE,
                     'error: invalid --listen "localhost:http": use HOST:PORT, :PORT or PORT', id="bad listen"),
        pytest.param(["--log-format", "xml"], ExitCode.USAGE, 'error: unknown --log-format "xml": use text or json',
                     id="bad log format"),
        pytest.param(["--stuck-after", "soon"], ExitCode.USAGE, 'error: invalid duration "soon": use e.g. 30s, 10m or 1h',
                     id="bad duration"),
        pytest.param(["--kubeconfig", "/nonexistent/kubeconfig"], ExitCode.CLUSTER_ERROR,
                     "error: stat /nonexistent/kubeconfig: no such file or directory", id="missing kubeconfig"),
    ],
)  # fmt: skip
def test_bad_input_fails_in_one_line_with_the_documented_code(args: list[str], code: int, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "stsfix", "guard", *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == code, done
    assert done.stderr.strip().splitlines() == [message] and done.stdout == ""


def test_the_cli_does_not_import_the_guard_or_prometheus_client_at_start_up() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import stsfix.cli"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    from stsfix.cli.commands import COMMANDS

    assert "guard" in COMMANDS and "stsfix.cli" in modules  # the command is listed (loaded when used) ...
    assert not {m for m in modules if m.startswith(("prometheus_client", "stsfix.guard"))}  # ... its weight is not
