"""Pods stuck Terminating past their grace period: one finding per cause (a lost node, or something
on a Ready node that holds them).

Force-delete is offered only behind a node-gone check, once per node, then for each of its pods
(the force-delete guide: a pod on a partitioned node may still run). On a Ready node the message
names what holds each pod (finalizers, volumes) and no force-delete is offered. Pure.
"""

from __future__ import annotations

from stsfix.analysis import findings as f
from stsfix.analysis.context import Context, blocks
from stsfix.analysis.grouping import FIRST_FEW, Stuck, group_evidence, grouped, name_list
from stsfix.analysis.pods import event_lines, human_duration
from stsfix.model import PodState


def node_words(ctx: Context, pod: PodState) -> tuple[str, bool]:
    """A sentence about the pod's node and whether the node looks lost (NotReady/Unknown/absent)."""
    if not pod.node_name:
        return "it was never scheduled to a node", False
    if ctx.snapshot.nodes is None:
        return f"the state of node {pod.node_name} is unknown (nodes were not read)", True
    node = ctx.snapshot.node_named(pod.node_name)
    if node is None:
        return f"node {pod.node_name} no longer exists", True
    if node.ready != "True":
        since = f" for {human_duration(ctx.now - node.ready_since)}" if node.ready_since else ""
        return f"node {pod.node_name} is Ready={node.ready}{since}", True
    return f"node {pod.node_name} is Ready", False


def _holders(pod: PodState, lost: bool) -> list[str]:
    holders = [f"finalizers {', '.join(pod.meta.finalizers)}"] if pod.meta.finalizers else []
    return holders + ([f"volumes {', '.join(pod.claim_names)}"] if pod.claim_names and not lost else [])


def _steps(ctx: Context, pods: list[PodState]) -> tuple[f.RepairStep, ...]:
    """verify-node-gone once per node, then force-delete-pod for each of its pods."""
    steps: list[f.RepairStep] = []
    for node_pods in grouped((p for p in pods if p.node_name), key=lambda p: p.node_name):
        node = node_pods[0].node_name
        steps.append(f.verify_node_gone(node))
        steps += [f.force_delete_pod(ctx.sts, p.name, p.ordinal or 0, node) for p in node_pods]
    return tuple(steps)


def _one(ctx: Context, pod: PodState, words: str, lost: bool) -> tuple[str, str]:
    """(message, summary) for a single pod."""
    holders = _holders(pod, lost)
    if lost and pod.node_name:
        summary = (
            f"Confirm node {pod.node_name} is gone (powered off or deleted), then force-delete {pod.name}."
        )
    else:
        summary = f"Find what holds {pod.name}: {'; '.join(holders) or 'the kubelet on its node'}; do not force-delete it."
    held = f" It is held by {'; '.join(holders)}." if holders and not lost else ""
    message = (
        f"{pod.name} has been Terminating past its grace period and {words}.{held} The controller cannot "
        f"recreate {pod.name} until the object is gone"
        + (", and OrderedReady waits for it." if blocks(ctx, pod) else ".")
    )
    return message, summary


def _many(ctx: Context, pods: list[PodState], words: list[str], lost: bool) -> tuple[str, str]:
    """(message, summary) for several pods: the node sentences and holders of the first few."""
    names = name_list([p.name for p in pods])
    places = "; ".join(
        f"{w} ({name_list([p.name for p in group])})"
        for w, group in _by_words(pods[:FIRST_FEW], words[:FIRST_FEW])
    )
    nodes = sorted({p.node_name for p in pods if p.node_name})
    if lost and nodes:
        summary = f"Confirm node(s) {', '.join(nodes)} are gone (powered off or deleted), then force-delete {names}."
        held = ""
    else:
        holds = ["; ".join(_holders(p, lost)) or "the kubelet on its node" for p in pods[:FIRST_FEW]]
        held = " Held by: " + "; ".join(f"{p.name}: {h}" for p, h in zip(pods, holds, strict=False)) + "."
        summary = f"Find what holds {names} (finalizers, volumes, the kubelet); do not force-delete them."
    waits = any(blocks(ctx, p) for p in pods)
    message = (
        f"{len(pods)} pods ({names}) have been Terminating past their grace period: {places}.{held} The "
        f"controller cannot recreate them until the objects are gone"
        + (", and OrderedReady waits for them." if waits else ".")
    )
    return message, summary


def _by_words(pods: list[PodState], words: list[str]) -> list[tuple[str, list[PodState]]]:
    pairs = grouped(zip(words, pods, strict=True), key=lambda wp: wp[0])
    return [(group[0][0], [p for _, p in group]) for group in pairs]


def _finding(ctx: Context, stuck: list[Stuck]) -> f.Finding:
    pods = [p for p, _ in stuck]
    described = [node_words(ctx, p) for p in pods]
    lost = described[0][1]
    words = [w for w, _ in described]
    if len(pods) == 1:
        message, summary = _one(ctx, pods[0], words[0], lost)
    else:
        message, summary = _many(ctx, pods, words, lost)
    steps = _steps(ctx, pods) if lost else ()
    evidence = group_evidence(ctx.snapshot, ctx.now, stuck, events=False)
    for word in dict.fromkeys(words[:FIRST_FEW]):
        evidence.append(word)
    for node in dict.fromkeys(p.node_name for p in pods[:FIRST_FEW] if p.node_name):
        evidence += event_lines(ctx.snapshot.events, kind="Node", name=node, now=ctx.now)
    return f.Finding(
        f.POD_STUCK_TERMINATING, f.Severity.CRITICAL, f.Cause.NODE_LOST if lost else f.Cause.UNKNOWN, message,
        tuple(p.name for p in pods), tuple(evidence), f.Repair(summary, steps), f.PLAYBOOK_STUCK_TERMINATING,
    )  # fmt: skip


def terminating_findings(ctx: Context, stuck: list[Stuck]) -> list[f.Finding]:
    """pod-stuck-terminating: one finding for the pods on lost nodes, one for the pods held otherwise."""
    return [_finding(ctx, group) for group in grouped(stuck, key=lambda pe: node_words(ctx, pe[0])[1])]
