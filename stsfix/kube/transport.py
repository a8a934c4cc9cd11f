"""The HTTP transport: one urllib3 pool per connection, built as the official client builds its own.

`pool_manager` passes urllib3 what `kubernetes.client.rest.RESTClientObject` passes it for the
same configuration (verification on unless insecure-skip-tls-verify, the CA, the client
certificate, tls-server-name as SNI and hostname, the proxy unless $no_proxy says otherwise, the
same pool size), so TLS is exactly as strict as before. Retries are off: stsfix retries in its one
tenacity policy, which logs every attempt. tests/unit/test_kubeconfig.py compares the pools.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import warnings
from typing import Any
from urllib.parse import urlparse

import urllib3

from stsfix.errors import ConfigError
from stsfix.kube.config import ClientConfig


def should_bypass_proxies(url: str, no_proxy: str) -> bool:
    """Whether `url` matches the comma-separated `no_proxy` rules (kubernetes.client.rest's rule)."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return True
    host, host_and_port = parsed.hostname.lower(), parsed.netloc.lower()
    try:
        host_ip: Any = ipaddress.ip_address(host)
    except ValueError:
        host_ip = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if host_ip is not None:
            try:
                if host_ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        entry = entry.lstrip(".")
        if (
            host == entry
            or host.endswith("." + entry)
            or host_and_port == entry
            or host_and_port.endswith("." + entry)
        ):
            return True
    return False


def pool_arguments(config: ClientConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED if config.verify else ssl.CERT_NONE,
        "ca_certs": config.ca_file,
        "cert_file": config.cert_file,
        "key_file": config.key_file,
        "ca_cert_data": config.ca_data,
        # NB: no silent urllib3 retries: stsfix retries in one tenacity policy that logs every attempt.
        "retries": False,
        "maxsize": (os.cpu_count() or 1) * 5,
    }
    if config.tls_server_name:
        args["server_hostname"] = config.tls_server_name
    return args


SOCKS_SCHEMES = frozenset({"socks5", "socks5h", "socks4", "socks4a"})


def is_socks(proxy: str) -> bool:
    """kubernetes.client.rest.is_socks_proxy_url."""
    scheme, sep, _ = proxy.partition("://")
    return bool(sep) and scheme.lower() in SOCKS_SCHEMES


def pool_manager(config: ClientConfig) -> urllib3.PoolManager:
    args = pool_arguments(config)
    if config.proxy and not should_bypass_proxies(config.server, config.no_proxy or ""):
        if is_socks(config.proxy):
            # Only the official loader's configurations get here (the lean loader leaves SOCKS to it);
            # urllib3's SOCKS manager needs PySocks, as the official client's does.
            try:
                with warnings.catch_warnings():  # urllib3 warns before it raises ImportError
                    warnings.simplefilter("ignore")
                    from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError:
                raise ConfigError(
                    f"error: the proxy {config.proxy} is a SOCKS proxy, which needs PySocks: pip install pysocks"
                ) from None
            return SOCKSProxyManager(proxy_url=config.proxy, headers=None, **args)
        return urllib3.ProxyManager(proxy_url=config.proxy, proxy_headers=None, **args)
    return urllib3.PoolManager(**args)
