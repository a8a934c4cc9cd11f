"""Small helpers over raw API objects: times, selectors, owner references, ordinals, defaults.

The simulated controllers write objects straight into the Store (in-process), so they apply the
same defaults the API server's admission would (pod template and pod-spec defaults, PVC defaults)
here. Everything works on plain dicts in API JSON form. Standard library only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from stsfix.sim.store import defaults
from stsfix.sim.store.store import format_ts

Obj = dict[str, Any]

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
HASH_LABEL = "controller.kubernetes.io/hash"

_ORDINAL_RE = re.compile(r"^(.*)-([0-9]+)$")


# -- time ------------------------------------------------------------------------------------------
def ts(value: datetime) -> str:
    """RFC 3339 with second precision, as the API server prints metav1.Time."""
    return format_ts(value)


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


# -- names, ordinals, labels -----------------------------------------------------------------------
def parent_and_ordinal(name: str) -> tuple[str, int]:
    """`web-3` -> ("web", 3); names that do not parse -> ("", -1) (§3.1)."""
    match = _ORDINAL_RE.match(name)
    if not match:
        return "", -1
    ordinal = int(match[2])
    if ordinal > 2**31 - 1:
        return "", -1
    return match[1], ordinal


def labels_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label map; empty matches all."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# -- owner references ------------------------------------------------------------------------------
def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref_to(owner: Obj, *, controller: bool = True) -> Obj:
    return {
        "apiVersion": owner.get("apiVersion", "apps/v1"),
        "kind": owner.get("kind", "StatefulSet"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def is_terminating(obj: Obj) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


# -- pod predicates (§4) ---------------------------------------------------------------------------
def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def condition(obj: Obj, type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_running_and_ready(pod: Obj) -> bool:
    return pod_phase(pod) == "Running" and is_pod_ready(pod)


def set_condition(
    status: Obj,
    type_: str,
    value: str,
    now: datetime,
    *,
    reason: str | None = None,
    message: str | None = None,
) -> bool:
    """Set a condition; lastTransitionTime changes only when the status flips. True if changed."""
    conditions = status.setdefault("conditions", [])
    for cond in conditions:
        if cond["type"] == type_:
            before = dict(cond)
            if cond.get("status") != value:
                cond["lastTransitionTime"] = ts(now)
            cond["status"] = value
            _set_reason(cond, reason, message)
            return bool(cond != before)
    cond = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": ts(now)}
    _set_reason(cond, reason, message)
    conditions.append(cond)
    return True


def _set_reason(cond: Obj, reason: str | None, message: str | None) -> None:
    for key, value in (("reason", reason), ("message", message)):
        if value is None:
            cond.pop(key, None)
        else:
            cond[key] = value


# -- defaults (what admission would add) -----------------------------------------------------------
def image_pull_policy(image: str) -> str:
    return defaults.image_pull_policy(image)


def default_pod_spec(spec: Obj) -> None:
    """Pod-spec defaults that also land in a StatefulSet template (and so in revision hashes)."""
    defaults.pod_spec(spec)


def default_pod(pod: Obj) -> Obj:
    """Defaults the API server adds to a pod at create time (beyond the template's)."""
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    defaults.default_object("pods", pod, max_unavailable_gate=False)
    spec = pod["spec"]
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    status = pod.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))
    return pod


def qos_class(spec: Obj) -> str:
    containers = spec.get("containers") or []
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    if all(
        lim.get("cpu") and lim.get("memory") and (not req or req == lim)
        for req, lim in zip(requests, limits, strict=False)
    ):
        return "Guaranteed"
    return "Burstable"


# -- quantities ------------------------------------------------------------------------------------
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def quantity(text: str | int | float | None) -> float:
    """A resource.Quantity string ("500m", "1Gi", "2") as a float in base units."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, int | float):
        return float(text)
    match = re.match(r"^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)([a-zA-Z]*)$", str(text).strip())
    if not match or match[2] not in _SUFFIX:
        raise ValueError(f"bad quantity {text!r}")
    return float(match[1]) * _SUFFIX[match[2]]
