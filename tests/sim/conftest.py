"""Fixtures for the bare simulated API server (no controllers): server, HTTP helper, typed client."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stsfix.sim.apiserver.server import ApiServer
from stsfix.sim.store.clock import SimClock
from stsfix.sim.store.store import Store

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


class Http:
    """A tiny raw-HTTP client for the sim: returns (status, parsed JSON or text, headers)."""

    def __init__(self, url: str, token: str = "admin-token", *, ca_pem: bytes | None = None):
        self.url = url
        self.token = token
        self.context = ssl.create_default_context(cadata=ca_pem.decode()) if ca_pem else None

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        token: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        req.add_header("Accept", accept)
        tok = self.token if token is None else token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
                status, payload, headers = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, payload, headers = err.code, err.read(), dict(err.headers)
        try:
            return status, json.loads(payload), headers
        except ValueError:
            return status, payload.decode(), headers


@pytest.fixture
def clock() -> SimClock:
    # Frozen simulated time: timestamps and ages are exact however slow the machine is; tests move
    # it with clock.advance().
    return SimClock(start=T0, speed=0.0)


@pytest.fixture
def store(clock: SimClock) -> Store:
    return Store(now=clock.now)


@pytest.fixture
def server(store: Store, clock: SimClock) -> Iterator[ApiServer]:
    srv = ApiServer(store, clock=clock, version="1.34.0")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def http(server: ApiServer) -> Http:
    return Http(server.url)


@pytest.fixture
def kubeconfig(server: ApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def k8s(kubeconfig: Path) -> Iterator[Any]:
    """An official-client ApiClient (admin context) for the sim."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kubeconfig), context="sim-admin")
    try:
        yield client
    finally:
        client.close()


def sts_manifest(
    name: str = "web", *, replicas: int = 2, image: str = "nginx:1.25", **spec: Any
) -> dict[str, Any]:
    """A minimal StatefulSet body as a user would write it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }


def pod_manifest(
    name: str, *, labels: dict[str, str] | None = None, node: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"} if labels is None else labels},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
    }
    if node:
        body["spec"]["nodeName"] = node
    return body
