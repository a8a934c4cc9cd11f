"""The CLI's contract: help lists commands and exit codes, bad input is one line and a documented code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stsfix.errors import ExitCode

BIN = Path(sys.executable).parent


def test_help_lists_commands_and_every_exit_code(cli) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "inspect" in result.stdout
    for code in ExitCode:
        assert f" {int(code)}  " in result.stdout


@pytest.mark.parametrize("script", ["stsfix", "kubectl-stsfix"])
def test_console_scripts_show_help(script: str) -> None:
    path = BIN / script
    if not path.exists():
        pytest.skip(f"{script} is not installed beside {sys.executable}")
    done = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Exit codes" in done.stdout and "inspect" in done.stdout


def test_importing_the_cli_does_not_import_kubernetes() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import stsfix.cli"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert not [m for m in modules if m.split(".")[0] == "kubernetes"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["inspect", "web", "--bogus"], "No such option: --bogus", id="bad flag"),
        pytest.param(["inspect", "deploy/web"], 'invalid target "deploy/web"', id="malformed target kind"),
        pytest.param(["inspect", "Web_1"], "is not a valid StatefulSet name", id="malformed target name"),
        pytest.param(
            ["inspect", "web", "-o", "xml"], 'unknown output format "xml"', id="unknown output format"
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.code == ExitCode.USAGE
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_usage_error_with_json_output_is_an_envelope_on_stdout(cli) -> None:
    result = cli("inspect", "deploy/web", "-o", "json")
    assert result.code == ExitCode.USAGE
    body = result.json()
    assert body["apiVersion"] == "stsfix.dev/v1" and body["kind"] == "Error" and body["exitCode"] == 2
    assert body["errors"][0]["code"] == "usage"


def test_missing_kubeconfig_is_a_cluster_error(cli, tmp_path: Path) -> None:
    result = cli("inspect", "web", "--kubeconfig", str(tmp_path / "nope"))
    assert result.code == ExitCode.CLUSTER_ERROR
    assert result.stderr.count("\n") == 1 and "no such file" in result.stderr


def test_unknown_statefulset_is_exit_5_with_one_line(cli, api_kubeconfig: str) -> None:
    result = cli("inspect", "sts/nope", "-n", "default", "--kubeconfig", api_kubeconfig)
    assert result.code == ExitCode.CLUSTER_ERROR, result
    assert result.stderr.strip() == 'error: statefulsets.apps "nope" not found in namespace "default"'


def test_unknown_statefulset_json_error_code(cli, api_kubeconfig: str) -> None:
    result = cli("inspect", "nope", "-n", "default", "--kubeconfig", api_kubeconfig, "-o", "json")
    assert result.code == ExitCode.CLUSTER_ERROR
    assert result.json()["errors"][0]["code"] == "statefulset_not_found"


def test_unreachable_server_is_exit_5(cli, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\n"
    )
    result = cli("inspect", "web", "--kubeconfig", str(kubeconfig), "--request-timeout", "5s")
    assert result.code == ExitCode.CLUSTER_ERROR, result
    lines = result.stderr.strip().splitlines()
    # one line, kubectl's words after the house `error:` prefix, naming the request that failed
    assert lines[-1].startswith(
        "error: Unable to connect to the server (GET /apis/apps/v1/namespaces/default/statefulsets/web): "
    ), lines[-1]
    assert all(line.startswith(("attempt ", "giving up")) for line in lines[:-1])  # the retries, logged


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-n=default", "inspect", "nope"], id="kubectl's -n=NS before the command"),
        pytest.param(["inspect", "nope", "-n=default"], id="kubectl's -n=NS after the command"),
        pytest.param(["inspect", "nope", "--namespace=default"], id="--namespace=NS"),
    ],
)
def test_namespace_flag_takes_kubectl_spellings(cli, api_kubeconfig: str, args: list[str]) -> None:
    result = cli(*args, "--kubeconfig", api_kubeconfig)
    assert result.code == ExitCode.CLUSTER_ERROR, result
    assert result.stderr.strip() == 'error: statefulsets.apps "nope" not found in namespace "default"'


def test_a_command_stsfix_does_not_have_names_the_one_that_fits(cli) -> None:
    result = cli("repair", "web")
    assert result.code == ExitCode.USAGE
    assert "`stsfix diagnose NAME` names the repair" in result.stderr and "restart" not in result.stderr
