"""What the simulated API server serves about itself: discovery documents and an OpenAPI stub.

The discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) and the
synthetic `/openapi/v3` document that makes `kubectl apply` believe the server validates fields
are all derived from the resource table (`stsfix.sim.store.resources`). Standard library only.
"""

from __future__ import annotations

from typing import Any, Final

from stsfix.sim.store.resources import RESOURCES, Resource

Obj = dict[str, Any]

GROUP_VERSIONS: Final = (
    "v1", "apps/v1", "policy/v1", "autoscaling/v1", "coordination.k8s.io/v1", "authorization.k8s.io/v1",
    "authentication.k8s.io/v1",
)  # fmt: skip

# Subresource discovery entries: (kind, group, version, verbs) of what the subresource speaks.
_SUBRESOURCE_SHAPES: Final[dict[str, tuple[str, str, str, tuple[str, ...]]]] = {
    "status": ("", "", "", ("get", "patch", "update")),
    "scale": ("Scale", "autoscaling", "v1", ("get", "patch", "update")),
    "eviction": ("Eviction", "policy", "v1", ("create",)),
    "log": ("Pod", "", "v1", ("get",)),
}


def _api_resource(res: Resource) -> list[Obj]:
    entries: list[Obj] = [
        {
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": list(res.verbs),
            **({"shortNames": list(res.short_names)} if res.short_names else {}),
            **({"categories": list(res.categories)} if res.categories else {}),
            "storageVersionHash": f"sim-{res.plural}",
        }
    ]
    for sub in res.subresources:
        kind, group, version, verbs = _SUBRESOURCE_SHAPES[sub]
        entry: Obj = {
            "name": f"{res.plural}/{sub}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": kind or res.kind,
            "verbs": list(verbs),
        }
        if group:
            entry["group"] = group
            entry["version"] = version
        entries.append(entry)
    return entries


def api_resource_list(group_version: str) -> Obj | None:
    """The APIResourceList served at /api/v1 or /apis/<group>/<version>; None if not served."""
    if group_version not in GROUP_VERSIONS:
        return None
    resources: list[Obj] = []
    for res in RESOURCES.values():
        if res.group_version == group_version:
            resources.extend(_api_resource(res))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def api_versions(server_address: str) -> Obj:
    """GET /api: the legacy core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str) -> Obj:
    versions = [gv.split("/")[1] for gv in GROUP_VERSIONS if gv.startswith(name + "/")]
    preferred = {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]}
    return {
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
        "preferredVersion": preferred,
    }


def api_group_list() -> Obj:
    """GET /apis: every named group, as a legacy APIGroupList."""
    names = sorted({gv.split("/")[0] for gv in GROUP_VERSIONS if "/" in gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(n) for n in names]}


def api_group(name: str) -> Obj | None:
    """GET /apis/<group>: one APIGroup, or None."""
    if not any(gv.startswith(name + "/") for gv in GROUP_VERSIONS):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def version_info(version: str) -> Obj:
    """GET /version for a simulated `major.minor.patch`."""
    major, minor, *_ = version.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _openapi_key(group_version: str) -> str:
    return f"api/{group_version}" if "/" not in group_version else f"apis/{group_version}"


def openapi_root() -> Obj:
    """GET /openapi/v3: one entry per group/version."""
    return {
        "paths": {
            _openapi_key(gv): {"serverRelativeURL": f"/openapi/v3/{_openapi_key(gv)}?hash=sim{i}"}
            for i, gv in enumerate(GROUP_VERSIONS)
        }
    }


def openapi_group_version(key: str, version: str) -> Obj | None:
    """GET /openapi/v3/<api/v1|apis/g/v>: a stub with one patch path per kind.

    It carries no schemas: kubectl only needs to see that the server supports field validation
    (the `fieldValidation` parameter) and then leaves validation to the server.
    """
    group_version = key.removeprefix("apis/").removeprefix("api/")
    if group_version not in GROUP_VERSIONS:
        return None
    paths: Obj = {}
    for res in RESOURCES.values():
        if res.group_version != group_version:
            continue
        ns = "/namespaces/{namespace}" if res.namespaced else ""
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        op = {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "patch",
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{res.base_path}{ns}/{res.plural}/{{name}}"] = {"patch": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{version}"},
        "components": {"schemas": {}},
        "paths": paths,
    }
