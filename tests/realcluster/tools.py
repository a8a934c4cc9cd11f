"""What the realcluster tests share: namespaces, stsfix and kubectl against the real control plane,
and the apiserver's audit log read as "who wrote what, and did it take effect".

The audit policy (tests/controlplane/audit-policy.yaml) records every write at Metadata level, so a
test can count exactly which pods, claims and sets a repair changed; reads are not recorded.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import CliRun, run_cli
from tests.controlplane.cluster import REPO, ControlPlane

#: The users of the kubeconfig's contexts, as the apiserver names them in the audit log.
REPAIR = "system:serviceaccount:stsfix:stsfix-repair"
READONLY = "system:serviceaccount:stsfix:stsfix-readonly"
CONTEXT_USERS = {"repair": REPAIR, "readonly": READONLY}


def new_namespace(plane: ControlPlane) -> str:
    """A fresh namespace with the RoleBinding deploy/rbac-repair.yaml asks for in each namespace."""
    name = f"rc-{uuid.uuid4().hex[:8]}"
    plane.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    # deploy/rbac-repair.yaml grants its writes in one namespace; "add one RoleBinding per namespace"
    plane.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "stsfix-repair-write", "namespace": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "stsfix-repair-write"},
            "subjects": [{"kind": "ServiceAccount", "name": "stsfix-repair", "namespace": "stsfix"}],
        },
    )
    return name


def drop_namespace(plane: ControlPlane, name: str) -> None:
    plane.request("DELETE", f"/api/v1/namespaces/{name}", {"propagationPolicy": "Background"})


def stsfix(kubeconfig: str, namespace: str, *args: str, context: str = "repair") -> CliRun:
    """`stsfix ARGS -n NAMESPACE` in-process, as the kubeconfig's `context` user."""
    return run_cli(*args, "-n", namespace, "--kubeconfig", kubeconfig, "--context", context)


def kubectl(plane: ControlPlane, *args: str, context: str = "admin", check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real kubectl v1.34.4 built with the control plane."""
    argv = [str(plane.bin_dir / "kubectl"), "--kubeconfig", str(plane.kubeconfig), "--context", context, *args]
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)


def writes(plane: ControlPlane, namespace: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
    """Audited writes (ResponseComplete), oldest first, from the `since`-th event on; in `namespace`
    only when given."""
    out = []
    for e in plane.audit_events()[since:]:
        ref = e.get("objectRef") or {}
        if e.get("stage") != "ResponseComplete":
            continue
        if namespace is not None and ref.get("namespace") != namespace:
            continue
        out.append(e)
    return out


def code_of(event: dict[str, Any]) -> int:
    return int((event.get("responseStatus") or {}).get("code", 0))


def resource_of(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    return ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")


def carried_out(events: list[dict[str, Any]], *, user: str, verb: str, resource: str) -> list[str]:
    """Names of the objects `user` wrote with `verb` and the API server carried out (2xx), in order.
    A request that failed changed nothing: a DELETE repeated after its answer was lost (same uid
    precondition) answers 404 or 409 and is not counted; a server dry run persists nothing."""
    return [
        (e.get("objectRef") or {}).get("name", "")
        for e in events
        if e["user"]["username"] == user and e.get("verb") == verb and resource_of(e) == resource
        and 200 <= code_of(e) < 300 and "dryRun=All" not in e.get("requestURI", "")
    ]  # fmt: skip


def denied(events: list[dict[str, Any]], *, user: str) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of every write `user` was refused with 403."""
    return [
        (e.get("verb", ""), resource_of(e), (e.get("objectRef") or {}).get("name", ""))
        for e in events
        if e["user"]["username"] == user and code_of(e) == 403
    ]


# -- RBAC: the roles of deploy/rbac-repair.yaml, and identities with one permission less -------------
REPAIR_MANIFEST = REPO / "deploy" / "rbac-repair.yaml"
READONLY_MANIFEST = REPO / "deploy" / "rbac-readonly.yaml"


def manifest_grants(path: Path) -> dict[str, set[tuple[str, str, str]]]:
    """ClusterRole name -> the (apiGroup, resource, verb) triples its rules grant."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] == "ClusterRole":
            out[doc["metadata"]["name"]] = {
                (g, r, v) for rule in doc["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                for v in rule["verbs"]
            }  # fmt: skip
    return out


def _rules(triples: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    by_resource: dict[tuple[str, str], list[str]] = {}
    for group, resource, verb in sorted(triples):
        by_resource.setdefault((group, resource), []).append(verb)
    return [{"apiGroups": [g], "resources": [r], "verbs": v} for (g, r), v in by_resource.items()]


@dataclass
class Identity:
    """A ServiceAccount bound as deploy/rbac-repair.yaml binds stsfix-repair (reads cluster-wide, writes
    in the given namespaces), with `dropped` taken out of the role that grants it."""

    user: str
    kubeconfig: str
    dropped: tuple[str, str, str] | None
    cluster_paths: list[str] = field(default_factory=list)

    def delete(self, plane: ControlPlane) -> None:
        for path in self.cluster_paths:
            plane.request("DELETE", path)


def access_review(plane: ControlPlane, user: str, group: str, resource: str, verb: str, namespace: str) -> bool:
    """SubjectAccessReview: may `user` (a ServiceAccount) do it, by the apiserver's own authorizer?"""
    resource, _, subresource = resource.partition("/")
    sa_namespace = user.split(":")[2]
    body = {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource,
                                   "subresource": subresource},
        },
    }  # fmt: skip
    return bool(plane.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)["status"].get("allowed"))


