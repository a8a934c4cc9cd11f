"""Bearer-token authentication and a tiny RBAC for the simulated API server.

Three users: `admin` may do everything (including the `/_sim/` control surface); `readonly` may
get/list/watch; `repair` may get/list/watch everything plus exactly what the stsfix repair needs
(patch statefulsets, delete and evict pods, create/update/patch/get leases, create events). A
server may add roles of its own (`ApiServer.add_user`): reads plus the grants given.
Refusals use the real message shapes: 401 `Unauthorized`, and 403
`statefulsets.apps "web" is forbidden: User "repair" cannot delete resource "statefulsets" in API
group "apps" in the namespace "default"`. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from stsfix.sim.store.resources import REVIEWS
from stsfix.sim.store.store import SimApiError

Obj = dict[str, Any]

DEFAULT_TOKENS: Final[dict[str, tuple[str, str]]] = {
    "admin-token": ("admin", "admin"),
    "readonly-token": ("readonly", "readonly"),
    "repair-token": ("repair", "repair"),
}
READ_VERBS: Final = frozenset({"get", "list", "watch"})
# role -> {(resource or resource/subresource, verb)}
ROLE_GRANTS: Final[dict[str, frozenset[tuple[str, str]]]] = {
    "repair": frozenset(
        {
            ("statefulsets", "patch"),
            ("pods", "delete"),
            ("pods/eviction", "create"),
            ("leases", "create"),
            ("leases", "update"),
            ("leases", "patch"),
            ("leases", "get"),
            ("events", "create"),
            ("events", "patch"),
        }
    ),
}


def unauthorized() -> SimApiError:
    return SimApiError(401, "Unauthorized", "Unauthorized")


def authenticate(header: str | None, tokens: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(user, role) for an `Authorization: Bearer <token>` header; 401 when missing or unknown.

    The scheme is case-insensitive, as on a real API server (the official client's in-cluster
    loader sends `bearer <token>`).
    """
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    found = tokens.get(token.strip())
    if found is None:
        raise unauthorized()
    return found


Grants = Mapping[str, frozenset[tuple[str, str]]]


def is_allowed(role: str, verb: str, resource: str, grants: Grants = ROLE_GRANTS) -> bool:
    """May this role do `verb` on `resource` (plural, or plural/subresource)?"""
    if role == "admin" or (verb == "create" and resource in REVIEWS):
        return True
    if verb in READ_VERBS and (role == "readonly" or role in grants):
        return True
    return (resource, verb) in grants.get(role, frozenset())


def forbidden(
    user: str, verb: str, resource: str, group: str, namespace: str | None, name: str | None
) -> SimApiError:
    """403 Forbidden worded as the RBAC authorizer does."""
    plural = resource.split("/", 1)[0]
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    details = {"name": name or "", "group": group, "kind": plural}
    return SimApiError(403, "Forbidden", message, details=details)


def authorize(
    user: str, role: str, verb: str, resource: str, group: str, namespace: str | None, name: str | None,
    grants: Grants = ROLE_GRANTS,
) -> None:
    """Raise 403 unless the role allows the request."""
    if not is_allowed(role, verb, resource, grants):
        raise forbidden(user, verb, resource, group, namespace, name)


def access_review(role: str, body: Obj, grants: Grants = ROLE_GRANTS) -> Obj:
    """Answer a SelfSubjectAccessReview (`kubectl auth can-i VERB RESOURCE`) for this role."""
    attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
    resource = attrs.get("resource", "")
    if attrs.get("subresource"):
        resource = f"{resource}/{attrs['subresource']}"
    allowed = bool(resource) and (role == "admin" or is_allowed(role, attrs.get("verb", ""), resource, grants))
    if (body.get("spec") or {}).get("nonResourceAttributes"):
        allowed = role == "admin" or (body["spec"]["nonResourceAttributes"].get("verb") == "get")
    status: Obj = {"allowed": allowed}
    if allowed:
        status["reason"] = f'RBAC: allowed by ClusterRoleBinding "sim-{role}" of ClusterRole "sim-{role}"'
    return {**body, "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "status": status}  # fmt: skip


def rules_review(role: str, body: Obj, grants: Grants = ROLE_GRANTS) -> Obj:
    """Answer a SelfSubjectRulesReview (`kubectl auth can-i --list`) for this role."""
    if role == "admin":
        rules: list[Obj] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    else:
        rules = [{"verbs": sorted(READ_VERBS), "apiGroups": ["*"], "resources": ["*"]}]
        for resource, verb in sorted(grants.get(role, frozenset())):
            rules.append({"verbs": [verb], "apiGroups": ["*"], "resources": [resource]})
    rules.append({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": sorted(REVIEWS)})
    return {**body, "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"resourceRules": rules, "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["*"]}],
                       "incomplete": False}}  # fmt: skip


def self_review(user: str, role: str) -> Obj:
    """Answer a SelfSubjectReview (`kubectl auth whoami`): who the caller is authenticated as."""
    groups = ["system:masters", "system:authenticated"] if role == "admin" else ["system:authenticated"]
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": {"username": user, "groups": groups}}}  # fmt: skip
