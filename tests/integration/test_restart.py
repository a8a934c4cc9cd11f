"""`stsfix restart` over HTTP against the simulated cluster, through the real CLI and kube adapter:
refused (and waited for) during an upgrade, refused while stuck, partition-aware, and under
OnDelete a guarded delete of one pod at a time that never deletes a pod twice."""

from __future__ import annotations

import threading
from typing import Any

from stsfix.errors import ExitCode
from stsfix.model import RESTARTED_AT_ANNOTATION, format_time
from tests.conftest import CliRun
from tests.integration.conftest import mutations, pod, revision_of, sts


def _stamp(obj: dict[str, Any]) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(RESTARTED_AT_ANNOTATION)


def _template_stamp(cluster: Any) -> str | None:
    return (sts(cluster)["spec"]["template"]["metadata"].get("annotations") or {}).get(
        RESTARTED_AT_ANNOTATION
    )


def _uids(cluster: Any, ordinals: range) -> dict[int, str]:
    return {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in ordinals}


def _pod_deletes(cluster: Any) -> list[str]:
    return [
        r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE" and "/pods/" in r.path
    ]


def test_restart_of_a_healthy_set_restarts_every_pod_and_verifies_it(sim, stsfix) -> None:
    cluster = sim("healthy", speed=60.0)
    before = _uids(cluster, range(3))

    result = stsfix("restart", "web", "-n", "default", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    steps = result.json()["outcome"]["steps"]
    assert [s["kind"] for s in steps] == ["RestartTemplate", *["AwaitRestartedPod"] * 3]
    stamp = _template_stamp(cluster)
    assert stamp and all(_stamp(pod(cluster, f"web-{o}")) == stamp for o in range(3))
    assert all(before[o] != uid for o, uid in _uids(cluster, range(3)).items())
    assert _pod_deletes(cluster) == []  # RollingUpdate: the controller replaces them
    status = sts(cluster)["status"]
    assert status["currentRevision"] == status["updateRevision"] and status["readyReplicas"] == 3


def test_restart_is_refused_during_an_upgrade_and_names_it(sim, stsfix) -> None:
    cluster = sim("rollout-in-progress", speed=60.0)
    result = stsfix("restart", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    error = result.json()["errors"][0]
    assert error["code"] == "rollout_in_progress"
    assert "a rollout to web-" in error["message"] and "--wait-for-rollout" in error["message"]
    assert mutations(cluster) == []


def test_restart_waits_for_the_upgrade_then_restarts_keeping_it(sim, stsfix) -> None:
    cluster = sim("rollout-in-progress", speed=120.0)
    upgrade = sts(cluster)["status"]["updateRevision"]

    result = stsfix("restart", "web", "-n", "default", "--wait-for-rollout", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    kinds = [s["kind"] for s in result.json()["outcome"]["steps"]]
    restart_at = kinds.index("RestartTemplate")
    assert "AwaitRolloutComplete" in kinds[:restart_at]  # the upgrade finished first
    template = sts(cluster)["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "nginx:1.28"  # the upgrade is kept
    status = sts(cluster)["status"]
    assert status["updateRevision"] != upgrade and status["currentRevision"] == status["updateRevision"]
    stamp = _template_stamp(cluster)
    assert all(_stamp(pod(cluster, f"web-{o}")) == stamp for o in range(5))


def test_restart_of_a_stuck_rollout_is_refused_even_with_wait_for_rollout(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("restart", "web", "-n", "default", "--wait-for-rollout", "--yes")
    assert result.code == ExitCode.REFUSED, result
    assert "stuck" in result.stderr and "web-4" in result.stderr
    assert mutations(cluster) == []


def test_restart_warns_that_ordinals_below_the_partition_do_not_restart(sim, stsfix) -> None:
    cluster = sim("partition-canary", speed=60.0)
    below = _uids(cluster, range(3))

    result = stsfix("restart", "web", "-n", "default", "--yes")

    assert result.code == ExitCode.OK, result
    assert "will not restart: web-0, web-1, web-2" in result.stderr
    assert _uids(cluster, range(3)) == below
    stamp = _template_stamp(cluster)
    assert all(_stamp(pod(cluster, f"web-{o}")) == stamp for o in (3, 4))


def _ondelete_converged(cluster: Any) -> None:
    """The `ondelete` scenario with its pending update reverted: every pod at updateRevision."""
    cluster.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
    )
    assert cluster.wait_for(
        lambda c: {revision_of(pod(c, f"web-{o}")) for o in range(3)} == {sts(c)["status"]["updateRevision"]},
        timeout=5,
    )


def test_restart_under_ondelete_with_a_pending_update_is_refused(sim, stsfix) -> None:
    cluster = sim("ondelete")
    result = stsfix("restart", "web", "-n", "default", "--wait-for-rollout", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "ondelete_update_pending"
    assert mutations(cluster) == []


def test_restart_under_ondelete_deletes_one_pod_at_a_time_highest_first(sim, stsfix) -> None:
    cluster = sim("ondelete", speed=60.0)
    _ondelete_converged(cluster)

    result = stsfix("restart", "web", "-n", "default", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    kinds = [s["kind"] for s in result.json()["outcome"]["steps"]]
    assert kinds == ["RestartTemplate", "AwaitRestartObserved", *["RestartPod", "AwaitRestartedPod"] * 3]
    assert _pod_deletes(cluster) == ["web-2", "web-1", "web-0"]
    stamp = _template_stamp(cluster)
    assert all(_stamp(pod(cluster, f"web-{o}")) == stamp for o in range(3))


def test_a_kubectl_style_restart_landing_during_an_ondelete_restart_deletes_no_pod_twice(sim, stsfix) -> None:
    cluster = sim("ondelete", speed=60.0)
    _ondelete_converged(cluster)
    cluster.add_rule(
        action="ready-after", pod="web-.*", seconds=20
    )  # slow gates: the second restart lands mid-run
    out: list[CliRun] = []
    thread = threading.Thread(
        target=lambda: out.append(stsfix("restart", "web", "-n", "default", "--yes", "-o", "json")),
        daemon=True,
    )
    thread.start()
    assert cluster.wait_for(lambda c: _pod_deletes(c) == ["web-2"], timeout=20)
    # kubectl rollout restart's patch, with a client clock behind the server's (the sim runs ahead).
    kubectl_stamp = format_time(cluster.clock.now().replace(year=2025))
    cluster.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: kubectl_stamp}}}}},
    )
    thread.join(timeout=60)

    assert out and out[0].code == ExitCode.OK, out
    assert _pod_deletes(cluster) == ["web-2", "web-1", "web-0"]  # each pod once
    assert _template_stamp(cluster) == kubectl_stamp  # the later restart is kept, not overwritten
    assert _stamp(pod(cluster, "web-0")) == kubectl_stamp and _stamp(pod(cluster, "web-1")) == kubectl_stamp


def test_dry_run_client_shows_the_restart_plan_and_changes_nothing(sim, stsfix) -> None:
    cluster = sim("healthy")
    result = stsfix("restart", "web", "-n", "default", "--dry-run=client")
    assert result.code == ExitCode.ACTION_NEEDED, result
    assert "restartedAt" in result.stdout
    assert mutations(cluster) == []


def test_dry_run_server_sends_the_annotation_patch_with_dry_run_all(sim, stsfix) -> None:
    cluster = sim("healthy")
    result = stsfix("restart", "web", "-n", "default", "--dry-run=server")
    assert result.code == ExitCode.ACTION_NEEDED, result
    sent = mutations(cluster)
    assert sent and all(r.query.get("dryRun") == "All" for r in sent)
    assert _template_stamp(cluster) is None
