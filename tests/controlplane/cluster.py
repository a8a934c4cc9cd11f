"""A real Kubernetes control plane on loopback, for the `realcluster` tests and benchmarks.

etcd, kube-apiserver (RBAC, the default admission plugins, an audit log of every write),
kube-controller-manager (every default controller, each with its own service account), kube-scheduler
and one kwok process per node (tests/controlplane/stages: the simulated kubelets) plus one kwok for
storage and the kubelets' uid-bound pod removal (reaper.py), all built by tests/controlplane/build.sh and started here as plain processes on free ports
of 127.0.0.1. Nodes carry 127.0.0.x addresses, so nothing ever leaves the machine.

A node is lost by stopping its kwok process (`lose_node`): its lease stops, the node lifecycle
controller marks it NotReady and taints it, and its pods stay Terminating once evicted, exactly the
stuck state of a node that went away.

Users in the written kubeconfig: `admin` (a client certificate in system:masters, the current context),
and `readonly` and `repair`, the service accounts of deploy/rbac-readonly.yaml and
deploy/rbac-repair.yaml with tokens from the TokenRequest API.

Run by hand: `python -m tests.controlplane.cluster up [--workdir DIR]` prints the kubeconfig path and
keeps the cluster up until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_VERSION = os.environ.get("STSFIX_K8S_VERSION", "v1.34.4")
NODES = ("kwok-node-1", "kwok-node-2", "kwok-node-3")
#: Seconds without a node lease before the node lifecycle controller marks a node NotReady.
NODE_GRACE_S = 12
#: The DefaultTolerationSeconds admission plugin's not-ready/unreachable tolerations.
TOLERATION_S = 2


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent goes (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class ControlPlaneError(RuntimeError):
    """The control plane did not start, or a component died."""


def cache_dir() -> Path:
    return Path(os.environ.get("STSFIX_CONTROLPLANE_CACHE") or Path.home() / ".cache/stsfix-controlplane")


def binaries(version: str = DEFAULT_VERSION) -> Path | None:
    """The directory with the six built binaries, or None when build.sh has not run for `version`."""
    given = os.environ.get("STSFIX_CONTROLPLANE_BIN")
    path = Path(given) if given else cache_dir() / version / "bin"
    wanted = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
    return path if all((path / name).is_file() for name in wanted) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PKI: one CA; a serving certificate; client certificates per component ------------------------
def _pki(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=30)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_key(name: str, private: rsa.RSAPrivateKey) -> None:
        (directory / f"{name}.key").write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stsfix-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_key("ca", ca_key)

    def issue(name: str, common: str, orgs: tuple[str, ...], *, server: bool = False) -> None:
        private = key()
        subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(ca_name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                    if server
                    else [ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName("kubernetes.default.svc"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(name, private)

    issue("apiserver", "kube-apiserver", (), server=True)
    issue("admin", "stsfix-admin", ("system:masters",))
    issue("controller-manager", "system:kube-controller-manager", ())
    issue("scheduler", "system:kube-scheduler", ())
    issue("kwok", "stsfix-kwok", ("system:masters",))
    write_key("sa", key())


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        # Started from the main thread, a component dies with the process that started it (even on
        # SIGKILL of a test run), so no control plane outlives its tests.
        on_main = threading.current_thread() is threading.main_thread()
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True, preexec_fn=_die_with_parent if on_main else None,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    """One control plane: `start()`, use `kubeconfig`, `stop()` (also a context manager)."""

    bin_dir: Path
    workdir: Path
    version: str = DEFAULT_VERSION
    nodes: tuple[str, ...] = NODES
    feature_gates: str = "MaxUnavailableStatefulSet=true"
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started_s: float = 0.0
    #: seconds from start() to each milestone (benchmarks/controlplane_start.py prints them)
    milestones: dict[str, float] = field(default_factory=dict)

    # -- paths -----------------------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start and stop --------------------------------------------------------------------------
    def start(self, *, timeout_s: float = 180.0) -> None:
        began = time.monotonic()
        deadline = began + timeout_s
        for sub in ("pki", "logs", "etcd"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        _pki(self.pki)
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver")}
        self._write_component_kubeconfigs()
        try:
            self._start_etcd(deadline)
            self.milestones["etcd healthy"] = time.monotonic() - began
            self._start_apiserver(deadline)
            self.milestones["kube-apiserver ready"] = time.monotonic() - began
            self._start_controllers()
            self._bootstrap(deadline)
            self.milestones["nodes Ready, RBAC applied"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _spawn(self, name: str, argv: list[str]) -> Process:
        proc = Process(name, argv, self.workdir / "logs" / f"{name}.log")
        proc.start()
        self.processes[name] = proc
        return proc

    def _wait(self, what: str, check: Any, deadline: float, *, proc: Process | None = None) -> None:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise ControlPlaneError(f"{what} exited:\n{proc.tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out waiting for {what}:\n{proc.tail() if proc else ''}")

    def _start_etcd(self, deadline: float) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        proc = self._spawn("etcd", [
            self._bin("etcd"), "--name=n0", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=n0={peer}", "--unsafe-no-fsync", "--log-level=warn",
            "--quota-backend-bytes=2147483648",
        ])  # fmt: skip

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")

        self._wait("etcd", healthy, deadline, proc=proc)

    def _start_apiserver(self, deadline: float) -> None:
        pki = self.pki
        proc = self._spawn("kube-apiserver", [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['apiserver']}",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.key'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", "--kubelet-preferred-address-types=InternalIP",
            f"--default-not-ready-toleration-seconds={TOLERATION_S}",
            f"--default-unreachable-toleration-seconds={TOLERATION_S}",
            f"--audit-policy-file={HERE / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json", "--audit-log-mode=blocking",
            f"--feature-gates={self.feature_gates}",
            "--profiling=false", "--v=1",
        ])  # fmt: skip
        self._wait("kube-apiserver", lambda: self.get("/readyz", raw=True) == "ok", deadline, proc=proc)

    def _start_controllers(self) -> None:
        pki, work = self.pki, self.workdir
        self._spawn("kube-controller-manager", [
            self._bin("kube-controller-manager"), f"--kubeconfig={work / 'controller-manager.kubeconfig'}",
            "--secure-port=0", "--leader-elect=false", "--use-service-account-credentials=true",
            f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'sa.key'}",
            "--controllers=*", "--node-monitor-period=1s",
            f"--node-monitor-grace-period={NODE_GRACE_S}s",
            "--concurrent-statefulset-syncs=5", "--terminated-pod-gc-threshold=100",
            f"--feature-gates={self.feature_gates}", "--v=1",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            self._bin("kube-scheduler"), f"--kubeconfig={work / 'scheduler.kubeconfig'}",
            "--secure-port=0", "--leader-elect=false", f"--feature-gates={self.feature_gates}", "--v=1",
        ])  # fmt: skip

    def _start_kwok(self, name: str, *, node: str | None, stages: Path, index: int = 0) -> Process:
        argv = [
            self._bin("kwok"), f"--kubeconfig={self.workdir / 'kwok.kubeconfig'}", f"--config={stages}",
            "--node-lease-duration-seconds=8",
        ]  # fmt: skip
        if node:
            argv += [f"--manage-single-node={node}", f"--node-ip=127.0.0.{10 + index}",
                     f"--cidr=10.244.{index}.0/24"]  # fmt: skip
        else:  # the storage provisioner: manages no node
            argv += ["--manage-single-node=stsfix-no-such-node"]
        return self._spawn(name, argv)

    def _start_reaper(self) -> None:
        """The kubelets' pod removal, uid-bound (reaper.py), as a component process of its own."""
        proc = Process("reaper", [
            sys.executable, "-m", "tests.controlplane.reaper", self.server, str(self.pki / "ca.crt"),
            str(self.pki / "kwok.crt"), str(self.pki / "kwok.key"),
        ], self.workdir / "logs" / "reaper.log")  # fmt: skip
        proc.start(env={**os.environ, "PYTHONPATH": str(REPO)})
        self.processes["reaper"] = proc

    def _bootstrap(self, deadline: float) -> None:
        self.apply(
            [
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": "standard",
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "provisioner": "stsfix.test/provisioner",
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": "Immediate",
                }
            ]
        )
        for index, node in enumerate(self.nodes):
            self.post("/api/v1/nodes", _node(node, index, self.version))
        for index, node in enumerate(self.nodes):
            self._start_kwok(f"kwok-{node}", node=node, stages=HERE / "stages/nodes-pods.yaml", index=index)
        self._start_kwok("kwok-storage", node=None, stages=HERE / "stages/volumes.yaml")
        self._start_reaper()
        self._wait("nodes Ready", lambda: all(self.node_ready(n) for n in self.nodes), deadline)
        self._wait(
            "the default service account",
            lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            deadline,
            proc=self.processes["kube-controller-manager"],
        )
        self.apply_file(REPO / "deploy/rbac-readonly.yaml")
        self.apply_file(REPO / "deploy/rbac-repair.yaml")
        self._write_kubeconfig()

    # -- kubeconfigs -----------------------------------------------------------------------------
    def _cluster_entry(self) -> dict[str, Any]:
        return {"name": "stsfix-real", "cluster": {"server": self.server,
                                                   "certificate-authority": str(self.pki / "ca.crt")}}  # fmt: skip

    def _cert_user(self, name: str, cert: str) -> dict[str, Any]:
        return {"name": name, "user": {"client-certificate": str(self.pki / f"{cert}.crt"),
                                       "client-key": str(self.pki / f"{cert}.key")}}  # fmt: skip

    def _write_component_kubeconfigs(self) -> None:
        # the apiserver port is known before it starts, so components' kubeconfigs can be written now
        for cert in ("controller-manager", "scheduler", "kwok"):
            _write_kubeconfig(
                self.workdir / f"{cert}.kubeconfig",
                cluster=self._cluster_entry(),
                users=[self._cert_user(cert, cert)],
                current=cert,
            )

    def _write_kubeconfig(self) -> None:
        users = [self._cert_user("admin", "admin")]
        for who in ("readonly", "repair"):
            users.append({"name": who, "user": {"token": self.service_account_token("stsfix", f"stsfix-{who}")}})
        _write_kubeconfig(self.kubeconfig, cluster=self._cluster_entry(), users=users, current="admin")

    def service_account_token(self, namespace: str, name: str, *, seconds: int = 86400) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds}}  # fmt: skip
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        return str(self.post(path, body)["status"]["token"])

    # -- an admin HTTP client (the harness never uses the code under test) -----------------------
    def _ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get(self, path: str, *, raw: bool = False) -> Any:
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise ControlPlaneError(f"GET {path}: {status} {body[:300]!r}")
        return body.decode() if raw else json.loads(body)

    def post(self, path: str, body: Any) -> Any:
        status, out = self.request("POST", path, body)
        if status >= 400 and status != 409:
            raise ControlPlaneError(f"POST {path}: {status} {out[:300]!r}")
        return json.loads(out)

    def apply(self, objects: list[dict[str, Any]]) -> None:
        """Server-side apply as `stsfix-test` (creates or updates; kubectl apply --server-side)."""
        for obj in objects:
            path = _path(obj)
            status, out = self.request(
                "PATCH", f"{path}?fieldManager=stsfix-test&force=true", obj,
                content_type="application/apply-patch+yaml",
            )  # fmt: skip
            if status >= 400:
                raise ControlPlaneError(f"apply {path}: {status} {out[:300]!r}")

    def apply_file(self, path: Path) -> None:
        self.apply([doc for doc in yaml.safe_load_all(path.read_text()) if doc])

    # -- nodes -----------------------------------------------------------------------------------
    def node_ready(self, name: str) -> bool:
        node = self.get(f"/api/v1/nodes/{name}") or {}
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def lose_node(self, name: str) -> None:
        """The node's kubelet is gone: its lease, node status and pods are never updated again."""
        self.processes[f"kwok-{name}"].stop(kill=True)

    def restore_node(self, name: str, *, timeout_s: float = 60.0) -> None:
        index = self.nodes.index(name)
        self._start_kwok(f"kwok-{name}", node=name, stages=HERE / "stages/nodes-pods.yaml", index=index)
        self._wait(f"node {name} Ready", lambda: self.node_ready(name), time.monotonic() + timeout_s)

    # -- the audit log ---------------------------------------------------------------------------
    def audit_events(self) -> list[dict[str, Any]]:
        """Every audited write so far (see audit-policy.yaml), oldest first."""
        try:
            text = self.audit_log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def check_alive(self) -> None:
        dead = [p for p in self.processes.values() if p.popen is not None and not p.alive()
                and not p.name.startswith("kwok-kwok-node")]  # fmt: skip
        if dead:
            raise ControlPlaneError(f"{dead[0].name} died:\n{dead[0].tail()}")


