"""deploy/, Dockerfile and kind-config.yaml: the in-cluster runs use real commands and flags, the
ServiceAccounts the RBAC files create, a non-root user, and a pinned node image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "deploy" / name).read_text()) if d]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("name", "account", "rbac"),
    [
        ("cronjob-diagnose.yaml", "stsfix-readonly", "rbac-readonly.yaml"),
        ("job-rollback.yaml", "stsfix-repair", "rbac-repair.yaml"),
    ],
)
def test_in_cluster_runs_use_the_service_account_and_real_flags(name: str, account: str, rbac: str) -> None:
    import typer.main

    from stsfix.cli import app

    (doc,) = _docs(name)
    spec = _pod_spec(doc)
    assert spec["serviceAccountName"] == account
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == account for d in _docs(rbac))
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = container["args"]
    command = typer.main.get_command(app).commands[args[0]]  # type: ignore[attr-defined]
    flags = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    used = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    assert used <= flags, used - flags
    assert _output(args) == "json"  # the Job's log is the JSON envelope


def _output(args: list[str]) -> str | None:
    """The value of -o/--output in `args`, in any of its spellings (-o json, --output=json, ...)."""
    for i, arg in enumerate(args):
        flag, _, value = arg.partition("=")
        if flag in ("-o", "--output"):
            return value if value else args[i + 1]
    return None


def test_the_image_is_slim_and_runs_as_a_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(b.startswith("python:3.") and b.endswith("-slim") for b in bases)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert re.search(r'^ENTRYPOINT \["stsfix"\]', text, re.M)
    for doc in ("cronjob-diagnose.yaml", "job-rollback.yaml"):
        assert _pod_spec(_docs(doc)[0])["securityContext"]["runAsUser"] == int(user[-1].split(":")[0])


def test_kind_config_pins_the_node_image_and_has_one_control_plane_and_two_workers() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    for node in config["nodes"]:
        assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
