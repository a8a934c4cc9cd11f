"""The bad-input table: every row a real `stsfix` process against a live simulated cluster.

Each row asserts the documented exit code (docs/automation.md), exactly one error line on stderr and
no traceback, with -o json exactly one valid envelope on stdout, and, from the server's request log,
that the process changed nothing it was not meant to (each process runs as a user of its own, so
rows run in parallel on one cluster per scenario). The figures (inputs tried / clean / wrong code /
unwanted mutations) go to the terminal summary and to reliability-figures.txt.
"""

from __future__ import annotations

import base64
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from stsfix.errors import ExitCode
from stsfix.sim.cluster import SimCluster
from tests.reliability import figures
from tests.reliability.conftest import SPEED, SharedClusters
from tests.reliability.harness import (
    Proc,
    Run,
    answer_problems,
    changes,
    new_user,
    process_env,
    run,
    sent_by,
    stsfix_argv,
    user_kubeconfig,
    what_changed,
)

SUITE = "bad inputs"
WORKERS = 4
USAGE, REFUSED, CLUSTER = ExitCode.USAGE, ExitCode.REFUSED, ExitCode.CLUSTER_ERROR
# what a run that got as far as the lease may write: the lease, audit Events, the last-repair annotation
BOOKKEEPING = frozenset({"leases", "events", "statefulsets/metadata"})
REPAIR_WRITES = (
    ("statefulsets", "patch"), ("pods", "delete"), ("pods/eviction", "create"), ("leases", "create"),
    ("leases", "update"), ("leases", "patch"), ("leases", "get"), ("events", "create"), ("events", "patch"),
)  # fmt: skip


def without(*dropped: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """The repair role's grants (deploy/rbac-repair.yaml) minus some."""
    return tuple(g for g in REPAIR_WRITES if g not in dropped)


@dataclass
class Ctx:
    """What a row runs with: its directory, cluster, user and kubeconfig, and the placeholders."""

    row: Row
    tmp: Path
    sim: SimCluster | None
    user: str
    kubeconfig: Path | None
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    id: str
    category: str
    args: tuple[str, ...]
    code: ExitCode
    machine: bool = True  # append -o json
    cluster: str = "forced-rollback"  # a scenario (shared by the rows that only read), "own:<scenario>", or "none"
    role: str = "repair"
    grants: tuple[tuple[str, str], ...] | None = None
    may_change: frozenset[str] = frozenset()  # resources the row may change; "*" anything
    prepare: Callable[[Ctx], None] | None = None
    interrupt: int | None = None  # a signal sent once the process is waiting (watching)
    check: Callable[[Ctx, Run], list[str]] | None = None  # more problems to look for
    xfail: str = ""


def row(id: str, category: str, args: str | tuple[str, ...], code: ExitCode, **kw: Any) -> Any:
    argv = tuple(args.split()) if isinstance(args, str) else args
    spec = Row(id, category, argv, code, **kw)
    marks = [pytest.mark.xfail(reason=spec.xfail, strict=False)] if spec.xfail else []
    return pytest.param(spec, id=f"{category}: {id}", marks=marks)


# -- preparations -------------------------------------------------------------------------------
def write(name: str, text: str | bytes) -> Callable[[Ctx], None]:
    def prepare(ctx: Ctx) -> None:
        path = ctx.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        ctx.values[name.split(".")[0]] = str(path)

    return prepare


def kubeconfig_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Ctx], None]:
    def prepare(ctx: Ctx) -> None:
        assert ctx.kubeconfig is not None
        doc = yaml.safe_load(ctx.kubeconfig.read_text())
        result = change(doc)
        ctx.kubeconfig.write_text(result if isinstance(result, str) else yaml.safe_dump(doc))

    return prepare


def _no_current_context(doc: dict[str, Any]) -> None:
    doc.pop("current-context")


def _unreachable(doc: dict[str, Any]) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"


def _wrong_ca(doc: dict[str, Any]) -> None:
    import trustme

    other = trustme.CA().cert_pem.bytes()
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other).decode()


def _bad_token(doc: dict[str, Any]) -> None:
    doc["users"][0]["user"]["token"] = "not-a-token-the-server-knows"


