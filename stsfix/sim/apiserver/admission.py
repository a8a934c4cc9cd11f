"""The API server's admission work: defaulting, validation, generation and status/spec separation.

Defaults are the real server's (`stsfix.sim.store.defaults`, statefulset-semantics.md §1): a
StatefulSet without `updateStrategy.type` gets RollingUpdate with a `rollingUpdate` whose
partition is 0, but an explicit `type: RollingUpdate` without `rollingUpdate` keeps it nil;
`maxUnavailable` is defaulted to 1 only where the MaxUnavailableStatefulSet gate is on (by default
1.35.0-1.35.3 and 1.37+; any version with the gate set by hand, as `--feature-gates`). Validation answers 422 Invalid
with the real message shapes. `metadata.generation` goes up on spec changes only. Standard
library only; never imports stsfix.analysis or stsfix.planner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from stsfix.sim.apiserver.selectors import selector_matches
from stsfix.sim.apiserver.validation import (
    NONNEGATIVE,
    Cause,
    Raw,
    bad,
    dns_label,
    govalue,
    labels,
    nonnegative,
    not_supported,
    quantity_errors,
)
from stsfix.sim.apiserver.validation import pod_spec as validate_pod_spec
from stsfix.sim.store.defaults import default_object
from stsfix.sim.store.resources import Resource
from stsfix.sim.store.store import SimApiError, clone

Obj = dict[str, Any]

STATUS_RESOURCES: Final = frozenset(
    {"pods", "statefulsets", "persistentvolumeclaims", "poddisruptionbudgets", "nodes", "namespaces", "services"}
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
    "Not found": "FieldValueNotFound",
}


def max_unavailable_gate(version: str, gates: Mapping[str, bool] | None = None) -> bool:
    """Is MaxUnavailableStatefulSet on in this simulated server: the gate set by hand, else the
    version's default?"""
    if gates and "MaxUnavailableStatefulSet" in gates:
        return bool(gates["MaxUnavailableStatefulSet"])
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
            **({"group": group} if group else {}),  # omitempty: a core kind has no group
            "kind": kind,
            "causes": [{"reason": _CAUSE_REASONS.get(t, "FieldValueInvalid"), "message": f"{t}: {d}" if d else t, "field": f}
                       for f, t, d in causes],
        },
    )  # fmt: skip


# -- defaulting ---------------------------------------------------------------------------------
_DECODED: Final = {"statefulsets": "StatefulSet", "pods": "Pod", "persistentvolumeclaims": "PersistentVolumeClaim"}


def apply_defaults(resource: str, obj: Obj, *, version: str, gates: Mapping[str, bool] | None = None) -> None:
    """Decode and default a create/update body in place (store/defaults.py): 400 BadRequest for a
    malformed quantity, as the decoder answers before any validation."""
    kind = _DECODED.get(resource)
    error = quantity_errors(obj.get("spec") or {}) if kind else None
    if error:
        raise SimApiError(400, "BadRequest", f'{kind} in version "v1" cannot be handled as a {kind}: {error}')
    default_object(resource, obj, max_unavailable_gate=max_unavailable_gate(version, gates))


