"""A fault-injecting HTTP proxy in front of the real kube-apiserver, for the realcluster fault cells.

stsfix talks plain HTTP to 127.0.0.1:<port> with the repair service account's token (the official
client sends it over plain HTTP too); the proxy forwards every request over TLS to the real API
server as it came (headers, body, and a watch stream chunk by chunk, the server's Date header
included: stsfix judges ages by it), except those a fault matches. Faults are the simulator's
(`stsfix.sim.apiserver.faults.FaultSet`): a status answered in the real server's stead, or an
`action` run just before the request is forwarded (a real `kubectl patch` landing between stsfix's
read and its write, so that the real server answers 409). Standard library only.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from stsfix.sim.apiserver.faults import FaultSet

_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "host",
                  "accept-encoding", "upgrade", "te", "trailer"})  # fmt: skip
_REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._proxy()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _proxy(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        url = urlsplit(self.path)
        is_watch = "watch=true" in url.query or "watch=1" in url.query
        fault = proxy.faults.take(self.command, url.path.rstrip("/"), is_watch=is_watch)
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.action is not None:
                fault.action()
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.status:
                self._status(fault.status, fault.message or f"injected fault: {_REASONS.get(fault.status, 'Error')}")
                return
        upstream = http.client.HTTPSConnection(proxy.host, proxy.port, context=proxy.context, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            self.send_response_only(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            streamed = answer.getheader("Content-Length") is None
            if streamed:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while chunk := answer.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            else:
                data = answer.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        except OSError:
            self.close_connection = True
        finally:
            upstream.close()

    def _status(self, code: int, message: str) -> None:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                  "reason": _REASONS.get(code, "InternalError"), "code": code}  # fmt: skip
        data = json.dumps(status).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FaultProxy:
    """`FaultProxy(server_url, ca_file).start()`; `url` is what a kubeconfig points at; `faults` as in the sim."""

    def __init__(self, server_url: str, ca_file: str):
        parts = urlsplit(server_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.context = ssl.create_default_context(cafile=ca_file)
        self.faults = FaultSet()
        self._httpd: _Server | None = None

    def start(self) -> FaultProxy:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.proxy = self
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
