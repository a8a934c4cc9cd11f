"""The simulated cluster's state and what every component shares to read and write it.

The object store (one lock, a global resourceVersion, the event log watches read), the resource
table, the simulated clock, helpers over raw API objects, the API server's defaulting (`defaults`,
with the Go round trip in `gotypes` and resource quantities in `quantity`, shared by admission,
dump loading and the controller's semantic revision comparison), Node objects, the event recorder, the
per-namespace index and the in-process client the controllers and the kubelet write through (with
the API server's write semantics). It may import only the standard library: never the API server
(`stsfix.sim.apiserver`), the controllers, the kubelet or the harness above it.
"""
