"""The API server's defaulting, as v1.34's generated `SetObjectDefaults_*` apply it on every decode.

One implementation for every path that needs it: admission (create, update, patch), loading a
dump (what the server does when it reads an object from storage), and the controller's semantic
revision comparison. The order is the server's: the Go round trip (`gotypes.prune`), then the
defaults, then quantities in canonical form (`quantity`), so the stored template, and with it the
revision hash, equals a real server's. Sources: `pkg/apis/core/v1/defaults.go`,
`pkg/apis/apps/v1/defaults.go` and their `zz_generated.defaults.go` (k8s.io/kubernetes v1.34).
Pod-level admission plugins (service account, default tolerations, priority) are not defaulting;
`objects.default_pod` adds what of them the simulator models. Standard library only.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from stsfix.sim.store.gotypes import prune_object
from stsfix.sim.store.quantity import QuantityError, canonical_quantity

Obj = dict[str, Any]

# Volume sources whose presence stops SetDefaults_Volume from adding `emptyDir: {}`.
_VOLUME_SOURCES: Final = frozenset(
    "hostPath emptyDir gcePersistentDisk awsElasticBlockStore gitRepo secret nfs iscsi glusterfs "
    "persistentVolumeClaim rbd flexVolume cinder cephfs flocker downwardAPI fc azureFile configMap "
    "vsphereVolume quobyte azureDisk photonPersistentDisk projected portworxVolume scaleIO storageos csi "
    "ephemeral image".split()
)
_MODE: Final = 420  # 0644, the default mode of secret, configMap, downwardAPI and projected volumes


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or no tag, else IfNotPresent (a digest without a tag: IfNotPresent)."""
    if not image:
        return "IfNotPresent"  # not a valid reference: ParseImageName fails and no tag is found
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        name = last.split("@", 1)[0]
        return "Always" if name.endswith(":latest") else "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _quantities(resources: Any, *keys: str) -> None:
    """SetDefaults_ResourceList: round up to milli-units; stored in canonical form."""
    if not isinstance(resources, dict):
        return
    for key in keys:
        values = resources.get(key)
        if isinstance(values, dict):
            for name, value in list(values.items()):
                try:
                    values[name] = canonical_quantity(value)
                except QuantityError:
                    pass  # left for validation to reject


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):  # fmt: skip
        if not probe.get(key):
            probe[key] = value
    _handler(probe)
    if isinstance(probe.get("grpc"), dict):
        probe["grpc"].setdefault("service", "")


def _handler(handler: Any) -> None:
    http = handler.get("httpGet") if isinstance(handler, dict) else None
    if isinstance(http, dict):
        http["path"] = http.get("path") or "/"
        http["scheme"] = http.get("scheme") or "HTTP"


def _field_ref(holder: Any) -> None:
    ref = holder.get("fieldRef") if isinstance(holder, dict) else None
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(str(c.get("image", "")))
    c["terminationMessagePath"] = c.get("terminationMessagePath") or "/dev/termination-log"
    c["terminationMessagePolicy"] = c.get("terminationMessagePolicy") or "File"
    for port in _dicts(c.get("ports")):
        port["protocol"] = port.get("protocol") or "TCP"
    for env in _dicts(c.get("env")):
        source = env.get("valueFrom")
        _field_ref(source)
        file_ref = source.get("fileKeyRef") if isinstance(source, dict) else None
        if isinstance(file_ref, dict):
            file_ref.setdefault("optional", False)
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    _quantities(c["resources"], "limits", "requests")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            _handler(lifecycle.get(hook))


def _volume(v: Obj) -> None:
    if not _VOLUME_SOURCES & {k for k, val in v.items() if val is not None}:
        v["emptyDir"] = {}
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(kind), dict):
            v[kind].setdefault("defaultMode", _MODE)
    downward = v.get("downwardAPI")
    for item in _dicts(downward.get("items") if isinstance(downward, dict) else []):
        _field_ref(item)
    projected = v.get("projected")
    for source in _dicts(projected.get("sources") if isinstance(projected, dict) else []):
        if isinstance(source.get("downwardAPI"), dict):
            for item in _dicts(source["downwardAPI"].get("items")):
                _field_ref(item)
        if isinstance(source.get("serviceAccountToken"), dict):
            source["serviceAccountToken"].setdefault("expirationSeconds", 3600)
    if isinstance(v.get("emptyDir"), dict) and v["emptyDir"].get("sizeLimit") is not None:
        try:
            v["emptyDir"]["sizeLimit"] = canonical_quantity(v["emptyDir"]["sizeLimit"])
        except QuantityError:
            pass
    ephemeral = v.get("ephemeral")
    template = ephemeral.get("volumeClaimTemplate") if isinstance(ephemeral, dict) else None
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _claim_spec(template["spec"])


def pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec and everything below it (the part a pod template shares with a pod)."""
    if not isinstance(spec, dict):
        return
    spec["dnsPolicy"] = spec.get("dnsPolicy") or "ClusterFirst"
    spec["restartPolicy"] = spec.get("restartPolicy") or "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    spec["schedulerName"] = spec.get("schedulerName") or "default-scheduler"
    for volume in _dicts(spec.get("volumes")):
        _volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec.get(key)):
            _container(container)
    _quantities(spec, "overhead")
    _quantities(spec.get("resources"), "limits", "requests")


def _claim_spec(spec: Obj) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    _quantities(spec.get("resources"), "limits", "requests")


def _claim(claim: Obj) -> None:
    """SetDefaults_PersistentVolumeClaim (+Spec): status.phase Pending, volumeMode Filesystem."""
    if not isinstance(claim.get("spec"), dict):
        claim["spec"] = {}
    _claim_spec(claim["spec"])
    status = claim.get("status")
    if not isinstance(status, dict):
        status = claim["status"] = {}
    status["phase"] = status.get("phase") or "Pending"
    _quantities(status, "capacity", "allocatedResources")


def statefulset(obj: Obj, *, max_unavailable_gate: bool) -> None:
    """SetObjectDefaults_StatefulSet; `maxUnavailable: 1` only while the MaxUnavailableStatefulSet gate is on."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec["podManagementPolicy"] = spec.get("podManagementPolicy") or "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
        if rolling.get("partition") is None:
            rolling["partition"] = 0
        if max_unavailable_gate and rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(policy, dict):
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    policy["whenDeleted"] = policy.get("whenDeleted") or "Retain"
    policy["whenScaled"] = policy.get("whenScaled") or "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    if not isinstance(template.get("spec"), dict):
        template["spec"] = {}
    pod_spec(template["spec"])
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        _claim(claim)


def pod(obj: Obj) -> None:
    """SetObjectDefaults_Pod: the pod-spec defaults, requests copied from limits, enableServiceLinks."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            resources = c.get("resources")
            if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                requests = resources.get("requests")
                if not isinstance(requests, dict):
                    requests = resources["requests"] = {}
                for name, value in resources["limits"].items():
                    requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in _dicts(spec.get(key)):
                for port in _dicts(c.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    pod_spec(spec)


def node(obj: Obj) -> None:
    """SetDefaults_NodeStatus: a node without `allocatable` can allocate its whole `capacity`."""
    status = obj.get("status")
    if (
        isinstance(status, dict)
        and status.get("allocatable") is None
        and isinstance(status.get("capacity"), dict)
    ):
        status["allocatable"] = dict(status["capacity"])


def namespace(obj: Obj) -> None:
    """SetDefaults_Namespace: the `kubernetes.io/metadata.name` label; the `kubernetes` finalizer."""
    meta = obj.setdefault("metadata", {})
    if meta.get("name"):
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])


def service(obj: Obj) -> None:
    """SetDefaults_Service and the registry's allocations, as far as a headless or ClusterIP
    Service needs them: type ClusterIP, sessionAffinity None, a cluster IP (stable per name),
    single-stack IPv4, internalTrafficPolicy Cluster, TCP ports with targetPort = port."""
    spec = obj.setdefault("spec", {})
    spec["type"] = spec.get("type") or "ClusterIP"
    spec["sessionAffinity"] = spec.get("sessionAffinity") or "None"
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        if not spec.get("clusterIP"):
            digest = hashlib.sha1(
                f"{obj.get('metadata', {}).get('namespace')}/{obj.get('metadata', {}).get('name')}".encode()
            ).digest()
            spec["clusterIP"] = f"10.96.{digest[0]}.{digest[1] % 254 + 1}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in _dicts(spec.get("ports")):
        port["protocol"] = port.get("protocol") or "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if not isinstance(obj.get("status"), dict):
        obj["status"] = {"loadBalancer": {}}


def default_object(resource: str, obj: Obj, *, max_unavailable_gate: bool) -> None:
    """Default `obj` of `resource` in place, as the server does on decode: round trip, defaults, quantities."""
    prune_object(resource, obj)
    if resource == "statefulsets":
        statefulset(obj, max_unavailable_gate=max_unavailable_gate)
    elif resource == "pods":
        pod(obj)
    elif resource == "persistentvolumeclaims":
        _claim(obj)
    elif resource == "nodes":
        node(obj)
    elif resource == "namespaces":
        namespace(obj)
    elif resource == "services":
        service(obj)
