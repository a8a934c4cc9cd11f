"""Packaging of `stsfix guard`: deploy/guard.yaml runs the real command with real flags, two
replicas, probes, a PodDisruptionBudget and a metrics Service; the alert rules are well-formed
(always, against the rule-file schema), identical in the plain file and the PrometheusRule,
valid for `promtool check rules` and behave as promtool's rule unit tests say (when promtool is
installed); every metric and alert is documented in docs/guard.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.analysis import findings
from stsfix.guard.metrics import GuardCollector
from stsfix.guard.state import Counts, FindingLabel, LastRepair, SetStatus, Statuses

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCS = (REPO / "docs" / "guard.md").read_text()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it when it can)",
)


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def of_kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs("guard.yaml") if d["kind"] == kind]
    return doc


# -- the manifest --------------------------------------------------------------------------------
def test_the_deployment_runs_the_guard_with_real_flags_two_replicas_and_probes() -> None:
    import typer.main

    from stsfix.cli import app

    deployment = of_kind("Deployment")
    assert deployment["spec"]["replicas"] == 2
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == of_kind("ServiceAccount")["metadata"]["name"] == "stsfix-guard"
    (container,) = spec["containers"]
    args = container["args"]
    assert args[0] == "guard"
    command = typer.main.get_command(app).commands["guard"]  # type: ignore[attr-defined]
    flags = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    used = {a.split("=", 1)[0] for a in args[1:]}
    assert used <= flags, used - flags
    assert "--listen=:8080" in args and container["ports"] == [{"name": "metrics", "containerPort": 8080}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["env"][0]["name"] == "POD_NAME"  # the Lease holderIdentity
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    user = re.findall(r"^USER (\S+)", (REPO / "Dockerfile").read_text(), re.M)[-1].split(":")[0]
    assert spec["securityContext"]["runAsUser"] == int(user) and spec["securityContext"]["runAsNonRoot"] is True
    drain = next(a.split("=", 1)[1] for a in args if a.startswith("--drain-timeout="))
    assert spec["terminationGracePeriodSeconds"] > int(drain.rstrip("s")) + 10


def test_the_pdb_keeps_one_replica_and_the_service_exposes_metrics() -> None:
    labels = of_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = of_kind("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"].items() <= labels.items()
    service = of_kind("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics"}]


# -- the rules: schema (always) ------------------------------------------------------------------
RULES = yaml.safe_load((DEPLOY / "guard-rules.yaml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
PER_SET_GROUPS = ("stsfix-guard-statefulsets", "stsfix-guard-repairs")


def exported_metric_names() -> set[str]:
    """Every sample name the collector can emit, from a guard view with one of everything."""

    class View:
        statuses = Statuses(limit=10)
        counts = Counts()
        last_sync = 1.0
        dry_run = False
        synced = True

        def cache_stats(self) -> dict[str, tuple[int, int, int]]:
            return {"pods": (3, 0, 0)}

        def is_leader(self) -> bool:
            return True

        def leader_transitions(self) -> int:
            return 1

        def repairs_in_progress(self) -> int:
            return 0

    view = View()
    view.statuses.put(SetStatus("ns", "web", "stuck", (FindingLabel("pod-not-ready", "critical", ""),), 60.0, 2,
                                ("forced-rollback",), "hold", "rate_limited", "", LastRepair("rollback", "ok", "", 1.0)))  # fmt: skip
    for name in ("stsfix_guard_repairs_attempted", "stsfix_guard_repairs_succeeded", "stsfix_guard_repairs_would_run"):
        view.counts.inc(name, "ns", "web", "forced-rollback")
    for name in ("stsfix_guard_repairs_failed", "stsfix_guard_repairs_refused"):
        view.counts.inc(name, "ns", "web", "forced-rollback", "lease_held")
    view.counts.inc("stsfix_guard_repairs_held", "ns", "web", "rate_limited")
    view.counts.inc("api_errors", "api_unavailable")
    return {s.name for family in GuardCollector(view).collect() for s in family.samples}


def test_every_rule_has_the_fields_prometheus_and_the_on_call_need() -> None:
    assert [g["name"] for g in RULES["groups"]] == [*PER_SET_GROUPS, "stsfix-guard-health"]
    names = [a["alert"] for a in ALERTS]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"Stsfix[A-Z][A-Za-z]+", n) for n in names)
    for group in RULES["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            if "for" in rule:
                assert DURATION.match(rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            notes = rule["annotations"]
            assert {"summary", "description", "runbook_url"} <= set(notes), rule["alert"]
            assert notes["runbook_url"] == f"docs/guard.md#{rule['alert'].lower()}"
            if group["name"] in PER_SET_GROUPS:
                assert {"code", "playbook_command"} <= set(notes), rule["alert"]
                assert "namespace, statefulset" in rule["expr"], "per-set alerts keep the set's labels"


def test_the_rules_use_only_metrics_the_guard_exports_and_real_finding_codes() -> None:
    exported = exported_metric_names() | {"up"}
    used = {m for a in ALERTS for m in re.findall(r"\b(stsfix_[a-z_]+|up)\b(?=\s*[{\[)]|\s*$|\s*[<>=])", a["expr"])}
    assert used and used <= exported, used - exported
    codes = {v for k, v in vars(findings).items() if k.isupper() and isinstance(v, str) and "-" in v}
    mentioned = {c for a in ALERTS for c in re.findall(r'code[!=]~?"([^"]+)"', a["expr"]) for c in c.split("|")}
    assert mentioned and mentioned <= codes, mentioned - codes


def test_the_prometheusrule_carries_exactly_the_plain_rules() -> None:
    monitor, rule = docs("guard-prometheusrule.yaml")
    assert (monitor["kind"], rule["kind"]) == ("ServiceMonitor", "PrometheusRule")
    assert rule["spec"]["groups"] == RULES["groups"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == of_kind("Service")["metadata"]["labels"]


def test_every_metric_and_alert_is_documented() -> None:
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", DOCS, re.M)}
    for alert in ALERTS:
        assert alert["alert"].lower() in headings, alert["alert"]
    names = {n for n in exported_metric_names() if n.startswith("stsfix_") and not n.endswith("_created")}
    assert len(names) > 25 and [n for n in names if f"`{n}`" not in DOCS] == []


# -- the rules: promtool ---------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_the_rule_file_and_the_prometheusrule_groups(tmp_path: Path) -> None:
    extracted = tmp_path / "from-prometheusrule.yaml"
    extracted.write_text(yaml.safe_dump({"groups": docs("guard-prometheusrule.yaml")[1]["spec"]["groups"]}))
    for path in (DEPLOY / "guard-rules.yaml", extracted):
        done = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


@needs_promtool
def test_promtool_rule_unit_tests_fire_the_alerts_with_code_and_playbook(tmp_path: Path) -> None:
    tests = tmp_path / "guard-rules-test.yaml"
    tests.write_text((REPO / "tests" / "guard" / "guard-rules-test.yaml").read_text()
                     .replace("RULE_FILE", str(DEPLOY / "guard-rules.yaml")))  # fmt: skip
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
