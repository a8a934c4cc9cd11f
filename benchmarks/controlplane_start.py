"""Start-to-ready time of the real control plane the realcluster tests use (tests/controlplane).

Starts it RUNS times (default 3) in fresh work directories and prints, per milestone, the median and
range of seconds since start: etcd healthy, kube-apiserver ready (/readyz), and the whole cluster
usable (three kwok nodes Ready, the default service account there, deploy/rbac-*.yaml applied, user
tokens issued). Needs the binaries: bash tests/controlplane/build.sh.

    python benchmarks/controlplane_start.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.controlplane.cluster import DEFAULT_VERSION, binaries, running  # noqa: E402


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if binaries(DEFAULT_VERSION) is None:
        print(f"no binaries for {DEFAULT_VERSION}: run tests/controlplane/build.sh", file=sys.stderr)
        return 2
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        with running(DEFAULT_VERSION) as plane:
            for name, seconds in plane.milestones.items():
                samples.setdefault(name, []).append(seconds)
    print(f"real control plane {DEFAULT_VERSION}, {runs} starts (seconds since start)")
    for name, values in samples.items():
        print(f"  {name:28} median {statistics.median(values):5.1f}  min {min(values):5.1f}  max {max(values):5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
