"""The API server's admission work: defaulting, validation, generation and status/spec separation.

Defaults are the real server's (`stsfix.sim.store.defaults`, statefulset-semantics.md §1): a
StatefulSet without `updateStrategy.type` gets RollingUpdate with a `rollingUpdate` whose
partition is 0, but an explicit `type: RollingUpdate` without `rollingUpdate` keeps it nil;
`maxUnavailable` is defaulted to 1 only in the versions where the MaxUnavailableStatefulSet gate
is on (1.35.0-1.35.3 and 1.37+). Validation answers 422 Invalid
with the real message shapes. `metadata.generation` goes up on spec changes only. Standard
library only; never imports stsfix.analysis or stsfix.planner.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from stsfix.sim.apiserver.selectors import selector_matches
from stsfix.sim.store.defaults import default_object
from stsfix.sim.store.resources import Resource
from stsfix.sim.store.store import SimApiError, clone

Obj = dict[str, Any]
Cause = tuple[str, str, str]  # (field, type e.g. "Invalid value", detail)

STATUS_RESOURCES: Final = frozenset(
    {"pods", "statefulsets", "persistentvolumeclaims", "poddisruptionbudgets", "nodes", "namespaces"}
)
GENERATION_RESOURCES: Final = frozenset({"statefulsets", "poddisruptionbudgets"})
STS_MUTABLE_SPEC: Final = (
    "replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
)  # fmt: skip
STS_FORBIDDEN: Final = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
_CAUSE_REASONS: Final = {
    "Invalid value": "FieldValueInvalid",
    "Unsupported value": "FieldValueNotSupported",
    "Required value": "FieldValueRequired",
    "Forbidden": "FieldValueForbidden",
    "Duplicate value": "FieldValueDuplicate",
}


def max_unavailable_gate(version: str) -> bool:
    """Is MaxUnavailableStatefulSet on in this simulated server version?"""
    parts = [int(p) for p in version.split(".")[:3] if p.isdigit()] + [0, 0, 0]
    major, minor, patch = parts[:3]
    return (major, minor) == (1, 35) and patch <= 3 or (major, minor) >= (1, 37)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> SimApiError:
    """422 Invalid with details.causes, message as the API server words it."""
    texts = [f"{f}: {t}: {d}" if d else f"{f}: {t}" for f, t, d in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return SimApiError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {summary}',
        details={
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": _CAUSE_REASONS.get(t, "FieldValueInvalid"), "message": f"{t}: {d}" if d else t, "field": f}
                       for f, t, d in causes],
        },
    )  # fmt: skip


# -- defaulting ---------------------------------------------------------------------------------
def apply_defaults(resource: str, obj: Obj, *, version: str) -> None:
    """Default a create/update body in place (what the real server does on decode; store/defaults.py)."""
    default_object(resource, obj, max_unavailable_gate=max_unavailable_gate(version))


def initial_status(resource: str) -> Obj | None:
    """The status a freshly created object starts with (the create body's status is ignored)."""
    statuses: dict[str, Obj] = {
        "pods": {"phase": "Pending", "qosClass": "BestEffort"},
        "statefulsets": {"replicas": 0, "availableReplicas": 0},
        "persistentvolumeclaims": {"phase": "Pending"},
        "poddisruptionbudgets": {
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "disruptionsAllowed": 0,
            "expectedPods": 0,
        },
        "namespaces": {"phase": "Active"},
    }
    return clone(statuses.get(resource))


# -- validation ---------------------------------------------------------------------------------
def _validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(spec, dict):
        return [(path, "Required value", "")]
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required value", ""))
    names: set[str] = set()
    for i, c in enumerate(containers or []):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append((f"{path}.containers[{i}].name", "Required value", ""))
            continue
        if c["name"] in names:
            causes.append((f"{path}.containers[{i}].name", "Duplicate value", json.dumps(c["name"])))
        names.add(c["name"])
        if not c.get("image"):
            causes.append((f"{path}.containers[{i}].image", "Required value", ""))
    return causes


def _validate_statefulset(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            ("spec.replicas", "Invalid value", f"{json.dumps(replicas)}: must be greater than or equal to 0")
        )
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "Invalid value", "empty selector is invalid for statefulset"))
    elif not selector_matches(selector, labels):
        causes.append(("spec.template.metadata.labels", "Invalid value",
                       f"{json.dumps(labels)}: `selector` does not match template `labels`"))  # fmt: skip
    pod_spec = (spec.get("template") or {}).get("spec")
    causes.extend(_validate_pod_spec(pod_spec, "spec.template.spec"))
    restart = (pod_spec or {}).get("restartPolicy")
    if restart != "Always":
        causes.append(("spec.template.spec.restartPolicy", "Unsupported value",
                       f'{json.dumps(restart)}: supported values: "Always"'))  # fmt: skip
    if spec.get("podManagementPolicy") not in ("OrderedReady", "Parallel"):
        causes.append(
            (
                "spec.podManagementPolicy",
                "Unsupported value",
                f'{json.dumps(spec.get("podManagementPolicy"))}: supported values: "OrderedReady", "Parallel"',
            )
        )
    strategy = spec.get("updateStrategy") or {}
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind not in ("RollingUpdate", "OnDelete"):
        causes.append(
            (
                "spec.updateStrategy.type",
                "Unsupported value",
                f'{json.dumps(kind)}: supported values: "OnDelete", "RollingUpdate"',
            )
        )
    if kind == "OnDelete" and rolling is not None:
        causes.append(
            (
                "spec.updateStrategy.rollingUpdate",
                "Invalid value",
                f"{json.dumps(rolling)}: only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    if isinstance(rolling, dict):
        partition = rolling.get("partition", 0)
        if not isinstance(partition, int) or partition < 0:
            causes.append(
                (
                    "spec.updateStrategy.rollingUpdate.partition",
                    "Invalid value",
                    f"{json.dumps(partition)}: must be greater than or equal to 0",
                )
            )
        mu = rolling.get("maxUnavailable")
        if mu in (0, "0%") or (isinstance(mu, int) and mu < 0):
            causes.append(("spec.updateStrategy.rollingUpdate.maxUnavailable", "Invalid value",
                           f"{json.dumps(mu)}: must be greater than 0"))  # fmt: skip
    return causes


def _validate_pdb(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [("spec", "Invalid value", "minAvailable and maxUnavailable cannot be both set")]
    return []


_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_TEXT: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _validate_name(name: str) -> list[Cause]:
    if len(name) <= 253 and _SUBDOMAIN.match(name):
        return []
    return [("metadata.name", "Invalid value", f"{json.dumps(name)}: {_SUBDOMAIN_TEXT}")]


def validate(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Raise 422 Invalid when the (defaulted) object, or its change from `old`, is not allowed."""
    name = obj.get("metadata", {}).get("name", "")
    if old is None and (bad := _validate_name(str(name))):
        raise invalid(res.kind, res.group, name, bad)
    causes: list[Cause] = []
    if res.plural == "statefulsets":
        causes = _validate_statefulset(obj)
        if old is not None:
            causes.extend(_statefulset_immutable(old, obj))
    elif res.plural == "pods":
        causes = _validate_pod_spec(obj.get("spec"), "spec")
        if old is not None:
            causes.extend(_pod_immutable(old, obj))
    elif res.plural == "poddisruptionbudgets":
        causes = _validate_pdb(obj)
    elif res.plural == "controllerrevisions" and not isinstance(obj.get("revision"), int):
        causes = [("revision", "Invalid value", f"{json.dumps(obj.get('revision'))}: must be an integer")]
    if causes:
        raise invalid(res.kind, res.group, name, causes)


def _statefulset_immutable(old: Obj, new: Obj) -> list[Cause]:
    def frozen(obj: Obj) -> Obj:
        return {k: v for k, v in (obj.get("spec") or {}).items() if k not in STS_MUTABLE_SPEC}

    return [] if frozen(old) == frozen(new) else [("spec", "Forbidden", STS_FORBIDDEN)]


def _pod_immutable(old: Obj, new: Obj) -> list[Cause]:
    def frozen(obj: Obj, *, keep_node: bool) -> Obj:
        spec = clone(obj.get("spec") or {})
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                if isinstance(c, dict):
                    c.pop("image", None)
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
            spec.pop(key, None)
        if not keep_node:
            spec.pop("nodeName", None)  # binding sets nodeName once
        return spec

    binding = not (old.get("spec") or {}).get("nodeName")
    if frozen(old, keep_node=not binding) == frozen(new, keep_node=not binding):
        return []
    return [("spec", "Forbidden", "pod updates may not change fields other than `spec.containers[*].image`,"
             "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
             "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
             "previously negative)")]  # fmt: skip


# -- update preparation -------------------------------------------------------------------------
def prepare_update(res: Resource, old: Obj, new: Obj, *, subresource: str = "") -> Obj:
    """Carry over what a write may not change: identity, status on the main resource, everything
    but status on /status, and bump generation when the spec changed. Returns a new dict."""
    new = clone(new)
    meta = new.setdefault("metadata", {})
    old_meta = old["metadata"]
    if subresource == "status":
        status = new.get("status")
        new = clone(old)
        if status is not None:
            new["status"] = status
        new["metadata"]["resourceVersion"] = meta.get("resourceVersion", old_meta.get("resourceVersion"))
        return new
    if res.plural in STATUS_RESOURCES:
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    for key in (
        "uid",
        "creationTimestamp",
        "name",
        "namespace",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta["generation"] = old_meta.get("generation", 1)
    if res.plural in GENERATION_RESOURCES and new.get("spec") != old.get("spec"):
        meta["generation"] = meta["generation"] + 1
    return new
