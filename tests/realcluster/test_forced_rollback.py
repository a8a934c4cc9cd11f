"""The forced-rollback story on the real StatefulSet controller (semantics reference §7).

An OrderedReady set's template is changed to a command that exits 1; the controller replaces the
highest ordinal, which crash-loops, and the rollout stops there. `kubectl rollout undo` reverts the
template, and nothing else happens: the real controller leaves web-4 on the bad revision forever.
`stsfix diagnose` names it, `stsfix rollback --dry-run=server` persists nothing, and `stsfix rollback
--yes` heals the set, deleting exactly the broken pod, after the revert was observed: the apiserver's
audit log shows every DELETE it received.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from stsfix.errors import ExitCode
from tests.conftest import CliRun, run_cli
from tests.controlplane.cluster import ControlPlane
from tests.realcluster.replay import STUCK_AFTER, RealTarget, replay

REPAIR = "system:serviceaccount:stsfix:stsfix-repair"


def stsfix(real: RealTarget, *args: str, context: str = "repair") -> CliRun:
    return run_cli(*args, "-n", real.namespace, "--kubeconfig", real.kubeconfig, "--context", context)


def kubectl(plane: ControlPlane, *args: str) -> str:
    argv = [str(plane.bin_dir / "kubectl"), "--kubeconfig", str(plane.kubeconfig), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


def pod_writes(plane: ControlPlane, namespace: str, *, verb: str) -> list[dict[str, Any]]:
    """Audit events for `verb` on pods of `namespace`, oldest first, with who sent them."""
    return [
        e
        for e in plane.audit_events()
        if e.get("verb") == verb
        and (e.get("objectRef") or {}).get("resource") == "pods"
        and not (e.get("objectRef") or {}).get("subresource")
        and (e.get("objectRef") or {}).get("namespace") == namespace
        and e.get("stage") == "ResponseComplete"
    ]


def test_rollout_undo_leaves_the_real_controller_stuck_and_stsfix_rollback_deletes_only_web_4(
    control_plane: ControlPlane, real: RealTarget
) -> None:
    replay("forced-rollback", real)
    kubectl(control_plane, "-n", real.namespace, "rollout", "undo", "statefulset/web")
    sts = real.get("statefulsets", real.namespace, "web") or {}
    deadline = time.monotonic() + 30
    while (sts.get("status") or {}).get("observedGeneration") != sts["metadata"]["generation"]:
        assert time.monotonic() < deadline, sts.get("status")
        time.sleep(0.2)
        sts = real.get("statefulsets", real.namespace, "web") or {}
    time.sleep(3)  # a few more syncs of the real controller: it does nothing for web-4
    status = (real.get("statefulsets", real.namespace, "web") or {})["status"]
    web4 = real.get("pods", real.namespace, "web-4") or {}
    assert status["currentRevision"] == status["updateRevision"]
    assert web4["metadata"]["labels"]["controller-revision-hash"] != status["updateRevision"]
    assert status.get("readyReplicas") == 4

    diagnosis = stsfix(real, "diagnose", "web", "--stuck-after", STUCK_AFTER, "-o", "json", context="readonly")
    assert diagnosis.code == ExitCode.ACTION_NEEDED, diagnosis
    finding = diagnosis.json()["items"][0]["findings"][0]
    assert finding["code"] == "forced-rollback-needed" and finding["pods"] == ["web-4"], finding

    before = real.get("statefulsets", real.namespace, "web") or {}
    dry = stsfix(real, "rollback", "web", "--dry-run=server", "-o", "json")
    assert dry.code == ExitCode.ACTION_NEEDED, dry
    after = real.get("statefulsets", real.namespace, "web") or {}
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    still = real.get("pods", real.namespace, "web-4")
    assert still is not None and still["metadata"]["uid"] == web4["metadata"]["uid"]
    deletes_before = pod_writes(control_plane, real.namespace, verb="delete")

    result = stsfix(real, "rollback", "web", "--yes", "--timeout", "120s", "-o", "json")
    assert result.code == ExitCode.OK, result

    deletes = pod_writes(control_plane, real.namespace, verb="delete")[len(deletes_before):]
    ours = [e for e in deletes if e["user"]["username"] == REPAIR]
    # One DELETE carried out, of web-4. A crash-looping pod's resourceVersion moves with every
    # restart, so a DELETE guarded by the one read just before may answer 409: stsfix then reads
    # again and sends a fresh one, which is the rule (a conflict means re-check), not a second delete.
    carried_out = [e["objectRef"]["name"] for e in ours if e["responseStatus"]["code"] < 300]
    refused = [(e["objectRef"]["name"], e["responseStatus"]["code"]) for e in ours if e["responseStatus"]["code"] >= 300]
    assert carried_out == ["web-4"], ours
    assert all(r == ("web-4", 409) for r in refused), refused
    sent_by_dry_run = [e for e in deletes_before if e["user"]["username"] == REPAIR]
    assert sent_by_dry_run and all("dryRun=All" in e["requestURI"] for e in sent_by_dry_run), sent_by_dry_run
    healed = real.get("statefulsets", real.namespace, "web") or {}
    assert healed["status"].get("readyReplicas") == 5 == healed["status"].get("updatedReplicas")
    assert all(
        p["metadata"]["labels"]["controller-revision-hash"] == healed["status"]["updateRevision"]
        for p in real.list("pods", real.namespace)
    )
    claims = real.list("persistentvolumeclaims", real.namespace)
    assert sorted(c["metadata"]["name"] for c in claims) == [f"www-web-{i}" for i in range(5)]
    assert not [e for e in control_plane.audit_events()
                if e.get("objectRef", {}).get("resource") == "persistentvolumeclaims"
                and e.get("verb") == "delete"]  # fmt: skip


def audited(plane: ControlPlane, namespace: str) -> list[tuple[str, str, str, str]]:
    """(user, verb, resource[/subresource], name) of every audited write in `namespace` that the
    API server carried out (2xx), in order. A request that failed changed nothing: a DELETE sent
    again after its response was lost (retried with the same uid precondition) answers 404 or 409."""
    out = []
    for e in plane.audit_events():
        ref = e.get("objectRef") or {}
        code = (e.get("responseStatus") or {}).get("code", 0)
        if ref.get("namespace") != namespace or e.get("stage") != "ResponseComplete" or code >= 300:
            continue
        resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.append((e["user"]["username"], e["verb"], resource, ref.get("name", "")))
    return out


def test_stsfix_rollback_reverts_then_deletes_web_4_only_after_the_controller_saw_the_revert(
    control_plane: ControlPlane, real: RealTarget
) -> None:
    replay("forced-rollback", real)
    start = len(audited(control_plane, real.namespace))

    result = stsfix(real, "rollback", "web", "--yes", "--timeout", "120s", "-o", "json")
    assert result.code == ExitCode.OK, result

    trail = audited(control_plane, real.namespace)[start:]
    ours = [(verb, resource, name) for user, verb, resource, name in trail if user == REPAIR]
    mutations = [t for t in ours if t[1] in ("statefulsets", "pods")]
    # the revert, the one delete, then the last-repair annotation on the set
    assert mutations == [
        ("patch", "statefulsets", "web"), ("delete", "pods", "web-4"), ("patch", "statefulsets", "web")
    ], (ours, [e for e in control_plane.audit_events() if (e.get("objectRef") or {}).get("name") == "web-4"
               and e.get("verb") == "delete"], result.stderr[-3000:])  # fmt: skip
    revert = trail.index((REPAIR, "patch", "statefulsets", "web"))
    delete = trail.index((REPAIR, "delete", "pods", "web-4"))
    controller = "system:serviceaccount:kube-system:statefulset-controller"
    status_writes = [i for i, t in enumerate(trail) if t[0] == controller and t[2] == "statefulsets/status"]
    assert any(revert < i < delete for i in status_writes), trail[revert : delete + 1]
    healed = (real.get("statefulsets", real.namespace, "web") or {})["status"]
    assert healed["currentRevision"] == healed["updateRevision"] and healed.get("readyReplicas") == 5, (
        healed, result.stdout[-1500:]
    )
