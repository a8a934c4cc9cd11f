"""Raw objects of one or more namespaces, and their assembly into one Snapshot per StatefulSet.

Live reads (`stsfix.kube.reads`) and offline files (`stsfix.offline`) both produce a `RawBundle`;
`assemble` picks out what belongs to one set (controlled by it, or for files without uids, matching
its selector) and parses it with `stsfix.model`. Also the one label-selector parser
(`parse_label_selector`, the `-l` syntax of kubectl and the API server) and evaluator
(`selector_matches`), used for offline files and to validate a live `-l` before it is sent.
Pure: standard library, `stsfix.model` and `stsfix.errors` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from stsfix.errors import UsageError
from stsfix.model import (
    EventInfo,
    PvcState,
    RawObject,
    Snapshot,
    StatefulSetState,
    _dict,
    _list,
    _str,
    parse_event,
    parse_log,
    parse_node,
    parse_pdb,
    parse_pod,
    parse_pvc,
    parse_revision,
    parse_statefulset,
)

_NAME: Final = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE: Final = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}")
_VALUE_RE: Final = re.compile(rf"({_NAME})?")
_SET_RE: Final = re.compile(r"(\S+)\s+(in|notin)\s*\((.*)\)")
_EQ_RE: Final = re.compile(r"([^!=\s]+)\s*(==|!=|=)\s*(\S*)")
_EXISTS_RE: Final = re.compile(r"(!?)\s*(\S+)")
_OPERATORS: Final = {"=": "In", "==": "In", "!=": "NotIn", "in": "In", "notin": "NotIn"}


def _requirements(text: str) -> list[str]:
    """Split on the commas that separate requirements (not those inside `in (a,b)`)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "()":
            depth += 1 if char == "(" else -1
            if depth not in (0, 1):
                raise UsageError(f'invalid label selector "{text}": unbalanced parentheses')
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        raise UsageError(f'invalid label selector "{text}": unbalanced parentheses')
    return [*parts, text[start:]]


def _checked(text: str, key: str, values: list[str]) -> tuple[str, list[str]]:
    if not _KEY_RE.fullmatch(key):
        raise UsageError(f'invalid label selector "{text}": "{key}" is not a valid label key')
    for value in values:
        if not _VALUE_RE.fullmatch(value):
            raise UsageError(f'invalid label selector "{text}": "{value}" is not a valid label value')
    return key, values


def _requirement(text: str, term: str) -> dict[str, Any]:
    if match := _SET_RE.fullmatch(term):
        values = [v.strip() for v in match[3].split(",")]
        if values == [""]:
            raise UsageError(f'invalid label selector "{text}": "{match[2]}" needs at least one value')
        key, values = _checked(text, match[1], values)
        return {"key": key, "operator": _OPERATORS[match[2]], "values": values}
    if match := _EQ_RE.fullmatch(term):
        key, values = _checked(text, match[1], [match[3]])
        return {"key": key, "operator": _OPERATORS[match[2]], "values": values}
    if (match := _EXISTS_RE.fullmatch(term)) and not set(match[2]) & set("=!<>()"):
        key, _ = _checked(text, match[2], [])
        return {"key": key, "operator": "DoesNotExist" if match[1] else "Exists", "values": []}
    raise UsageError(
        f'invalid label selector "{text}": "{term}" is not key=value, key!=value, key in (...), '
        "key notin (...), key or !key"
    )


