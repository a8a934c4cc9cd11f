"""Ctrl-C and SIGTERM (what a Kubernetes Job gets) stop a repair cleanly: the step it was in is
`interrupted`, the rest `not_run`, the lease is released, the audit says so, and the result says
what was applied and what remains: with -o json as one envelope. Exit 130 either way.

The commands run as real processes (signals need one) against a simulated cluster served over
HTTP; the recreated web-4 is kept from becoming Ready, so the repair is waiting when the signal
comes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import pytest

from stsfix.errors import ExitCode


def _start(env: Any, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stsfix", *args, "-n", "default", "--kubeconfig", env.kubeconfig],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_progress(proc: subprocess.Popen[str], wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """Read --progress=jsonl lines until one has all of `wanted`'s items (fails if the process ends first)."""
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        seen.append(event)
        if all(event.get(k) == v for k, v in wanted.items()):
            return seen
    pytest.fail(f"the command ended before {wanted}: {seen[-5:]}")


def _stuck_replacement(env: Any) -> None:
    env.sim.add_rule(action="never-ready", pod="web-4")  # the recreated web-4 never becomes Ready


@pytest.mark.parametrize(
    ("sig", "how"),
    [pytest.param(signal.SIGTERM, "SIGTERM", id="SIGTERM"), pytest.param(signal.SIGINT, "Ctrl-C", id="Ctrl-C")],
)
def test_a_signal_during_a_wait_stops_cleanly_with_one_envelope(make_sim, sig: int, how: str) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    _stuck_replacement(env)
    proc = _start(env, "rollback", "web", "--yes", "-o", "json", "--progress=jsonl", "--timeout", "10m")
    _wait_for_progress(proc, {"event": "wait", "step": 4})
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    body = json.loads(stdout)  # exactly one envelope: json.loads fails on anything more
    assert body["kind"] == "Repair" and body["status"] == "interrupted" and body["exitCode"] == 130
    steps = [(s["kind"], s["status"]) for s in body["outcome"]["steps"]]
    assert steps == [
        ("RevertTemplate", "applied"),
        ("AwaitObserved", "done"),
        ("DeletePod", "applied"),
        ("AwaitReady", "interrupted"),
        ("AwaitRolloutComplete", "not_run"),
    ]
    (error,) = body["errors"]
    assert error["code"] == "interrupted"
    assert error["message"].startswith(
        f"interrupted ({how}) during step 4 (Wait for web-4 to be Ready at revision "
    )
    assert "applied 1. RevertTemplate, 3. DeletePod; not done 4. AwaitReady, 5. AwaitRolloutComplete" in error["message"]
    lease = env.sim.get("leases", "default", "stsfix-web")
    assert lease["spec"]["holderIdentity"] == ""  # released
    record = json.loads(env.sim.get("statefulsets", "default", "web")["metadata"]["annotations"]["stsfix.dev/last-repair"])
    assert record["result"] == "interrupted"


