"""The fleet views across clusters: one read per kubeconfig context, in parallel, one report.

`inspect` and `diagnose` without a target take `--all-contexts` or `--context` repeated. Each
context gets the same fleet read as a single cluster (`sources.load`: -A, -l, the context's own
namespace otherwise), at most `--max-concurrent` at a time, each within `--context-timeout` (its
requests are bounded by it too). A context that fails or runs out of time is reported in the
envelope's `errors` ({code, message, context}) and on stderr; the others are reported as usual,
each item carrying its `context`. The exit code is the worst verdict: 3 when a set in any context
is stuck, else 5 when a context could not be read, else 0.

A context still running at its deadline is abandoned on a daemon thread (its slot goes to the next
context), so one unreachable cluster never holds up the report or the process's exit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Generic, TypeVar

import typer

from stsfix.cli.common import Globals, note
from stsfix.errors import ApiUnavailableError, ExitCode, StsfixError, UsageError

T = TypeVar("T")

AllContextsOpt = Annotated[
    bool,
    typer.Option("--all-contexts", help="Fleet view: read every context of the kubeconfig, in parallel."),
]
MaxConcurrentOpt = Annotated[
    int, typer.Option("--max-concurrent", min=1, help="With several contexts: how many to read at once.")
]
ContextTimeoutOpt = Annotated[
    str, typer.Option("--context-timeout", help="With several contexts: the time each may take (e.g. 30s).")
]


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """One context's result, or the error that took its place."""

    context: str
    value: T | None = None
    error: StsfixError | None = None


def run_bounded(
    names: Sequence[str], work: Callable[[str], T], *, concurrency: int, timeout: float
) -> list[Outcome[T]]:
    """`work(name)` for each name on at most `concurrency` threads at once, each given `timeout`
    seconds from its start; results in the order of `names`. A StsfixError becomes that context's
    error, running out of time a `context_timeout` error; any other exception is a bug and is raised."""
    done: queue.Queue[tuple[str, T | None, BaseException | None]] = queue.Queue()
    waiting, running = list(names), dict[str, float]()
    results: dict[str, Outcome[T]] = {}

    def call(name: str) -> None:
        try:
            done.put((name, work(name), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            done.put((name, None, exc))

    while waiting or running:
        while waiting and len(running) < concurrency:
            name = waiting.pop(0)
            running[name] = time.monotonic()
            threading.Thread(target=call, args=(name,), name=f"stsfix-context-{name}", daemon=True).start()
        deadline = min(running.values()) + timeout
        try:
            name, value, exc = done.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for late in [n for n, started in running.items() if started + timeout <= now]:
                del running[late]
                message = f"context {late}: no answer within {timeout:g}s (--context-timeout)"
                results[late] = Outcome(late, error=ApiUnavailableError(message, code="context_timeout"))
            continue
        if name not in running:
            continue  # it answered after its deadline: already reported as a timeout
        del running[name]
        if exc is not None and not isinstance(exc, StsfixError):
            raise exc
        results[name] = Outcome(name, value=value, error=exc if isinstance(exc, StsfixError) else None)
    return [results[name] for name in names]


def chosen_contexts(
    g: Globals, *, all_contexts: bool, target: str | None, files: list[str] | None
) -> tuple[str, ...]:
    """The contexts to read (two or more, or every one with --all-contexts); () for a single cluster."""
    if not all_contexts and len(g.contexts) < 2:
        return ()
    if target is not None:
        raise UsageError("several contexts give a fleet view: omit the StatefulSet name")
    if files:
        raise UsageError("--filename reads files, not contexts: drop --all-contexts/--context")
    if all_contexts and g.contexts:
        raise UsageError("--all-contexts reads every context: drop --context")
    if not all_contexts:
        return g.contexts
    from stsfix.kube import context_names

    names = context_names(g.kubeconfig)
    if not names:
        raise UsageError("--all-contexts: the kubeconfig has no contexts")
    return names


def read_contexts(
    g: Globals, names: Sequence[str], read: Callable[[Globals], T], *, concurrency: int, timeout_text: str
) -> list[Outcome[T]]:
    """`read` once per context, with that context's Globals (one context, requests bounded by the timeout)."""
    from stsfix.cli.common import parse_duration

    timeout = parse_duration(timeout_text)
    if timeout <= 0:
        raise UsageError(f'invalid --context-timeout "{timeout_text}": must be more than 0')
    bound = min(g.request_timeout or timeout, timeout)

    def work(name: str) -> T:
        return read(replace(g, context=name, contexts=(name,), request_timeout=bound))

    outcomes = run_bounded(names, work, concurrency=concurrency, timeout=timeout)
    for outcome in outcomes:
        if outcome.error is not None:
            note(f"error: context {outcome.context}: {outcome.error.message.removeprefix('error: ')}")
    return outcomes


def error_entries(outcomes: Sequence[Outcome[T]]) -> tuple[dict[str, str], ...]:
    return tuple(
        {"code": o.error.code, "message": o.error.message, "context": o.context}
        for o in outcomes
        if o.error is not None
    )


def worst_exit(stuck: bool, outcomes: Sequence[Outcome[T]]) -> ExitCode:
    """3 when any set is stuck, else 5 when a context could not be read, else 0."""
    if stuck:
        return ExitCode.ACTION_NEEDED
    return ExitCode.CLUSTER_ERROR if any(o.error is not None for o in outcomes) else ExitCode.OK
