"""Write a kubeconfig for the simulated cluster: one context per user, namespace `default`.

Contexts are `sim-admin`, `sim-readonly` and `sim-repair` (token auth). With TLS the CA bundle is
embedded as `certificate-authority-data`, so kubectl and the official client verify the server as
they would a real one. Standard library + PyYAML only.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "sim"


def kubeconfig_dict(
    url: str, tokens: dict[str, tuple[str, str]], *, current: str = "admin", ca_pem: bytes | None = None
) -> dict[str, Any]:
    """The kubeconfig document; `current` is a user name (admin, readonly, repair)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    users, contexts = [], []
    for token, (user, _role) in tokens.items():
        users.append({"name": f"sim-{user}", "user": {"token": token}})
        contexts.append(
            {
                "name": f"sim-{user}",
                "context": {"cluster": CLUSTER_NAME, "user": f"sim-{user}", "namespace": "default"},
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
        "users": users,
        "contexts": contexts,
        "current-context": f"sim-{current}",
    }


def write_kubeconfig(path: str | os.PathLike[str], document: dict[str, Any]) -> Path:
    """Write the document (mode 0600, as kubectl does) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    target.chmod(0o600)
    return target
