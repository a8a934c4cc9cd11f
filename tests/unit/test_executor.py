"""The executor's logic on an in-memory ClusterPort fake: order of effects, retries, re-plans, refusals.

The fake plays a minimal OrderedReady controller on each watch tick (observe the spec, remove
terminated pods, recreate the lowest missing ordinal, promote currentRevision). The same behaviours
are tested over HTTP against stsfix.sim in tests/integration.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stsfix.errors import (
    AccessDeniedError,
    ApiUnavailableError,
    ExitCode,
    LockedError,
    NotFoundError,
    PreconditionFailedError,
)
from stsfix.executor import ProgressEvent, RetryPolicy, execute
from stsfix.model import LAST_REPAIR_ANNOTATION, Snapshot, parse_pod, parse_statefulset
from stsfix.planner import plan_rollback
from tests.unit.builders import (
    BAD,
    GOOD,
    REV_A,
    REV_B,
    SEC,
    T0,
    make_revision,
    raw_pod,
    raw_statefulset,
    revision_name,
)

FIX = {**GOOD, "metadata": {"labels": {"app": "web", "fix": "1"}}}
REV_C = revision_name(FIX)
TEMPLATES = {REV_A: GOOD, REV_B: BAD, REV_C: FIX}


@dataclass
class FakePod:
    revision: str
    uid: str
    ready: bool
    deleting: bool = False
    rv: int = 1


class FakeCluster:
    """A ClusterPort fake with a tiny OrderedReady controller run on every watch tick."""

    def __init__(self, *, reverted: bool = False, bad_revisions: tuple[str, ...] = (REV_B,)):
        self.replicas = 5
        self.bad = set(bad_revisions)
        self.update = REV_A if reverted else REV_B
        self.template_rev = self.update
        self.current = REV_A
        self.generation = 3 if reverted else 2
        self.observed = self.generation
        self.rv = 100
        self.uids = itertools.count(1)
        self.pods = {o: FakePod(REV_A, f"uid-{next(self.uids)}", True) for o in range(4)}
        self.pods[4] = FakePod(REV_B, f"uid-{next(self.uids)}", False)
        self.revisions = {REV_A: 3 if reverted else 1, REV_B: 2}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[Callable[[], None]]] = {}
        self.ticks = 0
        self.on_tick: Callable[[FakeCluster], None] | None = None
        self.lease: str | None = None
        self.annotations: dict[str, str] = {}
        self.stuck = False  # when True the controller never recreates pods

    # -- the fake controller ---------------------------------------------------------------
    def tick(self) -> None:
        self.ticks += 1
        self.controller()
        if self.on_tick:
            self.on_tick(self)

    def controller(self) -> None:
        if self.observed < self.generation:
            self.observed = self.generation
            self.update = self.template_rev
            self.revisions.setdefault(self.update, max(self.revisions.values()) + 1)
            self.rv += 1
            return
        for o in [o for o, p in self.pods.items() if p.deleting]:
            del self.pods[o]
            return
        if self.stuck:
            return
        for o in range(self.replicas):
            pod = self.pods.get(o)
            if pod is None:
                self.pods[o] = FakePod(self.update, f"uid-{next(self.uids)}", self.update not in self.bad)
                return
            if not pod.ready:
                return
        if all(p.revision == self.update and p.ready for p in self.pods.values()):
            self.current = self.update

    def snapshot(self) -> Snapshot:
        raw = raw_statefulset(
            replicas=self.replicas,
            template=TEMPLATES[self.template_rev],
            generation=self.generation,
            observed_generation=self.observed,
            current_revision=self.current,
            update_revision=self.update,
        )
        raw["metadata"]["resourceVersion"] = str(self.rv)
        pods = []
        for o, p in sorted(self.pods.items()):
            rp = raw_pod(
                o, p.revision, state="ready" if p.ready else "crashloop", deleted=-SEC if p.deleting else None
            )
            rp["metadata"]["uid"] = p.uid
            rp["metadata"]["resourceVersion"] = str(p.rv)
            pods.append(parse_pod(rp, set_name="web"))
        live = [p for p in pods if not p.deleting]
        raw["status"].update(
            replicas=len(pods),
            readyReplicas=sum(1 for p in pods if p.ready),
            updatedReplicas=sum(1 for p in live if p.revision == self.update),
            currentReplicas=sum(1 for p in live if p.revision == self.current),
        )
        revisions = tuple(make_revision(TEMPLATES[name], number) for name, number in self.revisions.items())
        return Snapshot(
            statefulset=parse_statefulset(raw),
            pods=tuple(pods),
            revisions=revisions,
            nodes=(),
            observed_at=T0 + self.ticks * SEC,
        )

    def _fault(self, method: str) -> None:
        queue = self.faults.get(method)
        if queue:
            queue.pop(0)()

    # -- ClusterPort ------------------------------------------------------------------------
    def read_snapshot(self, namespace: str, name: str, *, events: bool = False) -> Snapshot:
        self.calls.append(("read", {}))
        self._fault("read")
        return self.snapshot()

    def server_now(self) -> Any:
        return T0 + self.ticks * SEC

    def patch_template(
        self, namespace: str, name: str, *, template: dict[str, Any], resource_version: str, dry_run: bool
    ) -> Any:
        self.calls.append(("patch_template", {"dry_run": dry_run, "rv": resource_version}))
        self._fault("patch_template")
        if resource_version != str(self.rv):
            raise PreconditionFailedError("Error from server (Conflict): the object has been modified")
        if not dry_run:
            self.template_rev = next(n for n, t in TEMPLATES.items() if t == template)
            self.generation += 1
            self.rv += 1
        return self.snapshot().statefulset

    def set_partition(self, *a: Any, **k: Any) -> Any:
        raise AssertionError("must not be called")

    def annotate_statefulset(
        self, namespace: str, name: str, *, annotations: dict[str, str | None], dry_run: bool
    ) -> None:
        self.calls.append(("annotate", {"dry_run": dry_run}))
        self.annotations.update({k: v for k, v in annotations.items() if v is not None})

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        uid: str,
        resource_version: str | None,
        grace_period_seconds: int | None,
        dry_run: bool,
    ) -> None:
        self.calls.append(("delete_pod", {"name": name, "uid": uid, "dry_run": dry_run}))
        self._fault("delete_pod")
        ordinal = int(name.rsplit("-", 1)[1])
        pod = self.pods.get(ordinal)
        if pod is None:
            raise NotFoundError(f'pods "{name}" not found')
        if pod.uid != uid or (resource_version and str(pod.rv) != resource_version):
            raise PreconditionFailedError("Error from server (Conflict): Precondition failed")
        if not dry_run:
            pod.deleting = True
            pod.rv += 1

    def evict_pod(self, *a: Any, **k: Any) -> None:
        raise AssertionError("must not be called")

    def watch_changes(self, namespace: str, name: str, *, timeout_seconds: float) -> Iterator[Snapshot]:
        self.calls.append(("watch", {}))
        for _ in range(30):
            self.tick()
            yield self.snapshot()

    def acquire_lease(self, namespace: str, name: str, *, holder: str, duration_seconds: int) -> str | None:
        self.calls.append(("acquire_lease", {"holder": holder}))
        if self.lease not in (None, holder):
            raise LockedError(f"another stsfix run ({self.lease}) holds the repair lease")
        self.lease = holder
        return None

    def release_lease(self, namespace: str, name: str, *, holder: str) -> None:
        self.calls.append(("release_lease", {"holder": holder}))
        if self.lease == holder:
            self.lease = None

    def record_event(
        self, namespace: str, name: str, *, uid: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        self.calls.append(("event", {"reason": reason}))

    # -- helpers ----------------------------------------------------------------------------
    def names(self, method: str) -> list[dict[str, Any]]:
        return [k for m, k in self.calls if m == method]


class Recorder:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.sleeps: list[float] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def kinds(self, kind: str) -> list[str]:
        return [e.message for e in self.events if e.event == kind]


def run(cluster: FakeCluster, rec: Recorder | None = None, **kw: Any) -> Any:
    rec = rec or Recorder()
    ticks = itertools.count()
    plan = plan_rollback(cluster.snapshot(), now=T0)
    defaults: dict[str, Any] = {
        "policy": RetryPolicy(attempts=4, initial_s=0.5, max_s=4.0),
        "sleep": rec.sleep,
        "clock": lambda: float(next(ticks)),
        "timeout_s": 10_000.0,
        "progress": rec,
        "lease_holder": "me",
    }
    return execute(plan, cluster, **{**defaults, **kw})


def test_forced_rollback_reverts_then_deletes_only_the_stuck_pod_after_the_revert_is_observed() -> None:
    cluster = FakeCluster()
    outcome = run(cluster)
    assert outcome.status == "ok" and outcome.exit_code == ExitCode.OK, outcome.error
    order = [m for m, _ in cluster.calls if m in ("patch_template", "delete_pod")]
    assert order == ["patch_template", "delete_pod"]
    assert [c["name"] for c in cluster.names("delete_pod")] == ["web-4"]
    assert [s.status for s in outcome.steps] == ["applied", "done", "applied", "done", "done"]
    assert cluster.current == REV_A and all(p.ready and p.revision == REV_A for p in cluster.pods.values())


def test_delete_waits_for_the_controller_to_observe_the_revert() -> None:
    cluster = FakeCluster()
    seen: list[tuple[int, int, str]] = []
    original = cluster.delete_pod

    def spy(*a: Any, **k: Any) -> None:
        seen.append((cluster.generation, cluster.observed, cluster.update))
        original(*a, **k)

    cluster.delete_pod = spy  # type: ignore[method-assign]
    assert run(cluster).status == "ok"
    generation, observed, update = seen[0]
    assert observed == generation and update == REV_A


def test_reverted_set_skips_the_revert_and_still_deletes_the_stuck_pod() -> None:
    cluster = FakeCluster(reverted=True)
    outcome = run(cluster)
    assert outcome.status == "ok"
    assert not cluster.names("patch_template")
    assert [c["name"] for c in cluster.names("delete_pod")] == ["web-4"]


def test_applied_steps_leave_events_an_annotation_and_release_the_lease() -> None:
    cluster = FakeCluster()
    run(cluster)
    reasons = [c["reason"] for c in cluster.names("event")]
    assert reasons == ["StsfixRevertTemplate", "StsfixDeletePod", "StsfixRepairSucceeded"]
    assert '"result": "ok"' in cluster.annotations[LAST_REPAIR_ANNOTATION]
    assert cluster.names("acquire_lease") and cluster.lease is None


def test_server_dry_run_sends_every_mutation_as_dry_run_and_persists_nothing() -> None:
    cluster = FakeCluster()
    outcome = run(cluster, dry_run=True)
    assert outcome.status == "ok"
    assert [s.status for s in outcome.steps] == ["dry_run", "skipped", "dry_run", "skipped", "skipped"]
    assert all(c["dry_run"] for c in cluster.names("patch_template") + cluster.names("delete_pod"))
    assert (
        cluster.template_rev == REV_B and cluster.pods[4].revision == REV_B and not cluster.pods[4].deleting
    )
    assert not cluster.names("event") and not cluster.names("annotate") and not cluster.names("acquire_lease")


def _raise(err: Exception) -> Callable[[], None]:
    def fault() -> None:
        raise err

    return fault


def test_transient_failures_are_retried_with_back_off_and_each_attempt_is_logged() -> None:
    cluster = FakeCluster()
    cluster.faults["delete_pod"] = [_raise(ApiUnavailableError("503")), _raise(ApiUnavailableError("503"))]
    rec = Recorder()
    outcome = run(cluster, rec)
    assert outcome.status == "ok"
    retries = [m for m in rec.kinds("retry") if "DELETE pods/web-4" in m]
    assert len(retries) == 2 and retries[0].startswith("attempt 1/4 failed; retrying in")
    assert len(rec.sleeps) == 2 and all(s > 0 for s in rec.sleeps)


def test_retry_after_is_honoured() -> None:
    cluster = FakeCluster()
    cluster.faults["patch_template"] = [_raise(ApiUnavailableError("429", retry_after=7))]
    rec = Recorder()
    assert run(cluster, rec).status == "ok"
    assert rec.sleeps == [7.0]


def test_forbidden_is_never_retried() -> None:
    cluster = FakeCluster()
    cluster.faults["delete_pod"] = [_raise(AccessDeniedError("Error from server (Forbidden): no"))]
    rec = Recorder()
    outcome = run(cluster, rec)
    assert outcome.status == "partial" and outcome.exit_code == ExitCode.CLUSTER_ERROR
    assert len(cluster.names("delete_pod")) == 1 and not rec.sleeps
    assert [s.status for s in outcome.steps][-2:] == ["not_run", "not_run"]


def test_a_dropped_connection_on_delete_is_confirmed_on_re_read_without_a_second_deletion() -> None:
    cluster = FakeCluster()

    def delete_then_drop() -> None:
        cluster.pods[4].deleting = True
        cluster.pods[4].rv += 1
        raise ApiUnavailableError("Connection lost reading the answer (DELETE pods/web-4)")

    cluster.faults["delete_pod"] = [delete_then_drop]
    outcome = run(cluster)
    assert outcome.status == "ok"
    delete_step = outcome.steps[2]
    assert delete_step.status == "applied" and "confirmed on re-read" in delete_step.message
    assert sum(1 for c in cluster.names("delete_pod")) == 2  # the retry hit the precondition, nothing more


def test_a_delete_whose_every_answer_is_lost_is_looked_up_before_it_counts_as_failed() -> None:
    cluster = FakeCluster()

    def carried_out_then_lost() -> None:
        cluster.pods[4].deleting = True
        cluster.pods[4].rv += 1
        raise ApiUnavailableError("Unable to connect to the server (DELETE pods/web-4): ReadTimeoutError")

    def lost() -> None:
        raise ApiUnavailableError("Unable to connect to the server (DELETE pods/web-4): ReadTimeoutError")

    cluster.faults["delete_pod"] = [carried_out_then_lost, lost, lost, lost]  # every attempt: no answer
    outcome = run(cluster)
    assert outcome.status == "ok", outcome.error
    delete_step = outcome.steps[2]
    assert delete_step.status == "applied" and "no answer came back" in delete_step.message, delete_step


def test_a_pod_another_run_deleted_first_is_skipped_not_claimed_as_applied() -> None:
    cluster = FakeCluster()

    def someone_else_deletes() -> None:
        cluster.pods[4].deleting = True
        cluster.pods[4].rv += 1

    cluster.faults["delete_pod"] = [someone_else_deletes]  # then our DELETE meets its precondition: 409
    rec = Recorder()
    outcome = run(cluster, rec)
    assert outcome.status == "ok"
    delete_step = outcome.steps[2]
    assert delete_step.status == "skipped" and "not by this run" in delete_step.message, delete_step
    assert "StsfixDeletePod" not in [c["reason"] for c in cluster.names("event")]


def test_a_resource_version_race_on_the_revert_is_re_read_and_retried() -> None:
    cluster = FakeCluster()

    def status_write() -> None:
        cluster.rv += 1  # the controller wrote status between our read and our patch

    cluster.faults["patch_template"] = [status_write]
    rec = Recorder()
    outcome = run(cluster, rec)
    assert outcome.status == "ok" and rec.kinds("conflict")
    assert len(cluster.names("patch_template")) == 2


def test_a_concurrent_template_change_mid_repair_is_refused_and_nothing_is_deleted() -> None:
    cluster = FakeCluster()

    def writer(c: FakeCluster) -> None:
        if c.update == REV_A and c.template_rev == REV_A and REV_C not in c.revisions:
            c.template_rev, c.generation, c.revisions[REV_C] = REV_C, c.generation + 1, 9

    cluster.on_tick = writer
    outcome = run(cluster)
    assert outcome.exit_code == ExitCode.REFUSED and outcome.status == "partial"
    assert "refusing" in outcome.error.message and "moved on" in outcome.error.message
    assert not cluster.names("delete_pod")


def test_a_template_change_after_the_deletion_is_not_overwritten() -> None:
    cluster = FakeCluster()

    def writer(c: FakeCluster) -> None:
        if 4 not in c.pods and REV_C not in c.revisions:
            c.template_rev, c.generation, c.revisions[REV_C] = REV_C, c.generation + 1, 9

    cluster.on_tick = writer
    outcome = run(cluster)
    assert outcome.exit_code == ExitCode.REFUSED
    assert "does not overwrite" in outcome.error.message
    assert len(cluster.names("patch_template")) == 1 and len(cluster.names("delete_pod")) == 1


def test_recreated_pod_crash_looping_again_fails_fast_with_exit_6() -> None:
    cluster = FakeCluster(bad_revisions=(REV_A, REV_B))
    outcome = run(cluster)
    assert outcome.exit_code == ExitCode.NOT_CONVERGED and outcome.error.code == "recreated_pod_failing"
    assert "web-4 was recreated" in outcome.error.message and "CrashLoopBackOff" in outcome.error.message


def test_a_wait_past_the_deadline_is_not_converged() -> None:
    cluster = FakeCluster(reverted=True)
    cluster.stuck = True
    outcome = run(cluster, timeout_s=40.0)
    assert outcome.exit_code == ExitCode.NOT_CONVERGED and "timed out" in outcome.error.message
    assert outcome.status == "partial"


def test_a_lease_held_by_another_run_refuses_before_any_change() -> None:
    cluster = FakeCluster()
    cluster.lease = "cronjob@node/pid-1"
    outcome = run(cluster)
    assert outcome.exit_code == ExitCode.REFUSED and outcome.error.code == "lease_held"
    assert not cluster.names("patch_template") and not cluster.names("delete_pod")


def test_a_saved_plan_without_replan_refuses_on_change() -> None:
    cluster = FakeCluster()
    plan = plan_rollback(cluster.snapshot(), now=T0)
    cluster.generation += 1  # someone edited the spec after the plan was saved
    outcome = execute(
        plan, cluster, sleep=lambda s: None, allow_replan=False, lease_holder="me", timeout_s=100
    )
    assert outcome.exit_code == ExitCode.REFUSED and "generation changed" in outcome.error.message
    assert not cluster.names("patch_template")


def test_interrupted_run_resumes_when_re_run() -> None:
    cluster = FakeCluster()

    class Killed(BaseException):
        pass

    def kill_after_delete(event: ProgressEvent) -> None:
        if event.event == "result" and event.kind == "DeletePod":
            raise Killed

    with pytest.raises(Killed):
        run(cluster, progress=kill_after_delete)
    assert cluster.lease is None  # released on the way out
    outcome = run(cluster)
    assert outcome.status == "ok"
    assert len(cluster.names("delete_pod")) == 1 and len(cluster.names("patch_template")) == 1


def test_progress_events_serialise_to_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from stsfix.cli.repair import Progress

    rec = Recorder()
    run(FakeCluster(), rec)
    sink = Progress("jsonl")
    for event in rec.events:
        sink(event)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(rec.events) and any(e.event == "wait" for e in rec.events)
    for line, event in zip(lines, rec.events, strict=True):
        decoded = json.loads(line)  # one JSON object per line, nothing else on stderr
        assert {k: decoded[k] for k in ("event", "message", "step", "kind")} == {
            "event": event.event, "message": event.message, "step": event.step, "kind": event.kind,
        }  # fmt: skip
        assert isinstance(decoded["time"], float)


def test_a_wait_blocked_by_a_failing_lower_ordinal_fails_fast() -> None:
    cluster = FakeCluster(reverted=True)
    cluster.pods[
        1
    ].ready = False  # web-1 crash-loops at the good revision: OrderedReady never recreates web-4
    outcome = run(cluster)
    assert outcome.exit_code == ExitCode.NOT_CONVERGED and outcome.error.code == "blocked_by_lower_ordinal"
    assert "web-1" in outcome.error.message


def test_the_lease_is_renewed_during_long_waits() -> None:
    cluster = FakeCluster()
    outcome = run(cluster, lease_seconds=3)
    assert outcome.status == "ok"
    assert len(cluster.names("acquire_lease")) > 1 and cluster.lease is None
