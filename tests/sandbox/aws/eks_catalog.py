"""Static EKS data: supported Kubernetes versions, the add-on catalogue with per-version
configuration schemas, and the access policies. One source of truth for the EKS extension
and for the sandbox's own tests."""

from __future__ import annotations

import copy
import json

# Kubernetes versions the sandbox's EKS accepts, with the platform version a new cluster of
# that version gets.
PLATFORM_VERSIONS = {
    "1.29": "eks.38",
    "1.30": "eks.36",
    "1.31": "eks.33",
    "1.32": "eks.21",
    "1.33": "eks.15",
}
SUPPORTED_VERSIONS = tuple(PLATFORM_VERSIONS)
DEFAULT_VERSION = "1.33"


def minor(version: str) -> int:
    return int(version.split(".")[1])


# ---------------------------------------------------------------------------------------
# Add-ons. Each version lists the cluster versions it is compatible with; the version named
# in DEFAULTS[addon][cluster_version] is the one flagged defaultVersion for that cluster
# version (exactly one per add-on and cluster version).
ALL = SUPPORTED_VERSIONS

_ADDON_VERSIONS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "vpc-cni": [
        ("v1.18.6-eksbuild.1", ("1.29", "1.30", "1.31")),
        ("v1.19.2-eksbuild.1", ALL),
        ("v1.19.3-eksbuild.1", ALL),
        ("v1.19.5-eksbuild.1", ALL),
        ("v1.19.6-eksbuild.7", ALL),
        ("v1.20.0-eksbuild.1", ("1.30", "1.31", "1.32", "1.33")),
        ("v1.20.1-eksbuild.3", ("1.30", "1.31", "1.32", "1.33")),
    ],
    "kube-proxy": [
        ("v1.29.10-eksbuild.3", ("1.29",)),
        ("v1.29.13-eksbuild.2", ("1.29",)),
        ("v1.29.15-eksbuild.2", ("1.29",)),
        ("v1.30.6-eksbuild.3", ("1.30",)),
        ("v1.30.9-eksbuild.3", ("1.30",)),
        ("v1.30.11-eksbuild.2", ("1.30",)),
        ("v1.31.2-eksbuild.3", ("1.31",)),
        ("v1.31.3-eksbuild.2", ("1.31",)),
        ("v1.31.7-eksbuild.2", ("1.31",)),
        ("v1.32.0-eksbuild.2", ("1.32",)),
        ("v1.32.3-eksbuild.2", ("1.32",)),
        ("v1.32.5-eksbuild.2", ("1.32",)),
        ("v1.33.0-eksbuild.2", ("1.33",)),
        ("v1.33.3-eksbuild.4", ("1.33",)),
    ],
    "coredns": [
        ("v1.11.1-eksbuild.13", ("1.29", "1.30")),
        ("v1.11.3-eksbuild.2", ("1.29", "1.30", "1.31", "1.32")),
        ("v1.11.4-eksbuild.2", ("1.29", "1.30", "1.31", "1.32", "1.33")),
        ("v1.11.4-eksbuild.14", ("1.29", "1.30", "1.31", "1.32", "1.33")),
        ("v1.12.1-eksbuild.2", ("1.33",)),
        ("v1.12.2-eksbuild.4", ("1.33",)),
    ],
    "aws-ebs-csi-driver": [
        ("v1.37.0-eksbuild.1", ALL),
        ("v1.38.1-eksbuild.2", ALL),
        ("v1.40.1-eksbuild.1", ALL),
        ("v1.41.0-eksbuild.1", ALL),
        ("v1.44.0-eksbuild.1", ALL),
        ("v1.45.0-eksbuild.2", ALL),
    ],
    "aws-efs-csi-driver": [
        ("v2.1.0-eksbuild.1", ALL),
        ("v2.1.4-eksbuild.1", ALL),
        ("v2.1.7-eksbuild.1", ALL),
        ("v2.1.8-eksbuild.1", ALL),
    ],
    "eks-pod-identity-agent": [
        ("v1.3.4-eksbuild.1", ALL),
        ("v1.3.5-eksbuild.2", ALL),
        ("v1.3.7-eksbuild.2", ALL),
        ("v1.3.8-eksbuild.2", ALL),
    ],
    "snapshot-controller": [
        ("v8.0.0-eksbuild.1", ALL),
        ("v8.1.0-eksbuild.2", ALL),
        ("v8.2.0-eksbuild.1", ALL),
        ("v8.3.0-eksbuild.1", ALL),
    ],
}