def _missing_cluster(doc: dict[str, Any]) -> None:
    doc["clusters"] = []


def saved_plan(name: str = "plan.yaml", *, edit: Callable[[dict[str, Any]], Any] | None = None,
               text: Callable[[str], str] | None = None, command: str = "rollback web") -> Callable[[Ctx], None]:  # fmt: skip
    """Save a plan with `stsfix plan ... --save` on the row's cluster, then edit it as a person might."""

    def prepare(ctx: Ctx) -> None:
        path = ctx.tmp / name
        made = run(
            ["plan", *command.split(), "--save", str(path), "--kubeconfig", str(ctx.kubeconfig)],
            env=process_env(ctx.tmp / "home-plan"),
        )
        assert made.code == ExitCode.ACTION_NEEDED, made
        if edit is not None:
            doc = yaml.safe_load(path.read_text())
            edit(doc)
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        if text is not None:
            path.write_text(text(path.read_text()))
        ctx.values["plan"] = str(path)

    return prepare


def _retarget(doc: dict[str, Any]) -> None:
    step = next(s for s in doc["steps"] if s["kind"] == "DeletePod")
    step["ordinal"], step["podName"] = 3, "web-3"


def _refingerprint(doc: dict[str, Any]) -> None:
    doc["fingerprint"] = "sha256:" + "0" * 64


def _unfingerprint_and_retarget(doc: dict[str, Any]) -> None:
    doc.pop("fingerprint")
    _retarget(doc)


def _rekind(doc: dict[str, Any]) -> None:
    next(s for s in doc["steps"] if s["kind"] == "DeletePod")["kind"] = "ForceDeletePod"


def _renamespace(doc: dict[str, Any]) -> None:
    doc["namespace"] = "kube-system"


def _version(doc: dict[str, Any]) -> None:
    doc["planVersion"] = "3"


def plan_from_another_cluster(ctx: Ctx) -> None:
    with SimCluster(scenarios=["forced-rollback"], speed=SPEED) as other:
        kubeconfig = user_kubeconfig(other, ctx.tmp / "other.kubeconfig", new_user("other"))
        path = ctx.tmp / "other-plan.yaml"
        made = run(["plan", "rollback", "web", "--save", str(path), "--kubeconfig", str(kubeconfig)],
                   env=process_env(ctx.tmp / "home-plan"))  # fmt: skip
        assert made.code == ExitCode.ACTION_NEEDED, made
    ctx.values["plan"] = str(path)


def stale_plan(ctx: Ctx) -> None:
    saved_plan()(ctx)
    assert ctx.sim is not None
    ctx.sim.patch("statefulsets", "default", "web", {"spec": {"template": {"metadata": {"annotations": {
        "someone": "changed the template after the plan was saved"}}}}})  # fmt: skip


def collected(ctx: Ctx) -> None:
    path = ctx.tmp / "dump.yaml"
    made = run(["collect", "web", "--save", str(path), "--kubeconfig", str(ctx.kubeconfig)],
               env=process_env(ctx.tmp / "home-collect"))  # fmt: skip
    assert made.code == 0, made
    ctx.values["dump"] = str(path)


def third_revision(ctx: Ctx) -> None:
    """The template moved on (kubectl set image) while web-4 still runs the broken second revision."""
    assert ctx.sim is not None
    ctx.sim.patch("statefulsets", "default", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.29"}]}}}})  # fmt: skip
    assert ctx.sim.wait_for(lambda s: (s.get("statefulsets", "default", "web") or {})["status"].get(
        "observedGeneration") == 3, timeout=30)  # fmt: skip


def existing_lease(ctx: Ctx) -> None:
    """A lease left released by an earlier run, so taking it is an update (PUT), not a create."""
    assert ctx.sim is not None
    ctx.sim.apply_manifest({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "stsfix-web", "namespace": "default"},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": "2020-01-01T00:00:00.000000Z"},
    })  # fmt: skip


def lease_released(ctx: Ctx, result: Run) -> list[str]:
    assert ctx.sim is not None
    lease = ctx.sim.get("leases", "default", "stsfix-web") or {}
    holder = (lease.get("spec") or {}).get("holderIdentity")
    return [f"the lease is still held by {holder}"] if holder else []


