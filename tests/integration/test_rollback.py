"""`stsfix rollback` over HTTP against the simulated cluster, through the real CLI and kube adapter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from stsfix.errors import ExitCode
from stsfix.model import LAST_REPAIR_ANNOTATION
from tests.integration.conftest import mutations, pod, revision_of, sts


def _healthy(cluster: object, revision: str) -> bool:
    obj = sts(cluster)
    status = obj["status"]
    return (
        status.get("currentRevision") == status.get("updateRevision") == revision
        and status.get("readyReplicas") == 5
    )


def test_forced_rollback_ends_healthy_deleting_only_web_4_after_the_revert(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    before = sts(cluster)["status"]
    good, bad = before["currentRevision"], before["updateRevision"]
    assert good != bad and revision_of(pod(cluster, "web-4")) == bad
    pvcs = {
        p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.list("persistentvolumeclaims", "default")
    }
    old_uids = {f"web-{o}": pod(cluster, f"web-{o}")["metadata"]["uid"] for o in range(5)}

    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    body = result.json()
    assert body["kind"] == "Repair" and body["status"] == "ok"
    assert [s["status"] for s in body["outcome"]["steps"]] == ["applied", "done", "applied", "done", "done"]
    assert _healthy(cluster, good)
    # Only web-4 was deleted, once; it came back from the good revision, so the controller had
    # observed the revert when it was deleted.
    deletes = [r.path for r in mutations(cluster) if r.method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/default/pods/web-4"]
    assert revision_of(pod(cluster, "web-4")) == good
    assert {o: pod(cluster, o)["metadata"]["uid"] for o in old_uids if o != "web-4"} == {
        o: u for o, u in old_uids.items() if o != "web-4"
    }
    methods = [(r.method, r.path.rsplit("/", 2)[-2]) for r in mutations(cluster)]
    assert methods.index(("PATCH", "statefulsets")) < methods.index(("DELETE", "pods"))
    # Never a PVC: the claims are the same objects.
    assert {
        p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.list("persistentvolumeclaims", "default")
    } == pvcs


def test_forced_rollback_reverted_skips_the_revert_and_ends_healthy(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    good = sts(cluster)["status"]["currentRevision"]
    generation = sts(cluster)["metadata"]["generation"]

    result = stsfix("rollback", "sts/web", "-n", "default", "--yes", "-o", "json")

    assert result.code == ExitCode.OK, result
    steps = result.json()["outcome"]["steps"]
    assert [s["kind"] for s in steps] == ["DeletePod", "AwaitReady", "AwaitRolloutComplete"]
    assert sts(cluster)["metadata"]["generation"] == generation  # the template was not touched
    assert [r.path for r in mutations(cluster) if r.method == "DELETE"] == [
        "/api/v1/namespaces/default/pods/web-4"
    ]
    assert _healthy(cluster, good)


def test_rollback_of_a_healthy_set_changes_nothing(sim, stsfix) -> None:
    cluster = sim("healthy")
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    assert "Nothing to do" in result.stderr
    assert mutations(cluster) == []


def test_dry_run_client_prints_the_plan_exits_3_and_sends_no_mutation(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("rollback", "web", "-n", "default", "--dry-run=client", "-o", "json")
    assert result.code == ExitCode.ACTION_NEEDED, result
    plan = result.json()["plan"]
    assert [s["kind"] for s in plan["steps"]][:3] == ["RevertTemplate", "AwaitObserved", "DeletePod"]
    assert plan["fingerprint"].startswith("sha256:")
    assert mutations(cluster) == []


def test_dry_run_client_on_a_healthy_set_exits_0(sim, stsfix) -> None:
    sim("healthy")
    result = stsfix("rollback", "web", "-n", "default", "--dry-run", "client")
    assert result.code == ExitCode.OK, result
    assert "Nothing to do" in result.stdout


def test_dry_run_server_sends_every_mutation_with_dry_run_all_and_persists_nothing(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    before = sts(cluster)
    web4 = pod(cluster, "web-4")["metadata"]["uid"]

    result = stsfix("rollback", "web", "-n", "default", "--dry-run=server", "-o", "json")

    assert result.code == ExitCode.ACTION_NEEDED, result
    steps = result.json()["outcome"]["steps"]
    assert [s["status"] for s in steps if s["kind"] in ("RevertTemplate", "DeletePod")] == [
        "dry_run",
        "dry_run",
    ]
    sent = mutations(cluster)
    assert sent and all(r.query.get("dryRun") == "All" for r in sent), sent
    after = sts(cluster)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert pod(cluster, "web-4")["metadata"]["uid"] == web4


def test_without_a_terminal_yes_is_required(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("rollback", "web", "-n", "default")
    assert result.code == ExitCode.REFUSED
    assert "Pass --yes to apply the plan when no terminal can confirm it." in result.stderr
    assert mutations(cluster) == []


def test_applied_steps_leave_events_and_the_last_repair_annotation(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    reasons = [
        e.get("reason") for e in cluster.list("events", "default") if e.get("reason", "").startswith("Stsfix")
    ]
    assert reasons.count("StsfixRevertTemplate") == 1 and reasons.count("StsfixDeletePod") == 1
    assert "StsfixRepairSucceeded" in reasons
    record = json.loads(sts(cluster)["metadata"]["annotations"][LAST_REPAIR_ANNOTATION])
    assert record["result"] == "ok" and record["fingerprint"].startswith("sha256:") and record["time"]


def _lease(holder: str, renewed: datetime, seconds: int = 60) -> dict[str, object]:
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "stsfix-web", "namespace": "default"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": seconds,
            "acquireTime": stamp,
            "renewTime": stamp,
        },
    }


def test_a_live_lease_held_by_another_run_refuses(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    cluster.apply_manifest(_lease("cronjob@node/pid-1", cluster.clock.now(), seconds=3600))
    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    assert result.json()["errors"][0]["code"] == "lease_held"
    assert [r for r in mutations(cluster) if r.method in ("PATCH", "DELETE")] == []


def test_an_expired_lease_is_taken_over(sim, stsfix) -> None:
    cluster = sim("forced-rollback")
    cluster.apply_manifest(_lease("cronjob@node/pid-1", cluster.clock.now() - timedelta(minutes=10)))
    result = stsfix("rollback", "web", "-n", "default", "--yes")
    assert result.code == ExitCode.OK, result
    lease = cluster.get("leases", "default", "stsfix-web")
    assert lease is not None and lease["spec"]["holderIdentity"] == ""  # released after the run
    assert lease["spec"].get("leaseTransitions") == 1


def test_progress_jsonl_writes_only_json_lines_on_stderr(sim, stsfix) -> None:
    sim("forced-rollback")
    result = stsfix("rollback", "web", "-n", "default", "--yes", "--progress=jsonl", "-o", "json")
    assert result.code == ExitCode.OK, result
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert {"step", "result", "wait"} <= {e["event"] for e in events}
    assert result.json()["status"] == "ok"


def test_rollback_waits_on_watches_and_never_sleeps(sim, stsfix, sleeps) -> None:
    # How long it takes is benchmarks/bench_rollback.py's to measure; this checks why it is fast:
    # every wait is driven by watches on the set and its pods, never by sleeping between polls.
    cluster = sim("forced-rollback")
    result = stsfix("rollback", "web", "-n", "default", "--yes", "--timeout", "60s")
    assert result.code == ExitCode.OK, result
    assert list(sleeps) == []
    watched = {r.path.rsplit("/", 1)[-1] for r in cluster.requests if r.query.get("watch") in ("true", "1")}
    assert watched == {"statefulsets", "pods"}


def test_demo_runs_the_whole_incident_and_ends_healthy(stsfix) -> None:
    from stsfix.cli import app, demo

    if "demo" not in {c.name for c in app.registered_commands}:
        demo.register(app)
    result = stsfix("demo", "--pace", "0")
    assert result.code == ExitCode.OK, result
    assert "kubectl rollout undo" in result.stderr and "leave web-4 broken" in result.stderr
    # stsfix's own revert, not kubectl's: the template is reverted by the rollback itself
    assert "applied: template reverted to" in result.stderr and "applied: web-4 deleted" in result.stderr
    assert "==> 7. Done" in result.stderr
    assert result.stdout.rsplit("Rollout:", 1)[1].lstrip().startswith("COMPLETE")  # the last inspect


def test_a_first_revision_that_never_ran_ready_rolls_forward_to_the_fixed_template(sim, stsfix) -> None:
    cluster = sim("parallel-maxunavailable")
    fixed = sts(cluster)["status"]["updateRevision"]
    done = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert done.code == ExitCode.OK, done
    assert done.json()["plan"]["targetRevision"] == fixed
    assert revision_of(pod(cluster, "web-0")) == fixed
    assert [r.path.rsplit("/", 1)[-1] for r in mutations(cluster) if r.method == "DELETE"] == ["web-0"]


def test_a_pod_stuck_terminating_is_not_a_rollback_case_and_the_refusal_says_what_fixes_it(
    sim, stsfix
) -> None:
    cluster = sim("stuck-terminating")
    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.REFUSED, result
    error = result.json()["errors"][0]
    assert error["code"] == "not_a_rollback_case" and "force-delete" in error["message"]
    assert mutations(cluster) == []


def test_min_ready_seconds_is_waited_for(sim, stsfix) -> None:
    cluster = sim("forced-rollback-reverted")
    cluster.patch("statefulsets", "default", "web", {"spec": {"minReadySeconds": 30}})
    result = stsfix("rollback", "web", "-n", "default", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result
    ready = next(s for s in result.json()["plan"]["steps"] if s["kind"] == "AwaitReady")
    assert ready["minReadySeconds"] == 30
    conditions = {c["type"]: c for c in pod(cluster, "web-4")["status"]["conditions"]}
    since = datetime.fromisoformat(conditions["Ready"]["lastTransitionTime"].replace("Z", "+00:00"))
    assert (cluster.clock.now() - since).total_seconds() >= 30


def test_declining_the_confirmation_on_a_terminal_changes_nothing(sim, stsfix, monkeypatch) -> None:
    from stsfix.cli import repair

    cluster = sim("forced-rollback")
    asked: list[str] = []
    monkeypatch.setattr(repair, "is_interactive", lambda: True)
    monkeypatch.setattr(repair.typer, "confirm", lambda text, **kw: asked.append(text) or False)
    result = stsfix("rollback", "web", "-n", "default")
    (question,) = asked
    assert question.startswith('Apply this plan to statefulset default/web in context "sim-admin", cluster "sim" (')
    assert question.endswith('), namespace "default"?')
    assert result.code == ExitCode.REFUSED and "Not confirmed" in result.stderr
    assert mutations(cluster) == []


def test_at_the_moment_of_the_delete_the_controller_has_observed_the_revert(sim) -> None:
    from stsfix.executor import execute
    from stsfix.planner import plan_rollback
    from tests.integration.conftest import connect_sim

    cluster = sim("forced-rollback")
    good = sts(cluster)["status"]["currentRevision"]
    before = sts(cluster)["metadata"]["generation"]
    seen: list[tuple[int, int, str]] = []

    class Spy:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def delete_pod(self, *args: object, **kwargs: object) -> None:
            obj = sts(cluster)
            seen.append(
                (
                    obj["metadata"]["generation"],
                    obj["status"]["observedGeneration"],
                    obj["status"]["updateRevision"],
                )
            )
            self.inner.delete_pod(*args, **kwargs)  # type: ignore[attr-defined]

    port = Spy(connect_sim())
    snapshot = port.read_snapshot("default", "web")  # type: ignore[attr-defined]
    outcome = execute(
        plan_rollback(snapshot, now=snapshot.observed_at), port, sleep=lambda s: None, timeout_s=60
    )  # type: ignore[arg-type]
    assert outcome.status == "ok", outcome.error
    assert len(seen) == 1
    generation, observed, update = seen[0]
    assert generation == observed == before + 1 and update == good
