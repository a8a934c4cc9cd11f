"""Where the cluster is and how to authenticate: kubeconfig files and the in-cluster service account.

The common kubeconfig shapes are read here exactly as `kubernetes.config` reads them (tests hold
the two equal on a matrix of kubeconfigs): server, CA (file or data), insecure-skip-tls-verify,
tls-server-name, proxy-url (and the *_proxy environment), bearer tokens and token files, client
certificates and keys (files or data), basic auth, exec credential plugins (v1 and v1beta1), merged
KUBECONFIG lists, and the pod's service account. Anything else (auth-provider, impersonation,
SOCKS proxies, unknown keys, odd values) raises `Unsupported`, and `stsfix.kube.client` then asks
the official loader, so no shape is read differently from before; it only costs the client's import.

Standard library and PyYAML only: this is what lets a read skip importing the official client.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any, Final

from stsfix.errors import ConfigError
from stsfix.kube.credentials import (
    Credentials,
    ExecCredentials,
    ExecPlugin,
    StaticCredentials,
    TokenFileCredentials,
    Unsupported,
    parse_expiry,
    temp_file,
)

SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
# Keys the lean path reads; any other key in a user or cluster entry goes to the official loader.
USER_KEYS: Final = frozenset(
    {"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data",
     "username", "password", "exec"}
)  # fmt: skip
CLUSTER_KEYS: Final = frozenset(
    {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
     "tls-server-name", "proxy-url", "extensions"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the transport needs: server, TLS material, proxy and credentials."""

    server: str
    namespace: str = "default"
    context: str | None = None
    cluster: str = ""  # the context's cluster entry ("in-cluster" for the service account)
    verify: bool = True
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    cert_file: str | None = None
    key_file: str | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    no_proxy: str | None = None
    credentials: Credentials = StaticCredentials(None)
    source: str = "kubeconfig"  # kubeconfig | in-cluster | official


# -- kubeconfig files ---------------------------------------------------------------------------
def yaml_error(exc: Exception) -> ConfigError:
    """A kubeconfig PyYAML cannot parse, in one line with its line number (both loaders)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return ConfigError(f"error: the kubeconfig is not valid YAML{where}: {problem}"[:300])


def _load_yaml(path: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise yaml_error(exc) from None


@dataclass(slots=True)
class Merged:
    """KUBECONFIG files merged the way `kubernetes.config.KubeConfigMerger` merges them: named
    entries from the first file that has the name, `current-context` from the last file that sets it."""

    current_context: str | None = None
    has_current: bool = False
    entries: dict[str, list[tuple[dict[str, Any], str]]] = field(
        default_factory=lambda: {"clusters": [], "contexts": [], "users": []}
    )
    files: int = 0


def merge_files(spec: str) -> Merged:
    merged = Merged()
    for path in spec.split(os.pathsep):
        if not path:
            continue
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            continue
        doc = _load_yaml(path)
        if doc is None:
            raise ConfigError(f"error: invalid configuration: Invalid kube-config. {path} file is empty")
        if not isinstance(doc, dict):
            raise Unsupported("not a mapping")
        merged.files += 1
        for item in ("clusters", "contexts", "users"):
            entries = doc.get(item) or []
            if not isinstance(entries, list):
                raise Unsupported(f"{item} is not a list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise Unsupported(f"an entry of {item} has no name")
                if all(e["name"] != entry["name"] for e, _ in merged.entries[item]):
                    merged.entries[item].append((entry, path))
        if "current-context" in doc:
            merged.current_context, merged.has_current = doc["current-context"], True
    if not merged.files:
        raise ConfigError("error: invalid configuration: Invalid kube-config file. No configuration found.")
    return merged


def _named(merged: Merged, item: str, name: Any) -> tuple[dict[str, Any], str] | None:
    return next(((e, p) for e, p in merged.entries[item] if e["name"] == name), None)


def choose_context(merged: Merged, context: str | None) -> tuple[str, dict[str, Any]]:
    """(name, context entry) for --context or the current context, with kubectl's messages."""
    if context:
        found = _named(merged, "contexts", context)
        if found is None:
            raise ConfigError(f'error: context "{context}" does not exist')
        name = context
    else:
        if not merged.has_current or not merged.current_context:
            raise ConfigError("error: no current context is set in the kubeconfig; pass --context")
        name = merged.current_context
        found = _named(merged, "contexts", name)
        if found is None:
            raise Unsupported("the current context is not defined")
    body = found[0].get("context")
    if not isinstance(body, dict):
        raise Unsupported("context without a body")
    return name, body


