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

def _at(*path: str) -> Callable[[Obj], str]:
    def get(obj: Obj) -> str:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return get


def _pod_ips(obj: Obj) -> str:
    return ",".join(str(ip.get("ip", "")) for ip in (obj.get("status") or {}).get("podIPs") or [])


FIELDS: Final[dict[str, Callable[[Obj], str]]] = {
    "metadata.name": _at("metadata", "name"),
    "metadata.namespace": _at("metadata", "namespace"),
    "status.phase": _at("status", "phase"),
    "spec.nodeName": _at("spec", "nodeName"),
    "spec.restartPolicy": _at("spec", "restartPolicy"),
    "spec.schedulerName": _at("spec", "schedulerName"),
    "spec.serviceAccountName": _at("spec", "serviceAccountName"),
    "spec.hostNetwork": lambda o: "true" if (o.get("spec") or {}).get("hostNetwork") else "false",
    "spec.unschedulable": lambda o: "true" if (o.get("spec") or {}).get("unschedulable") else "false",
    "spec.clusterIP": _at("spec", "clusterIP"),
    "spec.type": _at("spec", "type"),
    "status.podIP": _at("status", "podIP"),
    "status.podIPs": _pod_ips,
    "status.nominatedNodeName": _at("status", "nominatedNodeName"),
    **{f"involvedObject.{k}": _at("involvedObject", k)
       for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _at("reason"),
    "reportingComponent": _at("reportingComponent"),
    "source": _at("source", "component"),
    "type": _at("type"),
}  # fmt: skip
_DEFAULT: Final = ("metadata.name", "metadata.namespace")
# The kinds with their own field-label conversion (pkg/apis/core/v1/conversion.go); every other kind
# takes the default pair and words a refusal differently.
SUPPORTED: Final[dict[str, tuple[str, ...]]] = {
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
             "status.nominatedNodeName"),
    "nodes": ("metadata.name", "spec.unschedulable"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
               "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"),
    "namespaces": ("status.phase", "metadata.name"),
    "services": ("metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"),
}  # fmt: skip
_ALIASES: Final = {("pods", "spec.host"): "spec.nodeName"}


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


def field_predicate(text: str | None, resource: str = "") -> Predicate | None:
    """A predicate for a `fieldSelector` string on `resource`; 400 for fields its kind does not index,
    worded as the server words it for that kind."""
    if not text or not text.strip():
        return None
    reqs: list[Predicate] = []
    for req in _split_top(text):
        m = re.match(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*(.*?)\s*$", req)
        if not m:
            raise SimApiError(400, "BadRequest", f"invalid selector: '{text}'; can't understand '{req.strip()}'")
        name, op, value = m.groups()
        name = _ALIASES.get((resource, name), name)
        supported = SUPPORTED.get(resource, _DEFAULT)
        if name not in supported:
            if resource in SUPPORTED:
                raise SimApiError(400, "BadRequest", f"field label not supported: {name}")
            raise SimApiError(400, "BadRequest", f'"{name}" is not a known field selector: only "metadata.name", '
                              '"metadata.namespace"')  # fmt: skip
        reqs.append(_field_requirement(FIELDS[name], value, negate=op == "!="))
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
