"""What Go's encoding/json keeps of an API object: the round trip every object takes through the server.

The API server decodes a request body into Go structs and encodes them again, so what it stores
differs from what was sent: `null`, and the zero value of an `omitempty` field (`""`, `0`,
`false`, `[]`, an empty map) disappear (`hostNetwork: false`, `command: []`, `env[].value: ""`,
`nodeSelector: {}`), while a pointer field keeps its zero value (`runAsNonRoot: false`,
`storageClassName: ""`, `hostPath.type: ""`), a struct field stays even when empty
(`securityContext: {}`, `emptyDir: {}`, `resources: {}`), and a non-`omitempty` field is always
written. `prune(obj, type)` applies that to the spec and metadata of the objects the simulator
stores; it is idempotent on anything a real server wrote, so a dump keeps its revision hashes.

`TYPES` lists, for the types reachable from a StatefulSet, Pod, PersistentVolumeClaim and Node
spec (k8s.io/api v0.34 core/v1 and apps/v1), only the fields the generic rule would get wrong:
`keep` a scalar whose zero value survives (a pointer, or a field without `omitempty`), `qty` a
resource quantity, `map` a map (its entries are data, never pruned), `T` / `*T` a struct (value /
pointer), `[T]` a list of structs (`[T]!` when an empty list survives), `list!` a scalar list that
survives when empty. Every other field drops its zero value. Fields of unknown types are kept
unless `null`. Standard library only.
"""

from __future__ import annotations

from typing import Any, Final

