"""No secret leaves stsfix: not the bearer token or the client key of the kubeconfig, not the value of
an env var whose name looks secret, in stdout, stderr at -v, plan files, collect bundles, or the
Events and annotations stsfix writes.

One simulated cluster (TLS) whose set carries `DB_PASSWORD`, `API_TOKEN` and `TLS_PRIVATE_KEY` env
values; a kubeconfig with a token and a client certificate and key. Every command below is a real
process; the figures (places checked / secrets found) go to the terminal summary.
RBAC is checked apart: tests/cli/test_rbac.py (the simulator) and tests/realcluster (real authorization).
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from stsfix.sim.cluster import SimCluster
from stsfix.sim.scenarios import load_scenario
from tests.reliability import figures
from tests.reliability.conftest import SPEED
from tests.reliability.harness import process_env, run

SUITE = "secrets"
ENV_SECRETS = {name: f"{name.lower()}-{secrets.token_hex(8)}" for name in ("DB_PASSWORD", "API_TOKEN", "TLS_PRIVATE_KEY")}
PLAIN = ("MODE", "plain-value-shown")


class Leaky:
    """The cluster, the kubeconfig and the secrets that must never show."""

    def __init__(self, tmp: Path):
        scenario = copy.deepcopy(load_scenario("forced-rollback"))
        for manifest in scenario.manifests:
            if manifest.get("kind") == "StatefulSet":
                for container in manifest["spec"]["template"]["spec"]["containers"]:
                    container["env"] = [{"name": n, "value": v} for n, v in ENV_SECRETS.items()]
                    container["env"].append({"name": PLAIN[0], "value": PLAIN[1]})
        self.sim = SimCluster(scenarios=[scenario], speed=SPEED, tls=True).start()
        self.token = "t0k-" + secrets.token_urlsafe(24)
        self.sim.server.add_user(self.token, "leaky", "admin")
        leaf = trustme.CA().issue_cert("leaky.example.test")
        key, cert = leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes()
        self.key_lines = [line for line in key.decode().splitlines() if line and not line.startswith("-----")]
        self.key_b64 = base64.b64encode(key).decode()
        assert self.sim.server.ca_pem is not None
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "leaky",
            "clusters": [{"name": "sim", "cluster": {
                "server": self.sim.server.url,
                "certificate-authority-data": base64.b64encode(self.sim.server.ca_pem).decode()}}],
            "users": [{"name": "leaky", "user": {
                "token": self.token, "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": self.key_b64}}],
            "contexts": [{"name": "leaky", "context": {"cluster": "sim", "user": "leaky", "namespace": "default"}}],
        }  # fmt: skip
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(doc))
        self.env = process_env(tmp / "home")
        self.tmp = tmp

    def found(self, text: str) -> list[str]:
        """Which secrets `text` contains."""
        out = [f"env {n}" for n, v in ENV_SECRETS.items() if v in text]
        if self.token in text:
            out.append("bearer token")
        if self.key_b64 in text or any(len(line) > 20 and line in text for line in self.key_lines):
            out.append("client key")
        return out

    def stsfix(self, *args: str) -> Any:
        return run([*args, "--kubeconfig", str(self.kubeconfig)], env=self.env)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leaky]:
    cluster = Leaky(tmp_path_factory.mktemp("secrets"))
    try:
        yield cluster
    finally:
        cluster.sim.stop()


def _check(leaky: Leaky, where: str, text: str) -> list[str]:
    found = leaky.found(text)
    figures.count(SUITE, "places checked")
    figures.count(SUITE, "secrets found", len(found))
    if found:
        figures.detail(SUITE, f"{where}: {', '.join(found)}")
    return found


READS = [
    ("inspect", "web", "-v"), ("inspect", "web", "-o", "json", "-v"), ("diagnose", "web", "-v"),
    ("diagnose", "web", "-o", "yaml", "-v"), ("history", "web", "-o", "json", "-v"), ("diff", "web", "1", "2", "-v"),
    ("diff", "web", "1", "2", "-o", "json", "-v"), ("collect", "web", "-v"), ("collect", "web", "-o", "json", "-v"),
    ("plan", "rollback", "web", "-o", "json", "-v"), ("rollback", "web", "--dry-run=server", "-o", "json", "-v"),
    ("playbook", "run", "forced-rollback", "-n", "default", "-p", "statefulset=web", "-p", "stuck_after=0s",
     "--dry-run=server", "-o", "json", "-v"),
]  # fmt: skip


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_no_secret_in_the_output_of_a_read_or_a_dry_run(leaky: Leaky, args: tuple[str, ...]) -> None:
    result = leaky.stsfix(*args)
    assert result.code in (0, 3), result
    found = _check(leaky, f"stdout of {' '.join(args)}", result.stdout) + _check(
        leaky, f"stderr of {' '.join(args)}", result.stderr
    )
    assert found == [], (found, result)


def test_no_secret_in_an_error_at_v(leaky: Leaky, tmp_path: Path) -> None:
    doc = yaml.safe_load(leaky.kubeconfig.read_text())
    doc["users"][0]["user"]["token"] = leaky.token + "-revoked"  # a 401: the token is in the request
    bad = tmp_path / "revoked.kubeconfig"
    bad.write_text(yaml.safe_dump(doc))
    result = run(["rollback", "web", "--yes", "-v", "-o", "json", "--kubeconfig", str(bad)], env=leaky.env)
    assert result.code == 5, result
    assert _check(leaky, "a 401 at -v", result.stdout + result.stderr) == [], result


def test_no_secret_in_plan_files_collect_bundles_events_or_annotations(leaky: Leaky) -> None:
    plan, bundle = leaky.tmp / "plan.yaml", leaky.tmp / "bundle.yaml"
    assert leaky.stsfix("plan", "rollback", "web", "--save", str(plan)).code == 3
    assert leaky.stsfix("collect", "web", "--save", str(bundle)).code == 0
    repaired = leaky.stsfix("rollback", "web", "--yes", "-v", "-o", "json")
    assert repaired.code == 0, repaired
    written = leaky.sim.list("events", "default")
    ours = [e for e in written if str(e.get("reason", "")).startswith("Stsfix")]
    assert ours, "the repair left its Events"
    sts = leaky.sim.get("statefulsets", "default", "web") or {}
    annotations = [sts["metadata"].get("annotations") or {}] + [
        p["metadata"].get("annotations") or {} for p in leaky.sim.list("pods", "default")
    ]
    lease = leaky.sim.get("leases", "default", "stsfix-web") or {}
    places = {
        "the plan file": plan.read_text(),
        "the collect bundle": bundle.read_text(),
        "the repair's stdout and stderr at -v": repaired.stdout + repaired.stderr,
        "stsfix's Events": yaml.safe_dump(ours),
        "annotations of the set and its pods": yaml.safe_dump(annotations),
        "the lease": yaml.safe_dump(lease),
    }
    found = [f"{where}: {f}" for where, text in places.items() for f in _check(leaky, where, text)]
    assert found == [], found


def test_collect_still_shows_plain_env_values_and_show_values_keeps_the_secret_ones(leaky: Leaky) -> None:
    shown = leaky.stsfix("collect", "web")
    assert shown.code == 0 and PLAIN[1] in shown.stdout and "<hidden" in shown.stdout
    kept = leaky.stsfix("collect", "web", "--show-values")
    assert kept.code == 0 and all(v in kept.stdout for v in ENV_SECRETS.values())
