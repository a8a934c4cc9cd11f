"""`stsfix partition` over HTTP against the simulated cluster, through the real CLI and kube adapter:
a canary stepped to completion, a bad revision caught and held, and a concurrent template change
(kubectl rollout restart, or a second edit) followed without losing either change."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.model import RESTARTED_AT_ANNOTATION
from tests.conftest import CliRun
from tests.integration.conftest import mutations, pod, revision_of, sts

BAD_IMAGE = "registry.invalid/nginx:does-not-exist"


def _partition(cluster: Any) -> int:
    return int(sts(cluster)["spec"]["updateStrategy"]["rollingUpdate"]["partition"])


def _revisions(cluster: Any, replicas: int = 5) -> list[str]:
    return [revision_of(pod(cluster, f"web-{o}")) for o in range(replicas)]


def _set_image(cluster: Any, image: str) -> None:
    cluster.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}},
    )
    assert cluster.wait_for(
        lambda c: sts(c)["status"].get("observedGeneration") == sts(c)["metadata"]["generation"], timeout=5
    )


def _pod_deletes(cluster: Any) -> list[str]:
    return [r.path for r in mutations(cluster) if r.method == "DELETE" and "/pods/" in r.path]


def test_canary_is_stepped_through_to_completion_one_ordinal_at_a_time(sim, stsfix) -> None:
    cluster = sim("partition-canary", speed=60.0)
    status = sts(cluster)["status"]
    old, new = status["currentRevision"], status["updateRevision"]
    assert _revisions(cluster) == [old, old, old, new, new] and _partition(cluster) == 3

    result = stsfix("partition", "web", "-n", "default", "--until", "0", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    steps = result.json()["outcome"]["steps"]
    assert [(s["kind"], s["status"]) for s in steps] == [
        ("SetPartition", "applied"), ("AwaitReady", "done"),
        ("SetPartition", "applied"), ("AwaitReady", "done"),
        ("SetPartition", "applied"), ("AwaitReady", "done"),
        ("AwaitRolloutComplete", "done"),
    ]  # fmt: skip
    assert _partition(cluster) == 0 and _revisions(cluster) == [new] * 5
    status = sts(cluster)["status"]
    assert status["currentRevision"] == status["updateRevision"] == new and status["readyReplicas"] == 5
    # The controller replaced the pods; stsfix only moved the partition (3 -> 2 -> 1 -> 0).
    assert _pod_deletes(cluster) == []
    # The partition writes, in the order the API server received them.
    bodies = [
        json.loads(r.body)
        for r in mutations(cluster)
        if r.method == "PATCH" and r.path.endswith("/statefulsets/web") and r.status == 200
    ]
    writes = [b["spec"]["updateStrategy"]["rollingUpdate"]["partition"] for b in bodies if "spec" in b]
    assert writes == [2, 1, 0]
    # The audit trail lists in the same order: the API server lists by name, and stsfix names its
    # Events as client-go's recorder does (<set>.<hex nanoseconds>), so `kubectl get events` is in time order.
    moves = [e["message"] for e in cluster.list("events", "default") if e.get("reason") == "StsfixSetPartition"]
    assert [int(m.split("to ")[1].split()[0]) for m in moves] == writes, moves


def test_hold_then_template_change_then_step_is_a_canary_on_a_plain_statefulset(sim, stsfix) -> None:
    cluster = sim("healthy", speed=60.0)
    uids = {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(3)}
    old = sts(cluster)["status"]["currentRevision"]

    held = stsfix("partition", "web", "-n", "default", "--hold", "--yes")
    assert held.code == ExitCode.OK, held
    assert _partition(cluster) == 3
    _set_image(cluster, "nginx:1.28")
    new = sts(cluster)["status"]["updateRevision"]
    assert new != old
    assert {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(3)} == uids  # held: nothing moved

    first = stsfix("partition", "web", "-n", "default", "--step", "--yes")
    assert first.code == ExitCode.OK, first
    assert _partition(cluster) == 2 and _revisions(cluster, 3) == [old, old, new]
    assert pod(cluster, "web-2")["status"]["conditions"]  # Ready, checked by the gate
    assert {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(2)} == {
        o: uids[o] for o in range(2)
    }

    rest = stsfix("partition", "web", "-n", "default", "--step", "--count", "2", "--yes")
    assert rest.code == ExitCode.OK, rest
    assert _partition(cluster) == 0 and _revisions(cluster, 3) == [new] * 3


def test_bad_revision_is_caught_at_the_first_stepped_ordinal_and_held(sim, stsfix) -> None:
    cluster = sim("partition-canary", speed=60.0)
    status = sts(cluster)["status"]
    old, canary = status["currentRevision"], status["updateRevision"]
    assert stsfix("partition", "web", "-n", "default", "--hold", "--yes").code == ExitCode.OK
    _set_image(cluster, BAD_IMAGE)
    bad = sts(cluster)["status"]["updateRevision"]
    uids = {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(4)}

    result = stsfix(
        "partition", "web", "-n", "default", "--until", "0", "--yes", "--timeout", "2m", "-o", "json"
    )

    assert result.code == ExitCode.NOT_CONVERGED, result
    body = result.json()
    assert body["errors"][0]["code"] == "paused_on_failure"
    assert body["errors"][0]["cause"] == "recreated_pod_failing"
    assert body["partition"] == 5 and _partition(cluster) == 5
    assert body["held"]["status"] == "ok"
    assert body["diagnosis"]["verdict"] == "stuck"
    assert any("web-4" in f["pods"] for f in body["diagnosis"]["findings"])
    # Only the first stepped ordinal got the bad revision; the rest never moved.
    assert _revisions(cluster) == [old, old, old, canary, bad]
    assert {o: pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(4)} == uids
    # Stepping again is refused while an updated pod fails: it would spread the bad revision.
    again = stsfix("partition", "web", "-n", "default", "--step", "--yes")
    assert again.code == ExitCode.REFUSED, again
    assert "web-4 is failing" in again.stderr
    assert _partition(cluster) == 5


def test_no_pause_on_failure_leaves_the_partition_where_the_failure_happened(sim, stsfix) -> None:
    cluster = sim("partition-canary", speed=60.0)
    assert stsfix("partition", "web", "-n", "default", "--hold", "--yes").code == ExitCode.OK
    _set_image(cluster, BAD_IMAGE)
    result = stsfix(
        "partition", "web", "-n", "default", "--step", "--no-pause-on-failure", "--yes", "--timeout", "1m"
    )
    assert result.code == ExitCode.NOT_CONVERGED, result
    assert "web-4" in result.stderr and _partition(cluster) == 4


def _in_background(stsfix: Any, *args: str) -> tuple[threading.Thread, list[CliRun]]:
    out: list[CliRun] = []
    thread = threading.Thread(target=lambda: out.append(stsfix(*args)), daemon=True)
    thread.start()
    return thread, out


def _kubectl_restart(cluster: Any, tmp_path: Path) -> None:
    from tests.sim.kubectl import run_kubectl

    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubectl-kubeconfig")
    done = run_kubectl(
        kubeconfig, tmp_path / "cache", "-n", "default", "rollout", "restart", "statefulset/web"
    )
    assert done.returncode == 0, done.stderr


def _second_edit(cluster: Any, tmp_path: Path) -> None:
    cluster.patch(
        "statefulsets",
        "default",
        "web",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "web", "env": [{"name": "MODE", "value": "b"}]}]}
                }
            }
        },
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_kubectl_restart, id="kubectl rollout restart lands mid-step"),
        pytest.param(_second_edit, id="a second template change lands mid-step"),
    ],
)
def test_a_template_change_while_stepping_is_followed_without_losing_either_change(
    sim, stsfix, tmp_path: Path, change: Any
) -> None:
    kubectl = change is _kubectl_restart
    if kubectl:
        from tests.sim.kubectl import kubectl_argv

        if kubectl_argv() is None:
            pytest.skip("no kubectl binary")
    # NB: client-go sends the kubeconfig's bearer token over TLS only.
    cluster = sim("partition-canary", speed=60.0, tls=kubectl)
    cluster.add_rule(
        action="ready-after", pod="web-.*", seconds=20
    )  # slow gates, so the change lands mid-run
    first = sts(cluster)["status"]["updateRevision"]

    thread, out = _in_background(
        stsfix, "partition", "web", "-n", "default", "--until", "0", "--yes", "-o", "json"
    )
    assert cluster.wait_for(lambda c: _partition(c) <= 2, timeout=20)
    change(cluster, tmp_path)
    thread.join(timeout=60)

    assert out and out[0].code == ExitCode.OK, out
    template = sts(cluster)["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["image"] == "nginx:1.28"  # the canary's change is kept ...
    if kubectl:
        assert RESTARTED_AT_ANNOTATION in template["metadata"].get("annotations", {})  # ... and the restart's
    else:
        assert container.get("env") == [{"name": "MODE", "value": "b"}]  # ... and the second edit
    status = sts(cluster)["status"]
    assert status["updateRevision"] != first
    assert status["currentRevision"] == status["updateRevision"] and status["readyReplicas"] == 5
    assert _revisions(cluster) == [status["updateRevision"]] * 5
    assert out[0].json()["outcome"]["replans"] >= 1
    assert _pod_deletes(cluster) == []  # stsfix never deleted a pod; the controller replaced each as needed
    assert _partition(cluster) == 0


def test_dry_run_client_prints_the_steps_and_changes_nothing(sim, stsfix) -> None:
    cluster = sim("partition-canary")
    result = stsfix("partition", "web", "-n", "default", "--step", "--dry-run=client", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    assert [s["kind"] for s in result.json()["plan"]["steps"]] == ["SetPartition", "AwaitReady"]
    assert mutations(cluster) == []


def test_dry_run_server_sends_the_partition_patch_with_dry_run_all(sim, stsfix) -> None:
    cluster = sim("partition-canary")
    result = stsfix("partition", "web", "-n", "default", "--until", "0", "--dry-run=server", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    sent = mutations(cluster)
    assert sent and all(r.query.get("dryRun") == "All" for r in sent)
    assert _partition(cluster) == 3


def test_partition_of_an_ondelete_set_is_refused(sim, stsfix) -> None:
    cluster = sim("ondelete")
    result = stsfix("partition", "web", "-n", "default", "--hold", "--yes")
    assert result.code == ExitCode.REFUSED, result
    assert "OnDelete" in result.stderr
    assert mutations(cluster) == []


def test_saved_partition_plan_is_applied_and_a_stale_one_refused(sim, stsfix, tmp_path: Path) -> None:
    cluster = sim("partition-canary")
    saved = tmp_path / "step.yaml"
    planned = stsfix("plan", "partition", "web", "-n", "default", "--step", "--save", str(saved))
    assert planned.code == ExitCode.ACTION_NEEDED, planned
    applied = stsfix("apply", str(saved), "--yes")
    assert applied.code == ExitCode.OK, applied
    assert _partition(cluster) == 2
    _set_image(cluster, "nginx:1.29")
    stale = stsfix("apply", str(saved), "--yes")
    assert stale.code == ExitCode.REFUSED, stale


def test_stepping_on_a_server_that_honours_max_unavailable_releases_count_ordinals_per_step(
    sim, stsfix
) -> None:
    cluster = sim(
        "partition-canary", speed=60.0, k8s_version="1.35.0"
    )  # MaxUnavailableStatefulSet on by default
    cluster.patch(
        "statefulsets",
        "default",
        "web",
        {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}},
    )
    new = sts(cluster)["status"]["updateRevision"]

    result = stsfix(
        "partition", "web", "-n", "default", "--until", "0", "--count", "2", "--yes", "-o", "json"
    )

    assert result.code == ExitCode.OK, result
    plan = result.json()["plan"]
    assert any("up to 2 pod(s) at a time" in r for r in plan["reasons"]), plan["reasons"]
    assert [s["partition"] for s in plan["steps"] if s["kind"] == "SetPartition"] == [1, 0]
    assert _partition(cluster) == 0 and _revisions(cluster) == [new] * 5


def test_progress_jsonl_reports_every_step_as_json_lines_on_stderr(sim, stsfix) -> None:
    import json

    sim("partition-canary", speed=60.0)
    result = stsfix("partition", "web", "-n", "default", "--step", "--yes", "--progress=jsonl", "-o", "json")
    assert result.code == ExitCode.OK, result
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    results = [(e["kind"], e["status"]) for e in events if e["event"] == "result"]
    assert results == [("SetPartition", "applied"), ("AwaitReady", "done")]
    assert result.json()["outcome"]["status"] == "ok"


def test_a_step_returns_only_once_the_released_pod_was_available_for_min_ready_seconds(sim, stsfix) -> None:
    from stsfix.model import parse_time

    cluster = sim("partition-canary", speed=120.0)
    cluster.patch("statefulsets", "default", "web", {"spec": {"minReadySeconds": 30}})
    result = stsfix("partition", "web", "-n", "default", "--step", "--yes")
    assert result.code == ExitCode.OK, result
    ready = next(c for c in pod(cluster, "web-2")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    since = parse_time(ready["lastTransitionTime"])
    assert since is not None and (cluster.clock.now() - since).total_seconds() >= 30


def test_a_saved_step_applied_onto_a_bad_revision_still_pauses_and_holds(sim, stsfix, tmp_path: Path) -> None:
    cluster = sim("partition-canary", speed=60.0)
    assert stsfix("partition", "web", "-n", "default", "--hold", "--yes").code == ExitCode.OK
    _set_image(cluster, BAD_IMAGE)
    saved = tmp_path / "step.yaml"
    assert stsfix("plan", "partition", "web", "-n", "default", "--step", "--save", str(saved)).code == 3
    result = stsfix("apply", str(saved), "--yes", "--timeout", "1m", "-o", "json")
    assert result.code == ExitCode.NOT_CONVERGED, result
    assert result.json()["errors"][0]["code"] == "paused_on_failure"
    assert _partition(cluster) == 5