def _base(path: str) -> str:
    return os.path.abspath(os.path.dirname(path))


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise Unsupported(f"{key} is not a string")
    return value


def _from_kubeconfig(spec: str, context: str | None) -> ClientConfig:
    merged = merge_files(spec)
    name, ctx = choose_context(merged, context)
    namespace = ctx.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise Unsupported("namespace is not a string")
    cluster_ref = _named(merged, "clusters", ctx.get("cluster"))
    if cluster_ref is None or not isinstance(cluster_ref[0].get("cluster"), dict):
        raise Unsupported("the context's cluster is not defined")
    cluster, cluster_path = cluster_ref[0]["cluster"], cluster_ref[1]
    user_ref = _named(merged, "users", ctx.get("user")) if ctx.get("user") else None
    user: dict[str, Any] = {}
    user_path = cluster_path
    if user_ref is not None:
        if not isinstance(user_ref[0].get("user"), dict):
            raise Unsupported("user without a body")
        user, user_path = user_ref[0]["user"], user_ref[1]
    if set(user) - USER_KEYS or set(cluster) - CLUSTER_KEYS or "server" not in cluster:
        raise Unsupported("keys the lean loader does not read")
    if any(value is None for value in (*user.values(), *cluster.values())):
        raise Unsupported("empty values")
    credentials, exec_cert = _user_credentials(user, _base(user_path), cluster, _base(cluster_path))
    server = _string(cluster["server"], "server").rstrip("/")
    tls: dict[str, Any] = {}
    if server.startswith("https"):
        tls = _tls_material(cluster, user, _base(cluster_path), exec_cert)
    verify = not cluster["insecure-skip-tls-verify"] if "insecure-skip-tls-verify" in cluster else True
    proxy, no_proxy = _proxy(server, cluster)
    return ClientConfig(
        server=server,
        namespace=namespace,
        context=name,
        cluster=str(ctx.get("cluster") or ""),
        verify=verify,
        tls_server_name=_string(cluster["tls-server-name"], "tls-server-name")
        if "tls-server-name" in cluster
        else None,
        proxy=proxy,
        no_proxy=no_proxy,
        credentials=credentials,
        **tls,
    )


def _file_or_data(
    obj: dict[str, Any], file_key: str, data_key: str, base: str, *, b64: bool
) -> tuple[str | None, bytes | None]:
    """(path, data) as `kubernetes.config.FileOrData`: data wins when its key is present."""
    if data_key in obj:
        value = obj[data_key]
        if not value:
            return None, None
        raw = _string(value, data_key).encode()
        return None, base64.standard_b64decode(raw) if b64 else raw
    if file_key in obj:
        return os.path.normpath(os.path.join(base, _string(obj[file_key], file_key))), None
    return None, None


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        raise ConfigError(f"error: invalid configuration: File does not exist: {path}")
    return path


