"""The simulated kube-apiserver: HTTP(S) framing, routing, the API verbs and everything they answer.

`server` (HTTP, the `/_sim/` control surface, request log, faults, kubeconfig), `routes` (URL
layout, authorization), `api` (the verbs over the store) with admission, patching, server-side
apply, deletion, subresources, selectors, discovery, server-side tables, protobuf access reviews
and the watch stream, plus the small disruption controller the server runs, whose PDB arithmetic
the eviction check shares. It may import the store (`stsfix.sim.store`) and nothing else in
stsfix.sim: never the controllers, the kubelet or the harness. Standard library + PyYAML (and
trustme for TLS) only.
"""
