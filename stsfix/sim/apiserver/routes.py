"""URL routing for the simulated API server: request in, response (or watch stream) out.

`Router.handle(req)` parses the Kubernetes URL layout (`/api/v1[/namespaces/{ns}]/{plural}[/{name}
[/{sub}]]` and the `/apis/{group}/{version}/...` equivalent), authorizes the verb for the user,
and calls the `Api` verbs, the subresources, discovery, tables and the watch stream. HTTP framing
(status line, Date header, chunking, faults) stays in `stsfix.sim.apiserver.server`. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from stsfix.sim.apiserver import discovery, openapi, protobuf, subresources, tables, watch
from stsfix.sim.apiserver.api import Api, bad_request, parse_body
from stsfix.sim.apiserver.auth import ROLE_GRANTS, Grants, access_review, authorize, rules_review, self_review
from stsfix.sim.apiserver.selectors import field_predicate, label_predicate
from stsfix.sim.store.resources import REVIEWS, Resource, resource_for
from stsfix.sim.store.store import SimApiError, encode

Obj = dict[str, Any]
JSON: Final = "application/json"


@dataclass(slots=True)
class Request:
    """What the router needs from an HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes = b""
    content_type: str = ""
    accept: str = ""
    user_agent: str = ""
    user: str = ""
    role: str = ""
    stopped: Callable[[], bool] = field(default=lambda: False)
    grants: Grants = field(default_factory=lambda: ROLE_GRANTS)


@dataclass(slots=True)
class Response:
    """A complete answer, or a watch stream when `stream` is set."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None
    cut: bool = False  # end the stream by dropping the connection (a cut_after fault)
    dropped: bool = False  # served, but the connection is closed instead of answering (drop_after)


@dataclass(frozen=True, slots=True)
class Route:
    res: Resource
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    sub: str = ""


def json_response(status: int, doc: Any) -> Response:
    return Response(status, encode(doc) if not isinstance(doc, bytes) else doc)


def not_found_path() -> SimApiError:
    return SimApiError(404, "NotFound", "the server could not find the requested resource")


def parse_route(path: str) -> Route | None:
    """Resolve a resource URL; None when the path is not a resource path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        gv, rest = parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and gv == "v1" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 3 and gv != "v1":
        namespace, rest = rest[1], rest[2:]
    res = resource_for(gv, rest[0])
    if res is None or len(rest) > 3:
        return None
    if namespace is not None and not res.namespaced:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in res.subresources:
        return None
    if name and res.namespaced and namespace is None:
        return None
    return Route(res, namespace, name, sub)


def _verb(method: str, route: Route, query: dict[str, str]) -> str:
    if method == "GET":
        if route.name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    raise SimApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def manager_of(req: Request) -> str:
    """fieldManager, or the User-Agent's prefix as the real server uses."""
    return req.query.get("fieldManager") or (req.user_agent.split("/", 1)[0][:128] if req.user_agent else "")


