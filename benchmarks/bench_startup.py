"""Whole-process benchmark: stsfix against kubectl on one simulated server (issue 12).

Run:
    python benchmarks/bench_startup.py [--runs 7] [--replicas 1000] [--fleet 500] [--only help,small,...]

Both programs are started the same way, as a user's shell starts them: a fresh process from its
installed executable (this venv's `stsfix` script; kubectl from $KUBECTL, else the control-plane
build under ~/.cache/stsfix-controlplane, else PATH), with stdout to /dev/null. kubectl gets its
discovery cache warmed first (same --cache-dir), as users have it. Runs are interleaved (stsfix
first on even rounds, kubectl first on odd ones) so a noisy neighbour hits both; each row prints
the median wall time and the median peak RSS (ru_maxrss from wait4 in a small launcher process,
i.e. /usr/bin/time -v's "Maximum resident set size") and the ratio, with the issue's target for it. Groups:

    help    --help, inspect --help and a completion request (no server)
    small   inspect/diagnose of the 5-replica forced-rollback set `default/web`
    big     inspect/diagnose of a 1,000-replica set
    fleet   diagnose -A over 500 sets x 5 pods
    repair  `stsfix rollback web --yes` on the forced-rollback scenario: wall time, and the time
            the controller and kubelet took to bring the replacement pod up (measured in-process
            on the simulator, watch-driven), and their difference
            (the same on the real control plane: benchmarks/bench_rollback_real.py)

Timings are noisy on a shared machine; read the ratios, which are measured in one run. Nothing
here asserts; tests check behaviour, not time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stsfix.sim.cluster import SimCluster

CONTROLPLANE_KUBECTL = Path.home() / ".cache/stsfix-controlplane/v1.34.4/bin/kubectl"
GROUPS = ("help", "small", "big", "fleet", "repair")


# -- processes ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    max_rss_kib: int
    code: int


# NB: ru_maxrss is a high-water mark that includes the memory the child had before exec, i.e.
# its share of the parent's. Forked from this process (which hosts a simulator of thousands of
# pods) every child would "peak" at this process's size. So children are spawned by a small
# launcher process, as /usr/bin/time does; its own size (about 8 MiB) is below any child's peak.
LAUNCHER = r"""
import json, os, sys, time
null = os.open(os.devnull, os.O_RDWR)
actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
for line in sys.stdin:
    job = json.loads(line)
    started = time.perf_counter()
    pid = os.posix_spawnp(job["argv"][0], job["argv"], job["env"], file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    took = time.perf_counter() - started
    print(json.dumps([took, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]), flush=True)
"""


class Launcher:
    """A small process that starts each measured command and reports its wall time and peak RSS."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip

    def run(self, argv: list[str], env: dict[str, str]) -> Sample:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self.proc.stdin.flush()
        took, max_rss, code = json.loads(self.proc.stdout.readline())
        return Sample(took, max_rss, code)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


LAUNCH: Launcher | None = None


def run_process(argv: list[str], env: dict[str, str]) -> Sample:
    """Run argv to completion: wall time, peak RSS (KiB, as /usr/bin/time -v) and the exit code."""
    global LAUNCH
    if LAUNCH is None:
        LAUNCH = Launcher()
    return LAUNCH.run(argv, env)


def check_once(argv: list[str], env: dict[str, str], codes: tuple[int, ...]) -> None:
    """One untimed run that must succeed (warms caches; catches a broken command before timing it)."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode not in codes or (done.returncode == 0 and not done.stdout.strip()):
        raise SystemExit(
            f"benchmark command failed (exit {done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}"
        )


def find_kubectl() -> tuple[str, str]:
    """(path, how it was found): $KUBECTL, else the control-plane build, else PATH."""
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"], "$KUBECTL"
    if CONTROLPLANE_KUBECTL.exists():
        return str(CONTROLPLANE_KUBECTL), "control-plane build"
    found = shutil.which("kubectl")
    if not found:
        raise SystemExit("no kubectl: set KUBECTL or put one on PATH")
    return found, "PATH"


def kubectl_version(kubectl: str) -> str:
    done = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=60)
    return (done.stdout.strip().splitlines() or ["unknown"])[0]


STSFIX: list[str] = []


def stsfix_argv() -> list[str]:
    return STSFIX or [str(Path(sys.executable).parent / "stsfix")]


def installed_layout(home: Path) -> list[str]:
    """A `stsfix` script as a regular (non-editable) install has it, for this tree.

    An editable install runs its import hook (`__editable__..._finder`, about 20 ms of pathlib and
    friends) at every start, which users of a released stsfix never pay. So: a fresh venv whose
    site-packages holds a plain .pth with this tree and this venv's site-packages (the .pth files
    of the latter are not processed), and the console script pip would write."""
    import site
    import venv

    target = home / "user-venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    tree = Path(__file__).resolve().parent.parent
    (Path(purelib) / "stsfix-tree.pth").write_text(f"{tree}\n" + "\n".join(site.getsitepackages()) + "\n")
    script = target / "bin" / "stsfix"
    script.write_text(f"#!{python}\nimport sys\nfrom stsfix.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return [str(script)]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a measured command. NB: without PYTHONDONTWRITEBYTECODE, which some
    sandboxes set: an installed stsfix has its bytecode compiled, as users have it."""
    dropped = ("KUBE", "_STSFIX", "COMP_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(HOME=str(home), **extra)
    return env


# -- rows ---------------------------------------------------------------------------------------
@dataclass
class Row:
    work: str
    stsfix: list[str]
    kubectl: list[str] | None
    target: str
    met: Callable[[Sample, Sample | None], bool | None]
    env: dict[str, str] = field(default_factory=dict)
    codes: tuple[int, ...] = (0,)
    kubectl_codes: tuple[int, ...] = (0,)
    samples: list[Sample] = field(default_factory=list)
    kubectl_samples: list[Sample] = field(default_factory=list)


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.seconds for s in samples),
        int(statistics.median(s.max_rss_kib for s in samples)),
        samples[-1].code,
    )


