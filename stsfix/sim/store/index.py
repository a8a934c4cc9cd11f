"""A per-namespace index over the Store for the controllers (what an informer cache gives them).

The Store lists a resource by scanning all of its objects; a controller syncing one set in a
1,000-pod cluster only wants its namespace. The index is kept current by a store subscription
(called under the store lock), so it is never staler than the store. Standard library only.
"""

from __future__ import annotations

from stsfix.sim.store.objects import Obj
from stsfix.sim.store.store import Store, WatchEvent


class NamespaceIndex:
    """objects[(resource, namespace)][name] for the indexed resources."""

    def __init__(
        self, store: Store, resources: tuple[str, ...] = ("pods", "controllerrevisions", "statefulsets")
    ):
        self.resources = resources
        self._objects: dict[tuple[str, str], dict[str, Obj]] = {}
        with store.lock:
            for resource in resources:
                for obj in store.list(resource)[0]:
                    self._put(resource, obj)
            store.subscribe(self._on_write)

    def _put(self, resource: str, obj: Obj) -> None:
        meta = obj["metadata"]
        self._objects.setdefault((resource, meta.get("namespace", "")), {})[meta["name"]] = obj

    def _on_write(self, event: WatchEvent) -> None:
        if event.resource not in self.resources:
            return
        if event.type == "DELETED":
            meta = event.obj["metadata"]
            self._objects.get((event.resource, meta.get("namespace", "")), {}).pop(meta["name"], None)
        else:
            self._put(event.resource, event.obj)

    def list(self, resource: str, namespace: str) -> list[Obj]:
        """Objects of `resource` in `namespace`, sorted by name (a snapshot)."""
        bucket = self._objects.get((resource, namespace), {})
        return [bucket[name] for name in sorted(bucket)]