_TABLE: Final = """
StatefulSetSpec: replicas=keep selector=*LabelSelector template=PodTemplateSpec
    volumeClaimTemplates=[PersistentVolumeClaim] serviceName=keep
    updateStrategy=StatefulSetUpdateStrategy revisionHistoryLimit=keep
    persistentVolumeClaimRetentionPolicy=*StatefulSetPersistentVolumeClaimRetentionPolicy
    ordinals=*StatefulSetOrdinals
LabelSelector: matchLabels=map matchExpressions=[LabelSelectorRequirement]
LabelSelectorRequirement: key=keep operator=keep
PodTemplateSpec: metadata=ObjectMeta spec=PodSpec
PodSpec: volumes=[Volume] initContainers=[Container] containers=[Container]!
    ephemeralContainers=[EphemeralContainer] terminationGracePeriodSeconds=keep
    activeDeadlineSeconds=keep nodeSelector=map automountServiceAccountToken=keep
    shareProcessNamespace=keep securityContext=*PodSecurityContext
    imagePullSecrets=[LocalObjectReference] affinity=*Affinity tolerations=[Toleration]
    hostAliases=[HostAlias] priority=keep dnsConfig=*PodDNSConfig readinessGates=[PodReadinessGate]
    runtimeClassName=keep enableServiceLinks=keep preemptionPolicy=keep overhead=map
    topologySpreadConstraints=[TopologySpreadConstraint] setHostnameAsFQDN=keep os=*PodOS hostUsers=keep
    schedulingGates=[PodSchedulingGate] resourceClaims=[PodResourceClaim]
    resources=*ResourceRequirements hostnameOverride=keep
Volume: name=keep hostPath=*HostPathVolumeSource emptyDir=*EmptyDirVolumeSource
    gcePersistentDisk=*GCEPersistentDiskVolumeSource
    awsElasticBlockStore=*AWSElasticBlockStoreVolumeSource gitRepo=*GitRepoVolumeSource
    secret=*SecretVolumeSource nfs=*NFSVolumeSource iscsi=*ISCSIVolumeSource
    glusterfs=*GlusterfsVolumeSource persistentVolumeClaim=*PersistentVolumeClaimVolumeSource
    rbd=*RBDVolumeSource flexVolume=*FlexVolumeSource cinder=*CinderVolumeSource
    cephfs=*CephFSVolumeSource flocker=*FlockerVolumeSource downwardAPI=*DownwardAPIVolumeSource
    fc=*FCVolumeSource azureFile=*AzureFileVolumeSource configMap=*ConfigMapVolumeSource
    vsphereVolume=*VsphereVirtualDiskVolumeSource quobyte=*QuobyteVolumeSource
    azureDisk=*AzureDiskVolumeSource photonPersistentDisk=*PhotonPersistentDiskVolumeSource
    projected=*ProjectedVolumeSource portworxVolume=*PortworxVolumeSource scaleIO=*ScaleIOVolumeSource
    storageos=*StorageOSVolumeSource csi=*CSIVolumeSource ephemeral=*EphemeralVolumeSource
    image=*ImageVolumeSource
HostPathVolumeSource: path=keep type=keep
EmptyDirVolumeSource: sizeLimit=qty
GCEPersistentDiskVolumeSource: pdName=keep
AWSElasticBlockStoreVolumeSource: volumeID=keep
GitRepoVolumeSource: repository=keep
SecretVolumeSource: items=[KeyToPath] defaultMode=keep optional=keep
KeyToPath: key=keep path=keep mode=keep
NFSVolumeSource: server=keep path=keep
ISCSIVolumeSource: targetPortal=keep iqn=keep lun=keep secretRef=*LocalObjectReference
    initiatorName=keep
LocalObjectReference:
GlusterfsVolumeSource: endpoints=keep path=keep
PersistentVolumeClaimVolumeSource: claimName=keep
RBDVolumeSource: monitors=list! image=keep secretRef=*LocalObjectReference
FlexVolumeSource: driver=keep secretRef=*LocalObjectReference options=map
CinderVolumeSource: volumeID=keep secretRef=*LocalObjectReference
CephFSVolumeSource: monitors=list! secretRef=*LocalObjectReference
FlockerVolumeSource:
DownwardAPIVolumeSource: items=[DownwardAPIVolumeFile] defaultMode=keep
DownwardAPIVolumeFile: path=keep fieldRef=*ObjectFieldSelector resourceFieldRef=*ResourceFieldSelector
    mode=keep
ObjectFieldSelector: fieldPath=keep
ResourceFieldSelector: resource=keep divisor=qty
FCVolumeSource: lun=keep
AzureFileVolumeSource: secretName=keep shareName=keep
ConfigMapVolumeSource: items=[KeyToPath] defaultMode=keep optional=keep
VsphereVirtualDiskVolumeSource: volumePath=keep
QuobyteVolumeSource: registry=keep volume=keep
AzureDiskVolumeSource: diskName=keep diskURI=keep cachingMode=keep fsType=keep readOnly=keep kind=keep
PhotonPersistentDiskVolumeSource: pdID=keep
ProjectedVolumeSource: sources=[VolumeProjection]! defaultMode=keep
VolumeProjection: secret=*SecretProjection downwardAPI=*DownwardAPIProjection
    configMap=*ConfigMapProjection serviceAccountToken=*ServiceAccountTokenProjection
    clusterTrustBundle=*ClusterTrustBundleProjection podCertificate=*PodCertificateProjection
SecretProjection: items=[KeyToPath] optional=keep
DownwardAPIProjection: items=[DownwardAPIVolumeFile]
ConfigMapProjection: items=[KeyToPath] optional=keep
ServiceAccountTokenProjection: expirationSeconds=keep path=keep
ClusterTrustBundleProjection: name=keep signerName=keep labelSelector=*LabelSelector optional=keep
    path=keep
PodCertificateProjection: maxExpirationSeconds=keep
PortworxVolumeSource: volumeID=keep
ScaleIOVolumeSource: gateway=keep system=keep secretRef=*LocalObjectReference
StorageOSVolumeSource: secretRef=*LocalObjectReference
CSIVolumeSource: driver=keep readOnly=keep fsType=keep volumeAttributes=map
    nodePublishSecretRef=*LocalObjectReference
EphemeralVolumeSource: volumeClaimTemplate=*PersistentVolumeClaimTemplate
PersistentVolumeClaimTemplate: metadata=ObjectMeta spec=PersistentVolumeClaimSpec
PersistentVolumeClaimSpec: selector=*LabelSelector resources=VolumeResourceRequirements
    storageClassName=keep volumeMode=keep dataSource=*TypedLocalObjectReference
    dataSourceRef=*TypedObjectReference volumeAttributesClassName=keep
VolumeResourceRequirements: limits=map requests=map
TypedLocalObjectReference: apiGroup=keep kind=keep name=keep
TypedObjectReference: apiGroup=keep kind=keep name=keep namespace=keep
ImageVolumeSource:
Container: name=keep ports=[ContainerPort] envFrom=[EnvFromSource] env=[EnvVar]
    resources=ResourceRequirements resizePolicy=[ContainerResizePolicy] restartPolicy=keep
    restartPolicyRules=[ContainerRestartRule] volumeMounts=[VolumeMount] volumeDevices=[VolumeDevice]
    livenessProbe=*Probe readinessProbe=*Probe startupProbe=*Probe lifecycle=*Lifecycle
    securityContext=*SecurityContext
ContainerPort: containerPort=keep
EnvFromSource: configMapRef=*ConfigMapEnvSource secretRef=*SecretEnvSource
ConfigMapEnvSource: optional=keep
SecretEnvSource: optional=keep
EnvVar: name=keep valueFrom=*EnvVarSource
EnvVarSource: fieldRef=*ObjectFieldSelector resourceFieldRef=*ResourceFieldSelector
    configMapKeyRef=*ConfigMapKeySelector secretKeyRef=*SecretKeySelector fileKeyRef=*FileKeySelector
ConfigMapKeySelector: key=keep optional=keep
SecretKeySelector: key=keep optional=keep
FileKeySelector: volumeName=keep path=keep key=keep optional=keep
ResourceRequirements: limits=map requests=map claims=[ResourceClaim]
ResourceClaim: name=keep
ContainerResizePolicy: resourceName=keep restartPolicy=keep
ContainerRestartRule: exitCodes=*ContainerRestartRuleOnExitCodes
ContainerRestartRuleOnExitCodes:
VolumeMount: name=keep recursiveReadOnly=keep mountPath=keep mountPropagation=keep
VolumeDevice: name=keep devicePath=keep
Probe: terminationGracePeriodSeconds=keep exec=*ExecAction httpGet=*HTTPGetAction
    tcpSocket=*TCPSocketAction grpc=*GRPCAction
ExecAction:
HTTPGetAction: port=keep httpHeaders=[HTTPHeader]
HTTPHeader: name=keep value=keep
TCPSocketAction: port=keep
GRPCAction: port=keep service=keep
Lifecycle: postStart=*LifecycleHandler preStop=*LifecycleHandler stopSignal=keep
LifecycleHandler: exec=*ExecAction httpGet=*HTTPGetAction tcpSocket=*TCPSocketAction sleep=*SleepAction
SleepAction: seconds=keep
SecurityContext: capabilities=*Capabilities privileged=keep seLinuxOptions=*SELinuxOptions
    windowsOptions=*WindowsSecurityContextOptions runAsUser=keep runAsGroup=keep runAsNonRoot=keep
    readOnlyRootFilesystem=keep allowPrivilegeEscalation=keep procMount=keep
    seccompProfile=*SeccompProfile appArmorProfile=*AppArmorProfile
Capabilities:
SELinuxOptions:
WindowsSecurityContextOptions: gmsaCredentialSpecName=keep gmsaCredentialSpec=keep runAsUserName=keep
    hostProcess=keep
SeccompProfile: type=keep localhostProfile=keep
AppArmorProfile: type=keep localhostProfile=keep
EphemeralContainer: name=keep ports=[ContainerPort] envFrom=[EnvFromSource] env=[EnvVar]
    resources=ResourceRequirements resizePolicy=[ContainerResizePolicy] restartPolicy=keep
    restartPolicyRules=[ContainerRestartRule] volumeMounts=[VolumeMount] volumeDevices=[VolumeDevice]
    livenessProbe=*Probe readinessProbe=*Probe startupProbe=*Probe lifecycle=*Lifecycle
    securityContext=*SecurityContext
PodSecurityContext: seLinuxOptions=*SELinuxOptions windowsOptions=*WindowsSecurityContextOptions
    runAsUser=keep runAsGroup=keep runAsNonRoot=keep supplementalGroupsPolicy=keep fsGroup=keep
    sysctls=[Sysctl] fsGroupChangePolicy=keep seccompProfile=*SeccompProfile
    appArmorProfile=*AppArmorProfile seLinuxChangePolicy=keep
Sysctl: name=keep value=keep
Affinity: nodeAffinity=*NodeAffinity podAffinity=*PodAffinity podAntiAffinity=*PodAntiAffinity
NodeAffinity: requiredDuringSchedulingIgnoredDuringExecution=*NodeSelector
    preferredDuringSchedulingIgnoredDuringExecution=[PreferredSchedulingTerm]
NodeSelector: nodeSelectorTerms=[NodeSelectorTerm]!
NodeSelectorTerm: matchExpressions=[NodeSelectorRequirement] matchFields=[NodeSelectorRequirement]
NodeSelectorRequirement: key=keep operator=keep
PreferredSchedulingTerm: weight=keep preference=NodeSelectorTerm
PodAffinity: requiredDuringSchedulingIgnoredDuringExecution=[PodAffinityTerm]
    preferredDuringSchedulingIgnoredDuringExecution=[WeightedPodAffinityTerm]
PodAffinityTerm: labelSelector=*LabelSelector topologyKey=keep namespaceSelector=*LabelSelector
WeightedPodAffinityTerm: weight=keep podAffinityTerm=PodAffinityTerm
PodAntiAffinity: requiredDuringSchedulingIgnoredDuringExecution=[PodAffinityTerm]
    preferredDuringSchedulingIgnoredDuringExecution=[WeightedPodAffinityTerm]
Toleration: tolerationSeconds=keep
HostAlias: ip=keep
PodDNSConfig: options=[PodDNSConfigOption]
PodDNSConfigOption: value=keep
PodReadinessGate: conditionType=keep
TopologySpreadConstraint: maxSkew=keep topologyKey=keep whenUnsatisfiable=keep
    labelSelector=*LabelSelector minDomains=keep nodeAffinityPolicy=keep nodeTaintsPolicy=keep
PodOS: name=keep
PodSchedulingGate: name=keep
PodResourceClaim: name=keep resourceClaimName=keep resourceClaimTemplateName=keep
PersistentVolumeClaim: metadata=ObjectMeta spec=PersistentVolumeClaimSpec
StatefulSetUpdateStrategy: rollingUpdate=*RollingUpdateStatefulSetStrategy
RollingUpdateStatefulSetStrategy: partition=keep maxUnavailable=keep
StatefulSetPersistentVolumeClaimRetentionPolicy:
StatefulSetOrdinals: start=keep
NodeSpec: taints=[Taint]
Taint: key=keep effect=keep timeAdded=keep
"""


