"""The fault matrix: each repair crossed with the faults of issue 13, on a simulated cluster of its own.

A cell starts the repair's scenario, injects one fault (stsfix/sim/apiserver/faults.py: 500/503 on
a read, a write or a watch, 429 with Retry-After, a connection dropped before or after the server
acted, a watch cut or ended by 410, answers slowed to near --request-timeout, a concurrent `kubectl
patch` of the set or the pod just before stsfix writes, the target pod's node lost or a second
template change landing mid-repair), or runs two stsfix at once, or kills stsfix with SIGKILL at a
step and runs the same command again. Every stsfix is a real process with a user of its own, so the
request log tells who sent what, and every write records the object it hit. Each cell then asserts:

- every pod stsfix deleted was, at that moment, what the repair may delete (not Ready and off the
  target revision; for force-delete, on a node that was not Ready);
- no PVC was deleted, and every PVC of the start is still there;
- no pod (uid) was deleted twice;
- the set ends healthy, or the exit code says it is not (4 or 6); an exit 0 leaves it healthy;
- nothing half-done goes unreported: each run's envelope lists as many applied steps as the writes
  it carried out (a lost answer is "applied ... confirmed on re-read"), and no more.

The figures (cells run / healed / wrong deletions / PVC deletions / double deletions / dishonest
exits) go to the terminal summary and to reliability-figures.txt.
"""

from __future__ import annotations

import collections
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stsfix.errors import ExitCode
from stsfix.sim.cluster import SimCluster
from tests.reliability import figures
from tests.reliability.conftest import SPEED
from tests.reliability.harness import (
    Proc,
    Run,
    changes,
    jsonl_event,
    new_user,
    process_env,
    resource_of,
    run,
    stsfix_argv,
    user_kubeconfig,
)

SUITE = "fault matrix"
WORKERS = 4
STS_PATH = r"/apis/apps/v1/namespaces/default/statefulsets/web$"
PODS_PATH = r"/api/v1/namespaces/default/pods$"


def pod_path(name: str) -> str:
    return rf"/api/v1/namespaces/default/pods/{name}$"


# -- the repairs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Repair:
    name: str
    scenario: str
    args: tuple[str, ...]
    may_delete: str  # "stuck": not Ready and off the target; "lost": the named pod, its node not Ready; "none"
    write: tuple[str, str]  # the first change it sends: (method, path regex)
    pod: str = ""  # the pod it acts on (delete-pod, force-delete) or whose node a cell loses
    target: str = "current"  # the target revision at the start: status.currentRevision or updateRevision
    plan: bool = False  # `stsfix plan rollback --save` first; the repair applies the file
    # What running it again after it worked may answer: a named pod that is now a healthy replacement
    # is refused (exit 4), never deleted again.
    again: tuple[int, ...] = (0,)


ROLLBACK = Repair("rollback", "forced-rollback", ("rollback", "web", "--yes"), "stuck", ("PATCH", STS_PATH), "web-4")
DELETE_POD = Repair("delete-pod", "forced-rollback-reverted", ("delete-pod", "web", "4", "--yes"), "stuck",
                    ("DELETE", pod_path("web-4")), "web-4", target="update", again=(0, 4))  # fmt: skip
FORCE_DELETE = Repair("force-delete", "stuck-terminating", ("force-delete", "web", "1", "--yes"), "lost",
                      ("DELETE", pod_path("web-1")), "web-1", target="update", again=(0, 4))  # fmt: skip
PARTITION = Repair("partition", "partition-canary", ("partition", "web", "--step", "--until", "0", "--yes"), "none",
                   ("PATCH", STS_PATH), "web-1", target="update")  # fmt: skip
RESTART = Repair("restart", "healthy", ("restart", "web", "--yes"), "none", ("PATCH", STS_PATH), "web-1", target="update")
APPLY = Repair("apply", "forced-rollback", ("apply", "{plan}", "--yes"), "stuck", ("PATCH", STS_PATH), "web-4", plan=True)
PLAYBOOK = Repair("playbook", "forced-rollback", ("playbook", "run", "forced-rollback", "-n", "default", "-p",
                  "statefulset=web", "-p", "stuck_after=0s", "--yes"), "stuck", ("PATCH", STS_PATH), "web-4")  # fmt: skip


# -- the faults ---------------------------------------------------------------------------------
@dataclass
class CellCtx:
    sim: SimCluster
    repair: Repair
    tmp: Path
    target: str = ""
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    name: str
    install: Callable[[CellCtx], None] | None = None
    args: tuple[str, ...] = ()
    expect: str = "healed"  # "healed", or "honest": healthy with exit 0, else exit 4 or 6 saying so
    mode: str = "once"  # "once", "twice at once", "kill"
    kill_at: Callable[[str], bool] | None = None
    honest: tuple[int, ...] = (ExitCode.REFUSED, ExitCode.NOT_CONVERGED)  # what "not healthy" may exit with


