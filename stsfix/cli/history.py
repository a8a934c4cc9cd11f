"""`stsfix history`, `stsfix diff` and `stsfix collect`: revisions, template diffs, incident records."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stsfix.bundle import RawBundle
from stsfix.cli import complete
from stsfix.cli.common import Globals, cluster_command, emit, parse_target
from stsfix.cli.sources import AllNamespacesOpt, FilesOpt, NowOpt, load
from stsfix.errors import UsageError
from stsfix.model import RevisionInfo, Snapshot
from stsfix.render import Result, age, table, to_json, to_yaml

TargetArg = Annotated[
    str, typer.Argument(help="NAME, sts/NAME or statefulset/NAME", autocompletion=complete.statefulsets)
]


def history_items(snapshot: Snapshot, now: Any) -> list[dict[str, Any]]:
    from stsfix.analysis.revisions import pods_by_revision, summarize_change

    sts = snapshot.statefulset
    pods = pods_by_revision(snapshot)
    items: list[dict[str, Any]] = []
    previous: RevisionInfo | None = None
    for rev in sorted(snapshot.revisions, key=lambda r: (r.revision, r.name)):
        items.append(
            {
                "revision": rev.revision,
                "name": rev.name,
                "created": rev.meta.created,
                "age": age(rev.meta.created, now),
                "current": rev.name == sts.current_revision,
                "update": rev.name == sts.update_revision,
                "pods": len(pods.get(rev.name, [])),
                "change": summarize_change(previous.template, rev.template)
                if previous
                else "initial revision",
            }
        )
        previous = rev
    return items


def _role(item: dict[str, Any]) -> str:
    return "+".join(r for r in ("current", "update") if item[r]) or "-"


@cluster_command
def history(target: TargetArg, files: FilesOpt = None, now: NowOpt = None, *, g: Globals) -> None:
    """List the ControllerRevisions: number, age, current/update, pods on each, what changed."""
    loaded = load(g, name=parse_target(target), files=files, now_text=now, full=False)
    snapshot = loaded.snapshots[0]
    items = history_items(snapshot, loaded.now)
    sts = snapshot.statefulset
    rows = [[i["revision"], i["name"], i["age"], _role(i), i["pods"], i["change"]] for i in items]
    human = (
        table(rows, ["revision", "name", "age", "role", "pods", "change"], width=g.width, fold=(5,), shrink=(1,))
        if rows
        else "No revisions found."
    )
    emit(
        Result(
            kind="History",
            payload={"statefulset": {"namespace": sts.namespace, "name": sts.name}, "items": items},
        ),
        g,
        human=human,
    )


def _find_revision(snapshot: Snapshot, ref: str) -> tuple[str, dict[str, Any]]:
    """A revision by number or name, or `live` for the set's template."""
    if ref in ("live", "template"):
        return "live template", snapshot.statefulset.template
    for rev in snapshot.revisions:
        if ref == rev.name or (ref.isdigit() and int(ref) == rev.revision):
            return f"revision {rev.revision} ({rev.name})", rev.template
    known = ", ".join(str(r.revision) for r in sorted(snapshot.revisions, key=lambda r: r.revision)) or "none"
    raise UsageError(f'revision "{ref}" not found (revisions: {known})')


@cluster_command
def diff(
    target: TargetArg,
    rev_a: Annotated[str, typer.Argument(help="Revision number or name", autocompletion=complete.revisions)],
    rev_b: Annotated[
        str,
        typer.Argument(help="Revision number or name (default: the live template)", autocompletion=complete.revisions),
    ] = "live",
    show_values: Annotated[
        bool, typer.Option("--show-values", help="Show env values that look secret.")
    ] = False,
    files: FilesOpt = None,
    *,
    g: Globals,
) -> None:
    """Unified diff of the pod templates of two revisions (or a revision and the live template)."""
    from stsfix.render import template_diff

    snapshot = load(g, name=parse_target(target), files=files, full=False).snapshots[0]
    label_a, template_a = _find_revision(snapshot, rev_a)
    label_b, template_b = _find_revision(snapshot, rev_b)
    text = template_diff(
        template_a, template_b, show_values=show_values, from_label=label_a, to_label=label_b
    )
    emit(
        Result(kind="Diff", payload={"from": label_a, "to": label_b, "diff": text}),
        g,
        human=text or f"No differences between {label_a} and {label_b}.",
    )


@cluster_command
def collect(
    target: Annotated[
        str | None,
        typer.Argument(help="NAME, sts/NAME or statefulset/NAME (or -A)", autocompletion=complete.statefulsets),
    ] = None,
    all_namespaces: AllNamespacesOpt = False,
    save: Annotated[
        str | None, typer.Option("--save", help="Write the collection to FILE instead of stdout.")
    ] = None,
    files: FilesOpt = None,
    show_values: Annotated[
        bool, typer.Option("--show-values", help="Keep env values whose name looks secret (hidden by default).")
    ] = False,
    *,
    g: Globals,
) -> None:
    """Everything stsfix reads, as one YAML List with the collection time, for offline review.

    Env values whose name looks secret (PASSWORD, TOKEN, KEY, ...) are written as `<hidden #N>`
    (the same value, the same N) unless --show-values.
    """
    from stsfix.offline import collect_document

    if target is None and not all_namespaces:
        raise UsageError("collect needs a TARGET or -A")
    name = parse_target(target) if target is not None else None
    loaded = load(g, name=name, files=files, all_namespaces=all_namespaces, full=True, events=True)
    document = collect_document(loaded.bundle or RawBundle(), collected_at=loaded.now, show_values=show_values)
    text = to_json(document) if g.output == "json" else to_yaml(document)
    if save:
        try:
            with open(save, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as err:
            raise UsageError(f"cannot write the collection to {save}: {err.strerror or err}") from None
        typer.echo(f"collected {len(document['items'])} objects into {save}", err=True)
        return
    typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command("history")(history)
    app.command("diff")(diff)
    app.command("collect")(collect)
