"""How stsfix finds its cluster: --kubeconfig, KUBECONFIG with several paths, --context, in-cluster."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml

from stsfix.errors import ExitCode


def test_kubeconfig_env_with_several_paths_is_merged(
    cli, make_sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_sim("healthy")
    config = yaml.safe_load(Path(env.kubeconfig).read_text())
    first = {k: v for k, v in config.items() if k not in ("contexts", "current-context")}
    second = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": config["contexts"],
        "current-context": config["current-context"],
    }
    (tmp_path / "a").write_text(yaml.safe_dump(first))
    (tmp_path / "b").write_text(yaml.safe_dump(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    result = cli("inspect", "web")
    assert result.code == ExitCode.OK, result


def test_context_flag_selects_the_user_and_namespace(cli, make_sim) -> None:
    env = make_sim("healthy")
    assert cli(*env.args("inspect", "web", "--context", "sim-readonly")).code == ExitCode.OK
    missing = cli(*env.args("inspect", "web", "--context", "nope"))
    assert missing.code == ExitCode.CLUSTER_ERROR
    assert missing.stderr.strip() == 'error: context "nope" does not exist'


def test_namespace_defaults_to_the_contexts(cli, make_sim) -> None:
    env = make_sim("healthy")
    body = cli(*env.args("inspect", "web", "-o", "json")).json()
    assert body["statefulset"]["namespace"] == "default"
    other = cli(*env.args("inspect", "web", "-n", "elsewhere"))
    assert other.code == ExitCode.CLUSTER_ERROR and 'namespace "elsewhere"' in other.stderr


def test_in_cluster_configuration_from_the_service_account(
    cli, make_sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_sim("healthy", tls=True)
    config = yaml.safe_load(Path(env.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("readonly-token")
    (account / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    (account / "namespace").write_text("default")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("STSFIX_SERVICE_ACCOUNT_DIR", str(account))
    result = cli("inspect", "web", "-o", "json")
    assert result.code == ExitCode.OK, result
    assert result.json()["statefulset"] == {"namespace": "default", "name": "web"}
    # /version is public (the simulator, like kube-apiserver, does not resolve a user for it)
    assert {r.user for r in env.sim.requests if r.path != "/version"} == {"readonly"}


def test_verbose_logs_each_request_on_stderr_only(cli, make_sim) -> None:
    env = make_sim("healthy")
    result = cli(*env.args("inspect", "web", "-v", "-o", "json"))
    assert result.code == ExitCode.OK
    assert "GET /apis/apps/v1/namespaces/default/statefulsets/web -> 200" in result.stderr
    assert result.json()["kind"] == "Inspection"


def test_reads_retry_transient_failures_and_log_each_attempt(cli, make_sim) -> None:
    env = make_sim("healthy")
    env.sim.server.faults.add(method="GET", path_re=r"/statefulsets/web$", status=503, times=2)
    result = cli(*env.args("inspect", "web", "-o", "json"))
    assert result.code == ExitCode.OK, result
    assert result.stderr.count("attempt ") == 2 and "retrying in" in result.stderr
    assert result.json()["kind"] == "Inspection"


def test_reads_give_up_after_the_budget_with_exit_5(cli, make_sim) -> None:
    env = make_sim("healthy")
    env.sim.server.faults.add(
        method="GET", path_re=r"/statefulsets/web$", status=503, retry_after=0.1, times=10
    )
    result = cli(*env.args("inspect", "web"))
    assert result.code == ExitCode.CLUSTER_ERROR
    assert "giving up after retries" in result.stderr
