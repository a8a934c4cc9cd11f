"""The lean kubeconfig loader reads every shape it accepts exactly as the official client does.

For each kubeconfig of the matrix, both loaders run and the results are compared: server,
namespace and context, the Authorization header, and the urllib3 pool each would use (its class,
proxy, verification mode, SNI/hostname settings, and the CA, client certificate and key by
content). The official client (`kubernetes.config.load_kube_config` and
`kubernetes.client.rest.RESTClientObject`) is the reference. Shapes the lean loader leaves to the
official one are checked to go there.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from stsfix.errors import ConfigError
from stsfix.kube import config as lean
from stsfix.kube.credentials import Unsupported

CA = trustme.CA()
SERVER = CA.issue_cert("127.0.0.1", "localhost", "api.example.test")
CLIENT = CA.issue_cert("client@example.test")
CA_PEM = CA.cert_pem.bytes()
CERT_PEM = CLIENT.cert_chain_pems[0].bytes()
KEY_PEM = CLIENT.private_key_pem.bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def doc(
    cluster: dict[str, Any], user: dict[str, Any] | None, *, namespace: str | None = "team"
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": "c"}
    if user is not None:
        context["user"] = "u"
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}] if user is not None else [],
        "contexts": [{"name": "ctx", "context": context}],
        "current-context": "ctx",
    }


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _pool_view(pool: Any) -> dict[str, Any]:
    kw = dict(pool.connection_pool_kw)
    ca = kw.pop("ca_cert_data", None)
    ca_file = kw.pop("ca_certs", None)
    if isinstance(ca, str):
        ca = ca.encode()
    return {
        "class": type(pool).__name__,
        "proxy": str(pool.proxy) if getattr(pool, "proxy", None) else None,
        "cert_reqs": kw.pop("cert_reqs", None),
        "server_hostname": kw.pop("server_hostname", None),
        "assert_hostname": kw.pop("assert_hostname", None),
        "ca": ca if ca is not None else _read(ca_file),
        "cert": _read(kw.pop("cert_file", None)),
        "key": _read(kw.pop("key_file", None)),
        "maxsize": kw.pop("maxsize", None),
        "rest": {k: v for k, v in kw.items() if k not in ("retries", "socket_options", "proxy_headers")},
    }


@contextlib.contextmanager
def kubeconfig_arg(path: str) -> Iterator[str | None]:
    """A list of files is given as $KUBECONFIG (as users give it), a single file as --kubeconfig."""
    if os.pathsep not in path:
        yield path
        return
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = path
    try:
        yield None
    finally:
        os.environ["KUBECONFIG"] = saved or ""


def official_view(path: str, context: str | None = None) -> dict[str, Any]:
    from kubernetes.client.rest import RESTClientObject

    from stsfix.kube.official import official_configuration

    with kubeconfig_arg(path) as arg:
        configuration, namespace, name, cluster = official_configuration(arg, context)
    configuration.retries = False  # what stsfix always set
    auth = (configuration.auth_settings().get("BearerToken") or {}).get("value")
    return {
        "server": configuration.host,
        "namespace": namespace,
        "context": name,
        "cluster": cluster,
        "authorization": auth,
        "pool": _pool_view(RESTClientObject(configuration).pool_manager),
    }


def lean_view(path: str, context: str | None = None) -> dict[str, Any]:
    from stsfix.kube.transport import pool_manager

    with kubeconfig_arg(path) as arg:
        loaded = lean.load(arg, context)
    assert loaded.source == "kubeconfig"
    return {
        "server": loaded.server,
        "namespace": loaded.namespace,
        "context": loaded.context,
        "cluster": loaded.cluster,
        "authorization": loaded.credentials.header(),
        "pool": _pool_view(pool_manager(loaded)),
    }


def write(folder: Path, name: str, document: dict[str, Any]) -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def exec_plugin(folder: Path, output: dict[str, Any]) -> str:
    """An exec credential plugin that prints `output`, echoing the apiVersion it was asked for."""
    script = folder / "plugin.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert os.environ.get('PLUGIN_MODE') == 'test', 'env from the kubeconfig is passed'\n"
        f"out = {output!r}\n"
        "out['apiVersion'] = info['apiVersion']\n"
        "print(json.dumps(out))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _cases(tmp: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (kubeconfig path or KUBECONFIG list, --context)."""
    (tmp / "certs").mkdir()
    (tmp / "certs" / "ca.crt").write_bytes(CA_PEM)
    (tmp / "certs" / "client.crt").write_bytes(CERT_PEM)
    (tmp / "certs" / "client.key").write_bytes(KEY_PEM)
    (tmp / "token").write_text("file-token")
    https = {"server": "https://127.0.0.1:6443/", "certificate-authority-data": b64(CA_PEM)}
    token = {"token": "abc"}
    plugin = exec_plugin(tmp, {"kind": "ExecCredential", "status": {"token": "from-exec",
                                                                    "expirationTimestamp": "2999-01-01T00:00:00Z"}})  # fmt: skip
    cert_plugin_dir = tmp / "certplugin"
    cert_plugin_dir.mkdir()
    cert_plugin = exec_plugin(cert_plugin_dir, {"kind": "ExecCredential", "status": {
        "clientCertificateData": CERT_PEM.decode(), "clientKeyData": KEY_PEM.decode()}})  # fmt: skip
    env = [{"name": "PLUGIN_MODE", "value": "test"}]
    cases: dict[str, dict[str, Any]] = {
        "token, CA data": doc(https, token),
        "token file and CA file, relative": doc(
            {"server": "https://127.0.0.1:6443", "certificate-authority": "certs/ca.crt"},
            {"tokenFile": "token"},
        ),
        "client cert and key as data": doc(
            https, {"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)}
        ),
        "client cert and key as files": doc(
            https, {"client-certificate": "certs/client.crt", "client-key": "certs/client.key"}
        ),
        "insecure-skip-tls-verify": doc(
            {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}, token
        ),
        "insecure-skip-tls-verify false": doc({**https, "insecure-skip-tls-verify": False}, token),
        "tls-server-name": doc({**https, "tls-server-name": "api.example.test"}, token),
        "proxy-url": doc({**https, "proxy-url": "http://proxy.example.test:3128"}, token),
        "basic auth": doc(https, {"username": "admin", "password": "s3cret:x"}),
        "exec v1 token": doc(
            https,
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": plugin,
                    "args": ["--verbose"],
                    "env": env,
                    "interactiveMode": "Never",
                }
            },
        ),  # fmt: skip
        "exec v1beta1 client certificate": doc(
            https,
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": cert_plugin,
                    "env": env,
                    "provideClusterInfo": True,
                }
            },
        ),  # fmt: skip
        "token wins over exec": doc(
            https,
            {**token, "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/nonexistent"}},
        ),  # fmt: skip
        "empty token ignores tokenFile": doc(
            https, {"token": "", "tokenFile": "token", "username": "a", "password": "b"}
        ),
        "empty CA data": doc({"server": "https://127.0.0.1:6443", "certificate-authority-data": ""}, token),
        "plain http ignores TLS material": doc(
            {"server": "http://127.0.0.1:8080", "certificate-authority": "missing.crt"},
            {"token": "abc", "client-certificate": "missing.crt"},
        ),
        "no user": doc(https, None),
        "user without credentials": doc(https, {}),
        "no namespace": doc(https, token, namespace=None),
    }
    paths = {name: (write(tmp, f"case-{i}.yaml", d), None) for i, (name, d) in enumerate(cases.items())}
    # --context picks a context that is not current
    two = doc(https, token)
    two["contexts"].append({"name": "other", "context": {"cluster": "c", "namespace": "elsewhere"}})
    paths["--context other"] = (write(tmp, "two.yaml", two), "other")
    # KUBECONFIG lists: named entries from the first file that has them, current-context from the
    # last file that sets it (the official merger), relative paths against each entry's own file.
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    (tmp / "a" / "ca.crt").write_bytes(CA_PEM)
    (tmp / "b" / "token").write_text("b-token")
    first = {"clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                                    "certificate-authority": "ca.crt"}}],
             "users": [{"name": "u", "user": {"tokenFile": "../token"}}],
             "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
             "current-context": "ctx"}  # fmt: skip
    second = {"clusters": [{"name": "c", "cluster": {"server": "https://ignored:1"}}],
              "users": [{"name": "u2", "user": {"tokenFile": "token"}}],
              "contexts": [{"name": "ctx2", "context": {"cluster": "c", "user": "u2", "namespace": "b"}}],
              "current-context": "ctx2"}  # fmt: skip
    spec = os.pathsep.join(
        [write(tmp / "a", "config", first), str(tmp / "missing"), write(tmp / "b", "config", second)]
    )
    paths["merged KUBECONFIG list"] = (spec, None)
    paths["merged KUBECONFIG list, --context"] = (spec, "ctx")
    return paths