def drop_disabled_fields(
    resource: str, obj: Obj, old: Obj | None, *, version: str, gates: Mapping[str, bool] | None = None
) -> None:
    """PrepareForCreate/Update: without the MaxUnavailableStatefulSet gate `maxUnavailable` is dropped,
    unless the stored object already uses it (dropStatefulSetDisabledFields); without the
    PDBUnhealthyPodEvictionPolicy gate (alpha, off by default, in 1.26; on from 1.27) a PDB's
    `unhealthyPodEvictionPolicy` likewise (pkg/api/poddisruptionbudget/util.go DropDisabledFields)."""
    if resource == "poddisruptionbudgets":
        if _before(version, (1, 27)) and not ((old or {}).get("spec") or {}).get("unhealthyPodEvictionPolicy"):
            (obj.get("spec") or {}).pop("unhealthyPodEvictionPolicy", None)
        return
    if resource != "statefulsets" or max_unavailable_gate(version, gates):
        return

    def rolling(o: Obj | None) -> Obj | None:
        found = (((o or {}).get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")
        return found if isinstance(found, dict) else None

    if (rolling(old) or {}).get("maxUnavailable") is None and (new := rolling(obj)) is not None:
        new.pop("maxUnavailable", None)


def _before(version: str, minor: tuple[int, int]) -> bool:
    parts = version.lstrip("v").split(".")
    return (int(parts[0]), int(parts[1])) < minor


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
        "services": {"loadBalancer": {}},
    }
    return clone(statuses.get(resource))


# -- validation ---------------------------------------------------------------------------------
def _internal_rolling(rolling: Any) -> str:
    """The internal apps type as field.Error prints it: Go field names, no json tags."""
    if not isinstance(rolling, dict):
        return "null"
    partition = rolling.get("partition", 0)
    return f'{{"Partition":{govalue(partition)},"MaxUnavailable":{govalue(rolling.get("maxUnavailable"))}}}'


def _strategy(spec: Obj) -> list[Cause]:
    strategy = spec.get("updateStrategy") or {}
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    path = "spec.updateStrategy"
    if not kind:
        return [(path, "Required value", "")]
    if kind == "OnDelete":
        if rolling is None:
            return []
        return [bad(f"{path}.rollingUpdate", "Invalid value", Raw(_internal_rolling(rolling)),
                    "only allowed for updateStrategy 'RollingUpdate'")]  # fmt: skip
    if kind != "RollingUpdate":
        shown = Raw(f'{{"Type":{govalue(kind)},"RollingUpdate":{_internal_rolling(rolling)}}}')
        return [bad(path, "Invalid value", shown, "must be 'RollingUpdate' or 'OnDelete'")]
    if not isinstance(rolling, dict):
        return []
    causes = nonnegative(rolling.get("partition", 0), f"{path}.rollingUpdate.partition")
    mu = rolling.get("maxUnavailable")
    if mu is not None:
        number = int(str(mu).rstrip("%")) if str(mu).rstrip("%").lstrip("-").isdigit() else None
        if number is not None and number < 0:
            causes.append(bad(f"{path}.rollingUpdate.maxUnavailable", "Invalid value", mu, NONNEGATIVE))
        if number == 0:
            causes.append(bad(f"{path}.rollingUpdate.maxUnavailable", "Invalid value", mu, "cannot be 0"))
    return causes


def _claim_templates(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        claim_spec = (claim or {}).get("spec") or {}
        path = f"spec.volumeClaimTemplates[{i}].spec"
        if not claim_spec.get("accessModes"):
            causes.append((f"{path}.accessModes", "Required value", "at least 1 access mode is required"))
        if not ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage"):
            causes.append((f"{path}.resources[storage]", "Required value", ""))
    return causes


def _validate_statefulset(obj: Obj) -> list[Cause]:
    """ValidateStatefulSetSpec, in its order."""
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(("spec.podManagementPolicy", "Required value", ""))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(
            bad("spec.podManagementPolicy", "Invalid value", policy, "must be 'OrderedReady' or 'Parallel'")
        )
    causes += _strategy(spec)
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in ("Retain", "Delete"):
                causes.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", retention.get(key),
                                            ("Retain", "Delete")))  # fmt: skip
    causes += _claim_templates(spec)
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        causes.append(bad("spec.replicas", "Invalid value", replicas, NONNEGATIVE))
    causes += nonnegative(replicas, "spec.replicas") + nonnegative(
        spec.get("minReadySeconds", 0), "spec.minReadySeconds"
    )
    if isinstance(spec.get("ordinals"), dict):
        causes += nonnegative(spec["ordinals"].get("start", 0), "spec.ordinals.start")
    if spec.get("serviceName"):
        causes += dns_label(spec["serviceName"], "spec.serviceName")
    causes += _selector_and_template(spec)
    pod = (spec.get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") != "Always":
        causes.append(
            not_supported("spec.template.spec.restartPolicy", pod.get("restartPolicy"), ("Always",))
        )
    if pod.get("activeDeadlineSeconds") is not None:
        causes.append(("spec.template.spec.activeDeadlineSeconds", "Forbidden",
                       "activeDeadlineSeconds in StatefulSet is not Supported"))  # fmt: skip
    return causes


def _selector_and_template(spec: Obj) -> list[Cause]:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return [("spec.selector", "Required value", "")]
    causes = labels(selector.get("matchLabels"), "spec.selector.matchLabels")
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(
            bad("spec.selector", "Invalid value", selector, "empty selector is invalid for statefulset")
        )
    if causes:  # LabelSelectorAsSelector fails too: the template is not validated
        return causes + (
            [bad("spec.selector", "Invalid value", selector)]
            if labels(selector.get("matchLabels"), "")
            else []
        )
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector, template_labels):
        causes.append(bad("spec.template.metadata.labels", "Invalid value", template_labels,
                          "`selector` does not match template `labels`"))  # fmt: skip
    causes += labels(template_labels, "spec.template.metadata.labels")
    claims = tuple(str((c.get("metadata") or {}).get("name")) for c in spec.get("volumeClaimTemplates") or [])
    causes += validate_pod_spec(template.get("spec"), "spec.template.spec", extra_volumes=claims)
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


def _validate_name(name: str, plural: str) -> list[Cause]:
    if plural == "statefulsets":  # ValidateStatefulSetName: a DNS label, not a subdomain
        return dns_label(name, "metadata.name")
    if len(name) <= 253 and _SUBDOMAIN.match(name):
        return []
    return [("metadata.name", "Invalid value", f"{json.dumps(name)}: {_SUBDOMAIN_TEXT}")]


def validate(res: Resource, obj: Obj, old: Obj | None) -> None:
    """Raise 422 Invalid when the (defaulted) object, or its change from `old`, is not allowed."""
    name = obj.get("metadata", {}).get("name", "")
    if old is None and (wrong := _validate_name(str(name), res.plural)):
        raise invalid(res.kind, res.group, name, wrong)
    causes: list[Cause] = []
    if res.plural == "statefulsets":
        causes = _validate_statefulset(obj)
        if old is not None:
            causes.extend(_statefulset_immutable(old, obj))
    elif res.plural == "pods":
        causes = validate_pod_spec(obj.get("spec"), "spec")
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
