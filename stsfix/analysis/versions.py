"""Kubernetes server versions and the StatefulSet behaviour that depends on them.

The facts come from the semantics reference §0.1 and §13: the MaxUnavailableStatefulSet gate
default, the Parallel two-phase fix (#137666), the availability boundary (#132122) and
"available" instead of "healthy" in the update loop (#130909), and missing claims of Pending pods
recreated since v1.27 (#113270). Pure: stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_VERSION_RE: Final = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True, order=True)
class ServerVersion:
    """A parsed `major.minor.patch` (vendor suffixes such as `-gke.100` or `+k3s1` are dropped)."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str | None) -> ServerVersion | None:
    """Parse "v1.35.0", "1.34.2" or "v1.30.1+k3s1"; None for empty or unparseable text."""
    match = _VERSION_RE.match((text or "").strip())
    if match is None:
        return None
    return ServerVersion(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def max_unavailable_gate_default(version: ServerVersion | None) -> bool | None:
    """Whether MaxUnavailableStatefulSet is on by default: 1.35.0-1.35.3 and 1.37+; None if unknown.

    Alpha (off) up to 1.34, beta on in 1.35.0-1.35.3, off again in 1.35.4+ and 1.36 (#137904),
    on in 1.37 with the Parallel fix (#137666).
    """
    if version is None:
        return None
    if (version.major, version.minor) == (1, 35):
        return version.patch <= 3
    return (version.major, version.minor) >= (1, 37)


def has_parallel_max_unavailable_fix(version: ServerVersion | None) -> bool:
    """True from 1.37, where Parallel deletes broken old-revision pods outside the budget (#137666)."""
    return version is not None and (version.major, version.minor) >= (1, 37)


def is_max_unavailable_regression(version: ServerVersion | None) -> bool:
    """True on 1.35.0-1.35.3: Parallel + maxUnavailable never replaces a broken old pod (#137409)."""
    return version is not None and (version.major, version.minor) == (1, 35) and version.patch <= 3


def availability_is_inclusive(version: ServerVersion | None) -> bool:
    """`IsPodAvailable` uses `<=` since v1.34 and `<` before (#132122); unknown means current (`<=`)."""
    return version is None or (version.major, version.minor) >= (1, 34)


def update_waits_for_available(version: ServerVersion | None) -> bool:
    """Since v1.34 the rolling-update wait uses "available" rather than "healthy" (#130909)."""
    return version is None or (version.major, version.minor) >= (1, 34)


def recreates_missing_claims(version: ServerVersion | None) -> bool:
    """Since v1.27 the controller recreates the missing claims of a Pending pod its sync reaches
    (kubernetes/kubernetes#113270, CHANGELOG-1.27; v1.34.4 stateful_set_control.go `processReplica`:
    `isPending` -> `createMissingPersistentVolumeClaims`). Before, only with a new pod. Unknown
    means current (True)."""
    return version is None or (version.major, version.minor) >= (1, 27)