CASE_NAMES = [
    "token, CA data", "token file and CA file, relative", "client cert and key as data",
    "client cert and key as files", "insecure-skip-tls-verify", "insecure-skip-tls-verify false",
    "tls-server-name", "proxy-url", "basic auth", "exec v1 token", "exec v1beta1 client certificate",
    "token wins over exec", "empty token ignores tokenFile", "empty CA data", "plain http ignores TLS material",
    "no user", "user without credentials", "no namespace", "--context other", "merged KUBECONFIG list",
    "merged KUBECONFIG list, --context",
]  # fmt: skip


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str | None]]:
    return _cases(tmp_path_factory.mktemp("kubeconfigs"))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_lean_loader_equals_the_official_one(cases: dict[str, tuple[str, str | None]], name: str) -> None:
    path, context = cases[name]
    assert lean_view(path, context) == official_view(path, context)


def test_the_matrix_covers_every_case(cases: dict[str, tuple[str, str | None]]) -> None:
    assert set(cases) == set(CASE_NAMES)


@pytest.mark.parametrize(
    ("env", "expect_proxy"),
    [
        pytest.param({"HTTPS_PROXY": "http://envproxy.test:8080"}, True, id="$HTTPS_PROXY"),
        pytest.param(
            {"https_proxy": "http://envproxy.test:8080", "NO_PROXY": "127.0.0.0/8"},
            False,
            id="$no_proxy CIDR",
        ),
        pytest.param(
            {"ALL_PROXY": "http://envproxy.test:8080", "no_proxy": "localhost,.example"},
            True,
            id="$all_proxy",
        ),
        pytest.param(
            {"HTTP_PROXY": "http://envproxy.test:8080"}, False, id="$http_proxy for an https server"
        ),
    ],
)
def test_proxies_from_the_environment_match_the_official_client(
    cases: dict[str, tuple[str, str | None]],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expect_proxy: bool,
) -> None:
    for key in list(os.environ):
        if key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path, _ = cases["token, CA data"]
    view = lean_view(path)
    assert view == official_view(path)
    assert (view["pool"]["class"] == "ProxyManager") is expect_proxy