def _path(obj: dict[str, Any]) -> str:
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = {
        "Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings", "Role": "roles", "RoleBinding": "rolebindings",
        "StorageClass": "storageclasses", "Node": "nodes",
    }[obj["kind"]]  # fmt: skip
    namespace = obj["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{plural}/{obj['metadata']['name']}"


def _node(name: str, index: int, version: str) -> dict[str, Any]:
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},  # fmt: skip
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [{"type": "InternalIP", "address": f"127.0.0.{10 + index}"},
                          {"type": "Hostname", "address": name}],  # fmt: skip
            "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version},
        },
    }


def _write_kubeconfig(path: Path, *, cluster: dict[str, Any], users: list[dict[str, Any]], current: str) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": users,
        "contexts": [{"name": u["name"], "context": {"cluster": cluster["name"], "user": u["name"]}}
                     for u in users],  # fmt: skip
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


@contextlib.contextmanager
def running(version: str = DEFAULT_VERSION, *, keep: bool = False) -> Iterator[ControlPlane]:
    """A started control plane in a fresh work directory under /dev/shm (etcd fsyncs cost nothing)."""
    bin_dir = binaries(version)
    if bin_dir is None:
        raise ControlPlaneError(f"no binaries for {version}: run tests/controlplane/build.sh {version}")
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    workdir = Path(tempfile.mkdtemp(prefix="stsfix-cp-", dir=base))
    plane = ControlPlane(bin_dir=bin_dir, workdir=workdir, version=version)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.cluster")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the cleanup on SIGTERM as on Ctrl-C
    with running(args.version, keep=True) as plane:
        print(plane.kubeconfig, flush=True)
        print(f"started in {plane.started_s:.1f} s; logs in {plane.workdir / 'logs'}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
