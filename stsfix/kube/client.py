"""The connection to a cluster: raw-JSON requests, watch streams, the server's clock, error translation.

`connect_raw` reads the configuration with the lean loader (`stsfix.kube.config`), or with the
official client's loader for the shapes that one does not read (`stsfix.kube.official`), and
sends every request over one urllib3 pool (`stsfix.kube.transport`), so a read never imports the
official client unless its kubeconfig needs it. Reads ask for raw JSON and callers parse it with
`stsfix.model`. Every failure becomes a `stsfix.errors` type with a kubectl-like one-line
message; no raw client exception (which carries headers) is ever shown.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stsfix.errors import (
    AccessDeniedError,
    ApiUnavailableError,
    ClusterError,
    ConfigError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
    StsfixError,
)

USER_AGENT = "stsfix/0.1"


if TYPE_CHECKING:
    from stsfix.kube.config import ClientConfig


@dataclass(frozen=True, slots=True)
class KubeTarget:
    """How to reach a cluster, as kubectl's global flags say it."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    request_timeout: float | None = None
    verbose: int = 0


def _status_message(body: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from a Status body, or empty strings."""
    if not body:
        return "", ""
    try:
        status = json.loads(body)
    except (ValueError, TypeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return "", text.strip()[:256]
    if not isinstance(status, dict):
        return "", ""
    return str(status.get("reason") or ""), str(status.get("message") or "")[:256]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def translate_status(
    status: int, reason: str, body: bytes | None, *, what: str, retry_after: str | None = None
) -> StsfixError:
    """An HTTP error answer as a stsfix error, with kubectl's `Error from server (Reason): msg` shape."""
    status_reason, message = _status_message(body)
    reason = status_reason or reason or "Unknown"
    text = f"Error from server ({reason}): {message or what}"
    details: dict[str, object] = {"status": status, "reason": reason, "request": what}
    if status == 404:
        return NotFoundError(text, details=details)
    if status in (401, 403):
        return AccessDeniedError(text, details=details)
    if status == 409:
        return PreconditionFailedError(text, details=details)
    if status == 422 or status == 400:
        return InvalidError(text, details=details)
    if status == 410:
        return ClusterError(text, code="expired", details=details)
    if status == 429 or status >= 500:
        return ApiUnavailableError(text, retry_after=_retry_after(retry_after), details=details)
    return ClusterError(text, details=details)


class Connection:
    """One configured client: raw requests by path, watch streams and the server's clock."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        namespace: str,
        context: str | None,
        request_timeout: float | None,
        verbose: int = 0,
        cluster: str = "",
    ):
        from stsfix.kube.transport import pool_manager

        self.config = config
        self._pool = pool_manager(config)
        self.namespace = namespace
        self.context = context
        self.cluster = cluster
        self.request_timeout = request_timeout
        self.verbose = verbose
        self.host: str = config.server
        self._date_lock = threading.Lock()
        self._server_date: datetime | None = None

    # -- clock ------------------------------------------------------------------------------
    def server_now(self) -> datetime:
        """The API server's time from its last Date header (the local clock before any answer)."""
        with self._date_lock:
            return self._server_date or datetime.now(UTC)

    def _note_date(self, headers: Any) -> None:
        value = headers.get("Date") if headers is not None else None
        if not value:
            return
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        with self._date_lock:
            self._server_date = parsed.astimezone(UTC)

    # -- requests ---------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float | None,
        what: str,
        accept: str = "application/json",
    ) -> Any:
        """The urllib3 response (body not read yet), or a stsfix error when no answer came."""
        from urllib3 import Timeout
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.exceptions import SSLError

        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        authorization = self.config.credentials.header()
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = body if isinstance(body, str | bytes) else json.dumps(body)
        # the official client's query encoding: keys as they are, values percent-quoted
        params = "&".join(f"{k}={quote(_query_value(v))}" for k, v in (query or {}).items() if v is not None)
        url = self.config.server + path + ("?" + params if params else "")
        seconds = timeout or self.request_timeout
        try:
            return self._pool.request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=Timeout(total=seconds) if seconds else Timeout.DEFAULT_TIMEOUT,
                preload_content=False,
                retries=False,
            )
        except SSLError as exc:  # not retried: a certificate does not get better by asking again
            reason = str(exc.args[0] if exc.args else exc).splitlines()[0][:200]
            raise ClusterError(f"Unable to connect to the server: {reason}") from None
        except (Urllib3Error, OSError) as exc:
            raise ApiUnavailableError(
                f"Unable to connect to the server ({what}): {type(exc).__name__}"
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the parsed JSON answer or raise a stsfix error."""
        if dry_run:
            query = {**(query or {}), "dryRun": "All"}
        what = f"{method} {path}"
        started = time.monotonic()
        resp = self._send(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout, what=what
        )
        if self.verbose:
            shown = "&".join(f"{k}={v}" for k, v in (query or {}).items() if v is not None)
            took = (time.monotonic() - started) * 1000
            print(f"{what}{'?' + shown if shown else ''} -> {resp.status} ({took:.0f} ms)", file=sys.stderr)
        try:
            data = resp.read()
        except Exception as exc:  # urllib3 read errors surface here with preload_content=False
            raise ApiUnavailableError(
                f"Connection lost reading the answer ({what}): {type(exc).__name__}"
            ) from None
        finally:
            resp.release_conn()
        self._note_date(resp.headers)
        if resp.status >= 400:
            raise translate_status(
                resp.status, resp.reason or "", data, what=what, retry_after=resp.headers.get("Retry-After")
            )
        if not data:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError:
            raise ClusterError(f"the server answered {what} with something that is not JSON") from None
        return parsed if isinstance(parsed, dict) else {"items": parsed}

    def request_text(
        self, path: str, *, query: dict[str, Any] | None = None, timeout: float | None = None
    ) -> str:
        """GET a text answer (a pod's log); stsfix errors as for `request`."""
        what = f"GET {path}"
        started = time.monotonic()
        resp = self._send(
            "GET", path, query=query, body=None, content_type=None, timeout=timeout, what=what, accept="*/*"
        )
        if self.verbose:
            took = (time.monotonic() - started) * 1000
            print(f"{what} -> {resp.status} ({took:.0f} ms)", file=sys.stderr)
        try:
            data = resp.read()
        except Exception as exc:  # urllib3 read errors surface here with preload_content=False
            raise ApiUnavailableError(f"Connection lost reading the answer ({what}): {type(exc).__name__}") from None
        finally:
            resp.release_conn()
        self._note_date(resp.headers)
        if resp.status >= 400:
            raise translate_status(resp.status, resp.reason or "", data, what=what)
        return bytes(data or b"").decode("utf-8", "replace")

    def stream(
        self, path: str, *, query: dict[str, Any], timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Watch events as raw dicts ({type, object}) until the server closes the stream."""
        what = f"WATCH {path}"
        resp = self._send(
            "GET",
            path,
            query={**query, "watch": "true"},
            body=None,
            content_type=None,
            timeout=timeout,
            what=what,
        )
        self._note_date(resp.headers)
        if resp.status >= 400:
            try:
                raise translate_status(resp.status, resp.reason or "", resp.read(), what=what)
            finally:
                resp.release_conn()
        raw = resp
        buffer = b""
        try:
            for chunk in raw.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        except (OSError, ValueError) as exc:
            raise ApiUnavailableError(f"watch interrupted ({what}): {type(exc).__name__}") from None
        except Exception as exc:
            from urllib3.exceptions import HTTPError as Urllib3Error

            if isinstance(exc, Urllib3Error):
                raise ApiUnavailableError(f"watch interrupted ({what}): {type(exc).__name__}") from None
            raise
        finally:
            raw.release_conn()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def context_names(kubeconfig: str | None) -> tuple[str, ...]:
    """Every context of the kubeconfig (flag, else $KUBECONFIG, else ~/.kube/config), in file order."""
    from stsfix.kube import config
    from stsfix.kube.credentials import Unsupported

    if kubeconfig and not os.path.exists(kubeconfig):
        raise ConfigError(f"error: stat {kubeconfig}: no such file or directory")
    try:
        merged = config.merge_files(config.kubeconfig_spec(kubeconfig))
    except Unsupported as exc:
        raise ConfigError(f"error: invalid configuration: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"error: could not load kubeconfig: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    return tuple(str(entry["name"]) for entry, _ in merged.entries["contexts"])


def load_config(target: KubeTarget) -> ClientConfig:
    """The lean loader's configuration, or the official loader's for shapes the lean one leaves."""
    from stsfix.kube import config
    from stsfix.kube.credentials import Unsupported

    try:
        return config.load(target.kubeconfig, target.context)
    except Unsupported:
        from stsfix.kube.official import official_config

        return official_config(target.kubeconfig, target.context)


def connect_raw(target: KubeTarget) -> Connection:
    """A Connection from kubeconfig flags, KUBECONFIG (several paths allowed) or in-cluster config."""
    config = load_config(target)
    if target.verbose >= 2:
        print(f"config: {config.source} ({config.server}, context {config.context or '-'})", file=sys.stderr)
    return Connection(
        config,
        namespace=target.namespace or config.namespace,
        context=config.context,
        request_timeout=target.request_timeout,
        verbose=target.verbose,
        cluster=config.cluster,
    )


def path_for(
    resource: str, namespace: str | None = None, name: str | None = None, sub: str | None = None
) -> str:
    """The REST path of a resource (`pods`, `statefulsets`, ...), namespaced when namespace is given."""
    group = API_GROUPS[resource]
    base = f"/api/{group}" if group == "v1" else f"/apis/{group}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{resource}"
    if name:
        base += f"/{quote(name, safe='')}"
    if sub:
        base += f"/{sub}"
    return base


API_GROUPS: dict[str, str] = {
    "pods": "v1",
    "events": "v1",
    "persistentvolumeclaims": "v1",
    "nodes": "v1",
    "namespaces": "v1",
    "statefulsets": "apps/v1",
    "controllerrevisions": "apps/v1",
    "poddisruptionbudgets": "policy/v1",
    "leases": "coordination.k8s.io/v1",
}
