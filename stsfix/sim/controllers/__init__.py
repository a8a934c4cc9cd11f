"""The simulated control-plane controllers: StatefulSet, scheduler and volume binder, garbage collector.

The StatefulSet controller (statefulset, statefulset_update, statefulset_pods), its
ControllerRevisions (revisions) and the release switches it follows (versions), the scheduler
with the volume binder, and ownerReference garbage collection. They talk to the store only
(`stsfix.sim.store`: reads, the index, the in-process client, the event recorder), never to the
HTTP layer (`stsfix.sim.apiserver`), the kubelet or the harness. Standard library only.
"""