class Router:
    """Dispatches requests to the verbs. `logs` is the server's pod_logs mapping."""

    def __init__(self, api: Api, *, logs: dict[tuple[str, str, str], str], version: Callable[[], str],
                 address: Callable[[], str]) -> None:  # fmt: skip
        self.api = api
        self.logs = logs
        self.version = version
        self.address = address

    def discovery(self, path: str, accept: str = "") -> Response | None:
        """Non-resource paths: version, health, discovery and the OpenAPI stubs."""
        if path == "/version":
            return json_response(200, discovery.version_info(self.version()))
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api":
            return json_response(200, discovery.api_versions(self.address()))
        if path == "/apis":
            return json_response(200, discovery.api_group_list())
        if path in ("/openapi/v2", "/swagger-2.0.0.pb-v1"):
            if "protobuf" in accept or path.endswith("pb-v1"):
                return Response(200, openapi.document_protobuf(self.version()), openapi.PROTOBUF)
            return json_response(200, openapi.document_json(self.version()))
        if path == "/openapi/v3":
            return json_response(200, discovery.openapi_root())
        if path.startswith("/openapi/v3/"):
            doc = discovery.openapi_group_version(path.removeprefix("/openapi/v3/"), self.version())
            return json_response(200, doc) if doc is not None else None
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2 or parts[:1] == ["apis"] and len(parts) == 3:
            doc = discovery.api_resource_list("/".join(parts[1:]))
            return json_response(200, doc) if doc is not None else None
        if parts[:1] == ["apis"] and len(parts) == 2:
            doc = discovery.api_group(parts[1])
            return json_response(200, doc) if doc is not None else None
        return None

    def handle(self, req: Request) -> Response:
        """Answer one resource request (discovery must have been tried first)."""
        route = parse_route(req.path)
        if route is None:
            raise not_found_path()
        protobuf_body = bool(req.body) and "protobuf" in req.content_type
        verb = _verb(req.method, route, req.query)
        namespace_create = verb == "create" and route.res.plural == "namespaces"
        if protobuf_body and route.res.plural not in REVIEWS and verb != "delete" and not namespace_create:
            raise protobuf.unsupported()
        rbac_resource = f"{route.res.plural}/{route.sub}" if route.sub else route.res.plural
        authorize(
            req.user, req.role, verb, rbac_resource, route.res.group, route.namespace, route.name or None,
            req.grants,
        )
        if route.res.plural in REVIEWS:
            if verb != "create":
                raise _method_not_allowed()
            if route.res.plural == "selfsubjectreviews":  # the body carries nothing to read
                return json_response(201, self_review(req.user, req.role))
            body = (
                protobuf.decode_review(req.body, route.res.plural) if protobuf_body else parse_body(req.body)
            )
            if not isinstance(body, dict):
                raise bad_request("the object provided is unrecognized (must be a JSON object)")
            review = access_review if route.res.plural == "selfsubjectaccessreviews" else rules_review
            return json_response(201, review(req.role, body, req.grants))
        dry_run = req.query.get("dryRun") == "All"
        if req.query.get("dryRun") not in (None, "", "All"):
            raise bad_request(f"unsupported dryRun value: {req.query['dryRun']}")
        if verb in ("list", "watch", "deletecollection"):
            return self._collection(req, route, verb, dry_run)
        if route.sub == "log":
            text = subresources.pod_log(self.api, self.logs, route.namespace or "", route.name, req.query)
            if req.query.get("follow") == "true":
                follow = subresources.follow_log(self.api, self.logs, route.namespace or "", route.name,
                                                 req.query, text, stopped=req.stopped)  # fmt: skip
                return Response(200, content_type="text/plain", stream=follow)
            return Response(200, text.encode(), "text/plain")
        if route.sub == "scale":
            return self._scale(req, route, verb, dry_run)
        if route.sub == "eviction":
            if verb != "create":
                raise _method_not_allowed()
            status = subresources.evict(self.api, route.namespace or "", route.name, parse_body(req.body),
                                        dry_run=dry_run)  # fmt: skip
            return json_response(201, status)
        return self._object(req, route, verb, dry_run)

    # -- single objects ---------------------------------------------------------------------
    def _object(self, req: Request, route: Route, verb: str, dry_run: bool) -> Response:
        plural, ns, name, manager = route.res.plural, route.namespace or "", route.name, manager_of(req)
        if verb == "get":
            if route.sub not in ("", "status"):
                raise _method_not_allowed()
            raw = self.api.get(plural, ns, name)
            if tables.wants_table(req.accept):
                return self._table(req, route.res, [json.loads(raw)], "")
            if tables.wants_metadata(req.accept):
                return json_response(200, tables.partial(json.loads(raw)))
            return json_response(200, raw)
        if verb == "create":
            if route.name:
                raise _method_not_allowed()
            protobuf_body = bool(req.body) and "protobuf" in req.content_type
            body = protobuf.decode_namespace(req.body) if protobuf_body else parse_body(req.body)
            obj = self.api.create(plural, ns, body, dry_run=dry_run, manager=manager)
            return json_response(201, obj)
        if verb == "update":
            obj = self.api.update(plural, ns, name, parse_body(req.body), subresource=route.sub, dry_run=dry_run,
                                  manager=manager)  # fmt: skip
            return json_response(200, obj)
        if verb == "patch":
            yaml_ok = req.content_type.startswith("application/apply-patch")
            if yaml_ok:
                manager = req.query.get(
                    "fieldManager", ""
                )  # apply needs it explicitly; no User-Agent default
            obj, created = self.api.patch(plural, ns, name, req.content_type, parse_body(req.body, yaml_ok=yaml_ok),
                                          subresource=route.sub, dry_run=dry_run, manager=manager,
                                          force=req.query.get("force") == "true")  # fmt: skip
            return json_response(201 if created else 200, obj)
        if verb == "delete":
            obj, removed = self.api.delete(plural, ns, name, self._delete_options(req), dry_run=dry_run)
            if removed and plural != "pods":
                meta = obj["metadata"]
                details = {"name": name, "group": route.res.group, "kind": plural, "uid": meta.get("uid", "")}
                return json_response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                           "status": "Success", "details": details})  # fmt: skip
            return json_response(200, obj)
        raise _method_not_allowed()

    def _delete_options(self, req: Request) -> Obj:
        options: Obj = {}
        if req.body and "protobuf" in req.content_type:
            options = protobuf.decode_delete_options(req.body)
        elif req.body.strip():
            body = parse_body(req.body)
            if not isinstance(body, dict):
                raise bad_request("DeleteOptions must be an object")
            options = dict(body)
        for key in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
            if key in req.query and key not in options:
                value: Any = req.query[key]
                if key == "gracePeriodSeconds":
                    value = _int_param(key, value)
                elif key == "orphanDependents":
                    value = value == "true"
                options[key] = value
        if options.get("propagationPolicy") not in (None, "Background", "Foreground", "Orphan"):
            raise bad_request(f"propagationPolicy: Unsupported value: {options['propagationPolicy']!r}")
        return options

    def _scale(self, req: Request, route: Route, verb: str, dry_run: bool) -> Response:
        ns, name = route.namespace or "", route.name
        if verb == "get":
            return json_response(200, subresources.get_scale(self.api, route.res.plural, ns, name))
        if verb in ("update", "patch"):
            ct = req.content_type if verb == "patch" else None
            scale = subresources.write_scale(self.api, route.res.plural, ns, name, parse_body(req.body),
                                             content_type=ct, dry_run=dry_run, manager=manager_of(req))  # fmt: skip
            return json_response(200, scale)
        raise _method_not_allowed()

    # -- collections ------------------------------------------------------------------------
    def _predicate(self, req: Request, resource: str) -> Callable[[Obj], bool] | None:
        labels = label_predicate(req.query.get("labelSelector"))
        fields = field_predicate(req.query.get("fieldSelector"), resource)
        if labels and fields:
            return lambda o: labels(o) and fields(o)
        return labels or fields

    def _collection(self, req: Request, route: Route, verb: str, dry_run: bool) -> Response:
        predicate = self._predicate(req, route.res.plural)
        res = route.res
        if verb == "deletecollection":
            done = self.api.delete_collection(res.plural, route.namespace, predicate, self._delete_options(req),
                                              dry_run=dry_run)  # fmt: skip
            body = {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": {}, "items": done}
            return json_response(200, body)
        if verb == "watch":
            timeout = float(_int_param("timeoutSeconds", req.query.get("timeoutSeconds", "1800")))
            lines = watch.stream(self.api.store, res, route.namespace, predicate,
                                 resource_version=req.query.get("resourceVersion", ""), timeout=timeout,
                                 bookmarks=req.query.get("allowWatchBookmarks") == "true",
                                 initial_events=req.query.get("sendInitialEvents") == "true", stopped=req.stopped)  # fmt: skip
            if tables.wants_table(req.accept):
                lines = self._table_events(req, res, lines)
            elif tables.wants_metadata(req.accept):
                lines = _metadata_events(lines)
            return Response(200, content_type=JSON, stream=lines)
        limit = _int_param("limit", req.query.get("limit", "0"))
        items, rv, token, remaining = self.api.list(res.plural, route.namespace, predicate, limit=limit,
                                                    continue_token=req.query.get("continue", ""))  # fmt: skip
        if tables.wants_table(req.accept):
            return self._table(req, res, [obj for obj, _ in items], str(rv), token, remaining)
        kind, api_version = f"{res.kind}List", res.group_version
        if tables.wants_metadata(req.accept):
            kind, api_version = "PartialObjectMetadataList", "meta.k8s.io/v1"
            items = [(obj, encode(tables.partial(obj))) for obj, _ in items]
        meta = f'"resourceVersion":"{rv}"'
        if token:
            meta += f',"continue":"{token}","remainingItemCount":{remaining}'
        head = f'{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{{meta}}},"items":['
        parts = [head.encode()]
        for i, (_, raw) in enumerate(items):  # one copy of the body: a single join, no concatenation
            if i:
                parts.append(b",")
            parts.append(raw)
        parts.append(b"]}")
        return json_response(200, b"".join(parts))

    def _table(self, req: Request, res: Resource, objs: list[Obj], rv: str, token: str = "",
               remaining: int = 0) -> Response:  # fmt: skip
        body = tables.table(res, objs, now=self.api.clock.now(), rv=rv, include=req.query.get("includeObject",
                            "Metadata"), continue_token=token, remaining=remaining)  # fmt: skip
        return json_response(200, body)

    def _table_events(self, req: Request, res: Resource, lines: Iterator[bytes]) -> Iterator[bytes]:
        first = True
        for line in lines:
            event = json.loads(line)
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                event["object"] = json.loads(
                    tables.table(
                        res,
                        [event["object"]],
                        now=self.api.clock.now(),
                        include=req.query.get("includeObject", "Metadata"),
                        headers=first,
                    )
                )
                first = False
            yield encode(event) + b"\n"


def _metadata_events(lines: Iterator[bytes]) -> Iterator[bytes]:
    for line in lines:
        event = json.loads(line)
        if event["type"] != "ERROR":
            event["object"] = tables.partial(event["object"])
        yield encode(event) + b"\n"


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {value!r}") from None


def _method_not_allowed() -> SimApiError:
    return SimApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )
