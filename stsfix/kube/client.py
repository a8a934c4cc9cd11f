"""The connection to a cluster: configuration, raw-JSON requests, watch streams, error translation.

This package is the only importer of the official `kubernetes` client, and imports it lazily so
`stsfix --help` never pays for it. Reads ask for raw JSON (no typed models: they cost about 10x on
large lists) and callers parse it with `stsfix.model`. Every client failure becomes a
`stsfix.errors` type with a kubectl-like one-line message; a raw ApiException (which carries
headers) is never shown.
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
from typing import Any
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

# The service account mount of a pod; STSFIX_SERVICE_ACCOUNT_DIR points elsewhere (tests, sidecars).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
USER_AGENT = "stsfix/0.1"


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
        api_client: Any,
        *,
        namespace: str,
        context: str | None,
        request_timeout: float | None,
        verbose: int = 0,
        cluster: str = "",
    ):
        self._api = api_client
        self.namespace = namespace
        self.context = context
        self.cluster = cluster
        self.request_timeout = request_timeout
        self.verbose = verbose
        self.host: str = api_client.configuration.host
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
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        try:
            method, url, headers, body, _ = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            return self._api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout or self.request_timeout,
            )
        except ApiException as exc:
            if exc.status:
                raise translate_status(exc.status, exc.reason or "", exc.body, what=what) from None
            raise ClusterError(
                f"Unable to connect to the server: {str(exc.reason).splitlines()[0][:200]}"
            ) from None
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
        self._note_date(resp.getheaders())
        if resp.status >= 400:
            raise translate_status(
                resp.status, resp.reason or "", data, what=what, retry_after=resp.getheader("Retry-After")
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
        self._note_date(resp.getheaders())
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
        self._note_date(resp.getheaders())
        if resp.status >= 400:
            raise translate_status(resp.status, resp.reason or "", resp.read(), what=what)
        raw = resp.response
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


def _context_namespace(kubeconfig: str | None, context: str | None) -> tuple[str, str | None, str]:
    """(namespace, context name, cluster name) of the chosen (or current) context."""
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = active
    if context:
        chosen = next((c for c in contexts if c.get("name") == context), None)
        if chosen is None:
            raise ConfigError(f'error: context "{context}" does not exist')
    if not chosen:
        raise ConfigError("error: no current context is set in the kubeconfig; pass --context")
    settings = chosen.get("context") or {}
    return settings.get("namespace") or "default", chosen.get("name"), str(settings.get("cluster") or "")


def _service_account_dir() -> str:
    return os.environ.get("STSFIX_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        os.path.join(_service_account_dir(), "token")
    )


def _load_in_cluster(cfg: Any) -> str:
    """Configure from the pod's service account (like kubectl in a pod); return its namespace."""
    from kubernetes.config.incluster_config import InClusterConfigLoader

    folder = _service_account_dir()
    InClusterConfigLoader(
        token_filename=os.path.join(folder, "token"), cert_filename=os.path.join(folder, "ca.crt")
    ).load_and_set(cfg)
    try:
        with open(os.path.join(folder, "namespace"), encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


def connect_raw(target: KubeTarget) -> Connection:
    """Build a Connection from kubeconfig flags, KUBECONFIG (several paths allowed) or in-cluster config."""
    import yaml
    from kubernetes import client, config

    cfg = client.Configuration()
    explicit = target.kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if not explicit and not os.path.exists(os.path.expanduser("~/.kube/config")) and _in_cluster():
            namespace, context, cluster = _load_in_cluster(cfg), None, "in-cluster"
        else:
            if target.kubeconfig and not os.path.exists(target.kubeconfig):
                raise ConfigError(f"error: stat {target.kubeconfig}: no such file or directory")
            # NB: the client reads $KUBECONFIG once, at import; read it now, so it is always current.
            kubeconfig = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            namespace, context, cluster = _context_namespace(kubeconfig, target.context)
            config.load_kube_config(
                config_file=kubeconfig,
                context=target.context,
                client_configuration=cfg,
                persist_config=False,
            )
    except StsfixError:
        raise
    except config.ConfigException as exc:
        raise ConfigError(f"error: invalid configuration: {str(exc).splitlines()[0][:200]}") from None
    except yaml.YAMLError as exc:  # the client parses the file with PyYAML and lets its errors through
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"error: the kubeconfig is not valid YAML{where}: {problem}"[:300]) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"error: could not load kubeconfig: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    # NB: no silent urllib3 retries: stsfix retries in one tenacity policy that logs every attempt.
    cfg.retries = False
    api = client.ApiClient(configuration=cfg)
    api.user_agent = USER_AGENT
    return Connection(
        api,
        namespace=target.namespace or namespace,
        context=context,
        request_timeout=target.request_timeout,
        verbose=target.verbose,
        cluster=cluster,
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