def test_verification_stays_on_unless_the_kubeconfig_says_insecure(
    cases: dict[str, tuple[str, str | None]],
) -> None:
    import ssl

    for name in CASE_NAMES:
        path, context = cases[name]
        view = lean_view(path, context)
        expected = ssl.CERT_NONE if name == "insecure-skip-tls-verify" else ssl.CERT_REQUIRED
        assert view["pool"]["cert_reqs"] == expected, name


@pytest.mark.parametrize(
    ("user", "cluster_extra"),
    [
        pytest.param({"auth-provider": {"name": "oidc", "config": {}}}, {}, id="auth-provider"),
        pytest.param({"token": "abc", "as": "someone"}, {}, id="impersonation"),
        pytest.param({"token": "abc"}, {"disable-compression": True}, id="unknown cluster key"),
        pytest.param(
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            {},
            id="exec v1alpha1",
        ),
        pytest.param({"token": "abc"}, {"proxy-url": "socks5://proxy:1080"}, id="SOCKS proxy"),
        pytest.param({"token": None}, {}, id="null value"),
    ],
)
def test_other_shapes_go_to_the_official_loader(
    tmp_path: Path, user: dict[str, Any], cluster_extra: dict[str, Any]
) -> None:
    path = write(tmp_path, "config", doc({"server": "https://127.0.0.1:6443", **cluster_extra}, user))
    with pytest.raises(Unsupported):
        lean.load(path, None)


