"""Live reads: a constant number of LIST requests per command, whatever the replica or set count.

One StatefulSet GET (or one LIST for a fleet), one pod LIST by selector, one ControllerRevision
LIST; PVCs, nodes, PDBs and events only when the command needs them. Raw JSON goes into a
`RawBundle` and `stsfix.model.assemble` builds the Snapshots, exactly as for offline files.
"""

from __future__ import annotations

from typing import Any

from stsfix.bundle import RawBundle, assemble, selector_string
from stsfix.errors import AccessDeniedError, ApiUnavailableError, NotFoundError, StsfixError
from stsfix.kube.client import Connection, path_for
from stsfix.model import LogTail, RawObject, Snapshot, log_to_raw, parse_pod

#: A kubelet that serves no logs (a kwok node, a lost node) must not stall a diagnosis.
LOG_TIMEOUT_S = 5.0


def _items(answer: dict[str, Any], kind: str) -> tuple[RawObject, ...]:
    """List items with the kind/apiVersion a LIST leaves out, so files written later are complete."""
    api_version = answer.get("apiVersion", "v1")
    out = []
    for item in answer.get("items") or ():
        if isinstance(item, dict):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            out.append(item)
    return tuple(out)


def _list_all(
    conn: Connection, resource: str, kind: str, *, namespace: str | None, **query: str
) -> tuple[RawObject, ...]:
    """LIST with pagination (limit/continue) so very large lists stay bounded per request."""
    items: list[RawObject] = []
    token: str | None = None
    while True:
        answer = conn.request(
            "GET", path_for(resource, namespace), query={**query, "limit": "500", "continue": token}
        )
        items.extend(_items(answer, kind))
        token = (answer.get("metadata") or {}).get("continue") or None
        if not token:
            return tuple(items)


def _optional(
    conn: Connection, resource: str, kind: str, *, namespace: str | None, **query: str
) -> tuple[RawObject, ...] | None:
    """A LIST the analysis can do without: None when access is denied (e.g. nodes for a namespaced role)."""
    try:
        return _list_all(conn, resource, kind, namespace=namespace, **query)
    except AccessDeniedError:
        return None


def server_version(conn: Connection) -> str:
    answer = conn.request("GET", "/version")
    return str(answer.get("gitVersion") or "")


def get_statefulset(conn: Connection, namespace: str, name: str) -> RawObject:
    try:
        raw = conn.request("GET", path_for("statefulsets", namespace, name))
    except NotFoundError:
        raise NotFoundError(
            f'error: statefulsets.apps "{name}" not found in namespace "{namespace}"',
            code="statefulset_not_found",
        ) from None
    raw.setdefault("kind", "StatefulSet")
    raw.setdefault("apiVersion", "apps/v1")
    return raw


def _bundle(
    conn: Connection,
    namespace: str | None,
    *,
    statefulsets: tuple[RawObject, ...],
    pods: tuple[RawObject, ...],
    revisions: tuple[RawObject, ...],
    full: bool,
    events: bool,
) -> RawBundle:
    """A bundle plus what the command needs beyond sets, pods and revisions: events only when asked,
    PVCs, nodes, PDBs and the server version when `full`. One LIST each, whatever the size."""
    return RawBundle(
        statefulsets=statefulsets,
        pods=pods,
        revisions=revisions,
        events=_optional(conn, "events", "Event", namespace=namespace) if events else None,
        pvcs=_optional(conn, "persistentvolumeclaims", "PersistentVolumeClaim", namespace=namespace)
        if full
        else None,
        nodes=_optional(conn, "nodes", "Node", namespace=None) if full else None,
        pdbs=_optional(conn, "poddisruptionbudgets", "PodDisruptionBudget", namespace=namespace)
        if full
        else None,
        server_version=server_version(conn) if full else "",
        observed_at=conn.server_now(),
    )


def _log_error(err: StsfixError) -> str:
    status = err.details.get("status")
    if status in (401, 403):
        return f"not allowed to get pods/log ({err.message})"
    return err.message


