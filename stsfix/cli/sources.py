"""Where read commands get their snapshots: the live cluster, or `-f FILE` offline, and `now`.

Live, "now" is the API server's clock (its Date header), so ages are judged by the cluster even when
the local clock is off. Offline, it is `--now`, else the file's collection time, else the newest
timestamp in the objects, else the local clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from stsfix.cli.common import Globals, connect, note, parse_duration
from stsfix.errors import NotFoundError, UsageError

if TYPE_CHECKING:  # imported where used: a command's --help needs neither
    from stsfix.bundle import RawBundle
    from stsfix.model import Snapshot
    from stsfix.ports import ClusterPort

T = TypeVar("T")

FilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filename",
        "-f",
        help="Read objects from a file (collect output or kubectl get -o yaml|json); repeatable.",
    ),
]
NowOpt = Annotated[
    str | None, typer.Option("--now", help="Judge ages against this time (RFC 3339), for offline files.")
]
AllNamespacesOpt = Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")]
SelectorOpt = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Label selector for StatefulSets, as kubectl's: k=v, k!=v, 'k in (a,b)', 'k notin (a)', k, !k "
        "(comma-separated). The same rules live and with -f.",
    ),
]
FieldSelectorOpt = Annotated[
    str | None,
    typer.Option(
        "--field-selector",
        help="Field selector for StatefulSets, as kubectl's (metadata.name=web,metadata.namespace!=dev).",
    ),
]
_FIELDS = ("metadata.name", "metadata.namespace")


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """[(field, op, value)] of a StatefulSet field selector; UsageError for a field the API server
    does not support for StatefulSets (metadata.name, metadata.namespace) or a malformed term."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = re.fullmatch(r"([a-zA-Z.]+)\s*(==|!=|=)\s*(.*)", term)
        if match is None:
            raise UsageError(f'invalid field selector "{text}": expected field=value, field==value or field!=value')
        field, op, value = match.groups()
        if field not in _FIELDS:
            raise UsageError(
                f'field label not supported for statefulsets: "{field}" (supported: {", ".join(_FIELDS)})'
            )
        terms.append((field, "!=" if op == "!=" else "=", value))
    return terms


def _fields_match(raw: dict[str, Any], terms: list[tuple[str, str, str]]) -> bool:
    meta = raw.get("metadata") or {}
    for field, op, value in terms:
        actual = str(meta.get(field.split(".", 1)[1], ""))
        if (actual == value) != (op == "="):
            return False
    return True
StuckAfterOpt = Annotated[
    str, typer.Option("--stuck-after", help="How long a pod must fail before it counts as stuck.")
]


@dataclass(frozen=True, slots=True)
class Loaded:
    snapshots: tuple[Snapshot, ...]
    now: datetime
    offline: bool
    bundle: RawBundle | None = None


def parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    if text == "now":
        return datetime.now(UTC)
    from stsfix.model import parse_time

    parsed = parse_time(text)
    if parsed is None:
        raise UsageError(f'invalid --now "{text}": use RFC 3339, e.g. 2026-11-28T03:00:00Z')
    return parsed


def parse_stuck_after(text: str) -> timedelta:
    """The --stuck-after threshold (`30s`, `5m`, `1h`) that `inspect` and `diagnose` judge with."""
    return timedelta(seconds=parse_duration(text))


def _matches(raw: dict[str, Any], namespace: str | None, name: str | None, selector: dict[str, Any] | None) -> bool:
    from stsfix.bundle import selector_matches

    meta = raw.get("metadata") or {}
    if namespace and meta.get("namespace", namespace) != namespace:
        return False
    if name and meta.get("name") != name:
        return False
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return selector is None or selector_matches(selector, labels)


def load_offline(
    files: list[str],
    *,
    namespace: str | None,
    name: str | None,
    selector: str | None,
    now_text: str | None,
    field_selector: str | None = None,
) -> Loaded:
    from stsfix.bundle import parse_label_selector
    from stsfix.offline import load_bundle

    parsed = parse_label_selector(selector) if selector else None
    bundle = load_bundle(files)
    terms = parse_field_selector(field_selector) if field_selector else []
    chosen = [
        s for s in bundle.statefulsets if _matches(s, namespace, name, parsed) and _fields_match(s, terms)
    ]
    if name and not chosen:
        where = f' in namespace "{namespace}"' if namespace else ""
        raise NotFoundError(
            f'error: statefulsets.apps "{name}" not found{where} in {", ".join(files)}',
            code="statefulset_not_found",
        )
    now = parse_now(now_text) or bundle.observed_at or datetime.now(UTC)
    from stsfix.bundle import assemble_all

    return Loaded(snapshots=assemble_all(bundle, tuple(chosen)), now=now, offline=True, bundle=bundle)


#: How the CLI's reads sleep between attempts (tests replace it).
SLEEP: Callable[[float], None] = time.sleep


def _retried(read: Callable[[], T], *, what: str) -> T:
    """Reads retry transient failures (connection errors, 5xx, 429) like repairs do, on a shorter budget.

    Every read a command makes before or after its executor run goes through here (`load`,
    `read_snapshot`); the executor retries its own re-reads with the same `stsfix.retry` policy.
    """
    from stsfix.retry import READ_POLICY, call_with_retries  # lazy: tenacity is not needed for --help

    return call_with_retries(
        read, what=what, policy=READ_POLICY, sleep=SLEEP, log=lambda message, _: note(message)
    )


def read_snapshot(cluster: ClusterPort, namespace: str, name: str, *, events: bool = False) -> Snapshot:
    """One StatefulSet's Snapshot through the cluster port, retried like every CLI read."""
    return _retried(
        lambda: cluster.read_snapshot(namespace, name, events=events),
        what=f"read statefulset {namespace}/{name}",
    )


def load(
    g: Globals,
    *,
    name: str | None,
    files: list[str] | None,
    now_text: str | None = None,
    all_namespaces: bool = False,
    selector: str | None = None,
    full: bool = True,
    events: bool = False,
    field_selector: str | None = None,
) -> Loaded:
    """Snapshots of one set (name given) or a fleet, from files or the cluster."""
    if field_selector is not None:
        if name:
            raise UsageError("--field-selector selects StatefulSets: give it without a NAME")
        parse_field_selector(field_selector)  # the same check offline and live
    if files:
        namespace = None if all_namespaces else g.namespace
        return load_offline(
            files, namespace=namespace, name=name, selector=selector, now_text=now_text,
            field_selector=field_selector,
        )  # fmt: skip
    from stsfix.bundle import assemble, assemble_all, parse_label_selector, selector_string
    from stsfix.kube import reads

    if selector and not name:  # the parser offline files use: a malformed -l is exit 2, no request made
        selector = selector_string(parse_label_selector(selector))
    cluster, namespace = connect(g)
    conn = cluster.conn
    if name:
        bundle, raw = _retried(
            lambda: reads.read_bundle(conn, namespace, name, full=full, events=events),
            what=f"read statefulset {namespace}/{name}",
        )
        snapshots: tuple[Snapshot, ...] = (assemble(bundle, raw),)
    else:
        scope = None if all_namespaces else namespace
        bundle = _retried(
            lambda: reads.read_fleet(
                conn, scope, selector=selector, full=full, events=events, field_selector=field_selector
            ),
            what=f"read statefulsets in {scope or 'all namespaces'}",
        )
        snapshots = assemble_all(bundle)
    return Loaded(
        snapshots=snapshots, now=parse_now(now_text) or conn.server_now(), offline=False, bundle=bundle
    )
