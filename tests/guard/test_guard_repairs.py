"""`stsfix guard` repairs on the simulated cluster, as real processes: an opted-in forced rollback
is healed with exactly the CLI's deletions; dry run changes nothing; the hourly and cluster-wide
limits hold; two replicas never both act, and when the leader is killed mid-repair the other
finishes without deleting anything twice; SIGTERM drains a repair in progress and releases the leases."""

from __future__ import annotations

from typing import Any

from stsfix.errors import ExitCode
from tests.conftest import run_cli
from tests.guard.harness import eventually, mutations, opt_in, repair_mutations

WEB = {"namespace": "default", "statefulset": "web"}
BREAK = {"spec": {"template": {"spec": {"containers": [{"name": "web", "command": ["sh", "-c", "echo starting; exit 1"]}]}}}}


def healthy(sim: Any, name: str = "web", namespace: str = "default") -> bool:
    sts = sim.get("statefulsets", namespace, name)
    status = sts.get("status") or {}
    return (status.get("currentRevision") == status.get("updateRevision")
            and status.get("readyReplicas") == status.get("updatedReplicas") == sts["spec"]["replicas"]
            and status.get("observedGeneration") == sts["metadata"]["generation"])  # fmt: skip


def deletions(sim: Any) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in mutations(sim) if r.method == "DELETE" and "/pods/" in r.path]


def event_reasons(sim: Any, namespace: str = "default") -> list[str]:
    return sorted(e["reason"] for e in sim.list("events", namespace) if str(e.get("reason", "")).startswith("Stsfix"))


def lease(sim: Any, name: str, namespace: str = "default") -> dict[str, Any]:
    found = sim.get("leases", namespace, name)
    assert found is not None, f"lease {name} not found"
    return found["spec"]


def test_an_opted_in_forced_rollback_is_healed_with_exactly_the_clis_deletions(make_sim, guard, tmp_path) -> None:
    by_cli, by_guard = make_sim("forced-rollback"), make_sim("forced-rollback")
    kubeconfig = by_cli.write_kubeconfig(tmp_path / "cli.kubeconfig")
    done = run_cli("rollback", "web", "-n", "default", "--yes", "--timeout", "60s", "--kubeconfig", str(kubeconfig))
    assert done.code == ExitCode.OK, done
    opt_in(by_guard)
    g = guard(by_guard)
    eventually(lambda: g.value("stsfix_guard_repairs_succeeded_total", **WEB, playbook="forced-rollback") == 1,
               what="the guard's repair")  # fmt: skip
    assert healthy(by_guard) and healthy(by_cli)
    assert deletions(by_guard) == deletions(by_cli) == ["web-4"]
    assert by_guard.get("sts", "default", "web")["spec"]["template"] == by_cli.get("sts", "default", "web")["spec"]["template"]
    # The guard's only extra write to the set is the auto-repair history, before it acts.
    cli_patches = [m for m in repair_mutations(by_cli) if m[0] == "PATCH"]
    guard_patches = [m for m in repair_mutations(by_guard) if m[0] == "PATCH"]
    assert len(guard_patches) == len(cli_patches) + 1
    history = by_guard.get("sts", "default", "web")["metadata"]["annotations"]["stsfix.dev/auto-repair-history"]
    assert history.count("Z") == 1
    # The executor's audit Events are the CLI's; the guard adds the one that says it started.
    executor = [r for r in event_reasons(by_guard) if not r.startswith("StsfixGuard")]
    assert executor == event_reasons(by_cli)
    assert "StsfixGuardRepairStarted" in event_reasons(by_guard)
    assert g.value("stsfix_guard_repairs_attempted_total", **WEB, playbook="forced-rollback") == 1
    eventually(lambda: g.value("stsfix_statefulset_verdict", **WEB, verdict="complete"))


def test_dry_run_emits_what_it_would_do_and_changes_nothing(make_sim, guard) -> None:
    sim = make_sim("forced-rollback")
    opt_in(sim)
    g = guard(sim, "--dry-run")
    eventually(lambda: g.value("stsfix_guard_repairs_would_run_total", **WEB, playbook="forced-rollback") == 1)
    # NB: the counter moves just before the Event is written: wait for the Event too
    (event,) = eventually(
        lambda: [e for e in sim.list("events", "default") if e["reason"] == "StsfixGuardWouldRepair"]
    )
    assert "Delete pod web-4" in event["message"] and "Revert the pod template" in event["message"]
    assert g.value("stsfix_statefulset_guard_action", **WEB, action="would_repair", reason="dry_run") == 1
    assert repair_mutations(sim) == [] and not healthy(sim)


