"""A dump as the starting state: what `sim serve --load` reads, and the cluster it describes.

`read_dumps(paths)` reads `kubectl get ... -o yaml|json` Lists, multi-document YAML/JSON and
`stsfix collect` files into a `Dump`: the objects in load order (namespaces, nodes, claims,
revisions, sets, pods, then the rest), each defaulted as the API server does when it reads an
object from storage (`store.defaults`, by the modelled version), plus what the dump says about
the cluster it came from: when it was collected (the collect file's `stsfix.dev/collected-at`,
else the newest timestamp in it), the server version (`stsfix.dev/server-version`, else the
newest kubelet version of its nodes), and the storage classes its claims, volumes and
StorageClass objects name (the default one from the `is-default-class` annotation, else the
most used). Standard library + PyYAML; never imports the analysis (the collect format's keys are
restated here).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml

from stsfix.sim.store.defaults import default_object
from stsfix.sim.store.nodes import new_node
from stsfix.sim.store.objects import Obj, parse_ts
from stsfix.sim.store.resources import RESOURCES
from stsfix.sim.store.store import Store

COLLECTED_AT: Final = "stsfix.dev/collected-at"  # stsfix.offline's collect format
SERVER_VERSION: Final = "stsfix.dev/server-version"
DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"
KINDS: Final = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ControllerRevision": "controllerrevisions",
    "StatefulSet": "statefulsets",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Pod": "pods",
    "Event": "events",
}
# Nodes before the pods bound to them, claims and revisions before the set that owns them.
_ORDER: Final = {kind: index for index, kind in enumerate(KINDS)}
_CLUSTER_SCOPED: Final = frozenset({"namespaces", "nodes"})


class DumpError(ValueError):
    """A dump that cannot be read (one line, the file named)."""


@dataclass
class Dump:
    """The objects of one or more dump files and what they say about their cluster."""

    objects: list[Obj] = field(default_factory=list)
    collected_at: datetime | None = None
    server_version: str = ""
    storage_classes: list[str] = field(default_factory=list)
    default_storage_class: str = ""
    skipped: Counter[str] = field(default_factory=Counter)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    @property
    def clock_start(self) -> datetime | None:
        """When the dump was taken: the collect time, else the newest timestamp in it."""
        return self.collected_at or newest_time(self.objects)


def _documents(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DumpError(f"{path}: {err.strerror or err}") from None
    try:
        if text.lstrip().startswith(("{", "[")):
            try:
                return [json.loads(text)]
            except ValueError:
                pass
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise DumpError(f"{path}: {where}not valid YAML or JSON") from None


def _flatten(doc: Any, path: Path) -> Iterable[Obj]:
    if isinstance(doc, list):
        for item in doc:
            yield from _flatten(item, path)
    elif isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
        for item in doc.get("items") or []:
            yield from _flatten(item, path)
    elif isinstance(doc, dict) and isinstance(doc.get("kind"), str):
        yield doc
    else:
        raise DumpError(f"{path}: expected Kubernetes objects or a List (a document has no kind)")


def newest_time(objects: Iterable[Obj]) -> datetime | None:
    """The newest timestamp recorded in `objects` (deletion deadlines excluded: they lie ahead)."""
    newest: datetime | None = None
    stack: list[tuple[str, object]] = [("", o) for o in objects]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
        elif (
            isinstance(value, str)
            and key != "deletionTimestamp"
            and key.endswith(("Timestamp", "Time", "At"))
        ):
            try:
                stamp = parse_ts(value) if len(value) >= 19 and value[4:5] == "-" else None
            except ValueError:
                stamp = None
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
    return newest


def _version_key(text: str) -> tuple[int, int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return (int(match[1]), int(match[2]), int(match[3] or 0)) if match else (0, 0, 0)


def _node_version(objects: list[Obj]) -> str:
    """The newest kubelet version of the dump's nodes (the control plane is never older)."""
    versions = [
        str(((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or "")
        for o in objects
        if o.get("kind") == "Node"
    ]
    versions = [v for v in versions if _version_key(v) != (0, 0, 0)]
    return max(versions, key=_version_key) if versions else ""


def _storage_classes(objects: list[Obj]) -> tuple[list[str], str]:
    """Every class the dump names, most used first, and the default class."""
    used: Counter[str] = Counter()
    default = ""
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        if kind == "StorageClass":
            name = (obj.get("metadata") or {}).get("name", "")
            used[name] += 0
            if str(((obj.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS)) == "true":
                default = name
        elif kind in ("PersistentVolumeClaim", "PersistentVolume") and spec.get("storageClassName"):
            used[spec["storageClassName"]] += 1
        elif kind == "StatefulSet":
            for claim in spec.get("volumeClaimTemplates") or []:
                name = (claim.get("spec") or {}).get("storageClassName")
                if name:
                    used[name] += 1
    ranked = [name for name, _ in used.most_common() if name]
    return ranked, default or (ranked[0] if ranked else "")


def prepare(obj: Obj, *, max_unavailable_gate: bool) -> tuple[str, Obj]:
    """(resource, object) ready for the store: defaulted, namespaced, without server bookkeeping."""
    resource = KINDS.get(str(obj.get("kind", "")), "")
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if resource not in _CLUSTER_SCOPED:
        meta.setdefault("namespace", "default")
    for key in ("resourceVersion", "managedFields"):
        meta.pop(key, None)
    default_object(resource, obj, max_unavailable_gate=max_unavailable_gate)
    return resource, obj


def read_dumps(paths: Iterable[str | Path]) -> Dump:
    """All objects of the files, in load order (not yet defaulted: see `prepare`)."""
    dump = Dump()
    for raw_path in paths:
        path = Path(raw_path)
        for doc in _documents(path):
            annotations = (
                ((doc.get("metadata") or {}).get("annotations") or {}) if isinstance(doc, dict) else {}
            )
            if annotations.get(COLLECTED_AT):
                try:
                    dump.collected_at = parse_ts(str(annotations[COLLECTED_AT]))
                except ValueError:
                    raise DumpError(
                        f"{path}: {COLLECTED_AT} is not a time: {annotations[COLLECTED_AT]}"
                    ) from None
                dump.server_version = str(annotations.get(SERVER_VERSION) or dump.server_version)
            dump.objects.extend(_flatten(doc, path))
    everything = dump.objects
    dump.storage_classes, dump.default_storage_class = _storage_classes(everything)
    dump.server_version = dump.server_version or _node_version(everything)
    kept = []
    for obj in everything:
        resource = KINDS.get(str(obj.get("kind", "")))
        if resource is None or resource not in RESOURCES:
            dump.skipped[str(obj.get("kind", "?"))] += 1
        elif not (obj.get("metadata") or {}).get("name"):
            raise DumpError(f"a {obj['kind']} in the dump has no metadata.name")
        else:
            kept.append(obj)
    dump.objects = sorted(kept, key=lambda o: _ORDER[str(o["kind"])])
    return dump


def store_objects(
    store: Store,
    objects: Iterable[Obj],
    *,
    max_unavailable_gate: bool,
    now: datetime,
    node_version: str,
    ensure_namespace: Callable[[str], None],
    notes: list[str],
) -> list[Obj]:
    """Create `objects` in the store as a real server holds them (see `prepare`); returns what was stored.

    An object that already exists is skipped, and a pod bound to a node the dump does not have
    gets a Ready default-sized Node of that name (each noted in `notes`)."""
    stored = []
    for raw in objects:
        resource, obj = prepare(raw, max_unavailable_gate=max_unavailable_gate)
        if resource not in RESOURCES:
            continue
        meta = obj["metadata"]
        if resource not in _CLUSTER_SCOPED:
            ensure_namespace(meta["namespace"])
        meta.setdefault("uid", str(uuid.uuid4()))
        if store.get(resource, meta.get("namespace", ""), meta["name"]) is not None:
            notes.append(f"skipped {obj['kind']} {meta['name']}: it already exists")
            continue
        node = (obj.get("spec") or {}).get("nodeName") if resource == "pods" else None
        if node and store.get("nodes", "", node) is None:
            count = len(store.list("nodes")[0])
            store.create("nodes", new_node(node, index=count, version=node_version, now=now))
            notes.append(f"added Node {node}: pods are bound to it but the dump has no such Node")
        stored.append(store.create(resource, obj))
    return stored
