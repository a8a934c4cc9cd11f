"""Label and field selectors as the API server parses them from `labelSelector`/`fieldSelector`.

Label selectors support `=`, `==`, `!=`, `in (...)`, `notin (...)`, `key` (exists) and `!key`.
Field selectors support `=`, `==` and `!=` on the fields the real server indexes for the resources
the simulator serves. A malformed selector is a 400 BadRequest. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from stsfix.sim.store.store import SimApiError

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_SET_RE: Final = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_RE: Final = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")
_KEY_RE: Final = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")

FIELDS: Final[dict[str, Callable[[Obj], str]]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
    "spec.schedulerName": lambda o: (o.get("spec") or {}).get("schedulerName", ""),
    "spec.serviceAccountName": lambda o: (o.get("spec") or {}).get("serviceAccountName", ""),
    "status.podIP": lambda o: (o.get("status") or {}).get("podIP", ""),
    "involvedObject.kind": lambda o: (o.get("involvedObject") or {}).get("kind", ""),
    "involvedObject.name": lambda o: (o.get("involvedObject") or {}).get("name", ""),
    "involvedObject.namespace": lambda o: (o.get("involvedObject") or {}).get("namespace", ""),
    "involvedObject.uid": lambda o: (o.get("involvedObject") or {}).get("uid", ""),
    "involvedObject.apiVersion": lambda o: (o.get("involvedObject") or {}).get("apiVersion", ""),
    "involvedObject.fieldPath": lambda o: (o.get("involvedObject") or {}).get("fieldPath", ""),
    "involvedObject.resourceVersion": lambda o: (o.get("involvedObject") or {}).get("resourceVersion", ""),
    "reason": lambda o: o.get("reason", ""),
    "type": lambda o: o.get("type", ""),
    "source": lambda o: (o.get("source") or {}).get("component", ""),
}


def _bad(kind: str, text: str, why: str) -> SimApiError:
    return SimApiError(400, "BadRequest", f'unable to parse requirement: {kind} selector "{text}": {why}')


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _label_requirement(req: str, text: str) -> Predicate:
    if m := _SET_RE.match(req):
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_RE.match(req):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _KEY_RE.match(req):
        neg, key = m.group(1), m.group(2)
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise _bad("label", text, f"invalid requirement {req!r}")


def label_predicate(text: str | None) -> Predicate | None:
    """A predicate on whole objects for a `labelSelector` string; None matches everything."""
    if not text or not text.strip():
        return None
    reqs = [_label_requirement(r, text) for r in _split_top(text)]

    def matches(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return matches


def _field_requirement(getter: Callable[[Obj], str], value: str, *, negate: bool) -> Predicate:
    if negate:
        return lambda obj: getter(obj) != value
    return lambda obj: getter(obj) == value


def field_predicate(text: str | None) -> Predicate | None:
    """A predicate for a `fieldSelector` string; 400 for fields the server does not index."""
    if not text or not text.strip():
        return None
    reqs: list[Predicate] = []
    for req in _split_top(text):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", req)
        if not m:
            raise _bad("field", text, f"invalid requirement {req!r}")
        name, op, value = m.groups()
        getter = FIELDS.get(name)
        if getter is None:
            raise SimApiError(400, "BadRequest", f'"{name}" is not a known field selector: only "metadata.name", '
                              '"metadata.namespace"')  # fmt: skip
        reqs.append(_field_requirement(getter, value, negate=op == "!="))
    return lambda obj: all(r(obj) for r in reqs)


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Does a metav1.LabelSelector (matchLabels/matchExpressions) select these labels?

    An empty selector selects everything, as for PodDisruptionBudgets in policy/v1.
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(selector: Obj | None) -> str:
    """A metav1.LabelSelector as the string form (`app=web,tier in (a,b)`), as Scale.status.selector."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": f"{key}", "DoesNotExist": f"!{key}"}.get(op, ""))  # fmt: skip
    return ",".join(p for p in parts if p)
