"""Subresources that are not plain object writes: `scale`, `eviction` and `log`.

`/status` is an ordinary update with `subresource="status"` (see `Api.update`). Scale speaks
`autoscaling/v1 Scale`; eviction speaks `policy/v1 Eviction` and honours PodDisruptionBudgets
computed live by `stsfix.sim.apiserver.disruption` (Ready and not terminating count as healthy), answering
429 TooManyRequests when no disruption is allowed; log serves text from the server's `pod_logs`.
Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from stsfix.sim.apiserver.api import Api, bad_request
from stsfix.sim.apiserver.disruption import budget, is_ready
from stsfix.sim.apiserver.patching import apply_patch
from stsfix.sim.apiserver.selectors import selector_matches, selector_string
from stsfix.sim.store.store import SimApiError, clone, conflict

Obj = dict[str, Any]


# -- scale --------------------------------------------------------------------------------------
def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a StatefulSet."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },  # fmt: skip
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string((obj.get("spec") or {}).get("selector")),
        },
    }


def get_scale(api: Api, plural: str, namespace: str, name: str) -> Obj:
    res = api.resource(plural)
    return scale_of(api._lookup(res, namespace, name))


def write_scale(
    api: Api,
    plural: str,
    namespace: str,
    name: str,
    body: Any,
    *,
    content_type: str | None,
    dry_run: bool,
    manager: str,
) -> Obj:
    """PUT (content_type None) or PATCH the Scale; only spec.replicas is taken from it."""
    res = api.resource(plural)
    with api.store.lock:
        obj = api._lookup(res, namespace, name)
        current = scale_of(obj)
        scale = apply_patch(content_type, current, body) if content_type else body
        if not isinstance(scale, dict):
            raise bad_request("the object provided is unrecognized (must be a Scale)")
        want_rv = str((scale.get("metadata") or {}).get("resourceVersion") or "")
        if want_rv and want_rv != obj["metadata"]["resourceVersion"]:
            raise conflict(plural, name, res.group)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise SimApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid '
                              f"value: {replicas}: must be greater than or equal to 0",
                              details={"name": name, "group": "autoscaling", "kind": "Scale", "causes": [
                                  {"reason": "FieldValueInvalid", "field": "spec.replicas",
                                   "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}]})  # fmt: skip
        new = clone(obj)
        new["spec"]["replicas"] = replicas
        written = api._write(res, obj, new, subresource="scale", dry_run=dry_run, manager=manager,
                             operation="Update")  # fmt: skip
        return scale_of(written)


# -- eviction -----------------------------------------------------------------------------------
def _too_many(pdb_name: str, desired: int, healthy: int) -> SimApiError:
    return SimApiError(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb_name} needs "
                    f"{desired} healthy pods and has {healthy} currently",
                }
            ]
        },  # fmt: skip
    )


def evict(api: Api, namespace: str, name: str, body: Any, *, dry_run: bool) -> Obj:
    """POST pods/{name}/eviction: delete the pod gracefully unless a PDB forbids it (429)."""
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise bad_request("the object provided is unrecognized (must be an Eviction)")
    if (body.get("metadata") or {}).get("name", name) != name:
        raise bad_request(f"name in URL does not match name in Eviction object: {name}")
    options = dict(body.get("deleteOptions") or {})
    dry_run = dry_run or "All" in (options.get("dryRun") or [])
    res = api.resource("pods")
    with api.store.lock:
        pod = api._lookup(res, namespace, name)
        phase = (pod.get("status") or {}).get("phase")
        ignore_pdb = pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending")
        if not ignore_pdb:
            pdbs = [p for p in api.store.list("poddisruptionbudgets", namespace)[0]
                    if selector_matches((p.get("spec") or {}).get("selector"),
                                        pod["metadata"].get("labels") or {})]  # fmt: skip
            if len(pdbs) > 1:
                raise SimApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                                  "eviction subresource does not support.")  # fmt: skip
            if pdbs:
                found = budget(api.store, pdbs[0])
                policy = (pdbs[0].get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
                if is_ready(pod):
                    allowed = found.allowed > 0
                else:  # an unready pod may go while the budget is met (or always, by policy), else as a disruption
                    allowed = policy == "AlwaysAllow" or found.healthy >= found.desired > 0 or found.allowed > 0
                if not allowed:
                    raise _too_many(pdbs[0]["metadata"]["name"], found.desired, found.healthy)
        api.delete("pods", namespace, name, options, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# -- log ----------------------------------------------------------------------------------------
def follow_log(
    api: Api,
    logs: dict[tuple[str, str, str], str],
    namespace: str,
    name: str,
    query: dict[str, str],
    first: str,
    *,
    stopped: Callable[[], bool],
    poll: float = 0.05,
) -> Iterator[bytes]:
    """GET pods/{name}/log?follow=true: the text so far, then what the kubelet appends, until the
    pod is gone or has finished (phase Succeeded/Failed)."""
    container = query.get("container") or next(
        c.get("name", "")
        for c in (api.store.get("pods", namespace, name) or {}).get("spec", {}).get("containers", [{}])
    )
    sent = len(logs.get((namespace, name, container), ""))
    if first:
        yield first.encode()
    while not stopped():
        pod = api.store.get("pods", namespace, name)
        text = logs.get((namespace, name, container), "")
        if len(text) > sent:
            yield text[sent:].encode()
            sent = len(text)
        if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        time.sleep(poll)


def pod_log(
    api: Api, logs: dict[tuple[str, str, str], str], namespace: str, name: str, query: dict[str, str]
) -> str:
    """GET pods/{name}/log: the container's text; 400 when the container is ambiguous or unknown."""
    pod = api._lookup(api.resource("pods"), namespace, name)
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    container = query.get("container", "")
    if not container:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                              f"[{' '.join(names)}]")  # fmt: skip
        container = names[0]
    init_names = [c.get("name", "") for c in (pod.get("spec") or {}).get("initContainers") or []]
    if container not in names and container not in init_names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    if query.get("previous") == "true":
        # Convention with the kubelet: the previous instance's log sits under "<container>/previous".
        previous = logs.get((namespace, name, f"{container}/previous"))
        if previous is None:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        text = previous
    else:
        text = logs.get((namespace, name, container), "")
    tail = query.get("tailLines")
    if tail and tail.lstrip("-").isdigit():
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-int(tail) :]) if int(tail) > 0 else ""
    return text