def _parse(table: str) -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    name = ""
    for line in table.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            name, _, line = line.partition(":")
            types[name] = {}
        for item in line.split():
            field, _, spec = item.partition("=")
            types[name][field] = spec
    return types


TYPES: Final = _parse(_TABLE)
OBJECT_META: Final = "ObjectMeta"
ROOTS: Final = {
    "statefulsets": "StatefulSetSpec",
    "pods": "PodSpec",
    "persistentvolumeclaims": "PersistentVolumeClaimSpec",
    "nodes": "NodeSpec",
}


def _is_zero(value: Any) -> bool:
    return value is None or (not isinstance(value, dict) and value in ("", 0, False, []))


def _prune_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """ObjectMeta: every field is omitempty; labels and annotations are maps."""
    return {k: v for k, v in meta.items() if not _is_zero(v) and v != {}}


def _prune_list(items: list[Any], element: str) -> list[Any]:
    return [prune({} if item is None else item, element) if isinstance(item, dict | type(None)) else item
            for item in items]  # fmt: skip


def prune(obj: dict[str, Any], type_name: str | None) -> dict[str, Any]:
    """A copy of `obj` (of Go type `type_name`; None = unknown) as the server would re-encode it."""
    if type_name == OBJECT_META:
        return _prune_meta(obj)
    fields = TYPES.get(type_name or "")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        spec = fields.get(key, "") if fields is not None else "?"
        if spec == "?":  # an unknown type: only null goes
            if value is not None:
                out[key] = value
        elif spec in ("keep", "qty", "list!"):
            if value is not None:
                out[key] = value
        elif spec == "map":
            if value:
                out[key] = value
        elif spec.startswith("["):
            survives = spec.endswith("!")
            element = spec.strip("[]!")
            if value or (survives and value is not None):
                out[key] = _prune_list(value, element) if isinstance(value, list) else value
        elif spec:  # a struct: a pointer goes only when null; a value struct is always written
            child = spec.lstrip("*")
            if isinstance(value, dict):
                out[key] = prune(value, child)
            elif value is None and not spec.startswith("*"):
                out[key] = {}
            elif value is not None:
                out[key] = value
        elif isinstance(value, dict):
            out[key] = prune(value, None) if value else value
        elif not _is_zero(value):
            out[key] = value
    for key, spec in (fields or {}).items():
        if spec and spec[0] not in "*[" and spec not in ("keep", "qty", "map", "list!") and key not in out:
            out[key] = {}  # a value struct is written even when the body left it out
    return out


def prune_object(resource: str, obj: dict[str, Any]) -> None:
    """Prune `obj`'s metadata and spec in place (status is the writers' business)."""
    root = ROOTS.get(resource)
    if root is None:
        return
    for key, pruned in (("metadata", _prune_meta), ("spec", lambda v: prune(v, root))):
        value = obj.get(key)
        if isinstance(value, dict):
            fresh = pruned(value)
            value.clear()  # in place: callers hold references to metadata and spec
            value.update(fresh)