def under(limit: float) -> Callable[[Sample, Sample | None], bool]:
    return lambda s, _k: s.seconds < limit


def ratio_at_most(limit: float, *, memory: bool = False) -> Callable[[Sample, Sample | None], bool | None]:
    def met(s: Sample, k: Sample | None) -> bool | None:
        if k is None:
            return None
        return s.seconds <= limit * k.seconds and (not memory or s.max_rss_kib <= k.max_rss_kib)

    return met


def measure(rows: list[Row], runs: int, home: Path) -> None:
    for row in rows:  # untimed: warm kubectl's discovery cache, fail early on a broken command
        check_once(row.stsfix, clean_env(home, **row.env), row.codes)
        if row.kubectl:
            check_once(row.kubectl, clean_env(home), row.kubectl_codes)
    for round_ in range(runs):
        for row in rows:
            order = [("s", row.stsfix, row.env), ("k", row.kubectl, {})]
            for who, argv, extra in order if round_ % 2 == 0 else reversed(order):
                if argv is None:
                    continue
                sample = run_process(argv, clean_env(home, **extra))
                (row.samples if who == "s" else row.kubectl_samples).append(sample)


def cell(s: Sample | None) -> str:
    if s is None:
        return "-"
    return f"{s.seconds:.3f} s, {s.max_rss_kib / 1024:.0f} MiB"


def report(rows: list[Row]) -> None:
    print("| work | stsfix | kubectl | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        s = median(row.samples)
        k = median(row.kubectl_samples) if row.kubectl_samples else None
        ratio = f"{s.seconds / k.seconds:.2f}x" if k else "-"
        met = row.met(s, k)
        mark = "-" if met is None else ("yes" if met else "NO")
        print(f"| {row.work} | {cell(s)} | {cell(k)} | {ratio} | {row.target} | {mark} |")
    sys.stdout.flush()


# -- the simulated clusters ---------------------------------------------------------------------
def statefulset(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example.com/team/app:1.2.3",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
                        }
                    ]
                },
            },
        },
    }


BIG_NODES = [{"name": f"sim-worker{i}", "cpu": "64", "memory": "256Gi", "pods": "1000"} for i in range(4)]


def converged(sim: SimCluster, sets: int, replicas: int) -> bool:
    done = [s for s in sim.list("statefulsets") if (s.get("status") or {}).get("readyReplicas") == replicas]
    return len(done) >= sets