def on_read(status: int, times: int) -> Callable[[CellCtx], None]:
    return lambda c: c.sim.server.faults.add(method="GET", path_re=STS_PATH, status=status, times=times, watch=False)


def on_write(**fault: Any) -> Callable[[CellCtx], None]:
    def install(c: CellCtx) -> None:
        method, path = c.repair.write
        c.sim.server.faults.add(method=method, path_re=path, **fault)

    return install


def on_watch(**fault: Any) -> Callable[[CellCtx], None]:
    return lambda c: c.sim.server.faults.add(method="GET", path_re=PODS_PATH, watch=True, **fault)


def concurrent_patch_of_the_set(c: CellCtx) -> None:
    def kubectl_patch() -> None:
        c.sim.patch("statefulsets", "default", "web", {"metadata": {"labels": {"touched-by": "kubectl-patch"}}})

    c.sim.server.faults.add(method="PATCH", path_re=STS_PATH, action=kubectl_patch)


def concurrent_patch_of_the_pod(c: CellCtx) -> None:
    def kubectl_patch() -> None:
        c.sim.patch("pods", "default", c.repair.pod, {"metadata": {"labels": {"touched-by": "kubectl-patch"}}})

    c.sim.server.faults.add(method="DELETE", path_re=pod_path(c.repair.pod), action=kubectl_patch)


def _landing(c: CellCtx, action: Callable[[], object]) -> None:
    """Run `action` just before the repair's mid-way write: the pod delete (rollback, delete-pod,
    apply, playbook) or the second partition step; before the restart's only write."""
    if c.repair.may_delete == "stuck":
        c.sim.server.faults.add(method="DELETE", path_re=pod_path(c.repair.pod), action=action)
    elif c.repair.name == "partition":
        fired = {"n": 0}

        def second() -> None:
            fired["n"] += 1
            if fired["n"] == 2:
                action()

        c.sim.server.faults.add(method="PATCH", path_re=STS_PATH, action=second, times=2)
    else:
        c.sim.server.faults.add(method=c.repair.write[0], path_re=c.repair.write[1], action=action)


def node_lost(c: CellCtx) -> None:
    def lose() -> None:
        pod = c.sim.get("pods", "default", c.repair.pod) or {}
        c.sim.set_node(pod["spec"]["nodeName"], "Lost")

    _landing(c, lose)


def second_template_change(c: CellCtx) -> None:
    def set_image() -> None:  # kubectl set image sts/web web=nginx:1.29
        c.sim.patch("statefulsets", "default", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.29", "command": None}]}}}})  # fmt: skip

    _landing(c, set_image)


def step(kind: str, nth: int = 1) -> Callable[[str], bool]:
    """Kill when the nth step of this kind starts."""
    match = jsonl_event("step", kind=kind)
    seen = {"n": 0}

    def at(line: str) -> bool:
        if match(line):
            seen["n"] += 1
            return seen["n"] == nth
        return False

    return at


def playbook_step(step_id: str) -> Callable[[str], bool]:
    return lambda line: line.startswith("{") and f'"id": "{step_id}"' in line and '"event": "step"' in line


READ_500 = Fault("500 on a read", on_read(500, 1))
READ_503 = Fault("503 on a read", on_read(503, 2))
WRITE_500 = Fault("500 on a write", on_write(status=500, times=1))
WRITE_503 = Fault("503 on a write", on_write(status=503, times=2))
WATCH_500 = Fault("500 on a watch", on_watch(status=500, times=1))
WATCH_503 = Fault("503 on a watch", on_watch(status=503, times=2))
TOO_MANY = Fault("429 with Retry-After", on_write(status=429, retry_after=1, times=1))
DROP_BEFORE = Fault("connection dropped before the write", on_write(drop=True, times=1))
DROP_AFTER = Fault("connection dropped after the write (answer lost)", on_write(drop_after=True, times=1))
DROP_WATCH = Fault("connection dropped mid-watch", on_watch(cut_after=0.3, times=2))
WATCH_410 = Fault("watch ends with 410", on_watch(expire_after=0.3, times=2))
SLOW = Fault("answers near the request timeout", on_write(latency=0.8, times=2), args=("--request-timeout", "1s"))
# Whether the late DELETE finds web-4 unchanged (and deletes it) depends on the kubelet's status writes:
# either the re-read confirms it and the repair goes on, or nothing was deleted and it says so (5).
TOO_SLOW = Fault("every answer later than the request timeout", lambda c: c.sim.server.faults.add(
    method="DELETE", path_re=pod_path(c.repair.pod), latency=1.5, times=None), args=("--request-timeout", "1s"),
    expect="honest", honest=(ExitCode.CLUSTER_ERROR,))  # fmt: skip
PATCH_409 = Fault("409 from a concurrent kubectl patch of the set", concurrent_patch_of_the_set)
POD_409 = Fault("409 from a concurrent kubectl patch of the pod", concurrent_patch_of_the_pod)
NODE_LOST = Fault("the target pod's node lost mid-repair", node_lost, args=("--timeout", "6s"), expect="honest")
TEMPLATE = Fault("a second template change mid-repair", second_template_change, args=("--timeout", "20s"),
                 expect="honest")  # fmt: skip
TWICE = Fault("two stsfix runs at once", mode="twice at once")


def killed(kind: str, nth: int = 1) -> Fault:
    label = f"SIGKILL at {kind}" + (f" #{nth}" if nth > 1 else "") + ", then run again"
    return Fault(label, mode="kill", kill_at=step(kind, nth))


def killed_playbook(step_id: str) -> Fault:
    return Fault(f"SIGKILL at playbook step {step_id}, then run again", mode="kill", kill_at=playbook_step(step_id))


MATRIX: list[tuple[Repair, list[Fault]]] = [
    (ROLLBACK, [READ_500, WRITE_503, WATCH_503, TOO_MANY, DROP_BEFORE, DROP_AFTER, DROP_WATCH, WATCH_410, SLOW, TOO_SLOW,
                PATCH_409, POD_409, NODE_LOST, TEMPLATE, TWICE, killed("RevertTemplate"), killed("AwaitObserved"),
                killed("DeletePod"), killed("AwaitReady"), killed("AwaitRolloutComplete")]),
    (DELETE_POD, [READ_503, WRITE_500, TOO_MANY, DROP_AFTER, WATCH_410, POD_409, NODE_LOST, TWICE,
                  killed("DeletePod"), killed("AwaitReady")]),
    (FORCE_DELETE, [WRITE_503, DROP_AFTER, POD_409, TWICE, killed("ForceDeletePod"), killed("AwaitReady")]),
    (PARTITION, [WRITE_500, WATCH_500, DROP_AFTER, DROP_WATCH, PATCH_409, NODE_LOST, TEMPLATE, TWICE,
                 killed("SetPartition"), killed("SetPartition", 2)]),
    (RESTART, [WRITE_503, WATCH_410, PATCH_409, TWICE, killed("RestartTemplate"), killed("AwaitRestartedPod")]),
    (APPLY, [READ_503, DROP_AFTER, TEMPLATE, killed("RevertTemplate"), killed("DeletePod")]),
    (PLAYBOOK, [WRITE_503, NODE_LOST, TWICE, killed_playbook("plan"), killed_playbook("repair")]),
]  # fmt: skip
CELLS = [pytest.param(r, f, id=f"{r.name}: {f.name}") for r, faults in MATRIX for f in faults]


# -- judging a cell -----------------------------------------------------------------------------
def healthy(sim: SimCluster) -> bool:
    """The rollout is complete: every replica Ready at the update revision, current == update."""
    sts = sim.get("statefulsets", "default", "web") or {}
    status, spec = sts.get("status") or {}, sts.get("spec") or {}
    if status.get("observedGeneration", 0) < sts["metadata"]["generation"]:
        return False
    if not status.get("updateRevision") or status.get("currentRevision") != status.get("updateRevision"):
        return False
    pods = [p for p in sim.list("pods", "default") if p["metadata"]["name"].startswith("web-")]
    ready = [
        p for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p["metadata"]["labels"].get("controller-revision-hash") == status["updateRevision"]
        and any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", ()))
    ]  # fmt: skip
    return len(ready) == len(pods) == spec.get("replicas")


def workload_writes(records: list[Any]) -> list[Any]:
    """Changes to the set's spec (its generation moved) and pod deletions or evictions."""
    out = []
    for r in changes(records):
        resource, subject = resource_of(r.path), r.subject or {}
        if resource == "statefulsets" and subject.get("generation") != (subject.get("after") or {}).get("generation"):
            out.append(r)
        elif resource in ("pods", "pods/eviction") and r.method in ("DELETE", "POST") and subject.get("exists"):
            out.append(r)
    return out


def applied_steps(doc: Any) -> int:
    """How many step results in an envelope say `applied`: its outcome's, and those of the repairs a
    playbook ran (nested results) or a pause-on-failure hold (`held`)."""
    if isinstance(doc, list):
        return sum(applied_steps(v) for v in doc)
    if not isinstance(doc, dict):
        return 0
    own = int({"index", "kind", "status"} <= doc.keys() and doc["status"] == "applied")
    return own + sum(applied_steps(v) for v in doc.values())


@dataclass
class Verdict:
    runs: list[Run]
    healed: bool
    wrong: list[str]
    pvcs: list[str]
    doubles: list[str]
    dishonest: list[str]
    notes: list[str]


def judge(ctx: CellCtx, runs: list[Run], pvcs_before: dict[str, str]) -> Verdict:
    sim, repair = ctx.sim, ctx.repair
    users = {r.user for r in runs}
    ours = [r for r in sim.requests if r.user in users]
    deletions = [r for r in workload_writes(ours) if resource_of(r.path) in ("pods", "pods/eviction")]
    wrong = []
    for r in deletions:
        s = r.subject
        allowed = {
            "stuck": not s["ready"] and s["revision"] != ctx.target,
            "lost": s["name"] == repair.pod and s["node_ready"] != "True",
            "none": False,
        }[repair.may_delete]
        if not allowed:
            wrong.append(f"{r.method} {s['name']} (ready {s['ready']}, revision {s['revision']}, node {s['node_ready']})")
    counted = collections.Counter(r.subject["uid"] for r in deletions)
    doubles = [f"{uid} deleted {n} times" for uid, n in counted.items() if n > 1]
    pvc_deletes = [f"{r.method} {r.path}" for r in changes(ours) if resource_of(r.path) == "persistentvolumeclaims"]
    after = {c["metadata"]["name"]: c["metadata"]["uid"] for c in sim.list("persistentvolumeclaims", "default")}
    pvc_deletes += [f"claim {n} gone or replaced" for n, uid in pvcs_before.items() if after.get(n) != uid]
    healed = healthy(sim)
    dishonest = []
    for result in runs:
        if result.code == -signal.SIGKILL:
            continue
        if result.code == 0 and not healed:
            dishonest.append(f"{result.user}: exit 0 but the set is not healthy")
        if result.code not in (0, 4, 5, 6):
            dishonest.append(f"{result.user}: exit {result.code}")
        doc = result.envelope()
        if doc is None:
            dishonest.append(f"{result.user}: no envelope")
            continue
        writes = len(workload_writes([r for r in ours if r.user == result.user]))
        applied = applied_steps(doc)
        if writes != applied:
            dishonest.append(f"{result.user}: {writes} change(s) carried out, {applied} reported applied")
    notes = [f"{r.user} exit {r.code}" for r in runs]
    return Verdict(runs, healed, wrong, pvc_deletes, doubles, dishonest, notes)


# -- running a cell -----------------------------------------------------------------------------
def _args(ctx: CellCtx, fault: Fault, kubeconfig: Path) -> list[str]:
    args = [a.format(**ctx.values) for a in ctx.repair.args]
    extra = list(fault.args)
    if ctx.repair.name == "playbook" and "--timeout" in extra:  # the playbook's own parameter
        at = extra.index("--timeout")
        extra[at : at + 2] = ["-p", f"timeout={extra[at + 1]}"]
    return [*args, *extra, "--kubeconfig", str(kubeconfig), "-o", "json", "--progress=jsonl"]


def run_cell(repair: Repair, fault: Fault, tmp: Path) -> Verdict:
    with SimCluster(scenarios=[repair.scenario], speed=SPEED) as sim:
        status = (sim.get("statefulsets", "default", "web") or {})["status"]
        ctx = CellCtx(sim, repair, tmp, target=status["currentRevision" if repair.target == "current" else "updateRevision"])
        pvcs = {c["metadata"]["name"]: c["metadata"]["uid"] for c in sim.list("persistentvolumeclaims", "default")}
        env = process_env(tmp / "home")

        def kubeconfig(user: str) -> Path:
            return user_kubeconfig(sim, tmp / f"{user}.kubeconfig", user)

        if repair.plan:
            planner = new_user("planner")
            path = tmp / "plan.yaml"
            made = run(["plan", "rollback", "web", "--save", str(path), "--kubeconfig", str(kubeconfig(planner))],
                       env=env, user=planner)  # fmt: skip
            assert made.code == ExitCode.ACTION_NEEDED, made
            ctx.values["plan"] = str(path)
        if fault.install is not None:
            fault.install(ctx)
        runs: list[Run] = []
        if fault.mode == "once":
            user = new_user(repair.name)
            runs.append(run(_args(ctx, fault, kubeconfig(user)), env=env, user=user))
        elif fault.mode == "twice at once":
            users = [new_user(repair.name), new_user(repair.name)]
            procs = [Proc(stsfix_argv(*_args(ctx, fault, kubeconfig(u))), env=env, user=u) for u in users]
            runs.extend(p.finish() for p in procs)
        else:
            assert fault.kill_at is not None
            first = new_user(repair.name)
            proc = Proc(stsfix_argv(*_args(ctx, fault, kubeconfig(first))), env=env, user=first)
            if proc.wait_for(fault.kill_at):
                proc.signal(signal.SIGKILL)
            runs.append(proc.finish())
            again = new_user(repair.name)
            runs.append(run(_args(ctx, fault, kubeconfig(again)), env=env, user=again))
        return judge(ctx, runs, pvcs)


_verdicts: dict[str, Verdict | BaseException] = {}
_lock = threading.Lock()


@pytest.fixture(scope="module")
def verdicts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every selected cell, WORKERS at a time (each on a cluster of its own)."""
    selected = [(item.callspec.params["repair"], item.callspec.params["fault"]) for item in request.session.items
                if getattr(item, "originalname", "") == "test_fault_cell" and hasattr(item, "callspec")]  # fmt: skip
    base = tmp_path_factory.mktemp("fault-matrix")

    def one(index_cell: tuple[int, tuple[Repair, Fault]]) -> None:
        index, (repair, fault) = index_cell
        tmp = base / f"cell-{index:03d}"
        tmp.mkdir()
        try:
            verdict: Verdict | BaseException = run_cell(repair, fault, tmp)
        except Exception as exc:  # noqa: BLE001 - a cell that cannot run fails alone
            verdict = exc
        with _lock:
            _verdicts[f"{repair.name}: {fault.name}"] = verdict

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, enumerate(selected)))
    return _verdicts


@pytest.mark.parametrize(("repair", "fault"), CELLS)
def test_fault_cell(repair: Repair, fault: Fault, verdicts: dict[str, Any]) -> None:
    verdict = verdicts[f"{repair.name}: {fault.name}"]
    if isinstance(verdict, BaseException):
        raise verdict
    figures.count(SUITE, "cells run")
    figures.count(SUITE, "healed", int(verdict.healed))
    figures.count(SUITE, "wrong deletions", len(verdict.wrong))
    figures.count(SUITE, "PVC deletions", len(verdict.pvcs))
    figures.count(SUITE, "double deletions", len(verdict.doubles))
    figures.count(SUITE, "dishonest exits", len(verdict.dishonest))
    problems = verdict.wrong + verdict.pvcs + verdict.doubles + verdict.dishonest
    final = verdict.runs[-1]
    if fault.expect == "healed":
        if not verdict.healed:
            problems.append("the set did not heal")
        if fault.mode == "twice at once":
            if sorted(r.code for r in verdict.runs)[0] != 0 or not {r.code for r in verdict.runs} <= {0, 4}:
                problems.append(f"two runs at once ended {[r.code for r in verdict.runs]}, not one 0 and 0 or 4")
        elif final.code not in (repair.again if fault.mode == "kill" else (0,)):
            problems.append(f"the last run exited {final.code}")
    elif not verdict.healed and final.code not in fault.honest:
        problems.append(f"not healthy, and the last run exited {final.code} (not {' or '.join(map(str, fault.honest))})")
    if problems:
        figures.detail(SUITE, f"{repair.name}: {fault.name}: {'; '.join(problems)} ({', '.join(verdict.notes)})")
    assert problems == [], (problems, verdict.runs)


def test_the_matrix_covers_every_repair_and_fault_of_the_issue() -> None:
    repairs = {r.name for r, _ in MATRIX}
    faults = {f.name for _, fs in MATRIX for f in fs}
    assert repairs == {"rollback", "delete-pod", "force-delete", "partition", "restart", "apply", "playbook"}
    assert {READ_500.name, READ_503.name, WRITE_500.name, WRITE_503.name, WATCH_500.name, WATCH_503.name,
            TOO_MANY.name, DROP_BEFORE.name, DROP_AFTER.name, DROP_WATCH.name, WATCH_410.name, SLOW.name,
            PATCH_409.name, POD_409.name, NODE_LOST.name, TEMPLATE.name, TWICE.name} <= faults  # fmt: skip
    assert all(any(f.mode == "kill" for f in fs) for _, fs in MATRIX), "a SIGKILL cell for every repair"
    assert len(CELLS) >= 40
