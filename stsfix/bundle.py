"""Raw objects of one or more namespaces, and their assembly into one Snapshot per StatefulSet.

Live reads (`stsfix.kube.reads`) and offline files (`stsfix.offline`) both produce a `RawBundle`;
`assemble` picks out what belongs to one set (controlled by it, or for files without uids, matching
its selector) and parses it with `stsfix.model`. Pure: standard library and `stsfix.model` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stsfix.model import (
    RawObject,
    Snapshot,
    StatefulSetState,
    _dict,
    _list,
    _str,
    parse_event,
    parse_node,
    parse_pdb,
    parse_pod,
    parse_pvc,
    parse_revision,
    parse_statefulset,
)


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
        if op == "In":
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


def assemble(bundle: RawBundle, raw_sts: RawObject) -> Snapshot:
    """The Snapshot of one StatefulSet from a bundle of raw objects (pure; no requests)."""
    sts = parse_statefulset(raw_sts)
    pods = tuple(
        sorted(
            (parse_pod(p, set_name=sts.name) for p in bundle.pods if _belongs(p, sts)),
            key=lambda p: (p.ordinal if p.ordinal is not None else 1 << 30, p.name),
        )
    )
    revisions = tuple(
        sorted(
            (parse_revision(r) for r in bundle.revisions if _belongs(r, sts)),
            key=lambda r: (r.revision, r.name),
        )
    )
    names = {sts.name} | {p.name for p in pods}
    events = tuple(
        e
        for e in (parse_event(raw) for raw in bundle.events or ())
        if e.object_name in names and (not e.namespace or e.namespace == sts.namespace)
    )
    claim_prefixes = tuple(f"{t}-{sts.name}-" for t in sts.claim_templates)
    pvcs = None
    if bundle.pvcs is not None:
        pvcs = tuple(
            parse_pvc(raw)
            for raw in bundle.pvcs
            if _dict(raw.get("metadata")).get("namespace", sts.namespace) == sts.namespace
            and str(_dict(raw.get("metadata")).get("name", "")).startswith(claim_prefixes or ("\0",))
        )
    pdbs = tuple(
        parse_pdb(raw)
        for raw in bundle.pdbs or ()
        if _dict(raw.get("metadata")).get("namespace", sts.namespace) == sts.namespace
    )
    missing = tuple(
        name
        for name, value in (
            ("events", bundle.events),
            ("persistentvolumeclaims", bundle.pvcs),
            ("nodes", bundle.nodes),
            ("poddisruptionbudgets", bundle.pdbs),
        )
        if value is None
    )
    return Snapshot(
        statefulset=sts,
        pods=pods,
        revisions=revisions,
        events=events,
        pvcs=pvcs,
        nodes=None if bundle.nodes is None else tuple(parse_node(n) for n in bundle.nodes),
        pdbs=pdbs,
        server_version=bundle.server_version,
        observed_at=bundle.observed_at,
        missing=missing,
    )
