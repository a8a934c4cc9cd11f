"""`stsfix demo`: the whole forced-rollback incident on the embedded simulated cluster, in about 15 seconds.

A healthy 5-replica OrderedReady set gets a broken template; web-4 crash-loops and the rollout
sticks. `stsfix inspect` and `stsfix diagnose` show why, and why `kubectl rollout undo` alone would
not be enough (kubernetes/kubernetes#67250); `stsfix rollback` plans the forced rollback, then
reverts the template itself, deletes web-4 once the revert is observed, and the set ends healthy.
Nothing else is needed (no kubectl). Narration goes to stderr, each command's own output where
that command puts it. Exit 0 when the set ends healthy.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from stsfix.cli.common import positive_speed
from stsfix.cli.root import main

BROKEN_PATCH: dict[str, Any] = {
    "metadata": {"annotations": {"kubernetes.io/change-cause": "web 1.28 entrypoint (broken: exits 1)"}},
    "spec": {
        "template": {
            "spec": {"containers": [{"name": "web", "command": ["sh", "-c", "echo starting; exit 1"]}]}
        }
    },
}


class _Show:
    def __init__(self, pace: float):
        self.pace = pace
        self.started = time.monotonic()
        self.stage = 0

    def title(self, text: str) -> None:
        self.stage += 1
        elapsed = time.monotonic() - self.started
        typer.echo(f"\n==> {self.stage}. {text}  [{elapsed:4.1f}s]", err=True)

    def say(self, text: str) -> None:
        typer.echo(f"    {text}", err=True)

    def pause(self, seconds: float = 1.0) -> None:
        if self.pace > 0:
            time.sleep(seconds * self.pace)


def _stsfix(kubeconfig: Path, *args: str) -> int:
    """Run an stsfix command in-process, as a user would type it; returns its exit code."""
    typer.echo(f"$ stsfix {' '.join(args)}", err=True)
    try:
        main(["--kubeconfig", str(kubeconfig), *args])
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def _status(sim: Any) -> dict[str, Any]:
    return dict((sim.get("statefulsets", "default", "web") or {}).get("status") or {})


def _crash_looping(sim: Any) -> bool:
    pod = sim.get("pods", "default", "web-4") or {}
    status = _status(sim)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    waiting = [
        ((c.get("state") or {}).get("waiting") or {}).get("reason")
        for c in (pod.get("status") or {}).get("containerStatuses") or ()
    ]
    restarts = sum(
        int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or ()
    )
    return (
        labels.get("controller-revision-hash")
        == status.get("updateRevision")
        != status.get("currentRevision")
        and "CrashLoopBackOff" in waiting
        and restarts >= 3  # stuck, not slow: CRASH_LOOP_RESTARTS, so diagnose calls it stuck
    )


def _healthy(sim: Any) -> bool:
    status = _status(sim)
    return status.get("currentRevision") == status.get("updateRevision") and status.get("readyReplicas") == 5


def _start(speed: float) -> Any:
    from stsfix.sim.cluster import SimCluster
    from stsfix.sim.scenarios import load_scenario

    # TLS: kubectl sends its bearer token only over HTTPS.
    sim = SimCluster(speed=speed, tls=True)
    # Fast-forward only to "healthy": the incident itself happens live, in front of the viewer.
    base = load_scenario("forced-rollback")
    sim.scenarios = [dataclasses.replace(base, name="demo", steps=[], ready_when=[])]
    return sim.start()


def demo(
    speed: Annotated[
        float,
        typer.Option("--speed", help="Simulated seconds per real second (> 0).", callback=positive_speed),
    ] = 60.0,
    pace: Annotated[
        float, typer.Option("--pace", help="Pause multiplier between stages (0 = no pauses).")
    ] = 1.5,
) -> None:
    """Run the forced-rollback incident on the embedded simulated cluster (about 15 seconds)."""
    show = _Show(pace)
    show.title("Start a simulated cluster with a healthy StatefulSet default/web (5 replicas, OrderedReady)")
    sim = _start(speed)
    try:
        kubeconfig = sim.write_kubeconfig(Path(tempfile.mkdtemp(prefix="stsfix-demo-")) / "kubeconfig")
        show.say(f"API server {sim.url}; kubeconfig {kubeconfig}")
        healthy = _incident(sim, kubeconfig, show, speed=speed)
    finally:
        sim.stop()
    show.title("Done" if healthy else "The set did not end healthy")
    raise typer.Exit(code=0 if healthy else 6)


def _incident(sim: Any, kubeconfig: Path, show: _Show, *, speed: float) -> bool:
    _stsfix(kubeconfig, "inspect", "web", "-n", "default")
    show.pause()

    show.title("A rollout goes bad: the new template's container exits 1")
    typer.echo(
        "$ kubectl patch statefulset web -p '{...command: [sh, -c, \"echo starting; exit 1\"]...}'", err=True
    )
    sim.patch("statefulsets", "default", "web", BROKEN_PATCH)
    show.say("The controller replaces web-4 first (highest ordinal) ... waiting for it to crash-loop (3 restarts)")
    if not sim.wait_for(lambda s: _crash_looping(s), timeout=60):
        show.say("web-4 did not reach CrashLoopBackOff in time")
        return False
    _stsfix(kubeconfig, "inspect", "web", "-n", "default")
    show.pause()

    show.title("Diagnose: why is the rollout stuck?")
    _stsfix(kubeconfig, "diagnose", "web", "-n", "default")
    show.pause()

    show.say("The usual reflex, kubectl rollout undo, would revert the template but leave web-4 broken:")
    show.say("OrderedReady never replaces a pod that never became Ready (kubernetes/kubernetes#67250).")
    show.say("(Rehearse that half on its own: stsfix sim serve --scenario forced-rollback-reverted.)")
    show.pause()

    show.title("stsfix plans the forced rollback (nothing is changed yet)")
    _stsfix(kubeconfig, "rollback", "web", "-n", "default", "--dry-run=client")
    show.pause()

    show.title("stsfix applies it: it reverts the template, and deletes only web-4 once the revert is observed")
    code = _stsfix(kubeconfig, "rollback", "web", "-n", "default", "--yes", "--timeout", "2m")
    show.pause(0.5)

    show.title("The set is healthy again")
    _stsfix(kubeconfig, "inspect", "web", "-n", "default")
    return code == 0 and _healthy(sim)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