DEFAULTS: dict[str, dict[str, str]] = {
    "vpc-cni": {"1.29": "v1.19.2-eksbuild.1", "1.30": "v1.19.2-eksbuild.1", "1.31": "v1.19.2-eksbuild.1",
                "1.32": "v1.19.5-eksbuild.1", "1.33": "v1.19.6-eksbuild.7"},
    "kube-proxy": {"1.29": "v1.29.10-eksbuild.3", "1.30": "v1.30.6-eksbuild.3", "1.31": "v1.31.2-eksbuild.3",
                   "1.32": "v1.32.0-eksbuild.2", "1.33": "v1.33.0-eksbuild.2"},
    "coredns": {"1.29": "v1.11.1-eksbuild.13", "1.30": "v1.11.3-eksbuild.2", "1.31": "v1.11.3-eksbuild.2",
                "1.32": "v1.11.4-eksbuild.2", "1.33": "v1.12.1-eksbuild.2"},
    "aws-ebs-csi-driver": {v: "v1.44.0-eksbuild.1" for v in ALL},
    "aws-efs-csi-driver": {v: "v2.1.7-eksbuild.1" for v in ALL},
    "eks-pod-identity-agent": {v: "v1.3.7-eksbuild.2" for v in ALL},
    "snapshot-controller": {v: "v8.2.0-eksbuild.1" for v in ALL},
}

ADDON_TYPES = {
    "vpc-cni": "networking",
    "kube-proxy": "networking",
    "coredns": "networking",
    "aws-ebs-csi-driver": "storage",
    "aws-efs-csi-driver": "storage",
    "eks-pod-identity-agent": "security",
    "snapshot-controller": "storage",
}

