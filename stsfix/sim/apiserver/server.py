"""The simulated kube-apiserver over HTTP(S): `ApiServer(store, clock=...).start()`.

A stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive and TCP_NODELAY (without it,
Nagle plus delayed ACK adds ~40 ms to every keep-alive request). The `Date` header carries the
SIMULATED time, because clients judge ages from it. Every answered request is logged
(`request_log`), a write with what it hit (see `requestlog.summarize`); faults (`faults`) can fail,
delay or drop matching requests, lose an answer, or expire a watch. A control surface
under `/_sim/` (admin token) exposes the log, the faults and the clock over HTTP
(GET/DELETE /_sim/requests, GET/POST/DELETE /_sim/faults, GET/POST /_sim/clock), and the cluster
facade adds routes with `add_control_route`. TLS uses a throwaway `trustme` CA (imported only when tls=True).
Standard library + PyYAML only; never imports the `kubernetes` client.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from stsfix.sim.apiserver.api import Api
from stsfix.sim.apiserver.auth import DEFAULT_TOKENS, ROLE_GRANTS, authenticate
from stsfix.sim.apiserver.disruption import DisruptionController
from stsfix.sim.apiserver.faults import FaultSet
from stsfix.sim.apiserver.kubeconfig import kubeconfig_dict, write_kubeconfig
from stsfix.sim.apiserver.requestlog import RequestLog, RequestRecord, summarize
from stsfix.sim.apiserver.routes import Request, Response, Router, parse_route
from stsfix.sim.apiserver.watch import expired_line
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import SimApiError, Store, encode

Obj = dict[str, Any]
ControlHandler = Callable[[Obj], tuple[int, Obj]]

PUBLIC_PATHS: Final = frozenset({"/version", "/healthz", "/livez", "/readyz"})
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REASONS: Final = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                   409: "Conflict", 410: "Gone", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                   503: "ServiceUnavailable", 504: "Timeout"}  # fmt: skip


def status_error(code: int, message: str = "") -> SimApiError:
    reason = _REASONS.get(code, "InternalError" if code >= 500 else "BadRequest")
    return SimApiError(code, reason, message or f"injected fault: {reason}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    owner: ApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sim_user: str = ""
    sim_subject: dict[str, Any] | None = None
    sim_body: bytes = b""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log replaces the stderr access log

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unknown method) as a Status, like every error."""
        body = encode(status_error(code, message or explain or "").status())
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.owner.clock.now().timestamp(), usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise SimApiError(400, "BadRequest", "invalid Content-Length") from None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _send_stream(self, resp: Response) -> None:
        owner = self.server.owner
        with owner._streams:
            owner.open_streams += 1
            owner._streams.notify_all()
        try:
            self._stream_body(resp)
        finally:
            with owner._streams:
                owner.open_streams -= 1
                owner._streams.notify_all()

    def _stream_body(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        assert resp.stream is not None
        try:
            for line in resp.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            if resp.cut:
                self._drop()
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without a reply (a dropped-connection fault)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        control = path == "/_sim" or path.startswith("/_sim/")
        self.sim_user, self.sim_body = "", b""
        self.sim_subject = None
        try:
            resp = self._answer(owner, path, query, control)
        except SimApiError as err:
            resp = Response(err.code, encode(err.status()), headers=err.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except Exception as exc:  # a bug in the simulator: answer 500 like an apiserver panic
            panic = SimApiError(500, "InternalError", f"an error on the server has prevented the request from "
                                f"succeeding: {type(exc).__name__}: {exc}")  # fmt: skip
            resp = Response(500, encode(panic.status()))
        if not control:  # log before answering, so a client that saw the answer also sees the record
            owner._log(self.command, path, query, resp.status, self.sim_user, self.sim_body,
                       subject=self.sim_subject, dropped=resp.dropped)  # fmt: skip
        try:
            if resp is _DROP or resp.dropped:
                self._drop()
            elif resp.stream is not None:
                self._send_stream(resp)
            else:
                self._send(resp)
        except OSError:
            self.close_connection = True

    def _answer(self, owner: ApiServer, path: str, query: dict[str, str], control: bool) -> Response:
        body = self._read_body()
        if self.command != "GET":
            self.sim_body = body
        auth = self.headers.get("Authorization")
        if control:
            self.sim_user, _ = authenticate(auth, owner.tokens)
            return owner._control(self.command, path, body, self.sim_user)
        if path in PUBLIC_PATHS:
            user, role = "system:anonymous", "readonly"
        elif auth is None and owner.anonymous is not None:
            user = role = owner.anonymous
        else:
            user, role = authenticate(auth, owner.tokens)
        self.sim_user = user
        stopped = owner._stopping.is_set
        fault = owner.faults.take(self.command, path, is_watch=query.get("watch") in ("true", "1"))
        ends = None if fault is None else (fault.cut_after if fault.cut_after is not None else fault.expire_after)
        if ends is not None:
            deadline = time.monotonic() + ends
            stopped = lambda: owner._stopping.is_set() or time.monotonic() >= deadline  # noqa: E731
        if fault is not None:
            if fault.latency > 0:
                time.sleep(fault.latency)
            if fault.action is not None:
                fault.action()
            if fault.drop:
                return _DROP
            if fault.status:
                err = status_error(fault.status, fault.message)
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return Response(err.code, encode(err.status()), headers=headers)
        req = Request(self.command, path, query, body, self.headers.get("Content-Type", ""),
                      self.headers.get("Accept", ""), self.headers.get("User-Agent", ""), user, role,
                      stopped=stopped, grants=owner.grants)  # fmt: skip
        resp = owner.router.discovery(path, self.headers.get("Accept", "")) if self.command == "GET" else None
        resp = resp if resp is not None else self._handle(owner, req)
        resp.cut = fault is not None and fault.cut_after is not None and resp.stream is not None
        if fault is not None and fault.expire_after is not None and resp.stream is not None:
            message = "too old resource version: the watch window passed (injected fault)"
            resp.stream = itertools.chain(resp.stream, [expired_line(message)])
        resp.dropped = fault is not None and fault.drop_after
        return resp

    def _handle(self, owner: ApiServer, req: Request) -> Response:
        """Route the request; a write to one named object also records what it hit (`sim_subject`)."""
        route = parse_route(req.path) if req.method in WRITES else None
        if route is None or not route.name:
            return owner.router.handle(req)
        with owner.store.lock:  # before, write and after as one step: no other writer in between
            before = owner._summary(route.res.plural, route.namespace or "", route.name)
            resp = owner.router.handle(req)
            after = owner._summary(route.res.plural, route.namespace or "", route.name)
        self.sim_subject = {"resource": route.res.plural, "name": route.name, "sub": route.sub, **before,
                            "after": after}  # fmt: skip
        return resp


_DROP: Final = Response(0)


class ApiServer:
    """A fake kube-apiserver over the given Store; see the module docstring for the surface.

    Args:
        version: what /version reports (`major.minor.patch`); also gates version-dependent
            defaulting (maxUnavailable). kubectl's gcloud dispatcher picks its binary from it.
        feature_gates: gates set by hand, as `--feature-gates` (MaxUnavailableStatefulSet=True);
            the others keep the version's default.
        port: 0 picks a free port; after `start()` `port` holds the bound one (a restart reuses it).
        tls: serve HTTPS with a throwaway trustme CA (`ca_pem`, embedded by `write_kubeconfig`).
            client-go (kubectl) sends bearer tokens only over TLS.
        disruption: run the small disruption controller that keeps PodDisruptionBudget status current.
        anonymous: the user (admin, readonly, repair) that token-less requests act as; None = 401.

    `api` is the verb layer (`stsfix.sim.apiserver.api.Api`) for in-process callers that want admission.
    """

    def __init__(self, store: Store, *, clock: SimClock, version: str = "1.34.0", host: str = "127.0.0.1",
                 port: int = 0, tls: bool = False, disruption: bool = True,
                 anonymous: str | None = None, feature_gates: Mapping[str, bool] | None = None) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self._version = version
        self.feature_gates: dict[str, bool] = dict(feature_gates or {})
        self.host = host
        self.port = port
        self.tls = tls
        self.request_log = RequestLog()
        self.faults = FaultSet()
        #: Streaming answers (watches, log follows) being served now: one ends when its client goes away.
        self.open_streams = 0
        self._streams = threading.Condition()
        self.tokens: dict[str, tuple[str, str]] = dict(DEFAULT_TOKENS)
        self.grants: dict[str, frozenset[tuple[str, str]]] = dict(ROLE_GRANTS)
        # NB: client-go sends a kubeconfig's token only over TLS, so kubectl against a plain-HTTP
        # server arrives without one. `anonymous="admin"` serves such requests as that user
        # (an unknown token is still 401); the default answers them 401 like a locked-down server.
        self.anonymous = anonymous
        self.pod_logs: dict[tuple[str, str, str], str] = {}
        self.ca_pem: bytes | None = None
        self.api = Api(store, clock=clock, version=lambda: self._version, gates=lambda: self.feature_gates)
        self.router = Router(
            self.api, logs=self.pod_logs, version=lambda: self._version, address=self._address
        )
        self._controls: dict[tuple[str, str], ControlHandler] = {
            key: functools.partial(fn, self) for key, fn in _BUILTIN.items()
        }
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Keeps PodDisruptionBudget status current (the API server's eviction check is live anyway).
        self.disruption = DisruptionController(store, clock) if disruption else None

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    def set_version(self, version: str) -> None:
        """Change what /version reports (and the version-gated defaulting) from now on."""
        self._version = version

    def start(self) -> ApiServer:
        """Bind and serve on a daemon thread; returns once the socket accepts connections."""
        httpd = _Server((self.host, self.port), _Handler)
        httpd.owner = self
        if self.tls:
            httpd.socket = self._tls_context().wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"sim-apiserver-{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        if self.disruption is not None:
            self.disruption.start()
        return self

    def _tls_context(self) -> ssl.SSLContext:
        import trustme  # lazily: a test-only dependency, needed only for tls=True

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        self.ca_pem = ca.cert_pem.bytes()
        return ctx

    def stop(self) -> None:
        """Stop serving; open watches end at their next poll."""
        self._stopping.set()
        if self.disruption is not None:
            self.disruption.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _address(self) -> str:
        return f"{self.host}:{self.port}"

    def add_user(self, token: str, user: str, role: str, *, grants: Iterable[tuple[str, str]] | None = None) -> None:
        """Accept `token` as `user` in `role`; `grants` defines (or redefines) the role: every read
        plus these (resource or resource/subresource, verb) pairs."""
        self.tokens[token] = (user, role)
        if grants is not None:
            self.grants[role] = frozenset(grants)

    def write_kubeconfig(self, path: str | os.PathLike[str], *, current: str = "admin") -> Path:
        """Write a kubeconfig with contexts sim-admin, sim-readonly and sim-repair."""
        doc = kubeconfig_dict(self.url, self.tokens, current=current, ca_pem=self.ca_pem)
        return write_kubeconfig(path, doc)

    # -- request log and control surface ----------------------------------------------------
    def _log(self, method: str, path: str, query: dict[str, str], status: int, user: str, body: bytes = b"", *,
             subject: dict[str, Any] | None = None, dropped: bool = False) -> None:  # fmt: skip
        self.request_log.append(
            RequestRecord(method, path, query, status, user, self.clock.now(), subject=subject, dropped=dropped,
                          body=body)  # fmt: skip
        )

    def _summary(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(plural, namespace, name)
        node_name = ((obj or {}).get("spec") or {}).get("nodeName") if plural == "pods" else None
        return summarize(obj, node=self.store.get("nodes", "", node_name) if node_name else None)

    def wait_open_streams(self, count: int, *, timeout: float) -> bool:
        """Wait until exactly `count` streaming answers are being served; False at the timeout."""
        with self._streams:
            return self._streams.wait_for(lambda: self.open_streams == count, timeout=timeout)

    def add_control_route(self, method: str, path: str, handler: ControlHandler) -> None:
        """Serve `handler(body) -> (status, dict)` at `/_sim/...` for admin-token requests."""
        self._controls[(method.upper(), path.rstrip("/"))] = handler

    def _control(self, method: str, path: str, body: bytes, user: str) -> Response:
        if user != "admin":
            raise SimApiError(403, "Forbidden", f'User "{user}" cannot use the simulator control surface')
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            raise SimApiError(400, "BadRequest", "control requests take a JSON body") from None
        if not isinstance(data, dict):
            raise SimApiError(400, "BadRequest", "control requests take a JSON object")
        handler = self._controls.get((method, path))
        if handler is None:
            raise SimApiError(404, "NotFound", f"no simulator control route {method} {path}")
        code, doc = handler(data)
        return Response(code, encode(doc))


def _requests(srv: ApiServer, _: Obj) -> tuple[int, Obj]:
    return 200, {"items": [r.as_json() for r in srv.request_log]}


def _clear_requests(srv: ApiServer, _: Obj) -> tuple[int, Obj]:
    srv.request_log.clear()
    return 200, {"status": "Success"}


def _add_fault(srv: ApiServer, data: Obj) -> tuple[int, Obj]:
    allowed = {"method", "path_re", "status", "retry_after", "latency", "drop", "times", "message", "cut_after",
               "watch", "drop_after", "expire_after"}  # fmt: skip
    unknown = set(data) - allowed
    if unknown:
        raise SimApiError(400, "BadRequest", f"unknown fault fields: {sorted(unknown)}")
    return 201, srv.faults.add(**data).as_json()


def _clear_faults(srv: ApiServer, _: Obj) -> tuple[int, Obj]:
    srv.faults.clear()
    return 200, {"status": "Success"}


def _list_faults(srv: ApiServer, _: Obj) -> tuple[int, Obj]:
    return 200, {"items": srv.faults.as_json()}


def _clock(srv: ApiServer, _: Obj) -> tuple[int, Obj]:
    return 200, {"now": srv.clock.now().isoformat(), "speed": srv.clock.speed}


def _set_clock(srv: ApiServer, data: Obj) -> tuple[int, Obj]:
    if "advance" in data:
        srv.clock.advance(float(data["advance"]))
    if "speed" in data:
        srv.clock.speed = float(data["speed"])
    return _clock(srv, data)


_BUILTIN: Final[dict[tuple[str, str], Callable[[ApiServer, Obj], tuple[int, Obj]]]] = {
    ("GET", "/_sim/requests"): _requests,
    ("DELETE", "/_sim/requests"): _clear_requests,
    ("GET", "/_sim/faults"): _list_faults,
    ("POST", "/_sim/faults"): _add_fault,
    ("DELETE", "/_sim/faults"): _clear_faults,
    ("GET", "/_sim/clock"): _clock,
    ("POST", "/_sim/clock"): _set_clock,
}