def test_the_hourly_limit_holds_a_second_repair_until_the_hour_has_passed(make_sim, guard) -> None:
    sim = make_sim("forced-rollback")
    opt_in(sim)
    g = guard(sim, "--max-repairs-per-hour", "1")
    eventually(lambda: g.value("stsfix_guard_repairs_succeeded_total", **WEB, playbook="forced-rollback") == 1)
    eventually(lambda: healthy(sim))
    sim.patch("statefulsets", "default", "web", BREAK)  # the same bad template again
    eventually(lambda: g.value("stsfix_statefulset_guard_action", **WEB, action="hold", reason="rate_limited"),
               what="the second repair held by the hourly limit")  # fmt: skip
    assert g.value("stsfix_guard_repairs_held_total", **WEB, reason="rate_limited") == 1
    assert deletions(sim) == ["web-4"]
    assert [e for e in sim.list("events", "default") if e["reason"] == "StsfixGuardHeld"]
    sim.advance(3600)  # an hour later (the API server's clock) the guard may act again
    eventually(lambda: g.value("stsfix_guard_repairs_succeeded_total", **WEB, playbook="forced-rollback") == 2,
               what="the second repair, an hour later")  # fmt: skip
    assert deletions(sim) == ["web-4", "web-4"]


def test_at_most_one_repair_runs_at_once_cluster_wide(make_sim, guard) -> None:
    sim = make_sim("fleet", params={"size": 10})
    for namespace in ("team-000", "team-005"):
        opt_in(sim, name="db", namespace=namespace)
    # Each deletion takes a real second, so two repairs would overlap if the limit let them.
    sim.server.faults.add(method="DELETE", path_re=r"/pods/db-2$", latency=1.0, times=2)
    g = guard(sim, "--max-concurrent-repairs", "1")
    for namespace in ("team-000", "team-005"):
        eventually(lambda ns=namespace: g.value("stsfix_guard_repairs_succeeded_total", namespace=ns,
                                                statefulset="db", playbook="forced-rollback") == 1)  # fmt: skip
    running = peak = 0
    for entry in g.logs():
        running += {"repair_started": 1, "repair_finished": -1}.get(entry.get("event", ""), 0)
        peak = max(peak, running)
    assert peak == 1
    held = [v for name, labels, v in g.samples() if name == "stsfix_guard_repairs_held_total"
            and labels["reason"] == "concurrency"]  # fmt: skip
    assert held and sum(held) >= 1, "the second set was held while the first was repaired"


def test_two_replicas_never_both_act_and_the_follower_finishes_when_the_leader_dies_mid_repair(
    make_sim, guard
) -> None:
    sim = make_sim("forced-rollback")
    opt_in(sim)
    # The leader's deletion of web-4 hangs (then the connection drops unanswered): kill it there.
    stall = sim.server.faults.add(method="DELETE", path_re=r"/pods/web-4$", latency=20.0, drop=True, times=1)
    leader = guard(sim, "--max-repairs-per-hour", "2", user="repair")
    eventually(lambda: leader.value("stsfix_guard_leader") == 1)
    follower = guard(sim, "--max-repairs-per-hour", "2", user="admin")
    eventually(lambda: follower.value("stsfix_guard_synced") == 1)
    assert follower.value("stsfix_guard_leader") == 0
    eventually(lambda: stall.hits == 1, what="the leader's DELETE in flight")
    leader.kill()
    sim.advance(11 * 60)  # past both leases (10 simulated minutes): the follower may take over
    eventually(lambda: follower.value("stsfix_guard_leader") == 1, what="the follower to lead")
    eventually(lambda: follower.value("stsfix_guard_repairs_succeeded_total", **WEB, playbook="forced-rollback") == 1,
               what="the follower to finish the repair")  # fmt: skip
    assert healthy(sim)
    assert deletions(sim) == ["web-4"], "deleted exactly once, by the follower"
    acted = [r.user for r in mutations(sim) if "/leases/stsfix-guard" not in r.path and not r.path.endswith("/leases")]
    # all of the leader's writes, then all of the follower's: never interleaved
    assert acted == sorted(acted, key=lambda u: u == "admin") and {"repair", "admin"} == set(acted)
    assert lease(sim, "stsfix-guard")["holderIdentity"] == "guard-2"
    assert lease(sim, "stsfix-guard")["leaseTransitions"] == 1
    # The follower did not revert again: the template was already at the target, so it only deleted.
    follower_writes = [(r.method, r.path) for r in mutations(sim) if r.user == "admin" and "/statefulsets/" in r.path]
    assert len(follower_writes) == 2  # its auto-repair history and the executor's last-repair annotation


