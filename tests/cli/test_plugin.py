"""`kubectl stsfix`: kubectl finds the kubectl-stsfix script on PATH and runs it as a plugin.

Runs only where kubectl is installed; kubectl gets an isolated HOME, KUBECONFIG and KUBECACHEDIR.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stsfix.errors import ExitCode

pytestmark = pytest.mark.kubectl

KUBECTL = shutil.which("kubectl")
PLUGIN = Path(sys.executable).parent / "kubectl-stsfix"


@pytest.fixture
def kubectl(tmp_path: Path):
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    if not PLUGIN.exists():
        pytest.skip(f"kubectl-stsfix is not installed beside {sys.executable} (pip install -e .)")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "kubectl-stsfix").symlink_to(PLUGIN)
    env = {
        **os.environ,
        "PATH": f"{plugins}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=120)

    run.plugins = plugins  # type: ignore[attr-defined]
    return run


def test_kubectl_lists_the_plugin(kubectl) -> None:
    done = kubectl("plugin", "list")
    assert str(kubectl.plugins / "kubectl-stsfix") in done.stdout, done


def test_kubectl_stsfix_help_names_itself_as_a_kubectl_command(kubectl) -> None:
    done = kubectl("stsfix", "--help")
    assert done.returncode == 0, done
    assert done.stdout.startswith("Usage: kubectl stsfix") and "Exit codes" in done.stdout
    assert "playbook" in done.stdout


def test_kubectl_stsfix_diagnoses_a_cluster_with_exit_codes_passed_through(kubectl, make_sim) -> None:
    env = make_sim("forced-rollback")
    done = kubectl("stsfix", "diagnose", "web", "-n", "default", "--kubeconfig", env.kubeconfig, "-o", "json")
    assert done.returncode == ExitCode.ACTION_NEEDED, done
    assert '"forced-rollback-needed"' in done.stdout


def test_kubectl_stsfix_usage_errors_name_the_plugin(kubectl) -> None:
    done = kubectl("stsfix", "diagnose", "--no-such-flag")
    assert done.returncode == ExitCode.USAGE
    assert "see 'kubectl stsfix --help'" in done.stderr


def test_kubectl_completes_the_plugin_arguments_with_the_documented_helper(kubectl) -> None:
    # docs/completion.md: kubectl_complete-stsfix answers with stsfix's own completion
    helper = kubectl.plugins / "kubectl_complete-stsfix"
    helper.write_text(
        '#!/bin/sh\n_STSFIX_COMPLETE=complete_bash COMP_WORDS="stsfix $*" COMP_CWORD=$# exec stsfix\n'
    )
    helper.chmod(0o755)
    (kubectl.plugins / "stsfix").symlink_to(PLUGIN.parent / "stsfix")
    done = kubectl("__complete", "stsfix", "playbook", "")
    assert done.returncode == 0, done
    assert {"list", "show", "run"} <= set(done.stdout.split())