def _tls_material(
    cluster: dict[str, Any], user: dict[str, Any], base: str, exec_cert: tuple[bytes, bytes] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    path, data = _file_or_data(cluster, "certificate-authority", "certificate-authority-data", base, b64=True)
    if data is not None:
        out["ca_data"] = data.decode("utf-8", "replace")
    elif path is not None:
        out["ca_file"] = _existing(path)
    if exec_cert is not None:
        out["cert_file"], out["key_file"] = temp_file(exec_cert[0]), temp_file(exec_cert[1])
        return out
    # NB: relative client certificate paths resolve against the cluster entry's file, as the official
    # loader resolves them (client-go uses the user entry's; they differ only across merged files).
    for key, name in (("cert_file", "client-certificate"), ("key_file", "client-key")):
        path, data = _file_or_data(user, name, f"{name}-data", base, b64=True)
        if data is not None:
            out[key] = temp_file(data)
        elif path is not None:
            out[key] = _existing(path)
    return out


def _user_credentials(
    user: dict[str, Any], user_base: str, cluster: dict[str, Any], cluster_base: str
) -> tuple[Credentials, tuple[bytes, bytes] | None]:
    """The official loader's order: token (or tokenFile), then exec, then username/password."""
    if "token" in user:
        token = _string(user["token"], "token")
    elif "tokenFile" in user:
        path = os.path.normpath(os.path.join(user_base, _string(user["tokenFile"], "tokenFile")))
        try:
            with open(path, encoding="utf-8") as handle:
                # NB: kubectl trims the file; the official loader does not and then sends a header with
                # a newline in it, which http.client refuses. Trimmed is what works for everyone.
                token = handle.read().strip()
        except OSError as exc:
            raise ConfigError(
                f"error: invalid configuration: cannot read tokenFile {path}: {exc.strerror}"
            ) from None
    else:
        token = ""
    if token:
        return StaticCredentials(f"Bearer {token}"), None
    if "exec" in user:
        plugin = ExecPlugin.from_config(user["exec"], cwd=cluster_base, cluster=cluster)
        status = plugin.run()
        if status.get("token"):
            creds = ExecCredentials(plugin, f"Bearer {status['token']}", parse_expiry(status))
            return creds, None
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            cert, key = str(status["clientCertificateData"]), str(status["clientKeyData"])
            return StaticCredentials(None), (cert.encode(), key.encode())
        raise ConfigError(
            "error: invalid configuration: the exec plugin's output has neither a token nor a client certificate and key"
        )
    if "username" in user and "password" in user:
        pair = f"{_string(user['username'], 'username')}:{_string(user['password'], 'password')}"
        return StaticCredentials("Basic " + base64.b64encode(pair.encode("latin-1")).decode()), None
    return StaticCredentials(None), None


def _proxy(server: str, cluster: dict[str, Any]) -> tuple[str | None, str | None]:
    """The proxy as the official Configuration picks it: proxy-url, else $https_proxy/$all_proxy
    (for the server's scheme); $no_proxy applies to both."""
    proxies: dict[str, str] = {}
    if any(name.lower().endswith("_proxy") for name in os.environ):
        from urllib.request import getproxies

        proxies = getproxies()
    if "proxy-url" in cluster:
        proxy: str | None = _string(cluster["proxy-url"], "proxy-url")
    else:
        from urllib.parse import urlparse

        proxy = proxies.get(urlparse(server).scheme) or proxies.get("all")
    if proxy and proxy.partition("://")[0].lower() in ("socks5", "socks5h", "socks4", "socks4a"):
        raise Unsupported("SOCKS proxy")
    return proxy or None, proxies.get("no")


# -- in-cluster ---------------------------------------------------------------------------------
def service_account_dir() -> str:
    return os.environ.get("STSFIX_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR


def in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        os.path.join(service_account_dir(), "token")
    )


def _in_cluster() -> ClientConfig:
    """The pod's service account, as `kubernetes.config.incluster_config` reads it."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError("error: invalid configuration: Service host/port is not set.")
    folder = service_account_dir()
    ca = os.path.join(folder, "ca.crt")
    if not os.path.isfile(ca) or os.path.getsize(ca) == 0:
        raise ConfigError("error: invalid configuration: Service certification file does not exist.")
    try:
        with open(os.path.join(folder, "namespace"), encoding="utf-8") as handle:
            namespace = handle.read().strip() or "default"
    except OSError:
        namespace = "default"
    server = f"https://[{host}]:{port}" if ":" in host or "%" in host else f"https://{host}:{port}"
    credentials = TokenFileCredentials(os.path.join(folder, "token"))
    credentials.header()  # fail now, in one line, when the token cannot be read
    proxy, no_proxy = _proxy(server, {})
    return ClientConfig(server=server, namespace=namespace, cluster="in-cluster", ca_file=ca, proxy=proxy,
                        no_proxy=no_proxy, credentials=credentials, source="in-cluster")  # fmt: skip


def kubeconfig_spec(kubeconfig: str | None) -> str:
    # NB: read $KUBECONFIG now, not at import: tests and callers change it.
    return kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


def wants_in_cluster(kubeconfig: str | None) -> bool:
    """In a pod without a kubeconfig, as kubectl does."""
    explicit = kubeconfig or os.environ.get("KUBECONFIG")
    return (
        not explicit and not os.path.exists(os.path.expanduser("~/.kube/config")) and in_cluster_available()
    )


def load(kubeconfig: str | None, context: str | None) -> ClientConfig:
    """The lean configuration; `Unsupported` when the official loader must read this one."""
    if wants_in_cluster(kubeconfig):
        return _in_cluster()
    if kubeconfig and not os.path.exists(kubeconfig):
        raise ConfigError(f"error: stat {kubeconfig}: no such file or directory")
    try:
        return _from_kubeconfig(kubeconfig_spec(kubeconfig), context)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"error: could not load kubeconfig: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
