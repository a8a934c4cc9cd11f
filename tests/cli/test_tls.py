"""TLS over the lean transport is as strict as kubectl's: the CA, the server name and client
certificates are checked for real, on the simulated cluster and on a server that wants a client
certificate. A certificate error is one line, exit 5, and not retried."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from stsfix.errors import ExitCode


def _edit(env: Any, tmp_path: Path, **cluster: Any) -> str:
    """The sim's kubeconfig with its cluster entry changed (a value of None removes the key)."""
    config = yaml.safe_load(Path(env.kubeconfig).read_text())
    entry = config["clusters"][0]["cluster"]
    for key, value in cluster.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path = tmp_path / "edited"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def tls_sim(make_sim):
    return make_sim("healthy", tls=True)


def test_the_clusters_ca_is_verified(cli, tls_sim, tmp_path: Path) -> None:
    assert cli(*tls_sim.args("inspect", "web")).code == ExitCode.OK
    other = base64.b64encode(trustme.CA().cert_pem.bytes()).decode()
    result = cli(
        "inspect", "web", "--kubeconfig", _edit(tls_sim, tmp_path, **{"certificate-authority-data": other})
    )
    assert result.code == ExitCode.CLUSTER_ERROR
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line: no retries
    assert (
        result.stderr.startswith("error: Unable to connect to the server: ")
        and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    )


def test_without_a_ca_the_system_store_is_used_and_refuses_the_sims_ca(cli, tls_sim, tmp_path: Path) -> None:
    result = cli(
        "inspect", "web", "--kubeconfig", _edit(tls_sim, tmp_path, **{"certificate-authority-data": None})
    )
    assert result.code == ExitCode.CLUSTER_ERROR and "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_insecure_skip_tls_verify_is_honoured(cli, tls_sim, tmp_path: Path) -> None:
    path = _edit(tls_sim, tmp_path, **{"certificate-authority-data": None, "insecure-skip-tls-verify": True})
    assert cli("inspect", "web", "--kubeconfig", path).code == ExitCode.OK


@pytest.mark.parametrize(
    ("name", "code"), [("localhost", ExitCode.OK), ("api.example.test", ExitCode.CLUSTER_ERROR)]
)
def test_tls_server_name_is_the_name_checked(cli, tls_sim, tmp_path: Path, name: str, code: int) -> None:
    result = cli("inspect", "web", "--kubeconfig", _edit(tls_sim, tmp_path, **{"tls-server-name": name}))
    assert result.code == code, result
    if code != ExitCode.OK:
        assert "CERTIFICATE_VERIFY_FAILED" in result.stderr and "api.example.test" in result.stderr


# -- client certificates ---------------------------------------------------------------------------
@pytest.fixture
def mtls_server() -> Iterator[tuple[trustme.CA, int]]:
    """An HTTPS server on 127.0.0.1 that answers /version only to a client certificate from its CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            peer = self.connection.getpeercert() or {}
            names = [value for _, value in peer.get("subjectAltName", ())]
            body = json.dumps({"gitVersion": "v1.34.4", "client": names}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield ca, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _kubeconfig(tmp_path: Path, port: int, ca: trustme.CA, user: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}",
                                               "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode()}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }  # fmt: skip
    path = tmp_path / "mtls"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_a_client_certificate_is_presented(mtls_server, tmp_path: Path) -> None:
    from stsfix.kube.client import KubeTarget, connect_raw

    ca, port = mtls_server
    client = ca.issue_cert("stsfix-client@example.test")
    user = {
        "client-certificate-data": base64.b64encode(client.cert_chain_pems[0].bytes()).decode(),
        "client-key-data": base64.b64encode(client.private_key_pem.bytes()).decode(),
    }
    conn = connect_raw(KubeTarget(kubeconfig=_kubeconfig(tmp_path, port, ca, user)))
    assert conn.config.source == "kubeconfig"
    assert conn.request("GET", "/version")["client"] == ["stsfix-client@example.test"]


def test_without_a_client_certificate_the_handshake_fails(mtls_server, tmp_path: Path) -> None:
    from stsfix.errors import ClusterError
    from stsfix.kube.client import KubeTarget, connect_raw

    ca, port = mtls_server
    conn = connect_raw(KubeTarget(kubeconfig=_kubeconfig(tmp_path, port, ca, {"token": "t"})))
    with pytest.raises(ClusterError) as caught:
        conn.request("GET", "/version")
    assert caught.value.message.startswith("Unable to connect to the server")
