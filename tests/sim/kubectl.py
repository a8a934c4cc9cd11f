"""Find a kubectl binary for tests against the simulated cluster, and run it in isolation.

`kubectl_argv()` returns the argv prefix for a kubectl, or None when there is none (tests then
skip). It honours `STSFIX_KUBECTL`, then prefers the newest versioned binary (`kubectl.1.33`, ...)
that sits beside the gcloud dispatcher, because the dispatcher picks a binary from the server's
/version and falls back to 1.32 for versions it does not know. `run_kubectl` always passes an
isolated `--kubeconfig` and `--cache-dir`, so the developer's own config and cache are never read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path


@cache
def kubectl_argv() -> list[str] | None:
    """The argv prefix for a kubectl binary, or None."""
    override = os.environ.get("STSFIX_KUBECTL")
    if override:
        argv = override.split()
        return argv if shutil.which(argv[0]) else None
    found = shutil.which("kubectl")
    if found is None:
        return None
    real = Path(found).resolve()
    versioned = sorted(
        (
            p
            for p in real.parent.glob("kubectl.1.*")
            if re.fullmatch(r"kubectl\.1\.\d+", p.name) and os.access(p, os.X_OK)
        ),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )
    return [str(versioned[-1])] if versioned else [str(real)]


def run_kubectl(
    kubeconfig: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *args: str,
    timeout: float = 30.0,
    context: str | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against the sim with an isolated kubeconfig and discovery cache."""
    argv = kubectl_argv()
    if argv is None:
        raise RuntimeError("no kubectl binary; guard the test with kubectl_argv() first")
    cmd = [*argv, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}", *args]
    if context:
        cmd.append(f"--context={context}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECACHEDIR"] = str(cache_dir)
    env["HOME"] = str(Path(cache_dir).parent)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=stdin)


PARITY_VERSIONS = ("1.27", "1.28", "1.33")  # openapi v2 readers, and the newest gcloud build


@cache
def kubectl_versions() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(version, argv) of every kubectl here that parity tests run: the versioned gcloud builds in
    PARITY_VERSIONS beside the dispatcher, and the v1.34.4 build of the real control plane."""
    found: list[tuple[str, tuple[str, ...]]] = []
    dispatcher = shutil.which("kubectl")
    if dispatcher is not None:
        folder = Path(dispatcher).resolve().parent
        for version in PARITY_VERSIONS:
            binary = folder / f"kubectl.{version}"
            if os.access(binary, os.X_OK):
                found.append((version, (str(binary),)))
    real = Path.home() / ".cache/stsfix-controlplane/v1.34.4/bin/kubectl"
    if os.access(real, os.X_OK):
        found.append(("1.34.4", (str(real),)))
    return tuple(found)


def run_version(
    argv: tuple[str, ...], kubeconfig: str | os.PathLike[str], cache_dir: str | os.PathLike[str], *args: str,
    timeout: float = 60.0, env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one given kubectl binary in isolation (see run_kubectl)."""
    cmd = [*argv, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}", *args]
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    base.update(KUBECACHEDIR=str(cache_dir), HOME=str(Path(cache_dir).parent), **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=base)
