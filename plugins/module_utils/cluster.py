# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The EKS control plane as data: versions, upgrade paths, kubelet skew, and the updates
that take a cluster from what DescribeCluster says to what the user asked for.

Pure functions, no AWS or Ansible imports: `plugins/modules/eks_cluster.py` reads the
cluster, calls these, and applies what they return.
"""

import ipaddress
import re

# The Kubernetes versions this collection creates and upgrades to, oldest first.
# The one place to change when EKS adds or retires a version.
SUPPORTED_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")

# Authentication modes in the only order EKS lets a cluster move through.
AUTHENTICATION_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")

# What a mode reads: access entries (API), the aws-auth ConfigMap (CONFIG_MAP), or both.
AUTHENTICATION_SOURCES = {"CONFIG_MAP": ("CONFIG_MAP",), "API_AND_CONFIG_MAP": ("API", "CONFIG_MAP"), "API": ("API",)}
# A cluster whose DescribeCluster answer has no accessConfig predates access entries.
DEFAULT_AUTHENTICATION_MODE = "CONFIG_MAP"

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")

IP_FAMILIES = ("ipv4", "ipv6")

# RFC 1918 ranges; EKS requires the service CIDR inside one of them, /12 to /24.
PRIVATE_IPV4_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


class ClusterConfigError(ValueError):
    """A requested cluster configuration EKS would refuse or cannot apply; the message says the fix."""


def authentication_mode_of(cluster):
    """The authentication mode of a DescribeCluster dict (or the snake_case one eks_cluster_info returns)."""
    access = (cluster or {}).get("accessConfig") or (cluster or {}).get("access_config") or {}
    return access.get("authenticationMode") or access.get("authentication_mode") or DEFAULT_AUTHENTICATION_MODE


def authentication_mode_includes(mode, source):
    """True when authentication `mode` reads `source` ('API' = access entries, 'CONFIG_MAP' = aws-auth)."""
    if source not in ("API", "CONFIG_MAP"):
        raise ClusterConfigError("{0!r} is not an authentication source; use API (access entries) or CONFIG_MAP (aws-auth)".format(source))
    if mode not in AUTHENTICATION_SOURCES:
        raise ClusterConfigError("{0!r} is not an EKS authentication mode; use one of {1}".format(mode, ", ".join(AUTHENTICATION_MODES)))
    return source in AUTHENTICATION_SOURCES[mode]


def parse_version(version):
    """(major, minor) of a Kubernetes version string: '1.30', 'v1.30.4-eks-a737599' -> (1, 30)."""
    match = _VERSION_RE.match(str(version).strip())
    if not match:
        raise ClusterConfigError(
            "{0!r} is not a Kubernetes version; use MAJOR.MINOR such as {1!r}".format(version, SUPPORTED_VERSIONS[-1])
        )
    return int(match.group(1)), int(match.group(2))


def format_version(parsed):
    return "{0}.{1}".format(*parsed)


def validate_target_version(version):
    """The normalised 'MAJOR.MINOR' of a version the user asked for, or ClusterConfigError."""
    parsed = parse_version(version)
    normalised = format_version(parsed)
    if normalised not in SUPPORTED_VERSIONS:
        hint = ""
        if format_version((parsed[0], parsed[1] * 10)) in SUPPORTED_VERSIONS:
            # YAML reads an unquoted 1.30 as the number 1.3.
            hint = " (quote it in YAML: an unquoted 1.{0}0 is read as the number {1})".format(parsed[1], normalised)
        raise ClusterConfigError(
            "Kubernetes version {0!r} is not supported; choose one of {1}{2}".format(str(version), ", ".join(SUPPORTED_VERSIONS), hint)
        )
    return normalised


def plan_upgrade_path(current, desired):
    """The versions to pass to UpdateClusterVersion, one minor at a time: ('1.30', '1.32') -> ['1.31', '1.32'].

    Empty when `desired` equals `current`. Refuses downgrades and major version changes.
    """
    cur = parse_version(current)
    want = parse_version(validate_target_version(desired))
    if want == cur:
        return []
    if want[0] != cur[0]:
        raise ClusterConfigError(
            "cannot move the cluster from {0} to {1}: EKS upgrades one minor version at a time within a major version".format(
                format_version(cur), format_version(want)
            )
        )
    if want < cur:
        raise ClusterConfigError(
            "version {0} is older than the cluster's {1}: EKS cannot downgrade a control plane; set version to {1} or higher".format(
                format_version(want), format_version(cur)
            )
        )
    return [format_version((cur[0], minor)) for minor in range(cur[1] + 1, want[1] + 1)]


def allowed_kubelet_skew(apiserver_version):
    """How many minor versions a kubelet may lag the API server: 3 from 1.28 on, 2 before."""
    return 3 if parse_version(apiserver_version) >= (1, 28) else 2


def kubelet_skew_violations(apiserver_version, kubelet_versions):
    """Nodes whose kubelet would break the version skew policy against `apiserver_version`.

    `kubelet_versions` maps node name -> kubeletVersion (as in Node.status.nodeInfo).
    Returns a sorted list of human-readable problems, empty when every node is fine.
    """
    api = parse_version(apiserver_version)
    allowed = allowed_kubelet_skew(apiserver_version)
    problems = []
    for node in sorted(kubelet_versions):
        kubelet = parse_version(kubelet_versions[node])
        if kubelet[0] != api[0]:
            behind = None
        else:
            behind = api[1] - kubelet[1]
        if kubelet > api:
            problems.append("node {0} runs kubelet {1}, newer than the API server {2}".format(node, kubelet_versions[node], format_version(api)))
        elif behind is None or behind > allowed:
            problems.append(
                "node {0} runs kubelet {1}, more than {2} minor versions behind {3}".format(node, kubelet_versions[node], allowed, format_version(api))
            )
    return problems


def oldest_kubelet_for(apiserver_version):
    """The oldest kubelet minor version the skew policy allows with `apiserver_version`."""
    api = parse_version(apiserver_version)
    return format_version((api[0], api[1] - allowed_kubelet_skew(apiserver_version)))


def validate_cidr(value, option, version=None):
    """A normalised CIDR string, or ClusterConfigError naming `option` and the value."""
    try:
        network = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise ClusterConfigError(
            "{0} {1!r} is not a valid CIDR ({2}); write it as network/prefix, for example 203.0.113.0/24".format(option, value, exc)
        )
    if version is not None and network.version != version:
        raise ClusterConfigError("{0} {1!r} is not an IPv{2} CIDR".format(option, value, version))
    return str(network)


def validate_service_ipv4_cidr(value):
    cidr = validate_cidr(value, "service_ipv4_cidr", version=4)
    network = ipaddress.ip_network(cidr)
    if not any(network.subnet_of(private) for private in PRIVATE_IPV4_NETWORKS):
        raise ClusterConfigError(
            "service_ipv4_cidr {0} is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16; EKS requires a private range such as 172.20.0.0/16".format(cidr)
        )
    if not 12 <= network.prefixlen <= 24:
        raise ClusterConfigError("service_ipv4_cidr {0} must have a prefix between /12 and /24, for example 172.20.0.0/16".format(cidr))
    return cidr


def validate_authentication_mode_move(current, desired):
    """Refuse a move backwards through CONFIG_MAP -> API_AND_CONFIG_MAP -> API."""
    if desired is None or current is None or desired == current:
        return
    if AUTHENTICATION_MODES.index(desired) < AUTHENTICATION_MODES.index(current):
        later = " or ".join(AUTHENTICATION_MODES[AUTHENTICATION_MODES.index(current) + 1:])
        raise ClusterConfigError(
            "authentication_mode cannot go back from {0} to {1}: EKS only moves CONFIG_MAP -> API_AND_CONFIG_MAP -> API; "
            "set authentication_mode to {0}{2}".format(current, desired, " or " + later if later else "")
        )


def enabled_log_types(cluster):
    """Sorted log types enabled in a DescribeCluster dict."""
    enabled = set()
    for setting in (cluster.get("logging") or {}).get("clusterLogging", []):
        if setting.get("enabled"):
            enabled.update(setting.get("types", []))
    return sorted(enabled)


def cluster_settings(cluster):
    """The user-facing settings of a DescribeCluster dict, in module option names (for diffs)."""
    vpc = cluster.get("resourcesVpcConfig") or {}
    network = cluster.get("kubernetesNetworkConfig") or {}
    encryption = cluster.get("encryptionConfig") or []
    settings = dict(
        version=cluster.get("version"),
        role_arn=cluster.get("roleArn"),
        subnets=sorted(vpc.get("subnetIds", [])),
        security_groups=sorted(vpc.get("securityGroupIds", [])),
        endpoint_public_access=vpc.get("endpointPublicAccess"),
        endpoint_private_access=vpc.get("endpointPrivateAccess"),
        public_access_cidrs=sorted(vpc.get("publicAccessCidrs", [])),
        logging=enabled_log_types(cluster),
        service_ipv4_cidr=network.get("serviceIpv4Cidr"),
        ip_family=network.get("ipFamily"),
        authentication_mode=authentication_mode_of(cluster),
        secrets_encryption_key_arn=encryption[0].get("provider", {}).get("keyArn") if encryption else None,
        tags=dict(cluster.get("tags") or {}),
    )
    return settings


def desired_settings(params):
    """Module parameters normalised to the cluster_settings() shape; None means 'not managed'."""
    return dict(
        version=validate_target_version(params["version"]) if params.get("version") else None,
        role_arn=params.get("role_arn"),
        subnets=sorted(params["subnets"]) if params.get("subnets") is not None else None,
        security_groups=sorted(params["security_groups"]) if params.get("security_groups") is not None else None,
        endpoint_public_access=params.get("endpoint_public_access"),
        endpoint_private_access=params.get("endpoint_private_access"),
        public_access_cidrs=sorted(validate_cidr(c, "public_access_cidrs entry") for c in params["public_access_cidrs"])
        if params.get("public_access_cidrs") is not None
        else None,
        logging=sorted(set(params["logging"])) if params.get("logging") is not None else None,
        service_ipv4_cidr=validate_service_ipv4_cidr(params["service_ipv4_cidr"]) if params.get("service_ipv4_cidr") else None,
        ip_family=params.get("ip_family"),
        authentication_mode=params.get("authentication_mode"),
        secrets_encryption_key_arn=params.get("secrets_encryption_key_arn"),
    )


def validate_desired(desired):
    """Checks that need no current state; raises ClusterConfigError."""
    if desired.get("endpoint_public_access") is False and desired.get("endpoint_private_access") is False:
        raise ClusterConfigError(
            "endpoint_public_access and endpoint_private_access are both false: the API server would be unreachable; enable at least one"
        )
    if desired.get("public_access_cidrs") and desired.get("endpoint_public_access") is False:
        raise ClusterConfigError("public_access_cidrs is set but endpoint_public_access is false; drop public_access_cidrs or enable the public endpoint")
    if desired.get("ip_family") == "ipv6" and desired.get("service_ipv4_cidr"):
        raise ClusterConfigError("service_ipv4_cidr applies to ip_family ipv4 only; drop it for ipv6 clusters (EKS picks the IPv6 service range)")


def _immutable_problem(option, current, wanted, hint):
    return "{0} cannot change after creation (cluster has {1}, asked for {2}); {3}".format(option, current, wanted, hint)


def immutable_changes(current, desired):
    """Problems for requested changes EKS cannot make on an existing cluster (empty list when none)."""
    problems = []
    checks = (
        ("subnets", "keep the original subnets or create a new cluster"),
        ("security_groups", "keep the original security groups or create a new cluster"),
        ("service_ipv4_cidr", "keep the original service CIDR; changing it needs a new cluster"),
        ("ip_family", "keep the original ip_family; changing it needs a new cluster"),
        ("role_arn", "the cluster role is fixed at creation; keep the original role ARN"),
        ("secrets_encryption_key_arn", "secrets encryption keys cannot be changed or removed; keep the original KMS key"),
    )
    for option, hint in checks:
        wanted = desired.get(option)
        if wanted is None:
            continue
        have = current.get(option)
        if option == "secrets_encryption_key_arn" and have is None:
            continue  # adding encryption to an existing cluster is an allowed update
        if wanted != have:
            problems.append(_immutable_problem(option, have, wanted, hint))
    return problems


def config_updates(current, desired):
    """The UpdateClusterConfig requests (one change type each, as EKS requires), in order.

    Each item is (update_type, request_kwargs_without_name). Raises ClusterConfigError for
    a backwards authentication mode move.
    """
    updates = []
    if desired.get("logging") is not None and desired["logging"] != current["logging"]:
        enable = sorted(desired["logging"])
        disable = sorted(set(LOG_TYPES) - set(desired["logging"]))
        cluster_logging = []
        if enable:
            cluster_logging.append({"types": enable, "enabled": True})
        if disable:
            cluster_logging.append({"types": disable, "enabled": False})
        updates.append(("LoggingUpdate", {"logging": {"clusterLogging": cluster_logging}}))

    vpc = {}
    for option, key in (("endpoint_public_access", "endpointPublicAccess"), ("endpoint_private_access", "endpointPrivateAccess")):
        if desired.get(option) is not None and desired[option] != current.get(option):
            vpc[key] = desired[option]
    public = desired.get("endpoint_public_access")
    public = current.get("endpoint_public_access") if public is None else public
    if public and desired.get("public_access_cidrs") is not None and desired["public_access_cidrs"] != current.get("public_access_cidrs"):
        vpc["publicAccessCidrs"] = desired["public_access_cidrs"]
    if vpc:
        updates.append(("EndpointAccessUpdate", {"resourcesVpcConfig": vpc}))

    mode = desired.get("authentication_mode")
    if mode is not None and mode != current.get("authentication_mode"):
        validate_authentication_mode_move(current.get("authentication_mode"), mode)
        updates.append(("AccessConfigUpdate", {"accessConfig": {"authenticationMode": mode}}))

    if desired.get("secrets_encryption_key_arn") and not current.get("secrets_encryption_key_arn"):
        updates.append(("AssociateEncryptionConfig", {"encryptionConfig": encryption_config(desired["secrets_encryption_key_arn"])}))
    return updates


def encryption_config(key_arn):
    return [{"resources": ["secrets"], "provider": {"keyArn": key_arn}}]


def settings_after(current, desired, tags_after=None):
    """What cluster_settings() will report once every allowed change is applied (for the diff)."""
    after = dict(current)
    for key, value in desired.items():
        if value is not None and key not in ("subnets", "security_groups", "service_ipv4_cidr", "ip_family", "role_arn"):
            after[key] = value
    if after.get("endpoint_public_access") is False:
        after["public_access_cidrs"] = current.get("public_access_cidrs")
    if tags_after is not None:
        after["tags"] = tags_after
    return after


def create_request(name, params, desired):
    """CreateCluster keyword arguments for the module parameters (already validated)."""
    vpc = {"subnetIds": params["subnets"]}
    if params.get("security_groups"):
        vpc["securityGroupIds"] = params["security_groups"]
    if desired.get("endpoint_public_access") is not None:
        vpc["endpointPublicAccess"] = desired["endpoint_public_access"]
    if desired.get("endpoint_private_access") is not None:
        vpc["endpointPrivateAccess"] = desired["endpoint_private_access"]
    if desired.get("public_access_cidrs"):
        vpc["publicAccessCidrs"] = desired["public_access_cidrs"]
    request = {"name": name, "roleArn": params["role_arn"], "resourcesVpcConfig": vpc}
    if desired.get("version"):
        request["version"] = desired["version"]
    network = {}
    if desired.get("service_ipv4_cidr"):
        network["serviceIpv4Cidr"] = desired["service_ipv4_cidr"]
    if desired.get("ip_family"):
        network["ipFamily"] = desired["ip_family"]
    if network:
        request["kubernetesNetworkConfig"] = network
    if desired.get("logging"):
        request["logging"] = {"clusterLogging": [{"types": desired["logging"], "enabled": True}]}
    if desired.get("secrets_encryption_key_arn"):
        request["encryptionConfig"] = encryption_config(desired["secrets_encryption_key_arn"])
    access = {}
    if desired.get("authentication_mode"):
        access["authenticationMode"] = desired["authentication_mode"]
    if params.get("bootstrap_cluster_creator_admin_permissions") is not None:
        access["bootstrapClusterCreatorAdminPermissions"] = params["bootstrap_cluster_creator_admin_permissions"]
    if access:
        request["accessConfig"] = access
    if params.get("tags"):
        request["tags"] = dict(params["tags"])
    return request


def update_errors_message(update):
    """A readable summary of a DescribeUpdate `update` that did not succeed."""
    errors = update.get("errors") or []
    details = "; ".join(
        "{0}: {1}{2}".format(
            e.get("errorCode", "Unknown"), e.get("errorMessage", ""), " ({0})".format(", ".join(e["resourceIds"])) if e.get("resourceIds") else ""
        )
        for e in errors
    )
    return "update {0} ({1}) ended {2}{3}".format(update.get("id"), update.get("type"), update.get("status"), ": " + details if details else "")
