"""The simulated kubelet: every node's pod lifecycles, scripted from the pod spec and behaviour rules.

`kubelet` runs the bound pods of all nodes (and the node-lifecycle side effects on them), `pod`
is one pod's scripted run and the status it reports, `rules` decides what a container does. It
talks to the store only (`stsfix.sim.store`: reads, the in-process client, the event recorder,
Node state), never to the HTTP layer (`stsfix.sim.apiserver`), the controllers or the harness, so
the same model could drive pods against another API. Standard library only.
"""
