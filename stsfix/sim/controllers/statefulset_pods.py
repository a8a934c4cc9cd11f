"""StatefulSet pod and claim construction, identity checks and PVC retention (§3, §8).

Pure functions over raw dicts plus the claim writes the controller makes before creating a pod.
Standard library only.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from stsfix.sim.controllers.versions import KubeVersion
from stsfix.sim.store.objects import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    Obj,
    condition,
    is_pod_ready,
    is_running_and_ready,
    is_terminating,
    labels_of,
    owner_ref_to,
    parent_and_ordinal,
    parse_ts,
    pod_phase,
)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def pod_revision(pod: Obj) -> str:
    return labels_of(pod).get(REVISION_LABEL, "")


def claim_name(claim_template: Obj, sts: Obj, ordinal: int) -> str:
    return f"{claim_template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"


def start_ordinal(sts: Obj, version: KubeVersion) -> int:
    if not version.start_ordinal:
        return 0
    return int((sts["spec"].get("ordinals") or {}).get("start") or 0)


# -- predicates (§4) -------------------------------------------------------------------------------
def is_created(pod: Obj) -> bool:
    return pod_phase(pod) != ""


def is_failed_or_succeeded(pod: Obj, version: KubeVersion) -> bool:
    phase = pod_phase(pod)
    return phase == "Failed" or (phase == "Succeeded" and version.replaces_succeeded_pods)


def is_available(pod: Obj, min_ready_seconds: int, now: datetime, version: KubeVersion) -> bool:
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_ts((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if since is None:
        return False
    ready_at = since + timedelta(seconds=min_ready_seconds)
    return ready_at <= now if version.availability_inclusive else ready_at < now


def is_running_and_available(pod: Obj, min_ready_seconds: int, now: datetime, version: KubeVersion) -> bool:
    return is_running_and_ready(pod) and is_available(pod, min_ready_seconds, now, version)


def is_unavailable(pod: Obj, min_ready_seconds: int, now: datetime, version: KubeVersion) -> bool:
    """Rolling-update health: ≥1.34 "unavailable or terminating", ≤1.33 "not healthy" (§4)."""
    if version.updates_wait_for_available:
        return not is_available(pod, min_ready_seconds, now, version) or is_terminating(pod)
    return not (is_running_and_ready(pod) and not is_terminating(pod))


# -- pod construction (§3.2) -----------------------------------------------------------------------
def new_pod(sts: Obj, revision_name: str, ordinal: int, version: KubeVersion) -> Obj:
    """A pod for `ordinal` from `sts` (already carrying the chosen revision's template)."""
    template = sts["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_LABEL] = revision_name
    labels[POD_NAME_LABEL] = name
    if version.pod_index_label:
        labels[POD_INDEX_LABEL] = str(ordinal)
    meta: Obj = {
        "name": name,
        "generateName": f"{sts['metadata']['name']}-",
        "namespace": sts["metadata"].get("namespace", "default"),
        "labels": labels,
        "ownerReferences": [owner_ref_to(sts)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    _set_storage(spec, sts, ordinal)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _set_storage(spec: Obj, sts: Obj, ordinal: int) -> None:
    claims = sts["spec"].get("volumeClaimTemplates") or []
    if not claims:
        return
    names = {c["metadata"]["name"] for c in claims}
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
    for claim in claims:
        volumes.append(
            {
                "name": claim["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": claim_name(claim, sts, ordinal), "readOnly": False},
            }
        )
    spec["volumes"] = volumes


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod["metadata"]["name"])
    return (
        ordinal >= 0
        and parent == sts["metadata"]["name"]
        and pod["metadata"]["name"] == pod_name(sts, ordinal)
        and pod["metadata"].get("namespace") == sts["metadata"].get("namespace")
        and labels_of(pod).get(POD_NAME_LABEL) == pod["metadata"]["name"]
    )


def storage_matches(sts: Obj, pod: Obj) -> bool:
    _, ordinal = parent_and_ordinal(pod["metadata"]["name"])
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in pod.get("spec", {}).get("volumes") or []}
    for claim in sts["spec"].get("volumeClaimTemplates") or []:
        volume = volumes.get(claim["metadata"]["name"])
        pvc = (volume or {}).get("persistentVolumeClaim") or {}
        if pvc.get("claimName") != claim_name(claim, sts, ordinal):
            return False
    return True


def repair_identity(sts: Obj, pod: Obj, version: KubeVersion) -> None:
    """Fix labels and volumes in place (the controller's UpdateStatefulPod, §3.3)."""
    _, ordinal = parent_and_ordinal(pod["metadata"]["name"])
    labels = pod["metadata"].setdefault("labels", {})
    labels[POD_NAME_LABEL] = pod["metadata"]["name"]
    if version.pod_index_label:
        labels[POD_INDEX_LABEL] = str(ordinal)
    _set_storage(pod.setdefault("spec", {}), sts, ordinal)


# -- claims (§8) -----------------------------------------------------------------------------------
def new_claim(sts: Obj, claim_template: Obj, ordinal: int) -> Obj:
    labels = dict((claim_template.get("metadata") or {}).get("labels") or {})
    labels.update((sts["spec"].get("selector") or {}).get("matchLabels") or {})
    meta: Obj = {
        "name": claim_name(claim_template, sts, ordinal),
        "namespace": sts["metadata"].get("namespace", "default"),
        "labels": labels,
    }
    annotations = (claim_template.get("metadata") or {}).get("annotations")
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": copy.deepcopy(claim_template.get("spec") or {}),
        "status": {"phase": "Pending"},
    }


def retention(sts: Obj) -> tuple[str, str]:
    policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted", "Retain"), policy.get("whenScaled", "Retain")


def desired_claim_owners(sts: Obj, pod: Obj, condemned: bool, version: KubeVersion) -> tuple[bool, bool]:
    """(set ref wanted, pod ref wanted) for a claim of `pod` (§8.3 table)."""
    if not version.pvc_retention:
        return False, False
    when_deleted, when_scaled = retention(sts)
    if condemned and when_scaled == "Delete":
        return False, True
    return when_deleted == "Delete", False


def _has_ref(claim: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid for r in claim["metadata"].get("ownerReferences") or [])


def foreign_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    ours = {sts["metadata"].get("uid"), pod["metadata"].get("uid")}
    return any(
        r.get("controller")
        and r.get("uid") not in ours
        and r.get("name") not in (sts["metadata"]["name"], pod["metadata"]["name"])
        for r in claim["metadata"].get("ownerReferences") or []
    )


def claim_owners_up_to_date(claim: Obj, sts: Obj, pod: Obj, condemned: bool, version: KubeVersion) -> bool:
    if foreign_controller(claim, sts, pod):
        # Someone else controls it: only our own refs must go (§8.3).
        return not _has_ref(claim, sts["metadata"]["uid"]) and not (
            pod["metadata"].get("uid") and _has_ref(claim, pod["metadata"]["uid"])
        )
    want_set, want_pod = desired_claim_owners(sts, pod, condemned, version)
    has_set = _has_ref(claim, sts["metadata"]["uid"])
    has_pod = bool(pod["metadata"].get("uid")) and _has_ref(claim, pod["metadata"]["uid"])
    return has_set == want_set and has_pod == want_pod


def fix_claim_owners(claim: Obj, sts: Obj, pod: Obj, condemned: bool, version: KubeVersion) -> None:
    """Rewrite our two possible refs in place; other refs are kept."""
    want_set, want_pod = desired_claim_owners(sts, pod, condemned, version)
    if foreign_controller(claim, sts, pod):
        want_set = want_pod = False
    ours = {sts["metadata"]["uid"], pod["metadata"].get("uid")}
    refs = [r for r in claim["metadata"].get("ownerReferences") or [] if r.get("uid") not in ours]
    if want_set:
        refs.append(owner_ref_to(sts))
    if want_pod and pod["metadata"].get("uid"):
        refs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        )
    if refs:
        claim["metadata"]["ownerReferences"] = refs
    else:
        claim["metadata"].pop("ownerReferences", None)


def claim_is_stale(claim: Obj, sts: Obj, ordinal: int) -> bool:
    """whenScaled=Delete and the claim still points at a pod of this name (§8.4)."""
    if retention(sts)[1] != "Delete":
        return False
    name = pod_name(sts, ordinal)
    return any(
        r.get("kind") == "Pod" and r.get("name") == name
        for r in claim["metadata"].get("ownerReferences") or []
    )