def read_logs(conn: Connection, namespace: str, raw_pods: tuple[RawObject, ...]) -> tuple[RawObject, ...]:
    """The previous-run log tails of the crash-looping containers (`analysis.logs.log_targets`):
    one bounded GET each, masked; a log that cannot be read is kept with its error, never raised."""
    from stsfix.analysis.logs import LIMIT_BYTES, TAIL_LINES, log_tail, log_targets, secret_env_values

    by_name = {str((raw.get("metadata") or {}).get("name", "")): raw for raw in raw_pods}
    tails = []
    unavailable = ""
    for pod, container in log_targets([parse_pod(raw) for raw in raw_pods]):
        if unavailable:  # one slow or failing kubelet is enough: do not wait for each log in turn
            tails.append(log_to_raw(LogTail(namespace, pod.name, container.name, error=unavailable)))
            continue
        values = secret_env_values(by_name.get(pod.name, {}))
        query = {"container": container.name, "previous": "true", "tailLines": str(TAIL_LINES),
                 "limitBytes": str(LIMIT_BYTES)}  # fmt: skip
        try:
            text = conn.request_text(
                f"{path_for('pods', namespace, pod.name)}/log", query=query, timeout=LOG_TIMEOUT_S
            )
            tail = log_tail(namespace, pod.name, container.name, text, values=values)
        except ApiUnavailableError as err:
            tail = LogTail(namespace, pod.name, container.name, error=_log_error(err))
            unavailable = f"not read after an earlier log read failed ({err.message})"
        except StsfixError as err:
            tail = LogTail(namespace, pod.name, container.name, error=_log_error(err))
        tails.append(log_to_raw(tail))
    return tuple(tails)


def read_bundle(
    conn: Connection, namespace: str, name: str, *, full: bool, events: bool
) -> tuple[RawBundle, RawObject]:
    """The raw objects around one StatefulSet. `full` adds PVCs, nodes, PDBs and the server version;
    `events` adds events and the previous-run log tails of crash-looping containers."""
    raw_sts = get_statefulset(conn, namespace, name)
    selector = selector_string((raw_sts.get("spec") or {}).get("selector") or {})
    pods = _list_all(conn, "pods", "Pod", namespace=namespace, labelSelector=selector)
    revisions = _list_all(
        conn, "controllerrevisions", "ControllerRevision", namespace=namespace, labelSelector=selector
    )
    bundle = _bundle(
        conn, namespace, statefulsets=(raw_sts,), pods=pods, revisions=revisions, full=full, events=events
    )
    if events:
        from dataclasses import replace

        bundle = replace(bundle, logs=read_logs(conn, namespace, pods))
    return bundle, raw_sts


def read_snapshot(
    conn: Connection, namespace: str, name: str, *, full: bool = True, events: bool = False
) -> Snapshot:
    bundle, raw_sts = read_bundle(conn, namespace, name, full=full, events=events)
    return assemble(bundle, raw_sts)


def read_fleet(
    conn: Connection,
    namespace: str | None,
    *,
    selector: str | None = None,
    full: bool = False,
    events: bool = False,
    field_selector: str | None = None,
) -> RawBundle:
    """Every StatefulSet in a namespace (or all, when None) with their pods and revisions: O(1) LISTs.
    `selector` and `field_selector` go to the StatefulSet LIST as the API server's own selectors."""
    query = {"labelSelector": selector} if selector else {}
    if field_selector:
        query["fieldSelector"] = field_selector
    sets = _list_all(conn, "statefulsets", "StatefulSet", namespace=namespace, **query)
    if not sets:
        return RawBundle(observed_at=conn.server_now())
    return _bundle(
        conn,
        namespace,
        statefulsets=sets,
        pods=_list_all(conn, "pods", "Pod", namespace=namespace),
        revisions=_list_all(conn, "controllerrevisions", "ControllerRevision", namespace=namespace),
        full=full,
        events=events,
    )