# Add-ons that need IAM permissions (requiresIamPermissions) and the service account + AWS
# managed policy EKS recommends for them (DescribeAddonConfiguration podIdentityConfiguration).
POD_IDENTITY = {
    "vpc-cni": [("aws-node", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy")],
    "aws-ebs-csi-driver": [("ebs-csi-controller-sa", "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy")],
    "aws-efs-csi-driver": [("efs-csi-controller-sa", "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy")],
}

# Add-ons whose workloads are Deployments that need a schedulable node: DEGRADED while the
# cluster has no Ready node. DaemonSet-only add-ons stay ACTIVE with zero pods, as on EKS.
NEEDS_NODES = frozenset({"coredns", "aws-ebs-csi-driver", "aws-efs-csi-driver", "snapshot-controller"})


def addon_names() -> list[str]:
    return sorted(_ADDON_VERSIONS)


def _version_key(version: str) -> tuple[int, ...]:
    core, _, build = version.lstrip("v").partition("-eksbuild.")
    return tuple(int(part) for part in core.split(".")) + (int(build or 0),)


def addon_versions(addon: str) -> list[tuple[str, tuple[str, ...]]]:
    """(version, compatible cluster versions), newest first (the order EKS returns)."""
    return sorted(_ADDON_VERSIONS.get(addon, []), key=lambda item: _version_key(item[0]), reverse=True)


def compatible(addon: str, version: str, cluster_version: str) -> bool:
    return any(v == version and cluster_version in compat for v, compat in _ADDON_VERSIONS.get(addon, []))


def known_version(addon: str, version: str) -> bool:
    return any(v == version for v, _ in _ADDON_VERSIONS.get(addon, []))


def default_version(addon: str, cluster_version: str) -> str | None:
    return DEFAULTS.get(addon, {}).get(cluster_version)


def compare_versions(left: str, right: str) -> int:
    a, b = _version_key(left), _version_key(right)
    return (a > b) - (a < b)


def addon_info(addon: str, cluster_version: str | None = None) -> dict:
    """The DescribeAddonVersions ``addons[]`` item for one add-on."""
    versions = []
    for version, compat in addon_versions(addon):
        clusters = [cluster_version] if cluster_version else list(compat)
        if cluster_version and cluster_version not in compat:
            continue
        versions.append(
            {
                "addonVersion": version,
                "architecture": ["amd64", "arm64"],
                "computeTypes": ["ec2", "hybrid"] if addon != "aws-efs-csi-driver" else ["ec2"],
                "compatibilities": [
                    {"clusterVersion": cv, "platformVersions": ["*"], "defaultVersion": DEFAULTS[addon].get(cv) == version}
                    for cv in clusters
                ],
                "requiresConfiguration": False,
                "requiresIamPermissions": addon in POD_IDENTITY,
            }
        )
    return {
        "addonName": addon,
        "type": ADDON_TYPES[addon],
        "addonVersions": versions,
        "publisher": "eks",
        "owner": "aws",
        "marketplaceInformation": {},
        "defaultNamespace": "kube-system",
    }


# ---------------------------------------------------------------------------------------
# Configuration schemas (JSON Schema draft-07, as DescribeAddonConfiguration returns them).

_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "limits": {"type": "object", "additionalProperties": False,
                   "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}}},
        "requests": {"type": "object", "additionalProperties": False,
                     "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}}},
    },
}
_TOLERATIONS = {"type": "array", "items": {"type": "object"}}
_NODE_SELECTOR = {"type": "object", "additionalProperties": {"type": "string"}}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_AFFINITY = {"type": ["object", "null"]}
_BOOL_STRING = {"type": "string", "enum": ["true", "false"]}


def _obj(properties: dict, required: list | None = None) -> dict:
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _vpc_cni_schema(version: str) -> dict:
    env = {
        name: _BOOL_STRING
        for name in ("ENABLE_PREFIX_DELEGATION", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "AWS_VPC_K8S_CNI_EXTERNALSNAT",
                     "ENABLE_POD_ENI", "DISABLE_TCP_EARLY_DEMUX", "ENABLE_IPv4", "ENABLE_IPv6", "AWS_VPC_K8S_CNI_LOGLEVEL_DEBUG")
    }
    env.update({name: {"type": "string", "pattern": "^[0-9]+$"}
                for name in ("WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET", "WARM_PREFIX_TARGET", "MAX_ENI")})
    env["ENI_CONFIG_LABEL_DEF"] = {"type": "string"}
    env["AWS_VPC_K8S_CNI_LOGLEVEL"] = {"type": "string", "enum": ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]}
    properties = {
        "env": _obj(env),
        "init": _obj({"env": _obj({"DISABLE_TCP_EARLY_DEMUX": _BOOL_STRING, "ENABLE_V6_EGRESS": _BOOL_STRING})}),
        "nodeAgent": _obj({"enablePolicyEventLogs": _BOOL_STRING, "enableCloudWatchLogs": _BOOL_STRING,
                           "healthProbeBindAddr": {"type": "string"}, "metricsBindAddr": {"type": "string"},
                           "resources": _RESOURCES}),
        "enableNetworkPolicy": _BOOL_STRING,
        "resources": _RESOURCES,
        "tolerations": _TOLERATIONS,
        "affinity": _AFFINITY,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
        "livenessProbeTimeoutSeconds": {"type": "integer", "minimum": 1},
        "readinessProbeTimeoutSeconds": {"type": "integer", "minimum": 1},
    }
    if compare_versions(version, "v1.20.0-eksbuild.1") >= 0:
        properties["nodeAgent"]["properties"]["networkPolicyAgentLogFileMaxSize"] = {"type": "integer", "minimum": 1}
    return properties


def _kube_proxy_schema(version: str) -> dict:
    return {
        "mode": {"type": "string", "enum": ["iptables", "ipvs"]},
        "ipvs": _obj({"scheduler": {"type": "string", "enum": ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq"]}}),
        "resources": _RESOURCES,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
        "priorityClassName": {"type": "string"},
    }


def _coredns_schema(version: str) -> dict:
    properties = {
        "replicaCount": {"type": "integer", "minimum": 1},
        "computeType": {"type": "string"},
        "corefile": {"type": "string"},
        "nodeSelector": _NODE_SELECTOR,
        "tolerations": _TOLERATIONS,
        "affinity": _AFFINITY,
        "resources": _RESOURCES,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
        "podDisruptionBudget": _obj({"enabled": {"type": "boolean"}, "maxUnavailable": {"type": ["integer", "string"]},
                                     "minAvailable": {"type": ["integer", "string"]}}),
        "topologySpreadConstraints": {"type": "array", "items": {"type": "object"}},
        "priorityClassName": {"type": "string"},
    }
    if compare_versions(version, "v1.11.3-eksbuild.2") >= 0:
        properties["autoScaling"] = _obj({"enabled": {"type": "boolean"}, "minReplicas": {"type": "integer", "minimum": 2},
                                          "maxReplicas": {"type": "integer", "minimum": 2}})
    return properties


def _csi_controller(version: str, metrics: bool) -> dict:
    controller = {
        "replicaCount": {"type": "integer", "minimum": 1},
        "nodeSelector": _NODE_SELECTOR,
        "tolerations": _TOLERATIONS,
        "affinity": _AFFINITY,
        "resources": _RESOURCES,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
        "extraVolumeTags": _STRING_MAP,
        "logLevel": {"type": "integer", "minimum": 0, "maximum": 10},
        "topologySpreadConstraints": {"type": "array", "items": {"type": "object"}},
    }
    if metrics:
        controller["enableMetrics"] = {"type": "boolean"}
    return controller


def _ebs_csi_schema(version: str) -> dict:
    newer = compare_versions(version, "v1.40.1-eksbuild.1") >= 0
    node = {"tolerateAllTaints": {"type": "boolean"}, "tolerations": _TOLERATIONS, "nodeSelector": _NODE_SELECTOR,
            "resources": _RESOURCES, "volumeAttachLimit": {"type": ["integer", "null"], "minimum": 1},
            "logLevel": {"type": "integer", "minimum": 0, "maximum": 10}}
    if newer:
        node["enableMetrics"] = {"type": "boolean"}
    return {
        "controller": _obj(_csi_controller(version, newer)),
        "node": _obj(node),
        "sidecars": {"type": "object"},
        "defaultStorageClass": _obj({"enabled": {"type": "boolean"}}),
        "storageClasses": {"type": "array", "items": {"type": "object"}},
        "volumeSnapshotClasses": {"type": "array", "items": {"type": "object"}},
    }


def _efs_csi_schema(version: str) -> dict:
    return {
        "controller": _obj(_csi_controller(version, False) | {"deleteAccessPointRootDir": {"type": "boolean"}}),
        "node": _obj({"tolerateAllTaints": {"type": "boolean"}, "tolerations": _TOLERATIONS, "nodeSelector": _NODE_SELECTOR,
                      "resources": _RESOURCES, "logLevel": {"type": "integer", "minimum": 0, "maximum": 10}}),
        "sidecars": {"type": "object"},
    }


def _pod_identity_schema(version: str) -> dict:
    return {
        "agent": _obj({"additionalArgs": _STRING_MAP}),
        "resources": _RESOURCES,
        "tolerations": _TOLERATIONS,
        "affinity": _AFFINITY,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
        "priorityClassName": {"type": "string"},
    }


def _snapshot_schema(version: str) -> dict:
    return {
        "replicaCount": {"type": "integer", "minimum": 1},
        "nodeSelector": _NODE_SELECTOR,
        "tolerations": _TOLERATIONS,
        "affinity": _AFFINITY,
        "resources": _RESOURCES,
        "podAnnotations": _STRING_MAP,
        "podLabels": _STRING_MAP,
    }


_SCHEMA_BUILDERS = {
    "vpc-cni": _vpc_cni_schema,
    "kube-proxy": _kube_proxy_schema,
    "coredns": _coredns_schema,
    "aws-ebs-csi-driver": _ebs_csi_schema,
    "aws-efs-csi-driver": _efs_csi_schema,
    "eks-pod-identity-agent": _pod_identity_schema,
    "snapshot-controller": _snapshot_schema,
}


def configuration_schema(addon: str, version: str) -> dict:
    """The JSON schema (as a dict) for one add-on version."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"https://eks.amazonaws.com/addons/{addon}/{version}/schema.json",
        "type": "object",
        "additionalProperties": False,
        "properties": copy.deepcopy(_SCHEMA_BUILDERS[addon](version)),
    }


def configuration_schema_text(addon: str, version: str) -> str:
    return json.dumps(configuration_schema(addon, version), indent=2)


# ---------------------------------------------------------------------------------------
# Access policies (ListAccessPolicies).
ACCESS_POLICY_NAMES = (
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSHybridPolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingPolicy",
)


def access_policy_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


def access_policies(partition: str = "aws") -> list[dict]:
    return [{"name": name, "arn": access_policy_arn(name, partition)} for name in ACCESS_POLICY_NAMES]


# The values botocore's model documents for CreateAccessEntry ``type`` (EC2 is for EKS Auto Mode).
ACCESS_ENTRY_TYPES = ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2", "HYBRID_LINUX", "HYPERPOD_LINUX")
RESERVED_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