def test_an_unsupported_shape_is_read_by_the_official_loader(tmp_path: Path) -> None:
    from stsfix.kube.client import KubeTarget, load_config

    path = write(tmp_path, "config", doc({"server": "https://127.0.0.1:6443", "certificate-authority-data": b64(CA_PEM)},
                                         {"token": "abc", "as": "someone"}))  # fmt: skip
    loaded = load_config(KubeTarget(kubeconfig=path))
    assert loaded.source == "official"
    assert (loaded.server, loaded.namespace, loaded.credentials.header()) == (
        "https://127.0.0.1:6443",
        "team",
        "Bearer abc",
    )
    assert Path(loaded.ca_file or "").read_bytes() == CA_PEM


def test_a_token_file_is_trimmed_as_kubectl_does(tmp_path: Path) -> None:
    """The one deliberate difference: the official loader sends the file's trailing newline in the
    header (http.client then refuses the request); kubectl trims it, and so does stsfix."""
    (tmp_path / "token").write_text("file-token\n")
    path = write(tmp_path, "config", doc({"server": "https://127.0.0.1:6443"}, {"tokenFile": "token"}))
    assert lean.load(path, None).credentials.header() == "Bearer file-token"
    assert official_view(path)["authorization"] == "Bearer file-token\n"


def test_an_undefined_current_context_goes_to_the_official_loader(tmp_path: Path) -> None:
    document = {**doc({"server": "https://x"}, {}), "current-context": "nope"}
    with pytest.raises(Unsupported):
        lean.load(write(tmp_path, "config", document), None)


def test_errors_are_one_line_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "missing context": (doc({"server": "https://x"}, {}), "ctx-missing", 'error: context "ctx-missing" does not exist'),
        "no current context": ({k: v for k, v in doc({"server": "https://x"}, {}).items() if k != "current-context"},
                               None, "error: no current context is set in the kubeconfig; pass --context"),
        "CA file missing": (doc({"server": "https://x", "certificate-authority": "nope.crt"}, {}), None,
                            "error: invalid configuration: File does not exist: "),
        "failing plugin": (doc({"server": "https://x"}, {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                                   "command": "false"}}), None,
                           'error: exec plugin "false" exited 1'),
    }  # fmt: skip
    for name, (document, context, message) in cases.items():
        with pytest.raises(ConfigError) as caught:
            lean.load(write(tmp_path, f"{name}.yaml", document), context)
        assert caught.value.message.startswith(message), (name, caught.value.message)
        assert "\n" not in caught.value.message
    (tmp_path / "bad.yaml").write_text("clusters: [unclosed\n")
    with pytest.raises(ConfigError):
        lean.load(str(tmp_path / "bad.yaml"), None)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "none"), str(tmp_path / "neither")]))
    with pytest.raises(ConfigError, match="No configuration found"):
        lean.load(None, None)


def test_exec_credentials_rerun_when_they_expire(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = tmp_path / "plugin.py"
    script.write_text(
        f"#!{sys.executable}\nimport json, pathlib\np = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\np.write_text(str(n))\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
        " 'status': {'token': f't{n}', 'expirationTimestamp': '2000-01-01T00:00:00Z'}}))\n"
    )
    script.chmod(0o755)
    path = write(tmp_path, "config", doc({"server": "https://x"}, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}))  # fmt: skip
    credentials = lean.load(path, None).credentials
    assert [credentials.header(), credentials.header()] == ["Bearer t2", "Bearer t3"]
    assert json.loads(counter.read_text()) == 3


def test_an_exec_plugin_runs_as_the_official_loader_runs_it(tmp_path: Path) -> None:
    """The same KUBERNETES_EXEC_INFO (interactive, the cluster and its exec extension with
    provideClusterInfo), the kubeconfig's env and the cluster file's directory as the working
    directory: the plugin folds all of them into its token, so equal headers mean equal runs."""
    script = tmp_path / "echo-plugin.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import base64, json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "seen = {'info': info, 'cwd': os.getcwd(), 'mode': os.environ.get('PLUGIN_MODE')}\n"
        "token = base64.b64encode(json.dumps(seen, sort_keys=True).encode()).decode()\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': {'token': token}}))\n"
    )
    script.chmod(0o755)
    (tmp_path / "conf").mkdir()
    cluster = {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": b64(CA_PEM),
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "stsfix"}}],
    }
    for version in ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"):
        for provide in (True, False):
            user = {"exec": {"apiVersion": version, "command": str(script), "provideClusterInfo": provide,
                             "env": [{"name": "PLUGIN_MODE", "value": "test"}]}}  # fmt: skip
            path = write(tmp_path / "conf", "config", doc(cluster, user))
            lean_auth, official_auth = lean_view(path)["authorization"], official_view(path)["authorization"]
            assert lean_auth == official_auth
            seen = json.loads(base64.b64decode(lean_auth.removeprefix("Bearer ")))
            assert seen["cwd"] == str(tmp_path / "conf") and seen["mode"] == "test"
            assert ("cluster" in seen["info"]["spec"]) is provide


