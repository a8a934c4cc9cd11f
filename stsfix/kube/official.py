"""The official client's kubeconfig loader, for the shapes `stsfix.kube.config` does not read.

auth-provider (gcp, oidc, cmd-path), impersonation keys, SOCKS proxies and anything unexpected are
read by `kubernetes.config`, as stsfix always read every kubeconfig; its Configuration becomes a
`ClientConfig`, and the one urllib3 transport sends the requests (the Authorization header comes
from the Configuration on every request, so its refresh hooks still run). Importing the client
costs 0.4 to 0.7 s, so only these kubeconfigs pay it. Tests use this module as the reference the
lean loader is held equal to.
"""

from __future__ import annotations

import threading
from typing import Any

from stsfix.errors import ConfigError, StsfixError
from stsfix.kube.config import ClientConfig, kubeconfig_spec, yaml_error
from stsfix.kube.credentials import Credentials


class OfficialCredentials(Credentials):
    """The Authorization header a `kubernetes.client.Configuration` sends (refresh hooks included)."""

    def __init__(self, configuration: Any):
        self.configuration = configuration
        self._lock = threading.Lock()

    def header(self) -> str | None:
        with self._lock:
            auth = self.configuration.auth_settings().get("BearerToken") or {}
        return auth.get("value")


def _context_namespace(spec: str, context: str | None) -> tuple[str, str | None, str]:
    """(namespace, context name, cluster name) of the chosen (or current) context."""
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=spec)  # type: ignore[no-untyped-call]  # untyped library
    chosen = active
    if context:
        chosen = next((c for c in contexts if c.get("name") == context), None)
        if chosen is None:
            raise ConfigError(f'error: context "{context}" does not exist')
    if not chosen:
        raise ConfigError("error: no current context is set in the kubeconfig; pass --context")
    settings = chosen.get("context") or {}
    return settings.get("namespace") or "default", chosen.get("name"), str(settings.get("cluster") or "")


def official_configuration(
    kubeconfig: str | None, context: str | None
) -> tuple[Any, str, str | None, str]:
    """(kubernetes.client.Configuration, namespace, context name, cluster name), by the official loader."""
    import yaml
    from kubernetes import client, config

    spec = kubeconfig_spec(kubeconfig)
    configuration = client.Configuration()
    try:
        namespace, name, cluster = _context_namespace(spec, context)
        config.load_kube_config(  # type: ignore[no-untyped-call]  # the kubernetes client is untyped
            config_file=spec, context=context, client_configuration=configuration, persist_config=False
        )
    except StsfixError:
        raise
    except config.ConfigException as exc:
        raise ConfigError(f"error: invalid configuration: {str(exc).splitlines()[0][:200]}") from None
    except yaml.YAMLError as exc:  # the client parses the file with PyYAML and lets its errors through
        raise yaml_error(exc) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"error: could not load kubeconfig: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    return configuration, namespace, name, cluster


def official_config(kubeconfig: str | None, context: str | None) -> ClientConfig:
    """The kubeconfig as the official loader reads it, as a ClientConfig for the transport."""
    configuration, namespace, name, cluster = official_configuration(kubeconfig, context)
    return ClientConfig(
        server=configuration.host,
        namespace=namespace,
        context=name,
        cluster=cluster,
        verify=bool(configuration.verify_ssl),
        ca_file=configuration.ssl_ca_cert,
        ca_data=configuration.ca_cert_data,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        tls_server_name=configuration.tls_server_name,
        proxy=configuration.proxy,
        no_proxy=configuration.no_proxy,
        credentials=OfficialCredentials(configuration),
        source="official",
    )