def sim_with_sets(manifests: list[dict[str, Any]], sets: int, replicas: int) -> SimCluster:
    sim = SimCluster(speed=200.0, tls=True, nodes=BIG_NODES).start()
    sim.apply_manifest(manifests)
    if not sim.wait_for(lambda s: converged(s, sets, replicas), timeout=900):
        sim.stop()
        raise SystemExit(f"the simulator did not converge {sets} sets x {replicas} pods")
    return sim


def k(kubectl: str, kubeconfig: str, cache: str, *args: str) -> list[str]:
    return [kubectl, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args]


def help_rows(stsfix: list[str], kubectl: str) -> list[Row]:
    complete = {"_STSFIX_COMPLETE": "complete_bash", "COMP_WORDS": "stsfix ", "COMP_CWORD": "1"}
    return [
        Row("`stsfix --help` vs `kubectl --help`", [*stsfix, "--help"], [kubectl, "--help"],
            "< 0.15 s", under(0.15)),
        Row("`stsfix inspect --help` vs `kubectl get --help`", [*stsfix, "inspect", "--help"],
            [kubectl, "get", "--help"], "< 0.15 s", under(0.15)),
        Row("completion `stsfix <TAB>` vs `kubectl __complete ''`", stsfix, [kubectl, "__complete", ""],
            "< 0.15 s", under(0.15), env=complete),
    ]  # fmt: skip


def cluster_rows(
    label: str, stsfix: list[str], kubectl: list[str], kubeconfig: str, *, ns: str | None, name: str | None,
    ratio: float, memory: bool = False, extra: list[Row] | None = None,
) -> list[Row]:  # fmt: skip
    scope = ["-n", ns] if ns else ["-A"]
    target = [name] if name else []
    get = [*kubectl, "get", "sts,pods,controllerrevisions", *scope, "-o", "json"]
    goal = f"<= {ratio}x" + (", RSS <= kubectl" if memory else "")
    rows = []
    for command, codes in (("inspect", (0,)), ("diagnose", (0, 3))):
        if name is None and command == "inspect":
            continue
        argv = [*stsfix, command, *target, *scope, "-o", "json", "--kubeconfig", kubeconfig]
        shown = f"`stsfix {command} {' '.join(target + scope)} -o json` ({label})"
        rows.append(Row(f"{shown} vs `kubectl get sts,pods,controllerrevisions {' '.join(scope)} -o json`",
                        argv, get, goal, ratio_at_most(ratio, memory=memory), codes=codes))  # fmt: skip
    return rows + (extra or [])


def run_cluster_group(group: str, args: argparse.Namespace, kubectl: str, home: Path) -> list[Row]:
    stsfix = stsfix_argv()
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{group}-", dir=home))
    kubeconfig, cache = str(tmp / "kubeconfig"), str(tmp / "kube-cache")
    if group == "small":
        sim = SimCluster(["forced-rollback"], speed=60.0, tls=True).start()
    elif group == "big":
        sim = sim_with_sets([statefulset("big", "default", args.replicas)], 1, args.replicas)
    else:
        manifests: list[dict[str, Any]] = []
        for i in range(args.fleet):
            manifests.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{i:03d}"}})
            manifests.append(statefulset("db", f"team-{i:03d}", 5))
        sim = sim_with_sets(manifests, args.fleet, 5)
    try:
        sim.write_kubeconfig(kubeconfig)
        kc = k(kubectl, kubeconfig, cache)
        if group == "small":
            status = Row("`stsfix diagnose web -n default -o json` vs `kubectl rollout status sts/web --timeout=1ms`",
                         [*stsfix, "diagnose", "web", "-n", "default", "-o", "json", "--kubeconfig", kubeconfig],
                         [*kc, "rollout", "status", "sts/web", "-n", "default", "--timeout=1ms"],
                         "(issue's reference row)", lambda s, k: None, codes=(0, 3), kubectl_codes=(1,))  # fmt: skip
            rows = cluster_rows("5 replicas", stsfix, kc, kubeconfig, ns="default", name="web", ratio=2.0,
                                extra=[status])  # fmt: skip
        elif group == "big":
            rows = cluster_rows(f"{args.replicas} replicas", stsfix, kc, kubeconfig, ns="default", name="big",
                                ratio=1.5, memory=True)  # fmt: skip
        else:
            rows = cluster_rows(f"{args.fleet} sets x 5 pods", stsfix, kc, kubeconfig, ns=None, name=None,
                                ratio=2.0)  # fmt: skip
        measure(rows, args.runs, home)
        return rows
    finally:
        sim.stop()