@pytest.mark.parametrize(
    ("host", "token"),
    [("10.96.0.1", "sa-token"), ("fd00::1", "sa-token"), ("kubernetes.default.svc", "sa-token\n")],
)
def test_in_cluster_equals_the_official_in_cluster_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, token: str
) -> None:
    """The pod's service account: server, CA, the token (as the file has it) and the pool."""
    from kubernetes import client
    from kubernetes.client.rest import RESTClientObject
    from kubernetes.config.incluster_config import InClusterConfigLoader

    from stsfix.kube.transport import pool_manager

    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes(CA_PEM)
    (account / "namespace").write_text("team\n")
    for key in list(os.environ):
        if key.lower().endswith("_proxy") or key == "KUBECONFIG":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("STSFIX_SERVICE_ACCOUNT_DIR", str(account))
    loaded = lean.load(None, None)
    assert (loaded.source, loaded.namespace, loaded.cluster) == ("in-cluster", "team", "in-cluster")
    configuration = client.Configuration()
    InClusterConfigLoader(
        token_filename=str(account / "token"), cert_filename=str(account / "ca.crt")
    ).load_and_set(configuration)
    configuration.retries = False
    official = (configuration.host, configuration.auth_settings()["BearerToken"]["value"],
                _pool_view(RESTClientObject(configuration).pool_manager))  # fmt: skip
    # NB: the one difference: the token is trimmed, as kubectl trims it (the official loader would send
    # the newline, which http.client refuses).
    official = (official[0], official[1].rstrip("\n"), official[2])
    assert (loaded.server, loaded.credentials.header(), _pool_view(pool_manager(loaded))) == official


@pytest.mark.parametrize(
    ("user", "cluster_extra"),
    [
        pytest.param({"token": "abc", "as": "someone"}, {}, id="impersonation"),
        pytest.param({"token": "abc"}, {"disable-compression": True}, id="unknown cluster key"),
        pytest.param(
            {"token": "abc", "as": "x"}, {"proxy-url": "http://proxy.example.test:3128", "tls-server-name": "api.example.test"},
            id="proxy and SNI",
        ),
        pytest.param({"token": "abc", "as": "x"}, {"insecure-skip-tls-verify": True}, id="insecure"),
    ],
)
def test_the_fallback_sends_over_the_pool_the_official_client_builds(
    tmp_path: Path, user: dict[str, Any], cluster_extra: dict[str, Any]
) -> None:
    """A shape the lean loader leaves goes to the official loader; the one urllib3 transport then
    builds the pool RESTClientObject builds for that Configuration, so it is as strict too."""
    from kubernetes.client.rest import RESTClientObject

    from stsfix.kube.official import official_config, official_configuration
    from stsfix.kube.transport import pool_manager

    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority-data": b64(CA_PEM), **cluster_extra}
    path = write(tmp_path, "config", doc(cluster, user))
    configuration = official_configuration(path, None)[0]
    configuration.retries = False
    assert _pool_view(pool_manager(official_config(path, None))) == _pool_view(
        RESTClientObject(configuration).pool_manager
    )


def test_a_socks_proxy_without_pysocks_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("kubernetes")
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed")
    from stsfix.kube.client import KubeTarget, connect_raw

    path = write(tmp_path, "config", doc({"server": "https://127.0.0.1:6443", "proxy-url": "socks5://127.0.0.1:1"},
                                         {"token": "abc"}))  # fmt: skip
    with pytest.raises(ConfigError, match="needs PySocks"):
        connect_raw(KubeTarget(kubeconfig=path))
