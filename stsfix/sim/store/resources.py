"""The resource table: each served resource's group, version, kind, scope, names and subresources.

`RESOURCES` is the one place that knows them; the store, the API verbs and the discovery documents
(`stsfix.sim.apiserver.discovery`) are all derived from it. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

ALL_VERBS: Final = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    """One API resource (plural name), as discovery describes it."""

    plural: str
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    list_kind: str = field(default="")

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`statefulsets.apps` or `pods`: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


RESOURCES: Final[dict[str, Resource]] = {
    r.plural: r
    for r in (
        Resource("namespaces", "namespace", "Namespace", "", "v1", namespaced=False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"), subresources=("status",)),
        Resource("nodes", "node", "Node", "", "v1", namespaced=False, short_names=("no",), subresources=("status",)),
        Resource("pods", "pod", "Pod", "", "v1", short_names=("po",), categories=("all",),
                 subresources=("status", "eviction", "log")),
        Resource("persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", "", "v1",
                 short_names=("pvc",), subresources=("status",)),
        Resource("events", "event", "Event", "", "v1", short_names=("ev",)),
        # Stored and listed only (no endpoints, no proxying): `kubectl cluster-info` lists them, and
        # scenario manifests carry the StatefulSet's governing Service.
        Resource("services", "service", "Service", "", "v1", short_names=("svc",), categories=("all",),
                 subresources=("status",)),
        Resource("statefulsets", "statefulset", "StatefulSet", "apps", "v1", short_names=("sts",),
                 categories=("all",), subresources=("status", "scale")),
        Resource("controllerrevisions", "controllerrevision", "ControllerRevision", "apps", "v1"),
        Resource("poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", "policy", "v1",
                 short_names=("pdb",), subresources=("status",)),
        Resource("leases", "lease", "Lease", "coordination.k8s.io", "v1"),
        Resource("selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview",
                 "authorization.k8s.io", "v1", namespaced=False, verbs=("create",)),
        Resource("selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview",
                 "authorization.k8s.io", "v1", namespaced=False, verbs=("create",)),
        Resource("selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", "authentication.k8s.io", "v1",
                 namespaced=False, verbs=("create",)),
        # Served so that autoscaling/v1 (home of the Scale subresource kind) is not an empty group,
        # which kubectl reports as "received empty response for: autoscaling/v1".
        Resource("horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", "autoscaling",
                 "v1", short_names=("hpa",), categories=("all",), subresources=("status",)),
    )
}  # fmt: skip

# Answered from the caller's role, never stored (what `kubectl auth can-i` and `auth whoami` post).
REVIEWS: Final = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"})


def resource_for(group_version: str, plural: str) -> Resource | None:
    """The resource served at `<group_version>/<plural>`, or None."""
    res = RESOURCES.get(plural)
    return res if res is not None and res.group_version == group_version else None
