"""JSON-ready dicts for `Diagnosis` and the inspection (progress plus verdict), with camelCase keys.

These keys are an API (docs/output.md): add fields, never rename or remove them. Times are RFC
3339 strings, durations are whole seconds, enums are their lowercase values. Pure: stdlib only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stsfix.analysis.diagnose import Assessment
from stsfix.analysis.findings import Diagnosis, Finding, RevisionRef
from stsfix.analysis.progress import OrdinalRow
from stsfix.model import ContainerState, format_time


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _seconds(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


def revision_ref_to_dict(ref: RevisionRef) -> dict[str, Any]:
    return {"name": ref.name, "number": ref.number}


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """{code, severity, cause, pods, message, evidence, repair:{summary, steps:[{action, params, command,
    effects:[{action, params}]}], options:[{action, summary, params, command}]}, playbook, stuckInSeconds,
    certain}: the last two are null unless the finding is failing, not yet stuck."""
    repair = None
    if finding.repair is not None:
        steps = [
            {
                "action": s.action.value,
                "params": dict(s.params),
                "command": s.command,
                "effects": [{"action": e.action.value, "params": dict(e.params)} for e in s.effects],
            }
            for s in finding.repair.steps
        ]
        options = [
            {"action": o.action.value, "summary": o.summary, "params": dict(o.params), "command": o.command}
            for o in finding.repair.options
        ]
        repair = {"summary": finding.repair.summary, "steps": steps, "options": options}
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "cause": finding.cause.value,
        "pods": list(finding.pods),
        "message": finding.message,
        "evidence": list(finding.evidence),
        "repair": repair,
        "playbook": finding.playbook,
        "stuckInSeconds": int(finding.stuck_in.total_seconds()) if finding.stuck_in is not None else None,
        "certain": finding.certain or None,
    }


def diagnosis_to_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """{statefulset:{namespace,name}, verdict, message, currentRevision, updateRevision, findings, missing}."""
    return {
        "statefulset": {"namespace": diagnosis.namespace, "name": diagnosis.name},
        "verdict": diagnosis.verdict.value,
        "message": diagnosis.message,
        "currentRevision": revision_ref_to_dict(diagnosis.current_revision),
        "updateRevision": revision_ref_to_dict(diagnosis.update_revision),
        "findings": [finding_to_dict(x) for x in diagnosis.findings],
        "missing": list(diagnosis.missing),
    }


def _container_to_dict(container: ContainerState) -> dict[str, Any]:
    return {
        "name": container.name,
        "image": container.image,
        "init": container.init,
        "ready": container.ready,
        "state": container.state,
        "reason": container.reason,
        "restartCount": container.restart_count,
        "exitCode": container.exit_code,
        "lastReason": container.last_reason,
        "lastExitCode": container.last_exit_code,
    }


def ordinal_row_to_dict(row: OrdinalRow) -> dict[str, Any]:
    return {
        "ordinal": row.ordinal,
        "pod": row.pod,
        "exists": row.exists,
        "condemned": row.condemned,
        "revision": {"name": row.revision, "number": row.revision_number, "role": row.revision_role.value},
        "phase": row.phase,
        "ready": row.ready,
        "readySince": _time(row.ready_since),
        "available": row.available,
        "terminating": row.terminating,
        "restarts": row.restarts,
        "reason": row.reason,
        "node": row.node,
        "ageSeconds": _seconds(row.age),
        "images": list(row.images),
        "containers": [_container_to_dict(c) for c in row.containers],
        "waiting": row.waiting,
        "waitingWhy": row.waiting_why,
    }


def inspection_to_dict(assessment: Assessment) -> dict[str, Any]:
    """The header (state and message are the diagnosis' verdict; replica counters, generations,
    revisions, policy) and `ordinals` rows."""
    progress, diagnosis = assessment.progress, assessment.diagnosis
    return {
        "statefulset": {"namespace": progress.namespace, "name": progress.name},
        "state": diagnosis.verdict.value,
        "message": diagnosis.message,
        "replicas": progress.replicas,
        "readyReplicas": progress.ready_replicas,
        "availableReplicas": progress.available_replicas,
        "currentReplicas": progress.current_replicas,
        "updatedReplicas": progress.updated_replicas,
        "updatedPods": progress.updated_pods,
        "generation": progress.generation,
        "observedGeneration": progress.observed_generation,
        "currentRevision": {"name": progress.current_revision, "number": progress.current_revision_number},
        "updateRevision": {"name": progress.update_revision, "number": progress.update_revision_number},
        "podManagementPolicy": progress.pod_management_policy,
        "updateStrategy": progress.update_strategy,
        "partition": progress.partition,
        "minReadySeconds": progress.min_ready_seconds,
        "waitingOrdinal": progress.waiting_ordinal,
        "ordinals": [ordinal_row_to_dict(r) for r in progress.rows],
    }
