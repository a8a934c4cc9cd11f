"""Kubernetes version switches for the simulated controllers (statefulset-semantics.md §13).

One frozen `KubeVersion` answers every "does this release do X?" question, so the controllers never
compare version tuples themselves. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

#: Feature gates the simulator models, as kube-apiserver and kube-controller-manager name them in
#: `--feature-gates=NAME=true|false`.
FEATURE_GATES = ("MaxUnavailableStatefulSet",)


@dataclass(frozen=True, slots=True)
class KubeVersion:
    """A parsed `major.minor.patch` release with the behaviour switches that depend on it."""

    major: int
    minor: int
    patch: int
    #: gates set by hand (`--feature-gates`), as sorted (name, enabled) pairs; the rest keep the
    #: release's default
    gates: tuple[tuple[str, bool], ...] = ()

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        """Parse "1.34.0", "v1.35.2" or "1.36" (patch 0)."""
        match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
        if not match:
            raise ValueError(f"not a Kubernetes version: {text!r}")
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def with_gates(self, gates: Mapping[str, bool]) -> KubeVersion:
        """This release with feature gates set by hand; an unknown gate is a ValueError, as
        kube-apiserver refuses it ("unrecognized feature gate")."""
        unknown = sorted(set(gates) - set(FEATURE_GATES))
        if unknown:
            raise ValueError(f"unrecognized feature gate: {unknown[0]} (the simulator models {', '.join(FEATURE_GATES)})")
        return replace(self, gates=tuple(sorted({**dict(self.gates), **gates}.items())))

    def _gate(self, name: str, default: bool) -> bool:
        return dict(self.gates).get(name, default)

    @property
    def tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def git_version(self) -> str:
        return f"v{self}"

    # -- revisions -------------------------------------------------------------------------------
    @property
    def revision_has_creation_timestamp(self) -> bool:
        """≤1.33 encodes `"creationTimestamp":null` into revision data (§2.1)."""
        return self.tuple < (1, 34, 0)

    @property
    def semantic_revision_comparison(self) -> bool:
        """v1.34.2+ and 1.35+ fall back to a semantic template comparison (§2.6)."""
        return self.tuple >= (1, 34, 2)

    # -- pods ------------------------------------------------------------------------------------
    @property
    def recreates_failed_pod_in_same_sync(self) -> bool:
        """≤1.30: delete + recreate in one sync with Recreating* events (§5.4 rule 1)."""
        return self.tuple < (1, 31, 0)

    @property
    def replaces_succeeded_pods(self) -> bool:
        return self.tuple >= (1, 29, 0)

    @property
    def pod_index_label(self) -> bool:
        return self.tuple >= (1, 28, 0)

    @property
    def start_ordinal(self) -> bool:
        return self.tuple >= (1, 27, 0)

    @property
    def pvc_retention(self) -> bool:
        return self.tuple >= (1, 27, 0)

    @property
    def recreates_claims_for_pending_pods(self) -> bool:
        """v1.27+ (kubernetes/kubernetes#113270, CHANGELOG-1.27 "PVCs will automatically be recreated
        if they are missing for a pending Pod"): processReplica creates the missing claims of every
        Pending pod it reaches (v1.34.4 pkg/controller/statefulset/stateful_set_control.go,
        `isPending` -> `createMissingPersistentVolumeClaims`). Before, claims were created only with
        a new pod, so a claim deleted under a Pending pod stayed missing until the pod was deleted."""
        return self.tuple >= (1, 27, 0)

    # -- availability / updates ------------------------------------------------------------------
    @property
    def availability_inclusive(self) -> bool:
        """IsPodAvailable uses `<=` since v1.34 (#132122), strict `<` before."""
        return self.tuple >= (1, 34, 0)

    @property
    def updates_wait_for_available(self) -> bool:
        """Stage D and the maxUnavailable count use "available" since v1.34 (#130909)."""
        return self.tuple >= (1, 34, 0)

    @property
    def max_unavailable_gate(self) -> bool:
        """MaxUnavailableStatefulSet: on by default in 1.35.0-1.35.3 and ≥1.37, else off; a gate
        set by hand wins (v1.34 with the gate on runs the §5.8 path, stuck state included)."""
        default = (1, 35, 0) <= self.tuple <= (1, 35, 3) or self.tuple >= (1, 37, 0)
        return self._gate("MaxUnavailableStatefulSet", default)

    @property
    def parallel_two_phase_update(self) -> bool:
        """1.37 (#137666): Parallel deletes broken old-revision pods outside the budget."""
        return self.tuple >= (1, 37, 0)

    @property
    def ondelete_promotes_current(self) -> bool:
        """1.37 (#136833): completion no longer requires RollingUpdate."""
        return self.tuple >= (1, 37, 0)

    @property
    def completion_uses_spec_replicas(self) -> bool:
        return self.tuple >= (1, 29, 0)
