"""The API verbs of the simulated kube-apiserver, over the Store, independent of HTTP.

`Api` does what kube-apiserver's generic registry does for each verb: create (generateName,
defaulting, validation, AlreadyExists), update (optimistic concurrency, status/spec separation,
generation), patch (four types; server-side apply creates when missing, tracks field ownership,
answers conflicts with 409 unless forced; see `stsfix.sim.apiserver.apply`), delete (preconditions,
graceful pod deletion, finalizers, propagation policy recorded as the `foregroundDeletion` or
`orphan` finalizer for the garbage collector), deletecollection, get and paginated list.
`dry_run=True` runs everything and stores nothing. Every write records a managedFields entry.

In-process callers (the cluster facade, scenario loaders) may call these methods directly to get
the same admission as HTTP clients; controllers may also use the Store, which skips admission.
NB: through the Store, removing the last finalizer of a deleting object does not delete it (call
`Store.remove`); through `Api.update`/`Api.patch` it does, as on a real server.
Standard library + PyYAML only.
"""

from __future__ import annotations

import base64
import builtins
import json
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import yaml

from stsfix.sim.apiserver import admission
from stsfix.sim.apiserver.apply import (
    apply_ownership,
    changed_fields,
    changes_ownership,
    fields_v1,
    prune_dropped,
    record_update,
)
from stsfix.sim.apiserver.deletion import plan_delete
from stsfix.sim.apiserver.patching import APPLY_PATCH, apply_patch
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.resources import RESOURCES, Resource
from stsfix.sim.store.store import SimApiError, Store, clone, conflict, format_ts, not_found

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_NAME_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"


def bad_request(message: str) -> SimApiError:
    return SimApiError(400, "BadRequest", message)


def parse_body(raw: bytes, *, yaml_ok: bool = False) -> Any:
    """Decode a request body (JSON, or YAML for apply patches); 400 when malformed."""
    if not raw.strip():
        raise bad_request("the body of the request is empty")
    try:
        return json.loads(raw)
    except ValueError:
        if not yaml_ok:
            raise bad_request("the object provided is unrecognized (must be of type JSON)") from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise bad_request(f"error decoding YAML: {err}") from None


def same_object(a: Obj, b: Obj) -> bool:
    """Equal apart from resourceVersion and managedFields (a no-op write), without copying."""
    if a.keys() != b.keys():
        return False
    if any(a[k] != b[k] for k in a if k != "metadata"):
        return False
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    ignored = ("resourceVersion", "managedFields")
    return {k: v for k, v in ma.items() if k not in ignored} == {
        k: v for k, v in mb.items() if k not in ignored
    }


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"rv": rv, "start": list(after)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError):
        raise bad_request("continue key is not valid: illegal base64 data") from None


