"""One unattended repair: re-check on a fresh read, plan as the CLI does, claim the rate slot, execute.

The guard decided from its cache; the worker re-reads the set live and decides again, so a set
that recovered or changed meanwhile is left alone. It then builds the CLI's own plan
(`stsfix.guard.repairs`), records the attempt in `stsfix.dev/auto-repair-history` (the hourly
limit holds across leader changes), and runs the plan with `stsfix.executor.execute`: the same
preconditions, per-set repair Lease, conflict re-planning and audit Events as `stsfix rollback`
and `stsfix force-delete`. A shutdown or lost leadership cuts its waits short (`cut`): the
executor then reports the step in progress as not converged and releases the repair Lease, and
the next leader re-checks and carries on from what is actually there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from stsfix.analysis.diagnose import diagnose
from stsfix.errors import ExitCode, RefusedError, StsfixError
from stsfix.executor import Outcome, ProgressEvent, RetryPolicy, execute
from stsfix.guard.policy import (
    HISTORY_ANNOTATION,
    Action,
    Decision,
    GuardPolicy,
    decide,
    parse_history,
    record_history,
)
from stsfix.guard.repairs import describe_plan, plan_for
from stsfix.guard.state import Counts
from stsfix.model import Snapshot
from stsfix.ports import ClusterPort
from stsfix.retry import READ_POLICY, call_with_retries

log = logging.getLogger("stsfix.guard")
CUT_AHEAD_S = 1e9  # added to the executor's clock once cut: every wait is past its deadline


@dataclass(frozen=True, slots=True)
class RepairSettings:
    identity: str
    policy: GuardPolicy
    node_lost_after: timedelta
    timeout_s: float
    lease_seconds: int


class Repair(threading.Thread):
    """One repair of one set, on its own thread; `cut` stops its waits."""

    def __init__(
        self,
        cluster: ClusterPort,
        key: tuple[str, str],
        *,
        settings: RepairSettings,
        counts: Counts,
        running: Callable[[], int],
        may_act: Callable[[], bool],
        event: Callable[..., None],
        done: Callable[[tuple[str, str]], None],
    ):
        super().__init__(daemon=True, name=f"stsfix-guard-repair {key[0]}/{key[1]}")
        self.cluster, self.key, self.settings = cluster, key, settings
        self.counts, self.running, self.may_act, self.event, self.done = counts, running, may_act, event, done
        self.cut = threading.Event()
        self.step = ""

    # -- the executor's injected clock and sleep: both end early once cut -------------------
    def clock(self) -> float:
        return time.monotonic() + (CUT_AHEAD_S if self.cut.is_set() else 0.0)

    def sleep(self, seconds: float) -> None:
        self.cut.wait(seconds)

    def progress(self, e: ProgressEvent) -> None:
        if e.event == "step":
            self.step = f"step {e.step} ({e.message})"
        ns, name = self.key
        log.info("%s/%s: %s", ns, name, e.message,
                 extra={"event": f"repair_{e.event}", "namespace": ns, "statefulset": name, "step": e.step,
                        "kind": e.kind})  # fmt: skip

    def run(self) -> None:
        ns, name = self.key
        try:
            self._run()
        except StsfixError as err:
            self.counts.inc("api_errors", err.code)
            log.warning("%s/%s: repair not started: %s", ns, name, err.message,
                        extra={"event": "repair_error", "namespace": ns, "statefulset": name, "code": err.code})  # fmt: skip
        finally:
            self.done(self.key)

    def _recheck(self) -> tuple[Decision, Snapshot, datetime]:
        ns, name = self.key
        snapshot = call_with_retries(
            lambda: self.cluster.read_snapshot(ns, name),
            what=f"read statefulset {ns}/{name}",
            policy=READ_POLICY,
            sleep=self.sleep,
            log=lambda message, _: log.warning("%s/%s: %s", ns, name, message,
                                               extra={"event": "read_retry", "namespace": ns, "statefulset": name}),
        )  # fmt: skip
        now = snapshot.observed_at or self.cluster.server_now()
        found = diagnose(snapshot, now=now, stuck_after=self.settings.policy.stuck_after)
        decision = decide(found, snapshot, now=now, policy=self.settings.policy, running=self.running() - 1)
        return decision, snapshot, now

    def _run(self) -> None:
        ns, name = self.key
        decision, snapshot, now = self._recheck()
        extra: dict[str, object] = {"namespace": ns, "statefulset": name, "playbook": decision.playbook, "reason": decision.reason}
        if decision.action is not Action.REPAIR or decision.finding is None or decision.playbook is None:
            log.info("%s/%s: re-checked on a fresh read: %s", ns, name, decision.message,
                     extra={"event": "repair_skipped", **extra})  # fmt: skip
            return
        playbook = decision.playbook
        try:
            plan = plan_for(playbook, decision.finding, snapshot, now=now, node_lost_after=self.settings.node_lost_after,
                            stuck_after=self.settings.policy.stuck_after)  # fmt: skip
        except RefusedError as err:
            # A refusal counts as an attempt: the hourly limit then keeps it from repeating every pass.
            self._claim(snapshot, now)
            self.counts.inc("stsfix_guard_repairs_refused", ns, name, playbook, err.code)
            self.event(self.key, "StsfixGuardRefused", f"{playbook} refused: {err.message}", "Warning")
            log.warning("%s/%s: %s refused: %s", ns, name, playbook, err.message,
                        extra={"event": "repair_refused", **extra, "code": err.code})  # fmt: skip
            return
        if plan.is_empty or not self.may_act():
            return
        self._claim(snapshot, now)
        self.counts.inc("stsfix_guard_repairs_attempted", ns, name, playbook)
        self.event(self.key, "StsfixGuardRepairStarted",
                   f"stsfix guard runs {playbook} for {decision.finding.code}: {describe_plan(plan)}")  # fmt: skip
        log.info("%s/%s: running %s: %s", ns, name, playbook, describe_plan(plan), extra={"event": "repair_started", **extra})
        outcome = execute(plan, self.cluster, policy=RetryPolicy(), sleep=self.sleep, clock=self.clock,
                          timeout_s=self.settings.timeout_s, progress=self.progress,
                          lease_holder=self.settings.identity, lease_seconds=self.settings.lease_seconds)  # fmt: skip
        self._report(outcome, playbook, extra)

    def _claim(self, snapshot: Snapshot, now: datetime) -> None:
        """Record this attempt in the set's auto-repair history before acting (the hourly limit)."""
        ns, name = self.key
        history = parse_history(snapshot.statefulset.meta.annotations)
        value = record_history(history, now=now, keep=self.settings.policy.max_per_hour)
        self.cluster.annotate_statefulset(ns, name, annotations={HISTORY_ANNOTATION: value}, dry_run=False)

    def _report(self, outcome: Outcome, playbook: str, extra: dict[str, object]) -> None:
        ns, name = self.key
        err = outcome.error
        if err is None:
            self.counts.inc("stsfix_guard_repairs_succeeded", ns, name, playbook)
            result = "succeeded"
        elif err.exit_code == ExitCode.REFUSED and outcome.applied == 0:
            self.counts.inc("stsfix_guard_repairs_refused", ns, name, playbook, err.code)
            result = "refused"
        else:
            self.counts.inc("stsfix_guard_repairs_failed", ns, name, playbook, err.code)
            result = "failed"
        if self.cut.is_set():
            self.event(self.key, "StsfixGuardInterrupted",
                       f"{playbook} stopped at {self.step or 'its first step'}: the guard is shutting down or lost its "
                       f"lease; {outcome.applied} change(s) applied. The next leader re-checks and continues.",
                       "Warning")  # fmt: skip
        log.info("%s/%s: %s %s (%s)%s", ns, name, playbook, result, outcome.status,
                 f": {err.message}" if err else "",
                 extra={"event": "repair_finished", **extra, "result": result, "applied": outcome.applied,
                        "code": err.code if err else None, "interrupted": self.cut.is_set()})  # fmt: skip
