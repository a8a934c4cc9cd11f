"""Plan files, preconditions and conflicts on the real apiserver (docs/repairs.md, README "Plan review").

- A saved plan is refused (exit 4, `stale_plan`) once someone edited the set, listing what changed;
  `--replan` makes a fresh plan and repairs.
- A concurrent `kubectl` write (the real kubectl v1.34.4) lands between stsfix's read and its
  guarded write, so the real apiserver answers 409: stsfix re-reads; a step the fresh state still
  calls for is sent again with the fresh resourceVersion and the run re-plans the rest (partition
  stepping follows a `kubectl rollout restart`, keeping it), while a template someone else changed
  during a rollback is never overwritten: exit 4 saying so.

To land the kubectl write at exactly that moment, the adapter method that sends the write is wrapped
once: the wrapper runs kubectl, then calls the real method with the resourceVersion stsfix read.
Every request stsfix sends still goes to the real apiserver unchanged; the 409 is the apiserver's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.errors import ExitCode
from stsfix.kube import KubeCluster
from stsfix.model import RESTARTED_AT_ANNOTATION
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import RealTarget, replay
from tests.realcluster.tools import REPAIR, carried_out, code_of, kubectl, resource_of, stsfix, writes

TIMEOUT = "120s"


def sts(real: RealTarget) -> dict[str, Any]:
    return real.get("statefulsets", real.namespace, "web") or {}


def kubectl_before_first(monkeypatch: pytest.MonkeyPatch, method: str, run_kubectl: Callable[[], None]) -> list[int]:
    """Run `run_kubectl` right before the first call of KubeCluster.`method` (after stsfix read the
    set): that write then carries a stale resourceVersion. Returns the calls made, for the test."""
    real_method = getattr(KubeCluster, method)
    calls: list[int] = []

    def wrapped(self: KubeCluster, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 1 and not kwargs.get("dry_run"):
            run_kubectl()
        return real_method(self, *args, **kwargs)

    monkeypatch.setattr(KubeCluster, method, wrapped)
    return calls


def sts_patches(events: list[dict[str, Any]]) -> list[int]:
    """Response codes of the repair user's PATCHes of the StatefulSet, in order."""
    return [code_of(e) for e in events if e["user"]["username"] == REPAIR and e.get("verb") == "patch"
            and resource_of(e) == "statefulsets"]  # fmt: skip


def test_a_saved_plan_is_refused_once_kubectl_edited_the_set_and_replan_repairs(
    control_plane: ControlPlane, real: RealTarget, tmp_path: Path
) -> None:
    replay("forced-rollback", real)
    plan = tmp_path / "plan.yaml"
    made = stsfix(real.kubeconfig, real.namespace, "plan", "rollback", "web", "--save", str(plan), context="readonly")
    assert made.code == ExitCode.ACTION_NEEDED and plan.exists(), made
    saved = yaml.safe_load(plan.read_text())
    kubectl(control_plane, "-n", real.namespace, "patch", "statefulset", "web", "--type=merge",
            "-p", json.dumps({"spec": {"minReadySeconds": 1}}))  # fmt: skip
    start = len(control_plane.audit_events())

    stale = stsfix(real.kubeconfig, real.namespace, "apply", str(plan), "--yes", "-o", "json")
    assert stale.code == ExitCode.REFUSED, stale
    (error,) = stale.json()["errors"]
    generation = saved["preconditions"]["statefulset"]["generation"]
    assert error["code"] == "stale_plan" and f"generation changed {generation} -> {generation + 1}" in error["message"], error
    assert "--replan" in error["message"]
    assert [e for e in writes(control_plane, real.namespace, since=start) if e["user"]["username"] == REPAIR] == []

    fresh = stsfix(real.kubeconfig, real.namespace, "apply", str(plan), "--replan", "--yes", "--timeout", TIMEOUT, "-o", "json")
    assert fresh.code == ExitCode.OK, fresh
    trail = writes(control_plane, real.namespace, since=start)
    assert carried_out(trail, user=REPAIR, verb="delete", resource="pods") == ["web-4"]
    healed = sts(real)
    assert healed["spec"]["minReadySeconds"] == 1  # kubectl's edit is kept
    assert healed["status"]["readyReplicas"] == 5 and healed["status"]["currentRevision"] == healed["status"]["updateRevision"]


def test_a_409_from_a_kubectl_rollout_restart_while_stepping_the_partition_is_re_read_and_re_planned(
    control_plane: ControlPlane, real: RealTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay("partition-canary", real)
    first = sts(real)["status"]["updateRevision"]
    calls = kubectl_before_first(
        monkeypatch, "set_partition",
        lambda: kubectl(control_plane, "-n", real.namespace, "rollout", "restart", "statefulset/web"),
    )  # fmt: skip
    start = len(control_plane.audit_events())

    result = stsfix(real.kubeconfig, real.namespace, "partition", "web", "--until", "0", "--yes", "--timeout", TIMEOUT,
                    "-o", "json", "--progress", "jsonl")  # fmt: skip
    assert result.code == ExitCode.OK, result
    progress = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [p for p in progress if p["event"] == "conflict"], [p["event"] for p in progress]
    assert result.json()["outcome"]["replans"] >= 1
    trail = writes(control_plane, real.namespace, since=start)
    assert sts_patches(trail)[0] == 409 and len(calls) >= 2  # the stale write, then the re-read one
    done = sts(real)
    template = done["spec"]["template"]
    assert RESTARTED_AT_ANNOTATION in (template["metadata"].get("annotations") or {})  # kubectl's restart kept
    assert template["spec"]["containers"][0]["image"] == "nginx:1.28"  # the canary's change kept
    assert done["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 0
    status = done["status"]
    assert status["updateRevision"] != first and status["currentRevision"] == status["updateRevision"], status
    assert carried_out(trail, user=REPAIR, verb="delete", resource="pods") == []  # the controller replaced them


def test_a_409_from_a_kubectl_fix_of_the_template_during_a_rollback_is_never_overwritten(
    control_plane: ControlPlane, real: RealTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay("forced-rollback", real)
    fix = [{"op": "remove", "path": "/spec/template/spec/containers/0/command"},
           {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"}]  # fmt: skip
    kubectl_before_first(
        monkeypatch, "patch_template",
        lambda: kubectl(control_plane, "-n", real.namespace, "patch", "statefulset", "web", "--type=json",
                        "-p", json.dumps(fix)),
    )  # fmt: skip
    start = len(control_plane.audit_events())

    result = stsfix(real.kubeconfig, real.namespace, "rollback", "web", "--yes", "--timeout", TIMEOUT, "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    (error,) = result.json()["errors"]
    # the re-read sees the edit; the fresh plan would undo it, so it is refused and says why
    assert error["code"] == "precondition_failed" and error["message"].startswith("refusing: generation changed"), error
    assert "would also undo that change" in error["message"], error
    trail = writes(control_plane, real.namespace, since=start)
    assert 409 in sts_patches(trail), sts_patches(trail)
    container = sts(real)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.28" and "command" not in container  # kubectl's fix stands
    assert carried_out(trail, user=REPAIR, verb="delete", resource="pods") == []
