"""`stsfix inspect`: one StatefulSet per ordinal and per revision, or a fleet, once or live (--watch).

The state shown is the diagnosis' verdict (`stsfix.analysis.diagnose.assess`), judged with the same
`--stuck-after` and the same reads as `stsfix diagnose`, so the two commands never disagree.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stsfix.cli import complete
from stsfix.cli.common import Globals, cluster_command, connect, emit, note, parse_target, screen_of
from stsfix.cli.contexts import AllContextsOpt, ContextTimeoutOpt, MaxConcurrentOpt, chosen_contexts
from stsfix.cli.sources import (
    AllNamespacesOpt,
    FieldSelectorOpt,
    FilesOpt,
    NowOpt,
    SelectorOpt,
    StuckAfterOpt,
    load,
    parse_stuck_after,
)
from stsfix.errors import ExitCode, UsageError
from stsfix.render import PLAIN, Result, Screen, age, render_machine, table, verdict_colour, wrap

if TYPE_CHECKING:
    from stsfix.analysis.diagnose import Assessment
    from stsfix.analysis.progress import OrdinalRow, RolloutProgress
    from stsfix.model import Snapshot

STATES = ("complete", "progressing", "paused", "failing", "stuck", "unknown")


def _duration(age: timedelta) -> str:
    from stsfix.analysis.pods import human_duration  # lazily: `inspect --help` needs no analysis

    return human_duration(age)


def _revision_cell(row: OrdinalRow) -> str:
    if not row.exists:
        return "-"
    number = row.revision_number if row.revision_number is not None else "?"
    return f"{number} {row.revision_role.value}"


def _ready_cell(row: OrdinalRow, now: datetime) -> str:
    if not row.exists:
        return "-"
    return f"True {age(row.ready_since, now)}" if row.ready else "False"


def ordinal_table(progress: RolloutProgress, now: datetime, *, screen: Screen) -> str:
    """Per ordinal; STATUS is kubectl's (the reason, else the phase). -o wide adds PHASE, NODE,
    IMAGES and CONTAINERS and shortens nothing; otherwise STATUS is shortened to fit the screen."""
    wide = screen.width is None
    headers = ["ordinal", "pod", "revision"] + (["phase"] if wide else []) + ["ready", "restarts", "status"]
    headers += (["node", "age", "images", "containers"] if wide else ["age"])
    rows = []
    for row in progress.rows:
        mark = "*" if row.waiting else (" " if not row.condemned else "x")
        phase = row.phase if row.exists else "Missing"
        cells: list[Any] = [f"{mark}{row.ordinal}", row.pod, _revision_cell(row)]
        cells += [phase] if wide else []
        cells += [_ready_cell(row, now), row.restarts if row.exists else "", row.reason or phase]
        if wide:
            cells.append(row.node or "")
        cells.append(_duration(row.age) if row.age is not None else "")
        if wide:
            cells.append(",".join(row.images))
            cells.append(
                " ".join(
                    f"{c.name}:{c.state}{'/' + c.reason if c.reason else ''}{'(init)' if c.init else ''}"
                    for c in row.containers
                )
            )
        rows.append(cells)
    return table(rows, headers, width=screen.width, shrink=(headers.index("status"), headers.index("pod")))


def header(assessment: Assessment, snapshot: Snapshot, *, screen: Screen = PLAIN) -> str:
    progress, diagnosis = assessment.progress, assessment.diagnosis
    sts = snapshot.statefulset
    strategy = sts.update_strategy
    if strategy == "RollingUpdate":
        partition = "-" if sts.partition is None else sts.partition
        unavailable = "-" if sts.max_unavailable is None else sts.max_unavailable
        strategy += f" (partition {partition}, maxUnavailable {unavailable})"
    current = f"{progress.current_revision or '-'} ({progress.current_revision_number or '?'})"
    update = f"{progress.update_revision or '-'} ({progress.update_revision_number or '?'})"
    verdict = diagnosis.verdict.value
    word = verdict_colour(verdict.upper(), verdict, enabled=screen.color)
    lines = [
        f"StatefulSet {progress.namespace}/{progress.name}: {strategy}, {progress.pod_management_policy}, "
        f"minReadySeconds {progress.min_ready_seconds}",
        f"Replicas:  {progress.replicas} desired, {progress.ready_replicas} ready, {progress.available_replicas} "
        f"available, {progress.current_replicas} current, {progress.updated_replicas} updated",
        f"Generation: {progress.generation} (observed {progress.observed_generation})",
        f"Revisions: current {current}, update {update}",
    ]
    out = [w for line in lines for w in wrap(line, screen.width, hang="           ")]
    rollout = wrap(f"{verdict.upper()}: {diagnosis.message}", screen.width, indent="Rollout:   ", hang="           ")
    rollout[0] = rollout[0].replace(verdict.upper(), word, 1)
    return "\n".join(out + rollout)


def _wants_text(g: Globals) -> bool:
    """-o json|yaml print the envelope only: building the table for them is wasted work."""
    return not g.machine


def single_view(
    snapshot: Snapshot, now: datetime, *, stuck_after: timedelta, screen: Screen = PLAIN, text: bool = True
) -> tuple[Assessment, str]:
    """The assessment and, unless `text` is False (-o json|yaml prints no table), its text."""
    from stsfix.analysis.diagnose import assess

    assessment = assess(snapshot, now=now, stuck_after=stuck_after)
    if not text:
        return assessment, ""
    progress = assessment.progress
    shown = header(assessment, snapshot, screen=screen) + "\n\n" + ordinal_table(progress, now, screen=screen)
    waiting = [r for r in progress.rows if r.waiting]
    for row in waiting:
        shown += "\n\n" + "\n".join(wrap(f"{row.pod}: {row.waiting_why}", screen.width, indent="* ", hang="  "))
    return assessment, shown


def fleet_rows(
    snapshots: tuple[Snapshot, ...], now: datetime, states: set[str], *, stuck_after: timedelta
) -> list[dict[str, Any]]:
    from stsfix.analysis.diagnose import assess

    items = []
    for snapshot in snapshots:
        assessment = assess(snapshot, now=now, stuck_after=stuck_after)
        progress, verdict = assessment.progress, assessment.diagnosis.verdict
        if states and verdict.value not in states:
            continue
        blocking = next((r for r in progress.rows if r.waiting), None)
        items.append(
            {
                "statefulset": {"namespace": progress.namespace, "name": progress.name},
                "state": verdict.value,
                "replicas": progress.replicas,
                "readyReplicas": progress.ready_replicas,
                "updatedReplicas": progress.updated_replicas,
                "currentRevision": progress.current_revision,
                "updateRevision": progress.update_revision,
                "blockingOrdinal": blocking.ordinal if blocking else None,
                "blockingPod": blocking.pod if blocking else None,
                "message": assessment.diagnosis.message,
            }
        )
    return items


def _fleet_text(items: list[dict[str, Any]], screen: Screen) -> str:
    if not items:
        return "No StatefulSets found."
    wide = screen.width is None
    across = "context" in items[0]
    headers = ["namespace", "name", "state", "updated", "ready", "blocking"] + (["message"] if wide else [])
    rows = [
        ([i["context"]] if across else [])
        + [
            i["statefulset"]["namespace"],
            i["statefulset"]["name"],
            verdict_colour(i["state"], i["state"], enabled=screen.color),
            f"{i['updatedReplicas']}/{i['replicas']}",
            f"{i['readyReplicas']}/{i['replicas']}",
            i["blockingPod"] or "-",
        ]
        + ([i["message"]] if wide else [])
        for i in items
    ]
    if across:
        return table(rows, ["context", *headers], width=screen.width, shrink=(2, 0, 1, 6))
    return table(rows, headers, width=screen.width, shrink=(1, 0, 5))


def _fleet_across(
    g: Globals,
    contexts: tuple[str, ...],
    read: Callable[[Globals], list[dict[str, Any]]],
    states: set[str],
    *,
    concurrency: int,
    timeout: str,
) -> tuple[Result, str]:
    """The FleetInspection of several clusters: a context column and field; failed contexts in errors;
    exit 3 when any set read (shown or not) is stuck, else 5 when a context failed."""
    from stsfix.cli.contexts import error_entries, read_contexts, worst_exit

    outcomes = read_contexts(g, contexts, read, concurrency=concurrency, timeout_text=timeout)
    every = [{"context": o.context, **i} for o in outcomes for i in o.value or []]
    items = [i for i in every if not states or i["state"] in states]
    code = worst_exit(any(i["state"] == "stuck" for i in every), outcomes)
    result = Result(kind="FleetInspection", exit_code=code, payload={"items": items}, errors=error_entries(outcomes))
    return result, _fleet_text(items, screen_of(g))


def _watch(g: Globals, name: str, stuck_after: timedelta) -> None:
    """Redraw on every watch event until the rollout completes or Ctrl-C."""
    from stsfix.analysis.progress import RolloutState

    cluster, namespace = connect(g)
    tty = sys.stdout.isatty()
    for snapshot in cluster.watch_changes(namespace, name, timeout_seconds=24 * 3600, events=True):
        now = cluster.server_now()
        assessment, text = single_view(
            snapshot, now, stuck_after=stuck_after, screen=screen_of(g), text=_wants_text(g)
        )
        if g.machine:
            from stsfix.analysis.serialize import inspection_to_dict

            typer.echo(
                render_machine(Result(kind="Inspection", payload=inspection_to_dict(assessment)), g.output)
            )
        else:
            typer.echo(("\033[H\033[2J" if tty else "---\n") + text)
        if assessment.diagnosis.verdict is RolloutState.COMPLETE:
            note("rollout complete")
            return


#: How often the fleet view re-reads while --watch (a fleet has no one object to watch).
FLEET_INTERVAL_S = 2.0
SLEEP = time.sleep  # injection point for tests


def _watch_fleet(g: Globals, read: Callable[[], tuple[list[dict[str, Any]], str]]) -> None:
    """Re-read the fleet every FLEET_INTERVAL_S seconds and redraw when anything changed; until Ctrl-C."""
    tty = sys.stdout.isatty()
    shown = None
    while True:
        items, text = read()
        if items != shown:
            shown = items
            if g.machine:
                typer.echo(render_machine(Result(kind="FleetInspection", payload={"items": items}), g.output))
            else:
                typer.echo(("\033[H\033[2J" if tty else "---\n") + text)
        SLEEP(FLEET_INTERVAL_S)


@cluster_command
def inspect(
    target: Annotated[
        str | None,
        typer.Argument(
            help="NAME, sts/NAME or statefulset/NAME; omit for a fleet view", autocompletion=complete.statefulsets
        ),
    ] = None,
    all_namespaces: AllNamespacesOpt = False,
    selector: SelectorOpt = None,
    field_selector: FieldSelectorOpt = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Fleet view: only sets in this state (repeatable).")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Redraw on every change: one set until its rollout completes, a fleet until Ctrl-C."
        ),
    ] = False,
    stuck_after: StuckAfterOpt = "5m",
    files: FilesOpt = None,
    now: NowOpt = None,
    all_contexts: AllContextsOpt = False,
    max_concurrent: MaxConcurrentOpt = 8,
    context_timeout: ContextTimeoutOpt = "30s",
    *,
    g: Globals,
) -> None:
    """Show a StatefulSet per ordinal and per revision, and where the controller is waiting.

    Without a target (or with -A), one row per StatefulSet: state, progress and blocking pod. The
    state is the verdict `stsfix diagnose` gives, judged with the same --stuck-after. With -w the
    view is redrawn on every change (one set: until its rollout completes; a fleet: re-read every
    2 s, until Ctrl-C); with -o json each redraw is one envelope. With --all-contexts or --context
    repeated: every context's sets, with a CONTEXT column.
    """
    from stsfix.analysis.serialize import inspection_to_dict

    states = set(state or ())
    if states - set(STATES):
        raise UsageError(f"--state must be one of {', '.join(STATES)}")
    threshold = parse_stuck_after(stuck_after)
    if watch and files:
        raise UsageError("--watch follows the live cluster: it cannot watch -f files")
    if target is None:

        def rows(gc: Globals) -> list[dict[str, Any]]:
            loaded = load(
                gc, name=None, files=files, now_text=now, all_namespaces=all_namespaces, selector=selector,
                full=True, events=True, field_selector=field_selector,
            )  # fmt: skip
            return fleet_rows(loaded.snapshots, loaded.now, set(), stuck_after=threshold)

        def read() -> tuple[list[dict[str, Any]], str]:
            items = [i for i in rows(g) if not states or i["state"] in states]
            return items, _fleet_text(items, screen_of(g)) if _wants_text(g) else ""

        contexts = chosen_contexts(g, all_contexts=all_contexts, target=None, files=files)
        if contexts and watch:
            raise UsageError("--watch follows one cluster: drop --all-contexts/--context, or --watch")
        if contexts:
            result, human = _fleet_across(g, contexts, rows, states, concurrency=max_concurrent, timeout=context_timeout)
            emit(result, g, human=human)
            return
        if watch:
            _watch_fleet(g, read)
            return
        items, text = read()
        emit(Result(kind="FleetInspection", payload={"items": items}), g, human=text)
        return
    name = parse_target(target)
    if field_selector is not None:
        raise UsageError("--field-selector selects StatefulSets: give it without a NAME")
    if watch:
        _watch(g, name, threshold)
        return
    loaded = load(g, name=name, files=files, now_text=now, full=True, events=True)
    assessment, text = single_view(
        loaded.snapshots[0], loaded.now, stuck_after=threshold, screen=screen_of(g), text=_wants_text(g)
    )
    payload = inspection_to_dict(assessment)
    payload["missing"] = list(loaded.snapshots[0].missing)
    emit(Result(kind="Inspection", exit_code=ExitCode.OK, payload=payload), g, human=text)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