class Api:
    """The verbs. `version` (and `gates`, the feature gates set by hand) are read on every call so
    `set_version` affects defaulting at once."""

    def __init__(
        self,
        store: Store,
        *,
        clock: SimClock,
        version: Callable[[], str],
        gates: Callable[[], Mapping[str, bool]] = dict,
    ) -> None:
        self.store = store
        self.clock = clock
        self.version = version
        self.gates = gates

    # -- helpers ----------------------------------------------------------------------------
    def _now(self) -> str:
        return format_ts(self.clock.now())

    @staticmethod
    def resource(plural: str) -> Resource:
        res = RESOURCES.get(plural)
        if res is None:
            raise SimApiError(404, "NotFound", "the server could not find the requested resource")
        return res

    def _lookup(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self.store.get(res.plural, namespace if res.namespaced else "", name)
        if obj is None:
            raise not_found(res.plural, name, res.group)
        return obj

    def _managed(
        self,
        obj: Obj,
        old: Obj | None,
        manager: str,
        operation: str,
        subresource: str = "",
        fields: Obj | None = None,
    ) -> None:
        """Record or refresh this manager's managedFields entry on `obj` (in place).

        An Update owns what it set or changed (taken from other managers); an Apply owns `fields`.
        """
        manager = manager or "unknown"
        source = obj if operation == "Apply" else (old or obj)  # an apply has settled ownership already
        entries = [dict(e) for e in source.get("metadata", {}).get("managedFields") or []]
        if operation == "Update":
            entries = record_update(entries, manager, subresource, changed_fields(old or {}, obj))
            fields = entries.pop()["fieldsV1"]
        else:
            key = (manager, operation, subresource)
            entries = [
                e for e in entries if (e.get("manager"), e.get("operation"), e.get("subresource", "")) != key
            ]
        entry: Obj = {
            "manager": manager,
            "operation": operation,
            "apiVersion": obj.get("apiVersion", "v1"),
            "time": self._now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields or {},
        }
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
        obj.setdefault("metadata", {})["managedFields"] = entries

    # -- reads ------------------------------------------------------------------------------
    def get(self, plural: str, namespace: str, name: str) -> bytes:
        res = self.resource(plural)
        raw = self.store.get_json(plural, namespace if res.namespaced else "", name)
        if raw is None:
            raise not_found(plural, name, res.group)
        return raw

    def list(
        self,
        plural: str,
        namespace: str | None,
        predicate: Predicate | None = None,
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[tuple[Obj, bytes]], int, str, int]:
        """(items, list rv, continue token, remainingItemCount); `namespace` None = all namespaces."""
        res = self.resource(plural)
        entries, rv = self.store.list_json(plural, namespace if res.namespaced else None, predicate)
        if continue_token:
            token_rv, after = decode_continue(continue_token)
            rv = token_rv
            entries = [
                e
                for e in entries
                if (e[0]["metadata"].get("namespace", ""), e[0]["metadata"]["name"]) > after
            ]
        if limit > 0 and len(entries) > limit:
            page, rest = entries[:limit], len(entries) - limit
            last = page[-1][0]["metadata"]
            return page, rv, encode_continue(rv, (last.get("namespace", ""), last["name"])), rest
        return entries, rv, "", 0

    # -- create -----------------------------------------------------------------------------
    def create(
        self,
        plural: str,
        namespace: str,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = "",
        operation: str = "Update",
        fields: Obj | None = None,
    ) -> Obj:
        """POST: admit and store a new object; 409 AlreadyExists; returns the stored object."""
        res = self.resource(plural)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be a JSON object)")
        obj = clone(body)
        if obj.get("kind") not in (None, "", res.kind):
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                              f"expected API version ({res.group_version}) or kind {obj.get('kind')} "
                              f"is not {res.kind}")  # fmt: skip
        obj["kind"], obj["apiVersion"] = res.kind, res.group_version
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")  # fmt: skip
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise admission.invalid(res.kind, res.group, "", [
                    ("metadata.name", "Required value", "name or generateName is required")])  # fmt: skip
            meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
        for key in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "managedFields"):  # fmt: skip
            meta.pop(key, None)
        meta["generation"] = 1
        if plural in admission.STATUS_RESOURCES and plural != "nodes":
            obj.pop("status", None)
            status = admission.initial_status(plural)
            if status is not None:
                obj["status"] = status
        admission.apply_defaults(plural, obj, version=self.version(), gates=self.gates())
        admission.drop_disabled_fields(plural, obj, None, version=self.version(), gates=self.gates())
        admission.validate(res, obj, None)
        self._managed(obj, None, manager, operation, fields=fields)
        with self.store.lock:
            key_ns = namespace if res.namespaced else ""
            if self.store.get(plural, key_ns, meta["name"]) is not None:
                qualified = res.qualified
                raise SimApiError(
                    409,
                    "AlreadyExists",
                    f'{qualified} "{meta["name"]}" already exists',
                    details={"name": meta["name"], "group": res.group, "kind": res.plural},
                )
            if dry_run:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = self._now()
                return obj
            return self.store.create(plural, obj)

    # -- update and patch -------------------------------------------------------------------
    def _write(
        self,
        res: Resource,
        old: Obj,
        new: Obj,
        *,
        subresource: str,
        dry_run: bool,
        manager: str,
        operation: str,
        fields: Obj | None = None,
    ) -> Obj:
        """Admit `new` as the next version of `old` and store it (under the store lock)."""
        want_rv = str(new.get("metadata", {}).get("resourceVersion") or "")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise conflict(res.plural, old["metadata"]["name"], res.group)
        if new.get("metadata", {}).get("name", old["metadata"]["name"]) != old["metadata"]["name"]:
            raise bad_request("the name of the object does not match the name on the URL")
        new["kind"], new["apiVersion"] = res.kind, res.group_version
        new = admission.prepare_update(res, old, new, subresource=subresource)
        if subresource != "status":
            admission.apply_defaults(res.plural, new, version=self.version(), gates=self.gates())
            admission.drop_disabled_fields(res.plural, new, old, version=self.version(), gates=self.gates())
            admission.validate(res, new, old)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if same_object(new, old) and not changes_ownership(old, manager, operation, fields):
            return old  # no-op writes do not bump resourceVersion, as on a real server
        self._managed(new, old, manager, operation, subresource, fields)
        meta = new["metadata"]
        finished = meta.get("deletionTimestamp") and not meta.get("finalizers")
        if finished and (res.plural != "pods" or not meta.get("deletionGracePeriodSeconds")):
            if dry_run:
                return new
            gone = self.store.remove(res.plural, meta.get("namespace", ""), meta["name"])
            return gone or new
        if dry_run:
            return new
        return self.store.replace(res.plural, new)

    def update(
        self,
        plural: str,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
    ) -> Obj:
        """PUT: replace the object (or its status); 409 Conflict on a stale resourceVersion."""
        res = self.resource(plural)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be a JSON object)")
        with self.store.lock:
            old = self._lookup(res, namespace, name)
            return self._write(res, old, clone(body), subresource=subresource, dry_run=dry_run,
                               manager=manager, operation="Update")  # fmt: skip

    def patch(
        self,
        plural: str,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
        force: bool = False,
    ) -> tuple[Obj, bool]:
        """PATCH in any of the four types; (object, created). Apply patches create when missing;
        an apply that would change another manager's field is a 409 Conflict unless `force`."""
        res = self.resource(plural)
        is_apply = content_type.split(";")[0].strip().lower() == APPLY_PATCH
        if is_apply and not manager:
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager")
        with self.store.lock:
            old = self.store.get(plural, namespace if res.namespaced else "", name)
            if old is None:
                if not is_apply or subresource:
                    raise not_found(plural, name, res.group)
                if not isinstance(body, dict):
                    raise bad_request("apply patch must be an object")
                body = clone(body)
                body.setdefault("metadata", {})["name"] = name
                created = self.create(plural, namespace, body, dry_run=dry_run, manager=manager,
                                      operation="Apply", fields=fields_v1(body))  # fmt: skip
                return created, True
            patched = apply_patch(content_type, old, body)
            if not isinstance(patched.get("metadata"), dict):
                raise bad_request("metadata must be an object")
            fields: Obj | None = None
            if is_apply:
                fields = fields_v1(body)
                entries = apply_ownership(res, old, body, manager, force=force)
                patched = prune_dropped(patched, entries, manager, fields)
                patched["metadata"]["managedFields"] = entries
            obj = self._write(res, old, patched, subresource=subresource, dry_run=dry_run, manager=manager,
                              operation="Apply" if is_apply else "Update", fields=fields)  # fmt: skip
            return obj, False

    # -- delete -----------------------------------------------------------------------------
    def delete(
        self, plural: str, namespace: str, name: str, options: Obj | None = None, *, dry_run: bool = False
    ) -> tuple[Obj, bool]:
        """DELETE; returns (object as it is now, removed). 409 on failed preconditions."""
        res = self.resource(plural)
        options = options or {}
        dry_run = dry_run or "All" in (options.get("dryRun") or [])  # kubectl sends it in DeleteOptions
        with self.store.lock:
            old = self._lookup(res, namespace, name)
            obj, remove_now = plan_delete(res, old, options, self.clock.now())
            if dry_run:
                return obj, remove_now
            if remove_now:
                if plural == "namespaces":
                    self._empty_namespace(name)
                gone = self.store.remove(plural, obj["metadata"].get("namespace", ""), name)
                return gone or obj, True
            if same_object(obj, old):
                return old, False
            return self.store.replace(plural, obj), False

    def _empty_namespace(self, namespace: str) -> None:
        """Remove everything in a namespace being deleted (the namespace controller's job, done at
        once here rather than through a Terminating phase)."""
        for res in RESOURCES.values():
            if res.namespaced:
                for obj in self.store.list(res.plural, namespace)[0]:
                    self.store.remove(res.plural, namespace, obj["metadata"]["name"])

    def delete_collection(
        self,
        plural: str,
        namespace: str | None,
        predicate: Predicate | None,
        options: Obj | None = None,
        *,
        dry_run: bool = False,
    ) -> builtins.list[Obj]:
        """DELETE on a collection: delete every matching object as DELETE would."""
        items, _, _, _ = self.list(plural, namespace, predicate)
        done: builtins.list[Obj] = []
        for obj, _raw in items:
            meta = obj["metadata"]
            try:
                done.append(self.delete(plural, meta.get("namespace", ""), meta["name"], options,
                                        dry_run=dry_run)[0])  # fmt: skip
            except SimApiError as err:
                if err.code != 404:
                    raise
        return done