def parse_label_selector(text: str) -> dict[str, Any]:
    """A `-l` selector string as a LabelSelector: `{"matchExpressions": [...]}`.

    The syntax of kubectl and the API server (`labels.Parse`): requirements separated by commas,
    each `key=value` / `key==value` (In), `key!=value` (NotIn: true when the key is absent too),
    `key in (a,b)`, `key notin (a,b)`, `key` (Exists) or `!key` (DoesNotExist). "" selects
    everything. UsageError (exit 2) for anything else, including `>`/`<`, which stsfix does not
    support. `selector_string` turns the result back into a string the API server accepts.
    """
    if not text.strip():
        return {"matchExpressions": []}
    return {"matchExpressions": [_requirement(text, term.strip()) for term in _requirements(text)]}


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """True if `labels` satisfy a LabelSelector (matchLabels and matchExpressions)."""
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in _list(selector.get("matchExpressions")):
        key, op, values = _str(expr.get("key")), _str(expr.get("operator")), _list(expr.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(selector: dict[str, Any]) -> str:
    """A LabelSelector as the query-string form the API server accepts (`a=b,c in (d,e)`)."""
    parts = [f"{k}={v}" for k, v in sorted(_dict(selector.get("matchLabels")).items())]
    for expr in _list(selector.get("matchExpressions")):
        key, op, values = _str(expr.get("key")), _str(expr.get("operator")), _list(expr.get("values"))
        if op in ("In", "NotIn") and len(values) == 1:  # `tier=` has no set form: `tier in ()` is invalid
            parts.append(f"{key}{'=' if op == 'In' else '!='}{values[0]}")
        elif op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _owned_by(raw: RawObject, uid: str) -> bool:
    refs = _list(_dict(raw.get("metadata")).get("ownerReferences"))
    return any(isinstance(r, dict) and r.get("uid") == uid and r.get("controller") for r in refs)


def _belongs(raw: RawObject, sts: StatefulSetState) -> bool:
    """A pod or revision belongs to a set if the set controls it, or (for offline files without
    uids) it is an orphan matching the selector."""
    meta = _dict(raw.get("metadata"))
    if _dict(meta).get("namespace", sts.namespace) != sts.namespace:
        return False
    if sts.meta.uid and _owned_by(raw, sts.meta.uid):
        return True
    refs = [r for r in _list(meta.get("ownerReferences")) if isinstance(r, dict) and r.get("controller")]
    if refs:
        return any(
            r.get("kind") == "StatefulSet" and r.get("name") == sts.name and not r.get("uid") for r in refs
        )
    labels = {str(k): str(v) for k, v in _dict(meta.get("labels")).items()}
    return bool(sts.selector) and selector_matches(sts.selector, labels)


@dataclass(frozen=True, slots=True)
class RawBundle:
    """Raw objects of one or more namespaces, as read live or loaded from a file."""

    statefulsets: tuple[RawObject, ...] = ()
    pods: tuple[RawObject, ...] = ()
    revisions: tuple[RawObject, ...] = ()
    events: tuple[RawObject, ...] | None = None
    pvcs: tuple[RawObject, ...] | None = None
    nodes: tuple[RawObject, ...] | None = None
    pdbs: tuple[RawObject, ...] | None = None
    server_version: str = ""
    observed_at: datetime | None = None
    #: previous-run log tails of crash-looping containers ({namespace, pod, container, lines, ...}).
    logs: tuple[RawObject, ...] | None = None


_NOWHERE: Any = object()  # an object without metadata.namespace belongs to every namespace


def _namespace_key(raw: RawObject) -> Any:
    meta = _dict(raw.get("metadata"))
    return meta["namespace"] if "namespace" in meta else _NOWHERE


def _controller_uid(raw: RawObject) -> str | None:
    """The uid of the object's controller, or None when it could belong by name or selector
    (no controller reference, or one without a uid: see `_belongs`)."""
    refs = [r for r in _list(_dict(raw.get("metadata")).get("ownerReferences")) if isinstance(r, dict)]
    controllers = [r for r in refs if r.get("controller")]
    uid = controllers[0].get("uid") if len(controllers) == 1 else None
    return uid if isinstance(uid, str) and uid else None


class _Owned:
    """Pods or revisions grouped by namespace and controller uid, so finding a set's objects costs
    what it owns, not the whole bundle (a 500-set fleet made assembly quadratic). `_belongs` stays
    the one rule: this only narrows the candidates it is asked about, in bundle order."""

    def __init__(self, objects: tuple[RawObject, ...]):
        self._by_ns: dict[Any, tuple[dict[str, list[int]], list[int]]] = {}
        self._objects = objects
        for index, raw in enumerate(objects):
            owned, loose = self._by_ns.setdefault(_namespace_key(raw), ({}, []))
            uid = _controller_uid(raw)
            if uid is None:
                loose.append(index)
            else:
                owned.setdefault(uid, []).append(index)

    def candidates(self, sts: StatefulSetState) -> list[RawObject]:
        found: list[int] = []
        for key in (sts.namespace, _NOWHERE):
            owned, loose = self._by_ns.get(key, ({}, []))
            found += loose
            if sts.meta.uid:
                found += owned.get(sts.meta.uid, [])
            else:  # offline files without uids: only the filter below can tell
                found += [i for group in owned.values() for i in group]
        return [self._objects[i] for i in sorted(found) if _belongs(self._objects[i], sts)]


class BundleIndex:
    """A bundle indexed once for assembling many Snapshots: events, nodes, PVCs and PDBs are
    parsed once, and each set looks only at its own namespace and controlled objects."""

    def __init__(self, bundle: RawBundle):
        self.bundle = bundle
        self._pods = _Owned(bundle.pods)
        self._revisions = _Owned(bundle.revisions)
        # Events by (namespace, object name); one without a namespace counts for every namespace.
        self._events: dict[tuple[str, str], list[tuple[int, EventInfo]]] = {}
        for index, event in enumerate(parse_event(raw) for raw in bundle.events or ()):
            self._events.setdefault((event.namespace, event.object_name), []).append((index, event))
        self._nodes = None if bundle.nodes is None else tuple(parse_node(n) for n in bundle.nodes)
        self._pvcs = _by_namespace(bundle.pvcs or ())
        self._pdbs = _by_namespace(bundle.pdbs or ())
        self._parsed_pvcs: dict[int, PvcState] = {}
        self._missing = tuple(
            name
            for name, value in (
                ("events", bundle.events),
                ("persistentvolumeclaims", bundle.pvcs),
                ("nodes", bundle.nodes),
                ("poddisruptionbudgets", bundle.pdbs),
            )
            if value is None
        )

    def snapshot(self, raw_sts: RawObject) -> Snapshot:
        """The Snapshot of one StatefulSet (pure; no requests)."""
        bundle = self.bundle
        sts = parse_statefulset(raw_sts)
        pods = tuple(
            sorted(
                (parse_pod(p, set_name=sts.name) for p in self._pods.candidates(sts)),
                key=lambda p: (p.ordinal if p.ordinal is not None else 1 << 30, p.name),
            )
        )
        revisions = tuple(
            sorted(
                (parse_revision(r) for r in self._revisions.candidates(sts)),
                key=lambda r: (r.revision, r.name),
            )
        )
        claim_prefixes = tuple(f"{t}-{sts.name}-" for t in sts.claim_templates)
        pvcs = None
        if bundle.pvcs is not None:
            pvcs = tuple(
                self._pvc(index, raw)
                for index, raw in _in_namespace(self._pvcs, sts.namespace)
                if str(_dict(raw.get("metadata")).get("name", "")).startswith(claim_prefixes or ("\0",))
            )
        # The set's, its pods' and its claims' events (a claim's ProvisioningFailed names the cause).
        claims = [c for p in pods for c in p.claim_names] + [c.name for c in pvcs or ()]
        names = dict.fromkeys([sts.name, *(p.name for p in pods), *claims])
        keys = [(ns, name) for name in names for ns in dict.fromkeys((sts.namespace, ""))]
        events = tuple(
            event for _, event in sorted(pair for key in keys for pair in self._events.get(key, ()))
        )
        pdbs = tuple(parse_pdb(raw) for _, raw in _in_namespace(self._pdbs, sts.namespace))
        pod_names = {p.name for p in pods}
        logs = tuple(
            tail
            for tail in (parse_log(raw) for raw in bundle.logs or ())
            if tail.pod in pod_names and tail.namespace in (sts.namespace, "")
        )
        return Snapshot(
            statefulset=sts,
            pods=pods,
            revisions=revisions,
            events=events,
            pvcs=pvcs,
            nodes=self._nodes,
            pdbs=pdbs,
            server_version=bundle.server_version,
            observed_at=bundle.observed_at,
            missing=self._missing,
            logs=logs,
        )

    def _pvc(self, index: int, raw: RawObject) -> PvcState:
        if index not in self._parsed_pvcs:
            self._parsed_pvcs[index] = parse_pvc(raw)
        return self._parsed_pvcs[index]


def _by_namespace(objects: tuple[RawObject, ...]) -> dict[Any, list[tuple[int, RawObject]]]:
    grouped: dict[Any, list[tuple[int, RawObject]]] = {}
    for index, raw in enumerate(objects):
        grouped.setdefault(_namespace_key(raw), []).append((index, raw))
    return grouped


def _in_namespace(
    grouped: dict[Any, list[tuple[int, RawObject]]], namespace: str
) -> list[tuple[int, RawObject]]:
    return sorted(grouped.get(namespace, []) + grouped.get(_NOWHERE, []), key=lambda pair: pair[0])


def assemble(bundle: RawBundle, raw_sts: RawObject) -> Snapshot:
    """The Snapshot of one StatefulSet from a bundle of raw objects (pure; no requests)."""
    return BundleIndex(bundle).snapshot(raw_sts)


def assemble_all(
    bundle: RawBundle, statefulsets: tuple[RawObject, ...] | None = None
) -> tuple[Snapshot, ...]:
    """One Snapshot per StatefulSet (all of the bundle's by default), indexing the bundle once."""
    index = BundleIndex(bundle)
    return tuple(
        index.snapshot(raw) for raw in (bundle.statefulsets if statefulsets is None else statefulsets)
    )