def test_ctrl_c_during_a_wait_says_interrupted_with_what_was_applied_and_what_remains(make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    _stuck_replacement(env)
    proc = _start(env, "rollback", "web", "--yes", "--progress=jsonl", "--timeout", "10m")
    _wait_for_progress(proc, {"event": "wait", "step": 4})
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    words = " ".join(stdout.split())
    assert "4 AwaitReady interrupted" in words and "5 AwaitRolloutComplete not_run" in words
    error = stderr.splitlines()[-1]  # the result on stdout, why it stopped in one line on stderr
    assert error.startswith("error: interrupted (Ctrl-C) during step 4"), stderr[-1000:]
    assert "applied 1. RevertTemplate, 3. DeletePod; not done 4. AwaitReady, 5. AwaitRolloutComplete" in error


def test_sigterm_stops_a_playbook_run_with_one_playbook_envelope(make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    _stuck_replacement(env)
    proc = _start(env, "playbook", "run", "forced-rollback", "-p", "statefulset=web", "--yes", "-o", "json",
                  "--progress=jsonl")  # fmt: skip
    _wait_for_progress(proc, {"event": "wait", "step": 4})
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    body = json.loads(stdout)
    assert body["kind"] == "PlaybookRun" and body["outcome"] == "interrupted" and body["exitCode"] == 130
    assert [(s["id"], s["exitCode"]) for s in body["steps"]] == [("diagnose", 3), ("plan", 3), ("repair", 130)]
    assert body["steps"][-1]["result"]["outcome"]["steps"][3]["status"] == "interrupted"
    assert env.sim.get("leases", "default", "stsfix-web")["spec"]["holderIdentity"] == ""


def test_sigterm_outside_a_repair_is_one_error_envelope(make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)  # stuck: the watch runs until stopped
    proc = _start(env, "inspect", "web", "--watch", "-o", "json")
    watching = lambda sim: any(r.query.get("watch") in ("1", "true") for r in sim.requests)  # noqa: E731
    assert env.sim.wait_for(watching, timeout=60)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    frames, text, decoder = [], stdout.strip(), json.JSONDecoder()
    while text:
        frame, end = decoder.raw_decode(text)
        frames.append(frame)
        text = text[end:].strip()
    assert frames[-1]["kind"] == "Error" and frames[-1]["errors"][0]["code"] == "interrupted"
    assert [f["kind"] for f in frames[:-1]] == ["Inspection"] * (len(frames) - 1)
    assert stderr.strip().endswith("error: interrupted (SIGTERM)")


def test_the_confirmation_prompt_names_the_context_cluster_and_namespace(make_sim) -> None:
    """At a terminal, rollback asks before changing anything, saying where the change goes."""
    import os
    import pty
    import select
    import time

    env = make_sim("forced-rollback", speed=30.0)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stsfix", "rollback", "web", "-n", "default", "--kubeconfig", env.kubeconfig],
        stdin=child, stdout=subprocess.PIPE, stderr=child, text=True,
    )  # fmt: skip
    os.close(child)
    seen, deadline = b"", time.monotonic() + 60
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        if select.select([main], [], [], 1.0)[0]:
            seen += os.read(main, 65536)
    os.write(main, b"n\n")
    stdout, _ = proc.communicate(timeout=60)
    os.close(main)
    prompt = seen.decode().replace("\r", "").splitlines()[-1].rstrip()
    assert prompt == (
        f'Apply this plan to statefulset default/web in context "sim-admin", cluster "sim" ({env.sim.url}), '
        'namespace "default"? [y/N]:'
    )
    assert proc.returncode == ExitCode.REFUSED
    assert [(r.method, r.path) for r in env.sim.requests if r.method not in ("GET", "HEAD")] == []


def test_the_wait_line_says_how_long_it_has_waited_and_how_long_is_left(make_sim) -> None:
    env = make_sim("forced-rollback", speed=30.0)
    _stuck_replacement(env)
    proc = _start(env, "rollback", "web", "--yes", "--progress=plain", "--timeout", "10m")
    assert proc.stderr is not None
    line = next(line for line in proc.stderr if line.startswith("[4] Waiting for "))
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    import re

    match = re.search(r"\((\S+) elapsed, (\S+) left\)$", line.rstrip())
    assert match is not None, line

    def seconds(text: str) -> int:
        return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", text))

    # the two add up to --timeout 10m (each is rounded down to whole seconds)
    assert 598 <= seconds(match.group(1)) + seconds(match.group(2)) <= 600, line


def test_a_playbook_asks_before_a_change_naming_where_it_goes(make_sim) -> None:
    import os
    import pty
    import select
    import time

    env = make_sim("forced-rollback", speed=30.0)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stsfix", "playbook", "run", "forced-rollback", "-n", "default",
         "-p", "statefulset=web", "--kubeconfig", env.kubeconfig],
        stdin=child, stdout=subprocess.PIPE, stderr=child, text=True,
    )  # fmt: skip
    os.close(child)
    seen, deadline = b"", time.monotonic() + 60
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        if select.select([main], [], [], 1.0)[0]:
            seen += os.read(main, 65536)
    os.write(main, b"n\n")
    proc.communicate(timeout=60)
    os.close(main)
    prompt = seen.decode().replace("\r", "").splitlines()[-1]
    assert prompt.startswith(
        f'Run step repair in context "sim-admin", cluster "sim" ({env.sim.url}), namespace "default": '
        "stsfix rollback -n default web"
    ), prompt
    assert proc.returncode == ExitCode.REFUSED