def test_sigterm_drains_a_repair_in_progress_reports_the_step_and_releases_the_leases(make_sim, guard) -> None:
    sim = make_sim("forced-rollback")
    good = sim.get("sts", "default", "web")["status"]["currentRevision"]
    # The replacement web-4 (at the good revision) never becomes Ready: the repair waits in AwaitReady.
    sim.add_rule(action="never-ready", pod="web-4", labels={"controller-revision-hash": good})
    opt_in(sim)
    g = guard(sim, "--drain-timeout", "0.5s")
    eventually(lambda: [e for e in g.events("repair_step") if e.get("kind") == "AwaitReady"], what="the wait")
    assert g.terminate() == 0
    drained = g.events("drain_cut")
    finished = g.events("repair_finished")
    assert drained and "step 4" in drained[0]["message"]
    assert len(finished) == 1 and finished[0]["interrupted"] is True and finished[0]["result"] == "failed"
    assert lease(sim, "stsfix-guard")["holderIdentity"] == ""
    assert lease(sim, "stsfix-web")["holderIdentity"] == ""
    reasons = event_reasons(sim)
    assert "StsfixGuardInterrupted" in reasons and "StsfixRepairFailed" in reasons
    (interrupted,) = [e for e in sim.list("events", "default") if e["reason"] == "StsfixGuardInterrupted"]
    assert "Wait for web-4 to be Ready" in interrupted["message"]
    assert deletions(sim) == ["web-4"]


def test_a_managed_set_is_only_reported_even_when_opted_in(make_sim, guard) -> None:
    sim = make_sim("forced-rollback")
    sim.patch("statefulsets", "default", "web", {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}},
              content_type="application/merge-patch+json")  # fmt: skip
    opt_in(sim)
    g = guard(sim)
    eventually(lambda: g.value("stsfix_statefulset_guard_action", **WEB, action="report", reason="managed"))
    # NB: the gauge, the counter and the Event are written one after the other: wait for each
    eventually(lambda: g.value("stsfix_guard_repairs_held_total", **WEB, reason="managed") == 1)
    (event,) = eventually(lambda: [e for e in sim.list("events", "default") if e["reason"] == "StsfixGuardStuck"])
    assert "app.kubernetes.io/managed-by=Helm" in event["message"] and "allow-managed" in event["message"]
    assert repair_mutations(sim) == []


def test_stuck_terminating_is_never_force_deleted_without_evidence_the_node_is_lost(make_sim, guard) -> None:
    sim = make_sim("stuck-terminating")
    opt_in(sim, "stuck-terminating")
    g = guard(sim, "--node-lost-after", "24h")  # the node has been Unknown for minutes, not a day
    eventually(lambda: g.value("stsfix_guard_repairs_refused_total", **WEB, playbook="stuck-terminating",
                               code="node_not_lost") == 1, what="the refusal")  # fmt: skip
    (event,) = [e for e in sim.list("events", "default") if e["reason"] == "StsfixGuardRefused"]
    assert "refusing to force-delete web-1" in event["message"]
    assert deletions(sim) == []
    # The refusal used the hour's attempt: the guard holds instead of asking again every pass.
    eventually(lambda: g.value("stsfix_statefulset_guard_action", **WEB, action="hold", reason="rate_limited"))
    assert g.value("stsfix_guard_repairs_refused_total", **WEB, playbook="stuck-terminating", code="node_not_lost") == 1