def identity_without(
    plane: ControlPlane, home: str, write_namespaces: list[str], dropped: tuple[str, str, str] | None, tmp: Path
) -> Identity:
    """A fresh ServiceAccount in `home` with copies of the repair ClusterRoles, minus `dropped`
    (apiGroup, resource, verb), bound as the manifest binds them; waits until the apiserver's
    authorizer says exactly that (SubjectAccessReview)."""
    sa = f"rc-{uuid.uuid4().hex[:6]}"
    user = f"system:serviceaccount:{home}:{sa}"
    plane.apply([{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": home}}])
    grants = manifest_grants(REPAIR_MANIFEST)
    ident = Identity(user, "", dropped)
    subject = [{"kind": "ServiceAccount", "name": sa, "namespace": home}]
    objects: list[dict[str, Any]] = []
    for role, triples in grants.items():
        name = f"{sa}-{role}"
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": name}, "rules": _rules(triples - {dropped} if dropped else triples)})  # fmt: skip
        ident.cluster_paths.append(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
        if role.endswith("-read"):  # as shipped: a ClusterRoleBinding for the reads
            objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                            "metadata": {"name": name}, "roleRef": ref, "subjects": subject})  # fmt: skip
            ident.cluster_paths.append(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
        else:  # and one RoleBinding per namespace for the writes
            objects += [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": name, "namespace": ns}, "roleRef": ref, "subjects": subject}
                        for ns in write_namespaces]  # fmt: skip
    plane.apply(objects)
    wanted = {t for triples in grants.values() for t in triples}
    deadline = time.monotonic() + 30
    while True:  # the authorizer's informers catch up within a second or two
        granted = {t for t in wanted if access_review(plane, user, *t, write_namespaces[0])}
        expected = wanted - {dropped} if dropped else wanted
        if granted == expected:
            break
        assert time.monotonic() < deadline, ("RBAC never settled", sorted(expected ^ granted))
        time.sleep(0.3)
    doc = yaml.safe_load(plane.kubeconfig.read_text())
    doc["users"] = [{"name": sa, "user": {"token": plane.service_account_token(home, sa)}}]
    doc["contexts"] = [{"name": sa, "context": {"cluster": doc["clusters"][0]["name"], "user": sa}}]
    doc["current-context"] = sa
    path = tmp / f"kubeconfig-{sa}"
    path.write_text(yaml.safe_dump(doc))
    ident.kubeconfig = str(path)
    return ident
