"""Runs a Plan through a ClusterPort: re-check, act, re-check.

Before every mutating step the executor re-reads the set and runs the step's checks (see
`checks`): "already done" is a result (`skipped`), a changed world is a re-plan or a refusal, never
a blind retry. Transient API failures are retried by the one policy in `stsfix.retry` (which the
read path uses too). Waits are driven by `ClusterPort.watch_changes` up to one deadline and fail
fast on known-bad pod states. A Lease keeps two runs from acting at once; each applied step leaves
an Event on the set, and the set carries an annotation with the last repair.

Layer L2: depends on `stsfix.ports`, `stsfix.planner` and `stsfix.retry` (tenacity); never on kube,
sim, cli or typer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Literal

from stsfix.errors import (
    ApiUnavailableError,
    ExitCode,
    InterruptedRunError,
    NotConvergedError,
    NotFoundError,
    PreconditionFailedError,
    RefusedError,
    StsfixError,
)
from stsfix.executor import checks, guided
from stsfix.executor.audit import AuditMixin
from stsfix.executor.outcome import Outcome, ProgressEvent, StepResult, StepStatus
from stsfix.model import RESTARTED_AT_ANNOTATION, Snapshot
from stsfix.planner import (
    AwaitObserved,
    AwaitReady,
    AwaitRestartedPod,
    AwaitRestartObserved,
    AwaitRolloutComplete,
    DeletePod,
    EvictPod,
    ForceDeletePod,
    Plan,
    RestartPod,
    RestartTemplate,
    RevertTemplate,
    SetPartition,
    Step,
    replan,
)
from stsfix.ports import ClusterPort
from stsfix.retry import RetryPolicy, call_with_retries

__all__ = ["Outcome", "ProgressEvent", "RetryPolicy", "StepResult", "execute"]

MAX_CONFLICTS: Final = 4
MAX_REPLANS: Final = 3


class _Changed(Exception):
    def __init__(self, changes: tuple[str, ...]):
        super().__init__("; ".join(changes))
        self.changes = changes


def execute(
    plan: Plan,
    cluster: ClusterPort,
    *,
    dry_run: bool = False,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout_s: float = 600.0,
    progress: Callable[[ProgressEvent], None] | None = None,
    allow_replan: bool = True,
    lease_holder: str | None = None,
    lease_seconds: int = 60,
    audit: bool = True,
) -> Outcome:
    """Run `plan` against `cluster` and report every step's result; never raises StsfixError.

    `dry_run=True` sends each mutation with dryRun=All and skips the waits. `allow_replan=False`
    (a saved plan applied without --replan) refuses on the first change instead of re-planning.
    A KeyboardInterrupt (Ctrl-C, or SIGTERM through `errors.TerminatedError`) stops the run where
    it is: that step is `interrupted`, the rest `not_run`, the lease is released and the Outcome's
    error is an `InterruptedRunError` (exit 130) naming what was applied and what remains.
    Re-running resumes from the "already done" checks.
    """
    run = _Run(
        plan,
        cluster,
        dry_run=dry_run,
        policy=policy or RetryPolicy(),
        sleep=sleep,
        clock=clock,
        timeout_s=timeout_s,
        progress=progress or (lambda _e: None),
        allow_replan=allow_replan,
        lease_holder=lease_holder,
        lease_seconds=lease_seconds,
        audit=audit and not dry_run,
    )
    return run.run()


class _Run(AuditMixin):
    def __init__(self, plan: Plan, cluster: ClusterPort, **opts: Any):
        self.plan = plan
        self.cluster = cluster
        self.ns, self.name = plan.namespace, plan.name
        self.dry_run: bool = opts["dry_run"]
        self.policy: RetryPolicy = opts["policy"]
        self.sleep: Callable[[float], None] = opts["sleep"]
        self.clock: Callable[[], float] = opts["clock"]
        self.timeout_s: float = opts["timeout_s"]
        self.emit: Callable[[ProgressEvent], None] = opts["progress"]
        self.allow_replan: bool = opts["allow_replan"]
        self.holder: str | None = opts["lease_holder"]
        self.lease_seconds: int = opts["lease_seconds"]
        self.audit: bool = opts["audit"]
        self.results: list[StepResult] = []
        self.replans = 0
        self.assume_reverted = False
        self.started = self.clock()
        self.deadline = self.started + self.timeout_s
        self.lease_renewed = self.started
        self.leased = False
        self.set_uid = plan.statefulset.uid
        self.unanswered = 0  # attempts that ended without a definitive answer (see `call`)

    # -- plumbing ---------------------------------------------------------------------------
    def log(self, event: str, message: str, **data: object) -> None:
        self.emit(ProgressEvent(event, message, step=len(self.results) + 1, data=dict(data)))

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except ApiUnavailableError:
                self.unanswered += 1  # no definitive answer: a write may have been carried out anyway
                raise

        return call_with_retries(
            attempt, what=what, policy=self.policy, sleep=self.sleep, log=lambda m, d: self.log("retry", m, **d)
        )

    def read(self) -> Snapshot:
        snapshot: Snapshot = self.call(
            f"GET statefulset {self.ns}/{self.name} with its pods",
            lambda: self.cluster.read_snapshot(self.ns, self.name),
        )
        return snapshot

    def now(self, snapshot: Snapshot | None = None) -> datetime:
        if snapshot is not None and snapshot.observed_at is not None:
            return snapshot.observed_at
        return self.cluster.server_now()

    def record(self, step: Step, status: StepStatus, message: str, t0: float) -> None:
        result = StepResult(
            len(self.results) + 1, step.kind, step.describe(), status, message, self.clock() - t0
        )
        self.results.append(result)
        self.emit(
            ProgressEvent(
                "result", f"{status}: {message}", step=result.index, kind=step.kind, data={"status": status}
            )
        )

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> Outcome:
        error: StsfixError | None = None
        interrupted = False
        try:
            if not self.plan.is_empty:
                self.ensure_lease()  # refuse before anything when another run holds the set
            self.run_steps()
        except StsfixError as err:
            error = err
            self.log("error", err.message, code=err.code)
        except KeyboardInterrupt as stop:
            interrupted = True
            error = self.interrupted(stop)
            self.log("error", error.message, code=error.code)
        except BaseException:
            interrupted = True
            raise
        finally:
            # Only a run that holds the lease (or runs without one) writes the audit record, and it
            # does so before letting go: a run refused by another holder's lease touches nothing.
            acted = any(r.status == "applied" for r in self.results) or self.leased
            if self.audit and acted and (self.leased or not self.holder):
                self.audit_result(error, interrupted=interrupted)
            if self.leased:
                self.release()
        return self.outcome(error)

    def interrupted(self, stop: KeyboardInterrupt) -> InterruptedRunError:
        """The error an interrupted run ends with: what was applied, where it stopped, what remains."""
        how = getattr(stop, "signal_name", "") or "Ctrl-C"
        applied = [f"{r.index}. {r.kind}" for r in self.results if r.status in ("applied", "dry_run")]
        stopped = next((r for r in self.results if r.status == "interrupted"), None)
        remaining = [f"{r.index}. {r.kind}" for r in self.results if r.status in ("interrupted", "not_run")]
        where = f" during step {stopped.index} ({stopped.description})" if stopped else ""
        message = (
            f"interrupted ({how}){where}: applied {', '.join(applied) or 'nothing'}; not done "
            f"{', '.join(remaining) or 'nothing'}. The repair lease was released; run the same command "
            "again to resume (steps already done are skipped)"
        )
        return InterruptedRunError(message, details={"signal": how, "applied": len(applied)})

    def ensure_lease(self) -> None:
        """Take the repair lease before the first mutation (also one a re-plan adds)."""
        if self.leased or not self.holder or self.dry_run:
            return
        displaced = self.call(
            f"acquire lease stsfix-{self.name}",
            lambda: self.cluster.acquire_lease(
                self.ns, self.name, holder=str(self.holder), duration_seconds=self.lease_seconds
            ),
        )
        self.leased = True
        self.lease_renewed = self.clock()
        if displaced:
            message = f"took over the repair lease of {self.ns}/{self.name} from {displaced}"
            self.log("lease", message)
            self.event("StsfixLeaseTakenOver", f"{message}; now held by {self.holder}", "Warning")
        self.log("lease", f"holding the repair lease of {self.ns}/{self.name} as {self.holder}")

    def outcome(self, error: StsfixError | None) -> Outcome:
        applied = any(r.status == "applied" for r in self.results)
        status: Literal["ok", "partial", "error"] = (
            "ok" if error is None else ("partial" if applied else "error")
        )
        return Outcome(
            status=status,
            exit_code=ExitCode.OK if error is None else error.exit_code,
            plan=self.plan,
            dry_run=self.dry_run,
            steps=tuple(self.results),
            error=error,
            replans=self.replans,
            seconds=self.clock() - self.started,
        )

    def run_steps(self) -> None:
        steps = list(self.plan.steps)
        i = 0
        while i < len(steps):
            step = steps[i]
            t0 = self.clock()
            self.emit(ProgressEvent("step", step.describe(), step=len(self.results) + 1, kind=step.kind))
            try:
                if step.mutating:
                    self.mutate(step, t0)
                elif self.dry_run:
                    self.record(step, "skipped", "not waited for (dry run)", t0)
                else:
                    self.wait(step, t0)
            except _Changed as changed:
                self.plan = self.replan(changed.changes)
                steps, i = list(self.plan.steps), 0
                continue
            except StsfixError as err:
                self.record(step, "failed", err.message, t0)
                self.not_run(steps[i + 1 :])
                raise
            except KeyboardInterrupt:
                self.results.append(
                    StepResult(len(self.results) + 1, step.kind, step.describe(), "interrupted", "", self.clock() - t0)
                )
                self.not_run(steps[i + 1 :])
                raise
            i += 1

    def not_run(self, steps: list[Step]) -> None:
        for rest in steps:
            self.results.append(StepResult(len(self.results) + 1, rest.kind, rest.describe(), "not_run"))

    # -- mutations --------------------------------------------------------------------------
    def check(self, step: Step, snapshot: Snapshot) -> checks.Check:
        if isinstance(step, RevertTemplate):
            return checks.check_revert(step, self.plan, snapshot)
        if isinstance(step, DeletePod | EvictPod | ForceDeletePod):
            return checks.check_pod_removal(
                step, self.plan, snapshot, now=self.now(snapshot), assume_reverted=self.assume_reverted
            )
        if isinstance(step, SetPartition):
            return checks.check_partition(step, self.plan, snapshot, dry_run=self.dry_run)
        if isinstance(step, RestartTemplate):
            return guided.check_restart(step, self.plan, snapshot)
        if isinstance(step, RestartPod):
            return guided.check_restart_pod(step, self.plan, snapshot, assume_restarted=self.dry_run)
        raise TypeError(f"not a mutating step: {step!r}")

    def mutate(self, step: Step, t0: float) -> None:
        self.ensure_lease()
        attempted: StsfixError | None = None
        maybe_ours = False  # an attempt of ours may have been carried out though its answer was lost
        for _ in range(MAX_CONFLICTS):
            snapshot = self.read()
            verdict = self.check(step, snapshot)
            if verdict.verdict == "done":
                if attempted is not None and maybe_ours:
                    # The request went out but its answer was lost: the re-read confirms it took effect.
                    self.applied(
                        step, f"{verdict.message}; confirmed on re-read after: {attempted.message}", t0
                    )
                elif attempted is not None:
                    # Every answer was a definitive refusal (409, 404): someone else did it, not this run.
                    self.record(step, "skipped", f"{verdict.message} (not by this run: {attempted.message})", t0)
                else:
                    self.record(step, "skipped", verdict.message, t0)
                return
            if verdict.verdict == "changed":
                raise _Changed(verdict.changes)
            before = self.unanswered
            try:
                message = self.act(step, snapshot)
            except ApiUnavailableError as err:
                # No attempt got an answer, yet each may have been carried out: look before failing.
                confirmed = self.confirm_done(step)
                if confirmed is None:
                    raise
                self.applied(step, f"{confirmed}; confirmed on re-read after no answer came back: {err.message}", t0)
                return
            except (PreconditionFailedError, NotFoundError) as err:
                maybe_ours = maybe_ours or self.unanswered > before
                if isinstance(err, NotFoundError) and isinstance(step, RevertTemplate):
                    raise
                attempted = attempted or err
                self.log("conflict", f"{step.describe()}: {err.message}; re-reading", code=err.code)
                continue
            self.applied(step, message, t0)
            return
        raise PreconditionFailedError(
            f"{step.describe()}: the object kept changing under us ({MAX_CONFLICTS} conflicts)"
        )

    def confirm_done(self, step: Step) -> str | None:
        """The check's message if a fresh read shows `step` done; None if not, or if it cannot be read."""
        try:
            verdict = self.check(step, self.read())
        except StsfixError:
            return None
        return verdict.message if verdict.verdict == "done" else None

    def applied(self, step: Step, message: str, t0: float) -> None:
        if self.dry_run:
            self.record(step, "dry_run", message, t0)
            if isinstance(step, RevertTemplate):
                self.assume_reverted = True
            return
        self.record(step, "applied", message, t0)
        self.event(f"Stsfix{step.kind}", f"{step.describe()}: {message}")

    def act(self, step: Step, snapshot: Snapshot) -> str:
        ns, dry = self.ns, self.dry_run
        suffix = " (server dry run: the API server accepted it, nothing was persisted)" if dry else ""
        if isinstance(step, RevertTemplate):
            target = snapshot.revision_named(step.to_revision)
            if target is None:
                raise PreconditionFailedError(f"revision {step.to_revision} is no longer in the history")
            template, sts = target.template, snapshot.statefulset
            state = self.call(
                f"PATCH statefulsets/{self.name} (template -> {step.to_revision})",
                lambda: self.cluster.patch_template(
                    ns, self.name, template=template, resource_version=sts.meta.resource_version, dry_run=dry
                ),
            )
            if dry:
                return f"template would be reverted to {step.to_revision} (generation {state.meta.generation}){suffix}"
            return f"template reverted to {step.to_revision} (generation {state.meta.generation})"
        if isinstance(step, SetPartition):
            sts = snapshot.statefulset
            self.call(
                f"PATCH statefulsets/{self.name} (partition {step.partition})",
                lambda: self.cluster.set_partition(
                    ns,
                    self.name,
                    partition=step.partition,
                    resource_version=sts.meta.resource_version,
                    dry_run=dry,
                ),
            )
            return f"partition set to {step.partition}{suffix}"
        if isinstance(step, RestartTemplate):
            sts = snapshot.statefulset
            self.call(
                f"PATCH statefulsets/{self.name} (template annotation {RESTARTED_AT_ANNOTATION})",
                lambda: self.cluster.patch_template_annotations(
                    ns,
                    self.name,
                    annotations={RESTARTED_AT_ANNOTATION: step.restarted_at},
                    resource_version=sts.meta.resource_version,
                    dry_run=dry,
                ),
            )
            return f"template stamped restartedAt={step.restarted_at}{suffix}"
        if not isinstance(step, DeletePod | EvictPod | ForceDeletePod | RestartPod):
            raise TypeError(f"not a mutating step: {step!r}")
        pod = snapshot.pod_at(step.ordinal)
        if pod is None:
            raise NotFoundError(f"{step.pod_name} is gone")
        uid, rv = pod.meta.uid, pod.meta.resource_version
        if isinstance(step, EvictPod):
            try:
                self.call(
                    f"POST pods/{pod.name}/eviction",
                    lambda: self.cluster.evict_pod(ns, pod.name, uid=uid, resource_version=rv, dry_run=dry),
                )
            except ApiUnavailableError as err:
                if err.details.get("status") != 429:
                    raise
                # The Eviction API answers 429 while a PodDisruptionBudget forbids it: a refusal, not an outage.
                raise RefusedError(
                    f"evicting {pod.name} is refused by its PodDisruptionBudget ({err.message}); run without "
                    "--evict to delete it if you accept the disruption",
                    code="pdb_blocks_eviction",
                ) from None
            return f"{pod.name} evicted{suffix}"
        grace = 0 if isinstance(step, ForceDeletePod) else None
        self.call(
            f"DELETE pods/{pod.name}" + (" (grace period 0)" if grace == 0 else ""),
            lambda: self.cluster.delete_pod(
                ns, pod.name, uid=uid, resource_version=rv, grace_period_seconds=grace, dry_run=dry
            ),
        )
        return f"{pod.name} {'force-' if grace == 0 else ''}deleted (uid {uid[:8]}){suffix}"

    # -- waits ------------------------------------------------------------------------------
    def wait_check(self, step: Step, snapshot: Snapshot) -> checks.Check:
        if isinstance(step, AwaitObserved):
            return checks.check_await_observed(step, self.plan, snapshot)
        if isinstance(step, AwaitReady):
            return checks.check_await_ready(step, self.plan, snapshot, now=self.now(snapshot))
        if isinstance(step, AwaitRolloutComplete):
            return checks.check_await_complete(step, self.plan, snapshot, now=self.now(snapshot))
        if isinstance(step, AwaitRestartObserved):
            return guided.check_restart_observed(step, self.plan, snapshot)
        if isinstance(step, AwaitRestartedPod):
            return guided.check_await_restarted(step, self.plan, snapshot, now=self.now(snapshot))
        raise TypeError(f"not a wait step: {step!r}")

    def wait(self, step: Step, t0: float) -> None:
        verdict = self.watch_until(lambda snap: self.wait_check(step, snap), what=step.describe())
        self.record(step, "done", verdict.message, t0)

    def watch_until(self, judge: Callable[[Snapshot], checks.Check], *, what: str) -> checks.Check:
        """Judge each snapshot the watch yields until met, failed, changed or the deadline."""
        last = ""
        failures = 0
        while True:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise NotConvergedError(
                    f"timed out after {self.timeout_s:.0f}s: {last or what}",
                    code="not_converged",
                    details={"waiting_for": what},
                )
            self.renew_lease()
            # NB: a quiet wait yields nothing for as long as the watch runs, so each watch ends in
            # time for the next renewal: the lease must not depend on how often the port heartbeats.
            window = min(remaining, self.renew_every())
            stream = self.cluster.watch_changes(self.ns, self.name, timeout_seconds=window)
            try:
                for snapshot in stream:
                    failures = 0
                    verdict = judge(snapshot)
                    if verdict.verdict == "met":
                        return verdict
                    if verdict.verdict == "failed" and verdict.error is not None:
                        raise verdict.error
                    if verdict.verdict == "changed":
                        raise _Changed(verdict.changes)
                    if verdict.message != last:
                        last = verdict.message
                        now = self.clock()
                        self.log("wait", last, elapsed=round(now - self.started, 1),
                                 remaining=round(max(self.deadline - now, 0.0), 1))  # fmt: skip
                    self.renew_lease()
                    if self.clock() >= self.deadline:
                        break
            except ApiUnavailableError as err:
                failures += 1
                if failures >= self.policy.attempts:
                    raise
                delay = min(self.policy.max_s, self.policy.initial_s * 2 ** (failures - 1))
                self.log(
                    "retry", f"watch failed ({err.message}); re-watching in {delay:.1f}s", attempt=failures
                )
                self.sleep(delay)
            finally:
                close = getattr(stream, "close", None)
                if callable(close):
                    close()

    # -- re-planning ------------------------------------------------------------------------
    def replan(self, changes: tuple[str, ...]) -> Plan:
        what = "; ".join(changes)
        details: dict[str, object] = {"changes": list(changes)}
        if not self.allow_replan or self.replans >= MAX_REPLANS:
            raise PreconditionFailedError(
                f"refusing: the cluster changed since the plan was made: {what}", details=details
            )
        self.replans += 1
        self.log("replan", f"the cluster changed ({what}); re-reading and re-planning")
        # Judge the fresh state only once the controller has observed the latest spec: a stale
        # updateRevision would make the planner fight a concurrent writer's template.
        self.watch_until(_observed, what="the controller to observe the latest spec")
        snapshot = self.read()
        try:
            fresh = replan(self.plan.request, snapshot, now=self.now(snapshot))
        except RefusedError as err:
            raise PreconditionFailedError(
                f"refusing: {what}; and a fresh plan is refused: {err.message}", details=details
            ) from None
        reverted_from = {s.from_revision for s in self.plan.steps if isinstance(s, RevertTemplate)}
        for step in fresh.steps:
            if isinstance(step, RevertTemplate) and step.from_revision not in reverted_from:
                # Someone else wrote a new template while we repaired: never overwrite their change.
                raise PreconditionFailedError(
                    f"refusing: {what}; the template was changed to {step.from_revision} by someone else during the "
                    "repair, and stsfix does not overwrite it",
                    details=details,
                )
        if self.plan.target_revision and fresh.target_revision != self.plan.target_revision:
            raise PreconditionFailedError(
                f"refusing: {what}; a fresh plan would target {fresh.target_revision} instead of {self.plan.target_revision}",
                details=details,
            )
        self.log(
            "replan", f"re-planned: {len(fresh.mutations)} change(s) remain", fingerprint=fresh.fingerprint
        )
        return fresh


def _observed(snapshot: Snapshot) -> checks.Check:
    sts = snapshot.statefulset
    if sts.observed_generation >= sts.meta.generation:
        return checks.Check("met")
    return checks.Check("pending", f"Waiting for the controller to observe generation {sts.meta.generation}")
