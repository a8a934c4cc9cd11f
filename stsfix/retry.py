"""The one retry policy: which failures are retried, how long to wait, and the log of every attempt.

Retried: `ApiUnavailableError` only (connection errors, timeouts, 5xx, 429 with Retry-After).
Never retried: 403, 404, 409, 422 and everything else: a 409 means "re-read", which is the
executor's job, not tenacity's. tenacity is built here and nowhere else.

Used by the executor (writes) and by the CLI's read path (`stsfix.cli.sources`), so it sits in a
layer of its own below both (see the layers contract in pyproject.toml); it imports only
`stsfix.errors` and tenacity, and tenacity only once a first attempt has failed: a read that
succeeds at once (nearly all of them) does not pay for importing it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from stsfix.errors import ApiUnavailableError

if TYPE_CHECKING:
    import tenacity

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential back-off with jitter; Retry-After is honoured up to `max_retry_after_s`."""

    attempts: int = 6
    budget_s: float = 60.0
    initial_s: float = 0.5
    max_s: float = 8.0
    jitter_s: float = 0.5
    max_retry_after_s: float = 30.0


#: The budget for a read that a command (or the guard) makes outside an executor run: shorter than a
#: repair's, since nothing has been changed yet and the runbook may simply retry later.
READ_POLICY: Final = RetryPolicy(attempts=4, budget_s=20.0, max_s=4.0)


def _wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        # Exponential back-off with additive jitter (tenacity's wait_exponential_jitter, whose
        # parameter names differ between tenacity 8 and 9).
        base: float = min(policy.max_s, policy.initial_s * 2 ** (state.attempt_number - 1)) + random.uniform(
            0, policy.jitter_s
        )
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            return max(min(float(retry_after), policy.max_retry_after_s), policy.initial_s)
        return base

    return wait


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    log: Callable[[str, dict[str, object]], None],
) -> T:
    """Call `fn`, retrying transient failures; the last failure is re-raised as it is.

    Every failed attempt is logged: `attempt 2/6 failed; retrying in 1.4s: DELETE pods/web-4: 503 ...`.
    """
    started = time.monotonic()
    try:
        return fn()
    except ApiUnavailableError as exc:
        first = exc
    # The first attempt failed: from here tenacity decides, with that failure as its attempt 1
    # (replayed, not repeated) and the budget that is left.
    replay: list[ApiUnavailableError] = [first]

    def attempt() -> T:
        if replay:
            raise replay.pop()
        return fn()

    return _retrying(attempt, what=what, policy=policy, sleep=sleep, log=log,
                     budget_s=max(0.0, policy.budget_s - (time.monotonic() - started)))  # fmt: skip


def _retrying(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    log: Callable[[str, dict[str, object]], None],
    budget_s: float,
) -> T:
    import tenacity

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log(
            f"attempt {state.attempt_number}/{policy.attempts} failed; retrying in {delay:.1f}s: {what}: {exc}",
            {
                "attempt": state.attempt_number,
                "attempts": policy.attempts,
                "delaySeconds": round(delay, 2),
                "what": what,
            },
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(ApiUnavailableError),
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(budget_s),
        wait=_wait(policy),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ApiUnavailableError as exc:
        log(f"giving up after retries: {what}: {exc}", {"what": what, "escalating": True})
        raise