# -- the forced-rollback repair -----------------------------------------------------------------
def _ready(pod: dict[str, Any] | None) -> bool:
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def repair_once(home: Path) -> tuple[Sample, float]:
    """One `stsfix rollback web --yes` on a fresh forced-rollback cluster: (sample, controller seconds).

    Controller seconds run from the moment the stuck pod is marked for deletion to the moment its
    replacement is Ready: termination, re-creation, scheduling, start and readiness, all the
    controller's and kubelet's own work, observed in-process on every store change."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-repair-", dir=home))
    kubeconfig = str(tmp / "kubeconfig")
    with SimCluster(["forced-rollback"], speed=60.0, tls=True) as sim:
        sim.write_kubeconfig(kubeconfig)
        stuck = sim.get("pods", "default", "web-4")
        assert stuck is not None
        old_uid = stuck["metadata"]["uid"]
        marks: dict[str, float] = {}

        def observe() -> None:
            def deleting(s: SimCluster) -> bool:
                pod = s.get("pods", "default", "web-4")
                meta = (pod or {}).get("metadata") or {}
                return pod is None or meta.get("uid") != old_uid or "deletionTimestamp" in meta

            if sim.wait_for(deleting, timeout=120):
                marks["deleting"] = time.perf_counter()

            def replaced(s: SimCluster) -> bool:
                pod = s.get("pods", "default", "web-4")
                return pod is not None and pod["metadata"]["uid"] != old_uid and _ready(pod)

            if sim.wait_for(replaced, timeout=120):
                marks["ready"] = time.perf_counter()

        watcher = threading.Thread(target=observe, daemon=True)
        watcher.start()
        argv = [*stsfix_argv(), "rollback", "web", "-n", "default", "--yes", "--progress", "none",
                "-o", "json", "--kubeconfig", kubeconfig]  # fmt: skip
        sample = run_process(argv, clean_env(home))
        watcher.join(timeout=130)
    if sample.code != 0 or set(marks) != {"deleting", "ready"}:
        raise SystemExit(f"repair did not complete (exit {sample.code}, marks {sorted(marks)})")
    return sample, marks["ready"] - marks["deleting"]


def run_repair(runs: int, home: Path) -> None:
    walls, controllers, rss = [], [], []
    for _ in range(runs):
        sample, controller = repair_once(home)
        walls.append(sample.seconds)
        controllers.append(controller)
        rss.append(sample.max_rss_kib)
    wall, ctrl = statistics.median(walls), statistics.median(controllers)
    overhead = statistics.median(w - c for w, c in zip(walls, controllers, strict=True))
    print("| forced-rollback repair (`stsfix rollback web --yes`, sim speed 60) | value |")
    print("|---|---|")
    print(f"| wall time, whole process | {wall:.3f} s, {statistics.median(rss) / 1024:.0f} MiB |")
    print(f"| controller + kubelet: stuck pod marked for deletion -> replacement Ready | {ctrl:.3f} s |")
    print(f"| wall minus controller (target < 1 s) | {overhead:.3f} s: {'yes' if overhead < 1 else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--fleet", type=int, default=500)
    parser.add_argument("--editable", action="store_true", help="time this venv's editable stsfix script")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated subset of {GROUPS}")
    args = parser.parse_args()
    groups = [g for g in args.only.split(",") if g]
    if set(groups) - set(GROUPS):
        parser.error(f"--only takes {', '.join(GROUPS)}")
    kubectl, how = find_kubectl()
    print(f"kubectl: {kubectl} ({how}): {kubectl_version(kubectl)}")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        home = Path(tmp)
        if not args.editable:
            STSFIX[:] = installed_layout(home)
        layout = "this venv's editable install" if args.editable else "a regular-install layout of this tree"
        print(
            f"stsfix:  {' '.join(stsfix_argv())} ({layout}); {args.runs} interleaved runs per command, medians\n"
        )
        if "help" in groups:
            rows = help_rows(stsfix_argv(), kubectl)
            measure(rows, args.runs, home)
            report(rows)
        for group in ("small", "big", "fleet"):
            if group in groups:
                report(run_cluster_group(group, args, kubectl, home))
        if "repair" in groups:
            print()
            run_repair(args.runs, home)
    if LAUNCH is not None:
        LAUNCH.close()


if __name__ == "__main__":
    main()
