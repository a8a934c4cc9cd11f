"""The simulated cluster: a fake kube-apiserver with a StatefulSet controller and kubelet.

An independent model of Kubernetes: it never imports stsfix.analysis or stsfix.planner.

Layout (the import-linter contracts in pyproject.toml keep it): `store/` at the bottom (the
object store and what every component shares), above it three independent parts that meet only
in the store, `apiserver/` (the HTTP API server), `controllers/` and `kubelet/`, and on top the
harness that wires them: `cluster` (SimCluster), `runner`, `scenarios` (+ the `scenarios/` YAML
files) and `fleet`. See docs/sim.md for the map.
"""