def never_ready(ctx: Ctx) -> None:
    """The pod the repair recreates never becomes Ready, so its wait lasts until the signal."""
    assert ctx.sim is not None
    ctx.sim.add_rule(action="never-ready", pod="web-4")



PLAYBOOK_HEAD = "apiVersion: stsfix.dev/v1\nkind: Playbook\nname: x\ntitle: t\ndescription: d\nanswers: [forced-rollback-needed]\n"
BAD_NAME = "a" * 254

# -- the table ----------------------------------------------------------------------------------
ROWS = [
    # targets
    row("empty target, diagnose", "targets", ("diagnose", ""), USAGE),
    row("empty target, rollback", "targets", ("rollback", "", "--yes"), USAGE),
    row("junk prefix pod/web", "targets", "diagnose pod/web", USAGE),
    row("deploy/x", "targets", "rollback deploy/x --yes", USAGE),
    row("kind without a name", "targets", "diagnose statefulset/", USAGE),
    row("name too long (254)", "targets", f"diagnose {BAD_NAME}", USAGE),
    row("name with bad characters", "targets", "delete-pod Web_1 0 --yes", USAGE),
    row("missing set, rollback", "targets", "rollback nosuch --yes", CLUSTER),
    row("wrong namespace", "targets", "rollback web -n nope --yes", CLUSTER),
    # ordinals
    row("negative ordinal", "ordinals", "delete-pod web -1 --yes", USAGE),
    row("non-numeric ordinal", "ordinals", "delete-pod web abc --yes", USAGE),
    row("huge ordinal", "ordinals", "delete-pod web 99999999999999999999 --yes", USAGE),
    row("ordinal == replicas", "ordinals", "delete-pod web 5 --yes", USAGE),
    row("ordinal above replicas, force-delete", "ordinals", "force-delete web 7 --yes", USAGE),
    # revisions
    row("revision not in the history", "revisions", "rollback web --to-revision 99 --yes", USAGE),
    row("revision 0", "revisions", "rollback web --to-revision 0 --yes", USAGE),
    row("non-numeric revision", "revisions", "rollback web --to-revision last --yes", USAGE),
    row("ambiguous target revision", "revisions", "rollback web --yes", REFUSED, cluster="own:forced-rollback",
        prepare=third_revision),
    # flag values
    row("--timeout not a duration", "flag values", "rollback web --timeout ten --yes", USAGE),
    row("--timeout 0", "flag values", "rollback web --timeout 0 --yes", USAGE),
    row("--speed negative", "flag values", "sim serve --speed -1", USAGE, machine=False, cluster="none"),
    row("demo --speed 0", "flag values", "demo --speed 0", USAGE, machine=False, cluster="none"),
    row("-o xml", "flag values", "diagnose web -o xml", USAGE, machine=False),
    row("--dry-run=maybe", "flag values", "rollback web --dry-run=maybe", USAGE),
    row("--count 0", "flag values", "partition web --step --count 0 --yes", USAGE),
    row("--until above the partition", "flag values", "partition web --step --until 99 --yes", USAGE),
    row("--stuck-after not a duration", "flag values", "diagnose web --stuck-after soon", USAGE),
    row("--now not a time", "flag values", "diagnose web --now yesterday", USAGE),
    row("--request-timeout not a duration", "flag values", "diagnose web --request-timeout x", USAGE),
    row("--progress unknown", "flag values", "rollback web --progress=fancy --yes", USAGE),
    # conflicting flags
    row("--hold with --step", "conflicting flags", "partition web --hold --step --yes", USAGE),
    row("--set with --until", "conflicting flags", "partition web --set 1 --step --until 0 --yes", USAGE),
    row("partition without an action", "conflicting flags", "partition web --yes", USAGE),
    row("--watch on an offline file", "conflicting flags", "inspect web -w -f {dump}", USAGE, prepare=collected),
    # kubeconfigs
    row("kubeconfig missing", "kubeconfigs", "diagnose web --kubeconfig /nonexistent/kubeconfig", CLUSTER),
    row("kubeconfig empty", "kubeconfigs", "diagnose web", CLUSTER, prepare=kubeconfig_edit(lambda d: "")),
    row("kubeconfig malformed YAML", "kubeconfigs", "rollback web --yes", CLUSTER,
        prepare=kubeconfig_edit(lambda d: "apiVersion: v1\nclusters: [\n  - {name: x\n")),
    row("kubeconfig binary", "kubeconfigs", "diagnose web", CLUSTER, prepare=kubeconfig_edit(lambda d: "\x00\xff\x10" * 50)),
    row("kubeconfig without current-context", "kubeconfigs", "diagnose web", CLUSTER,
        prepare=kubeconfig_edit(_no_current_context)),
    row("unknown --context", "kubeconfigs", "rollback web --context nope --yes", CLUSTER),
    row("unreachable server", "kubeconfigs", "diagnose web", CLUSTER, prepare=kubeconfig_edit(_unreachable)),
    row("TLS: server not signed by the CA", "kubeconfigs", "rollback web --yes", CLUSTER, prepare=kubeconfig_edit(_wrong_ca)),
    row("bad token (401)", "kubeconfigs", "rollback web --yes", CLUSTER, prepare=kubeconfig_edit(_bad_token)),
    # RBAC: a 403 on each write a repair sends (own clusters: these get as far as the lease)
    row("403 on the lease (readonly)", "rbac", "rollback web --yes --progress=none", CLUSTER, role="readonly"),
    row("403 on leases update", "rbac", "rollback web --yes --progress=none", CLUSTER, cluster="own:forced-rollback",
        role="no-lease-update", grants=without(("leases", "update")), prepare=existing_lease),
    row("403 on the template patch", "rbac", "rollback web --yes --progress=none", CLUSTER,
        cluster="own:forced-rollback", role="no-sts-patch", grants=without(("statefulsets", "patch")),
        may_change=BOOKKEEPING),
    row("403 on the partition patch", "rbac", "partition web --step --yes --progress=none", CLUSTER,
        cluster="own:partition-canary", role="no-sts-patch", grants=without(("statefulsets", "patch")),
        may_change=BOOKKEEPING),
    row("403 on the pod delete", "rbac", "delete-pod web 4 --yes --progress=none", CLUSTER,
        cluster="own:forced-rollback-reverted", role="no-pod-delete", grants=without(("pods", "delete")),
        may_change=BOOKKEEPING),
    row("403 on the eviction", "rbac", "delete-pod web 4 --evict --yes --progress=none", CLUSTER,
        cluster="own:forced-rollback-reverted", role="no-eviction", grants=without(("pods/eviction", "create")),
        may_change=BOOKKEEPING),
    row("403 on the force delete", "rbac", "force-delete web 1 --yes --progress=none", CLUSTER,
        cluster="own:stuck-terminating", role="no-pod-delete", grants=without(("pods", "delete")),
        may_change=BOOKKEEPING),
    # -f files
    row("-f malformed YAML", "files", "diagnose web -f {bad}", USAGE, prepare=write("bad.yaml", "kind: List\nitems: [\n")),
    row("-f empty", "files", "diagnose web -f {empty}", USAGE, prepare=write("empty.yaml", "")),
    row("-f binary", "files", "diagnose web -f {binary}", USAGE, prepare=write("binary.bin", bytes(range(256)) * 64)),
    row("-f 50 MiB", "files", "diagnose -A -f {big}", USAGE),
    row("-f a List without a StatefulSet", "files", "inspect web -f {pods}", USAGE, prepare=write("pods.yaml", (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: web-0, namespace: default}\n"))),
    row("-f objects of another kind", "files", "history web -f {deploy}", USAGE, prepare=write("deploy.yaml", (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec: {replicas: 1}\n"))),
    row("-f truncated JSON", "files", "diagnose web -f {cut}", USAGE, prepare=write("cut.json", '{"kind": "List", "items": [{"kind": ')),
    # plan files
    row("plan: step target edited", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(edit=_retarget)),
    row("plan: fingerprint edited", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(edit=_refingerprint)),
    row("plan: fingerprint removed, step edited", "plan files", "apply {plan} --yes", USAGE,
        prepare=saved_plan(edit=_unfingerprint_and_retarget)),
    row("plan: step kind edited", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(edit=_rekind)),
    row("plan: plan_version edited", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(edit=_version)),
    row("plan: a manifest (apiVersion apps/v1)", "plan files", "apply {manifest} --yes", USAGE,
        prepare=write("manifest.yaml", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n")),
    row("plan: namespace edited", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(edit=_renamespace)),
    row("plan: made on another cluster", "plan files", "apply {plan} --yes", REFUSED, prepare=plan_from_another_cluster),
    row("plan: stale, the set changed", "plan files", "apply {plan} --yes", REFUSED, cluster="own:forced-rollback",
        prepare=stale_plan),
    row("plan: truncated", "plan files", "apply {plan} --yes", USAGE, prepare=saved_plan(text=lambda t: t[: len(t) // 2])),
    row("plan: --save into a missing directory", "plan files", "plan rollback web --save /nonexistent/dir/plan.yaml", USAGE),
    # playbooks
    row("playbook: schema error", "playbooks", "playbook run {pb}", USAGE, prepare=write("pb.yaml", PLAYBOOK_HEAD)),
    row("playbook: unknown command in a step", "playbooks", "playbook run {pb} -n default", USAGE, prepare=write("pb.yaml",
        PLAYBOOK_HEAD + "steps:\n- id: a\n  title: a\n  run: stsfix frobnicate web\n  on_exit: {default: done}\n")),
    row("playbook: on_exit to an unknown step", "playbooks", "playbook run {pb} -n default", USAGE, prepare=write("pb.yaml",
        PLAYBOOK_HEAD + "steps:\n- id: a\n  title: a\n  run: stsfix diagnose web\n  on_exit: {0: nowhere}\n")),
    row("playbook: unknown name", "playbooks", "playbook run nosuch", USAGE),
    row("playbook: missing parameter", "playbooks", "playbook run forced-rollback -n default", USAGE),
    # no terminal, no --yes
    row("no TTY: rollback", "no TTY without --yes", "rollback web", REFUSED),
    row("no TTY: delete-pod", "no TTY without --yes", "delete-pod web 4", REFUSED),
    row("no TTY: partition", "no TTY without --yes", "partition web --hold", REFUSED),
    row("no TTY: apply", "no TTY without --yes", "apply {plan}", REFUSED, prepare=saved_plan()),
    row("no TTY: playbook run", "no TTY without --yes", "playbook run forced-rollback -n default -p statefulset=web "
        "-p stuck_after=0s --progress=none", REFUSED),
    # signals mid-wait (own clusters: the repair has begun; web-4 is recreated but never Ready)
    row("SIGINT mid-wait", "signals", "rollback web --yes --progress=none", ExitCode.INTERRUPTED,
        cluster="own:forced-rollback", interrupt=signal.SIGINT, may_change=frozenset({"*"}), prepare=never_ready,
        check=lease_released),
    row("SIGTERM mid-wait", "signals", "rollback web --yes --progress=none", ExitCode.INTERRUPTED,
        cluster="own:forced-rollback", interrupt=signal.SIGTERM, may_change=frozenset({"*"}), prepare=never_ready,
        check=lease_released),
    row("SIGTERM mid-wait, playbook", "signals", "playbook run forced-rollback -n default -p statefulset=web "
        "-p stuck_after=0s --yes --progress=none", ExitCode.INTERRUPTED, cluster="own:forced-rollback",
        interrupt=signal.SIGTERM, may_change=frozenset({"*"}), prepare=never_ready, check=lease_released),
]


# -- running the table --------------------------------------------------------------------------
@dataclass
class Outcome:
    result: Run
    problems: list[str]
    unwanted: list[str]
    seconds: float = 0.0


def _run_row(spec: Row, tmp: Path, shared: SharedClusters, big: Path) -> Outcome:
    own: SimCluster | None = None
    sim: SimCluster | None = None
    if spec.cluster.startswith("own:"):
        sim = own = SimCluster(scenarios=[spec.cluster[4:]], speed=SPEED, tls=True).start()
    elif spec.cluster != "none":
        sim = shared.get(spec.cluster)
    try:
        user = new_user("row")
        kubeconfig = None
        if sim is not None:
            kubeconfig = user_kubeconfig(sim, tmp / "kubeconfig", user, role=spec.role, grants=spec.grants)
        ctx = Ctx(spec, tmp, sim, user, kubeconfig, {"tmp": str(tmp), "big": str(big)})
        if spec.prepare is not None:
            spec.prepare(ctx)
        args = [a.format(**ctx.values) for a in spec.args]
        if kubeconfig is not None and "--kubeconfig" not in args:
            args += ["--kubeconfig", str(kubeconfig)]
        if spec.machine:
            args += ["-o", "json"]
        env = process_env(tmp / "home")
        if spec.interrupt is None:
            result = run(args, env=env, user=user)
        else:
            assert sim is not None
            result = _interrupted(args, env, sim, user, spec.interrupt)
        problems = answer_problems(result, code=spec.code, machine=spec.machine)
        if spec.check is not None:
            problems += spec.check(ctx, result)
        unwanted = []
        if sim is not None and "*" not in spec.may_change:
            unwanted = [f"{r.method} {r.path} -> {r.status}" for r in changes(sent_by(sim, user))
                        if what_changed(r) not in spec.may_change]  # fmt: skip
        return Outcome(result, problems, unwanted)
    finally:
        if own is not None:
            own.stop()


def _interrupted(args: list[str], env: dict[str, str], sim: SimCluster, user: str, sig: int) -> Run:
    """Start the repair, send `sig` once it watches (its waits are watches), collect the answer."""
    proc = Proc(stsfix_argv(*args), env=env, user=user)
    watching = sim.requests.wait_for(lambda r: r.user == user and r.query.get("watch") == "true", timeout=60)
    if watching is not None:
        proc.signal(sig)
    return proc.finish()


_results: dict[str, Outcome] = {}
_results_lock = threading.Lock()


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             shared_sim: SharedClusters, big_file: Path) -> dict[str, Outcome]:  # fmt: skip
    """Run every selected row, WORKERS at a time (they never share a set they change)."""
    selected = [item.callspec.params["spec"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")]  # fmt: skip
    base = tmp_path_factory.mktemp("bad-inputs")

    def one(index_spec: tuple[int, Row]) -> None:
        index, spec = index_spec
        tmp = base / f"row-{index:03d}"
        tmp.mkdir()
        began = time.monotonic()
        try:
            outcome = _run_row(spec, tmp, shared_sim, big_file)
        except Exception as exc:  # noqa: BLE001 - a row that cannot be set up fails alone
            outcome = Outcome(Run([], -1, "", f"[harness] {type(exc).__name__}: {exc}"), ["the row failed to run"], [])
        outcome.seconds = time.monotonic() - began
        with _results_lock:
            _results[spec.id] = outcome

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, enumerate(selected)))
    return _results


@pytest.mark.parametrize("spec", ROWS)
def test_bad_input(spec: Row, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[spec.id]
    result = outcome.result
    figures.count(SUITE, "inputs tried")
    figures.count(SUITE, "clean", int(not outcome.problems))
    figures.count(SUITE, "wrong code", int(result.code != spec.code))
    figures.count(SUITE, "unwanted mutations", int(bool(outcome.unwanted)))
    if outcome.problems or outcome.unwanted or result.code != spec.code:
        figures.detail(SUITE, f"{spec.id}: exit {result.code} (documented {int(spec.code)}); "
                       f"{'; '.join(outcome.problems + outcome.unwanted)}")  # fmt: skip
    assert result.code == spec.code, result
    assert outcome.problems == [], (outcome.problems, result)
    assert outcome.unwanted == [], (outcome.unwanted, result)


def test_the_table_covers_every_category_of_the_issue() -> None:
    wanted = {"targets", "ordinals", "revisions", "flag values", "conflicting flags", "kubeconfigs", "rbac",
              "files", "plan files", "playbooks", "no TTY without --yes", "signals"}  # fmt: skip
    specs = [p.values[0] for p in ROWS]
    assert {s.category for s in specs} == wanted
    assert len(specs) >= 60 and len({s.id for s in specs}) == len(specs)
