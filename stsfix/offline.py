"""Offline input: `-f FILE` instead of a cluster, and the `collect` file format.

Reads `stsfix collect` files and plain `kubectl get ... -o yaml|json` output (a List, or several
YAML documents) into the same `RawBundle` live reads produce. A collect file is a kubectl-readable
`v1 List` whose annotations carry the collection time, the server version and the kinds that were
read, so "none found" and "not collected" stay different things.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from stsfix.analysis.revisions import looks_secret
from stsfix.bundle import RawBundle
from stsfix.errors import UsageError
from stsfix.model import RawObject, format_time, parse_time

COLLECTED_AT: Final = "stsfix.dev/collected-at"
SERVER_VERSION: Final = "stsfix.dev/server-version"
COLLECTED_KINDS: Final = "stsfix.dev/collected-kinds"
#: Previous-run log tails of crash-looping containers, as JSON (secrets already masked).
LOGS: Final = "stsfix.dev/previous-logs"
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
#: The largest -f file read: 32 MiB is a collect of about a thousand 3-replica sets.
MAX_INPUT_BYTES: Final = 32 * 2**20

_FIELDS: Final = {
    "StatefulSet": "statefulsets",
    "Pod": "pods",
    "ControllerRevision": "revisions",
    "Event": "events",
    "PersistentVolumeClaim": "pvcs",
    "Node": "nodes",
    "PodDisruptionBudget": "pdbs",
}
ALL_KINDS: Final = tuple(_FIELDS)


def _documents(path: str) -> list[Any]:
    import yaml

    # libyaml's parser where PyYAML has it: several times faster on large dumps
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        size = os.stat(path).st_size
        if size > MAX_INPUT_BYTES:
            # A dump this large would take minutes and gigabytes to load; refuse before reading it.
            raise UsageError(
                f"{path}: {size / 2**20:.1f} MiB is more than stsfix reads from one file "
                f"({MAX_INPUT_BYTES // 2**20} MiB); split the dump (one file per namespace) and pass several -f"
            )
        with open(path, encoding="utf-8") as handle:
            return [doc for doc in yaml.load_all(handle, Loader=loader) if doc is not None]
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text (a binary file?): expected YAML or JSON") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: {where}not valid YAML or JSON ({problem})") from None


def _flatten(doc: Any, path: str) -> Iterable[RawObject]:
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise UsageError(f"{path}: expected Kubernetes objects or a List (a document has no kind)")
    if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _flatten(item, path)
    else:
        yield doc


def _newest_timestamp(objects: Iterable[RawObject]) -> datetime | None:
    newest: datetime | None = None
    for obj in objects:
        meta = obj.get("metadata") or {}
        candidates = [meta.get("creationTimestamp"), meta.get("deletionTimestamp"), obj.get("lastTimestamp")]
        status = obj.get("status") or {}
        candidates += [c.get("lastTransitionTime") for c in status.get("conditions") or () if isinstance(c, dict)]
        for value in candidates:
            stamp = parse_time(value)
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
    return newest


def load_bundle(paths: Sequence[str]) -> RawBundle:
    """All objects of the given files, grouped by kind; kinds absent from every file are None."""
    by_field: dict[str, list[RawObject]] = {f: [] for f in _FIELDS.values()}
    collected: set[str] = set()
    observed_at: datetime | None = None
    version = ""
    logs: list[RawObject] | None = None
    for path in paths:
        for doc in _documents(path):
            annotations = ((doc.get("metadata") or {}).get("annotations") or {}) if isinstance(doc, dict) else {}
            if COLLECTED_AT in annotations:
                observed_at = parse_time(annotations[COLLECTED_AT]) or observed_at
                version = str(annotations.get(SERVER_VERSION) or version)
                collected |= {k for k in str(annotations.get(COLLECTED_KINDS, "")).split(",") if k}
            if LOGS in annotations:
                logs = (logs or []) + _logs(annotations[LOGS], path)
            for obj in _flatten(doc, path):
                field = _FIELDS.get(obj["kind"])
                if field is not None:
                    by_field[field].append(obj)
                    collected.add(obj["kind"])
    if not by_field["statefulsets"]:
        raise UsageError(f"{', '.join(paths)}: no StatefulSet found in the input")
    everything = [o for items in by_field.values() for o in items]

    def pick(kind: str) -> tuple[RawObject, ...] | None:
        return tuple(by_field[_FIELDS[kind]]) if kind in collected else None

    return RawBundle(
        statefulsets=tuple(by_field["statefulsets"]),
        pods=tuple(by_field["pods"]),
        revisions=tuple(by_field["revisions"]),
        events=pick("Event"),
        pvcs=pick("PersistentVolumeClaim"),
        nodes=pick("Node"),
        pdbs=pick("PodDisruptionBudget"),
        server_version=version,
        observed_at=observed_at or _newest_timestamp(everything),
        logs=tuple(logs) if logs is not None else None,
    )


def _logs(text: object, path: str) -> list[RawObject]:
    import json

    try:
        parsed = json.loads(str(text))
    except ValueError:
        raise UsageError(f"{path}: annotation {LOGS} is not JSON") from None
    return [item for item in parsed if isinstance(item, dict)] if isinstance(parsed, list) else []


def hide_secret_env(items: list[RawObject]) -> list[RawObject]:
    """Copies of `items` in which the value of every env var whose name looks secret (in pods, set
    templates, ControllerRevisions and kubectl's last-applied-configuration) is `<hidden #N>`.

    The same value gets the same N within the bundle, so revisions that differ in a secret still
    differ offline; the value itself is never written.
    """
    import copy
    import json

    numbers: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for value in node:
                walk(value)
            return
        if not isinstance(node, dict):
            return
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for container in node.get(key) or ():
                for env in (container.get("env") or ()) if isinstance(container, dict) else ():
                    if isinstance(env, dict) and isinstance(env.get("value"), str) and looks_secret(str(env.get("name"))):
                        env["value"] = f"<hidden #{numbers.setdefault(env['value'], len(numbers) + 1)}>"
        applied = node.get(LAST_APPLIED) if isinstance(node.get(LAST_APPLIED), str) else None
        if applied is not None:
            try:
                doc = json.loads(applied)
            except ValueError:
                doc = None
            walk(doc)
            node[LAST_APPLIED] = json.dumps(doc) if doc is not None else "<hidden: not JSON>"
        for value in node.values():
            walk(value)

    copies = copy.deepcopy(items)
    walk(copies)
    return copies


def collect_document(bundle: RawBundle, *, collected_at: datetime, show_values: bool = False) -> dict[str, Any]:
    """The `stsfix collect` file: one v1 List with everything read and when; env values whose name
    looks secret are hidden (`hide_secret_env`) unless `show_values`."""
    items: list[RawObject] = []
    kinds = []
    for kind, field in _FIELDS.items():
        objects = getattr(bundle, field)
        if objects is not None:
            kinds.append(kind)
            items.extend(objects)
    if not show_values:
        items = hide_secret_env(items)
    annotations = {
        COLLECTED_AT: format_time(collected_at),
        SERVER_VERSION: bundle.server_version,
        COLLECTED_KINDS: ",".join(kinds),
    }
    if bundle.logs is not None:
        import json

        annotations[LOGS] = json.dumps(list(bundle.logs), ensure_ascii=False)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"annotations": annotations}, "items": items}
