"""The guard's HTTP endpoints: /metrics (Prometheus text format), /healthz and /readyz.

`/healthz` is 200 while the guard's loop is alive (it has run within `--stale-after`), so a
kubelet liveness probe restarts a wedged process; `/readyz` is 200 once every watch has listed
its resource and while they stay synced, so a Service only sends scrapes to replicas with a
current view. Readiness does not depend on leadership: followers serve the same per-set metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from stsfix.errors import UsageError


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `PORT`; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]")
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f'invalid --listen "{text}": use HOST:PORT, :PORT or PORT')
    return host or "0.0.0.0", int(port)


class GuardServer:
    """A small threaded HTTP server on its own daemon thread."""

    def __init__(
        self,
        listen: tuple[str, int],
        *,
        registry: CollectorRegistry,
        healthy: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
    ):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "stsfix-guard"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(owner.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/livez"):
                    self._probe(owner.healthy())
                elif path == "/readyz":
                    self._probe(owner.ready())
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

            def _probe(self, verdict: tuple[bool, str]) -> None:
                ok, why = verdict
                self._send(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {why}\n".encode())

            def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # scrapes every 30s would drown the guard's own log

        self.registry, self.healthy, self.ready = registry, healthy, ready
        self.httpd = ThreadingHTTPServer(listen, Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       daemon=True, name="stsfix-guard-http")  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> GuardServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
