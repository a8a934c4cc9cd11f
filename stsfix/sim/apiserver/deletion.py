"""What DELETE does to an object, as pure functions: preconditions, grace, finalizers.

`plan_delete` decides, for the object as stored, whether a DELETE removes it at once or marks it
(deletionTimestamp, deletionGracePeriodSeconds, finalizers): pods bound to a node wait out their
grace period for the kubelet, unbound or finished pods and grace 0 go at once; finalizers keep any
object; `propagationPolicy` Foreground/Orphan is recorded as the `foregroundDeletion`/`orphan`
finalizer for the garbage collector. Preconditions answer 409 Conflict with the real messages.
Standard library only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from stsfix.sim.store.resources import Resource
from stsfix.sim.store.store import SimApiError, clone, format_ts

Obj = dict[str, Any]
_POD_REMOVE_NOW_PHASES: Final = ("Failed", "Succeeded")
_POLICY_FINALIZERS: Final = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}


def check_preconditions(res: Resource, obj: Obj, pre: Obj) -> None:
    """409 Conflict unless the DeleteOptions preconditions (uid, resourceVersion) hold."""
    meta = obj["metadata"]
    name = meta["name"]
    uid, rv = pre.get("uid"), pre.get("resourceVersion")
    details = {"name": name, "group": res.group, "kind": res.plural}
    prefix = f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: '
    if uid and uid != meta.get("uid"):
        raise SimApiError(409, "Conflict", f"{prefix}UID in precondition: {uid}, UID in object meta: "
                          f"{meta.get('uid')}", details=details)  # fmt: skip
    if rv and rv != meta.get("resourceVersion"):
        raise SimApiError(409, "Conflict", f"{prefix}ResourceVersion in precondition: {rv}, ResourceVersion in "
                          f"object meta: {meta.get('resourceVersion')}", details=details)  # fmt: skip


def grace_period(res: Resource, obj: Obj, requested: Any) -> int:
    """Grace period: pods default to their spec's; unbound or finished pods (and non-pods) go at once."""
    if res.plural != "pods":
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in _POD_REMOVE_NOW_PHASES:
        return 0
    if requested is None:
        requested = spec.get("terminationGracePeriodSeconds", 30)
    try:
        grace = int(requested)
    except (TypeError, ValueError):
        raise SimApiError(400, "BadRequest", f"invalid gracePeriodSeconds: {requested!r}") from None
    return max(0, grace)


def plan_delete(res: Resource, old: Obj, options: Obj, now: datetime) -> tuple[Obj, bool]:
    """(the object after DELETE, removed at once?) for a stored object and its DeleteOptions."""
    check_preconditions(res, old, options.get("preconditions") or {})
    obj = clone(old)
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is True:
        policy = "Orphan"
    marker = _POLICY_FINALIZERS.get(policy or "")
    if marker and marker not in finalizers and not meta.get("deletionTimestamp"):
        finalizers.append(marker)
    grace = grace_period(res, obj, options.get("gracePeriodSeconds"))
    if grace == 0 and not finalizers:
        return obj, True
    if finalizers:
        meta["finalizers"] = finalizers
    current = meta.get("deletionGracePeriodSeconds")
    if not meta.get("deletionTimestamp") or (current is not None and grace < current):
        meta["deletionTimestamp"] = format_ts(now + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
    return obj, False
