"""EKS clusters as the sandbox serves them: Create/Describe/List/DeleteCluster with CREATING,
UPDATING and DELETING transitions, accessConfig and the creator's admin access entry, a real
cluster security group, and cluster updates (UpdateClusterVersion, UpdateClusterConfig,
DescribeUpdate, ListUpdates). Node groups and Fargate profiles are moto's own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import uuid
from typing import Any, Callable

from tests.sandbox import hooks
from tests.sandbox.aws import eks_catalog as catalog
from tests.sandbox.aws.eks_access import new_access_entry
from tests.sandbox.aws.eks_common import (
    LOCK, EksError, EksRequest, SandboxClusterState, account_id, eks_backend, epoch_now, get_cluster, handler,
    in_background, new_update, paginate, partition_of, public_view, request_tags, require_cluster,
    transition_deadline, validate_role_exists, with_token,
)


def _cluster_dict(cluster) -> dict:
    state: SandboxClusterState = cluster.sandbox
    vpc = cluster.resources_vpc_config or {}
    network = dict(cluster.kubernetes_network_config or {})
    network.setdefault("serviceIpv4Cidr", "172.20.0.0/16")
    network.setdefault("ipFamily", "ipv4")
    network.setdefault("elasticLoadBalancing", {"enabled": False})
    result = {
        "name": cluster.name,
        "arn": cluster.arn,
        "createdAt": cluster.sandbox_created_at,
        "version": cluster.version,
        "roleArn": cluster.role_arn,
        "resourcesVpcConfig": {
            "subnetIds": list(vpc.get("subnetIds") or []),
            "securityGroupIds": list(vpc.get("securityGroupIds") or []),
            "clusterSecurityGroupId": state.cluster_security_group_id,
            "vpcId": state.vpc_id,
            "endpointPublicAccess": state.endpoint_public,
            "endpointPrivateAccess": state.endpoint_private,
            "publicAccessCidrs": list(state.public_cidrs),
        },
        "kubernetesNetworkConfig": network,
        "logging": json.loads(json.dumps(cluster.logging)),
        "identity": json.loads(json.dumps(cluster.identity)),
        "status": state.status,
        "certificateAuthority": {"data": state.certificate_authority} if state.certificate_authority else {},
        "platformVersion": state.platform_version,
        "tags": dict(cluster.tags or {}),
        "id": state.cluster_id,
        "health": {"issues": []},
        "accessConfig": {
            "bootstrapClusterCreatorAdminPermissions": state.bootstrap_creator_admin,
            "authenticationMode": state.authentication_mode,
        },
        "upgradePolicy": {"supportType": state.upgrade_support_type},
        "deletionProtection": state.deletion_protection,
    }
    if state.endpoint and state.status != "CREATING":
        result["endpoint"] = state.endpoint
    if cluster.encryption_config:
        result["encryptionConfig"] = cluster.encryption_config
    if cluster.client_request_token:
        result["clientRequestToken"] = cluster.client_request_token
    return result


def cluster_view(region: str, name: str) -> dict | None:
    with LOCK:
        cluster = get_cluster(region, name)
        if cluster is None:
            return None
        view = _cluster_dict(cluster)
        view["creatorArn"] = cluster.sandbox.creator_arn
        view["bootstrapClusterCreatorAdminPermissions"] = cluster.sandbox.bootstrap_creator_admin
        view["endpoint"] = cluster.sandbox.endpoint
        view["certificateAuthority"] = {"data": cluster.sandbox.certificate_authority}
        return view


def caller_arn(access_key: str, region: str) -> str:
    """IAM ARN of the caller, role ARN form for assumed roles (what EKS records as creator)."""
    from moto.sts.models import sts_backends

    _, arn, _ = sts_backends[account_id()][partition_of(region)].get_caller_identity(access_key, region)
    match = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/.+$", arn)
    if match:
        partition, account, role_name = match.groups()
        try:
            from moto.iam.models import iam_backends

            return iam_backends[account][partition].get_role(role_name).arn
        except Exception:
            return f"arn:{partition}:iam::{account}:role/{role_name}"
    return arn


def _subnets_vpc(region: str, subnet_ids: list[str]) -> str:
    from moto.ec2.models import ec2_backends

    if len(subnet_ids) < 2:
        raise EksError("InvalidParameterException",
                       "Subnets specified must be in at least two different AZs; give resourcesVpcConfig.subnetIds "
                       "at least two subnets in different availability zones")
    ec2 = ec2_backends[account_id()][region]
    subnets = []
    for subnet_id in subnet_ids:
        try:
            subnets.append(ec2.get_subnet(subnet_id))
        except Exception:
            raise EksError("InvalidParameterException", f"The subnet ID '{subnet_id}' does not exist") from None
    vpcs = {subnet.vpc_id for subnet in subnets}
    if len(vpcs) > 1:
        raise EksError("InvalidParameterException", "Subnets must all be in the same VPC; got " + ", ".join(sorted(vpcs)))
    if len({subnet.availability_zone for subnet in subnets}) < 2:
        raise EksError("InvalidParameterException",
                       "Subnets specified must be in at least two different AZs; the given subnets are all in "
                       + subnets[0].availability_zone)
    return vpcs.pop()


def _create_cluster_security_group(region: str, name: str, vpc_id: str, state: SandboxClusterState) -> str:
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[account_id()][region]
    group = ec2.create_security_group(
        f"eks-cluster-sg-{name}-{state.cluster_id.split('-')[0]}",
        "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
        "as well as any managed workloads.",
        vpc_id=vpc_id,
        tags={f"kubernetes.io/cluster/{name}": "owned", "aws:eks:cluster-name": name},
    )
    return group.id


def _validate_public_cidrs(cidrs: list) -> list[str]:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise EksError("InvalidParameterException", f"The following CIDRs are invalid in publicAccessCidrs: [{cidr}]") from None
    return list(cidrs)


def _validate_logging(logging_config: Any) -> dict:
    if not isinstance(logging_config, dict) or not isinstance(logging_config.get("clusterLogging", []), list):
        raise EksError("InvalidParameterException", "logging must be {\"clusterLogging\": [{\"types\": [...], \"enabled\": bool}]}")
    for setup in logging_config.get("clusterLogging", []):
        for log_type in setup.get("types", []):
            if log_type not in ("api", "audit", "authenticator", "controllerManager", "scheduler"):
                raise EksError("InvalidParameterException", f"Unsupported log type {log_type}; valid types are "
                               "api, audit, authenticator, controllerManager, scheduler")
    return logging_config


def _logging_state(logging_config: dict) -> dict[str, bool]:
    enabled = {t: False for t in ("api", "audit", "authenticator", "controllerManager", "scheduler")}
    for setup in logging_config.get("clusterLogging", []):
        for log_type in setup.get("types", []):
            enabled[log_type] = bool(setup.get("enabled"))
    return enabled


def _logging_from_state(enabled: dict[str, bool]) -> dict:
    on = [t for t, v in enabled.items() if v]
    off = [t for t, v in enabled.items() if not v]
    setups = []
    if on:
        setups.append({"types": on, "enabled": True})
    if off:
        setups.append({"types": off, "enabled": False})
    return {"clusterLogging": setups}


@handler("CreateCluster")
def create_cluster(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    name = body.get("name")
    version = body.get("version") or catalog.DEFAULT_VERSION
    if version not in catalog.SUPPORTED_VERSIONS:
        raise EksError("InvalidParameterException",
                       f"unsupported Kubernetes version {version}; supported versions are {', '.join(catalog.SUPPORTED_VERSIONS)}")
    access = body.get("accessConfig") or {}
    mode = access.get("authenticationMode") or "CONFIG_MAP"
    if mode not in ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API"):
        raise EksError("InvalidParameterException", f"Unsupported authentication mode {mode}")
    bootstrap = access.get("bootstrapClusterCreatorAdminPermissions")
    bootstrap = True if bootstrap is None else bool(bootstrap)
    if mode == "CONFIG_MAP" and not bootstrap:
        raise EksError("InvalidParameterException",
                       "bootstrapClusterCreatorAdminPermissions=false requires authenticationMode API or API_AND_CONFIG_MAP; "
                       "with CONFIG_MAP nobody could reach the cluster")
    vpc_config = dict(body.get("resourcesVpcConfig") or {})
    network = dict(body.get("kubernetesNetworkConfig") or {})
    network.setdefault("serviceIpv4Cidr", "172.20.0.0/16")
    network.setdefault("ipFamily", "ipv4")
    if network["ipFamily"] not in ("ipv4", "ipv6"):
        raise EksError("InvalidParameterException", f"ipFamily {network['ipFamily']} is not ipv4 or ipv6")
    if network["ipFamily"] == "ipv6":
        # EKS picks the IPv6 service range itself, a /108 of a unique local (fd00::/8) block, written in the canonical
        # form (no leading zeros in a group: "fd56:48f9:dc1::/108", never "fd56:48f9:0dc1::/108").
        digest = hashlib.sha256(name.encode()).hexdigest()
        network["serviceIpv6Cidr"] = str(ipaddress.ip_network(f"fd{digest[:2]}:{digest[2:6]}:{digest[6:10]}::/108"))
    try:
        service_cidr = ipaddress.ip_network(network["serviceIpv4Cidr"], strict=True)
    except ValueError:
        raise EksError("InvalidParameterException", f"serviceIpv4Cidr {network['serviceIpv4Cidr']} is not a valid CIDR block") from None
    if not (service_cidr.is_private and 12 <= service_cidr.prefixlen <= 24):
        raise EksError("InvalidParameterException",
                       f"serviceIpv4Cidr {service_cidr} must be a private (RFC 1918) block between /12 and /24")
    tags = request_tags(body)
    if body.get("logging") is not None:
        _validate_logging(body["logging"])
    with LOCK:
        backend = eks_backend(request.region)
        existing = backend.clusters.get(name)
        if existing is not None and get_cluster(request.region, name) is not None:
            raise EksError("ResourceInUseException", f"Cluster already exists with name: {name}", clusterName=name)
        validate_role_exists(body.get("roleArn"))
        vpc_id = _subnets_vpc(request.region, list(vpc_config.get("subnetIds") or []))
        public_cidrs = _validate_public_cidrs(vpc_config.get("publicAccessCidrs") or ["0.0.0.0/0"])
        endpoint_public = vpc_config.get("endpointPublicAccess")
        endpoint_private = vpc_config.get("endpointPrivateAccess")
        endpoint_public = True if endpoint_public is None else bool(endpoint_public)
        endpoint_private = bool(endpoint_private)
        if not endpoint_public and not endpoint_private:
            raise EksError("InvalidParameterException", "Private and public endpoint access cannot both be disabled")
        try:
            cluster = backend.create_cluster(
                name=name,
                role_arn=body.get("roleArn"),
                resources_vpc_config=vpc_config,
                version=version,
                kubernetes_network_config=network,
                logging=body.get("logging") or _logging_from_state(_logging_state({})),
                client_request_token=body.get("clientRequestToken"),
                tags=tags,
                encryption_config=body.get("encryptionConfig"),
                remote_network_config=body.get("remoteNetworkConfig"),
            )
        except Exception as error:  # moto's own validation (its EKSError carries a JSON description)
            raise _from_moto(error) from None
        state = SandboxClusterState(region=request.region, ready_at=transition_deadline())
        state.authentication_mode = mode
        state.bootstrap_creator_admin = bootstrap
        state.creator_arn = caller_arn(request.access_key, request.region)
        state.platform_version = catalog.PLATFORM_VERSIONS[version]
        state.vpc_id = vpc_id
        state.endpoint_public, state.endpoint_private, state.public_cidrs = endpoint_public, endpoint_private, public_cidrs
        state.upgrade_support_type = (body.get("upgradePolicy") or {}).get("supportType") or "EXTENDED"
        state.deletion_protection = bool(body.get("deletionProtection"))
        state.cluster_security_group_id = _create_cluster_security_group(request.region, name, vpc_id, state)
        # EKS gives every cluster its own OIDC issuer (moto gives one to all clusters of a process).
        cluster.identity = {"oidc": {"issuer": f"https://oidc.eks.{request.region}.amazonaws.com/id/{uuid.uuid4().hex.upper()}"}}
        cluster.sandbox = state
        cluster.sandbox_created_at = epoch_now()
        cluster.status = "CREATING"
        cluster.endpoint = None
        if bootstrap and mode != "CONFIG_MAP":
            _add_creator_entry(cluster)
        result = _cluster_dict(cluster)
        hook_view = dict(result, creatorArn=state.creator_arn, bootstrapClusterCreatorAdminPermissions=bootstrap)
    in_background(_start_api_server, request.region, name, hook_view, state)
    return 200, {"cluster": result}


def _start_api_server(region: str, name: str, view: dict, state: SandboxClusterState) -> None:
    endpoint, ca_data = hooks.cluster_created(region, view)
    with LOCK:
        state.endpoint = endpoint
        state.certificate_authority = ca_data
        cluster = eks_backend(region).clusters.get(name)
        if cluster is not None and cluster.sandbox is state:
            cluster.endpoint = endpoint
            cluster.certificate_authority = {"data": ca_data}


def _add_creator_entry(cluster) -> None:
    state: SandboxClusterState = cluster.sandbox
    arn = state.creator_arn
    if not re.match(r"^arn:[^:]+:iam::\d+:(role|user)/", arn):
        return  # moto's default identity (sts user/moto) is not an IAM principal
    entry = new_access_entry(cluster, arn, "STANDARD", None, [], {})
    policy_arn = catalog.access_policy_arn("AmazonEKSClusterAdminPolicy", partition_of(state.region))
    entry["_policies"][policy_arn] = {"policyArn": policy_arn, "accessScope": {"type": "cluster", "namespaces": []},
                                      "associatedAt": epoch_now(), "modifiedAt": epoch_now()}
    state.access_entries[arn] = entry


def _from_moto(error: Exception) -> EksError:
    code = getattr(error, "TYPE", None) or "InvalidParameterException"
    message = str(error)
    description = getattr(error, "description", None)
    if description:
        try:
            message = json.loads(description).get("message") or message
        except ValueError:
            message = description
    return EksError(code, message)


@handler("DescribeCluster")
def describe_cluster(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = require_cluster(request.region, request.path_params["name"])
        return 200, {"cluster": _cluster_dict(cluster)}


@handler("ListClusters")
def list_clusters(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        backend = eks_backend(request.region)
        names = [name for name in list(backend.clusters) if get_cluster(request.region, name) is not None]
    page, token = paginate(sorted(names), request)
    return 200, with_token({"clusters": page}, token)


@handler("DeleteCluster")
def delete_cluster(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    with LOCK:
        cluster = require_cluster(request.region, name)
        state: SandboxClusterState = cluster.sandbox
        if state.status == "DELETING":
            raise EksError("ResourceInUseException", f"Cluster {name} is already being deleted.", clusterName=name)
        if state.deletion_protection:
            raise EksError("InvalidRequestException",
                           f"Cluster {name} has deletion protection enabled; disable it with UpdateClusterConfig first",
                           clusterName=name)
        if cluster.nodegroups:
            raise EksError("ResourceInUseException", "Cluster has nodegroups attached", clusterName=name)
        if cluster.fargate_profiles:
            raise EksError("ResourceInUseException", "Cluster has fargate profiles attached", clusterName=name)
        if state.status in ("CREATING", "UPDATING"):
            raise EksError("ResourceInUseException",
                           f"Cannot delete because cluster {name} currently has an update in progress"
                           if state.status == "UPDATING" else f"Cluster {name} is still being created",
                           clusterName=name)
        state.status = "DELETING"
        state.delete_at = transition_deadline()
        cluster.status = "DELETING"
        result = _cluster_dict(cluster)
        addons = list(state.addons.values())
    for addon in addons:
        hooks.addon_changed(request.region, name, dict(public_view(addon), status="DELETING", deleted=True, preserve=False))
    in_background(hooks.cluster_deleted, request.region, name)
    return 200, {"cluster": result}


def _require_no_update_in_progress(cluster) -> None:
    state: SandboxClusterState = cluster.sandbox
    if state.status == "CREATING":
        raise EksError("ResourceInUseException", f"Cluster {cluster.name} is still being created; wait until it is ACTIVE",
                       clusterName=cluster.name)
    if state.status == "DELETING":
        raise EksError("ResourceNotFoundException", f"Cluster {cluster.name} is being deleted", clusterName=cluster.name)
    if any(u["status"] == "InProgress" for u in state.updates.values() if u["_cluster_level"]):
        raise EksError("ResourceInUseException", "Cluster has an update in progress", clusterName=cluster.name)


@handler("UpdateClusterVersion")
def update_cluster_version(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    target = request.body.get("version")
    with LOCK:
        cluster = require_cluster(request.region, name)
        _require_no_update_in_progress(cluster)
        current = cluster.version
        if target == current:
            raise EksError("InvalidParameterException", f"Cluster is already at the desired configuration with version {current}",
                           clusterName=name)
        if target not in catalog.SUPPORTED_VERSIONS:
            raise EksError("InvalidParameterException", f"unsupported Kubernetes version {target}", clusterName=name)
        if catalog.minor(target) != catalog.minor(current) + 1:
            raise EksError("InvalidParameterException",
                           f"Unsupported Kubernetes minor version update from {current} to {target}; "
                           f"upgrade one minor version at a time (next: 1.{catalog.minor(current) + 1})",
                           clusterName=name)
        state: SandboxClusterState = cluster.sandbox
        platform = catalog.PLATFORM_VERSIONS[target]

        def apply() -> None:
            cluster.version = target
            state.platform_version = platform

        update = new_update("VersionUpdate", [{"type": "Version", "value": target}, {"type": "PlatformVersion", "value": platform}],
                             apply, cluster_level=True)
        state.updates[update["id"]] = update
        state.status = "UPDATING"
        cluster.status = "UPDATING"
        return 200, {"update": public_view(update)}


@handler("UpdateClusterConfig")
def update_cluster_config(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    body = request.body
    kinds = [key for key in ("resourcesVpcConfig", "logging", "accessConfig", "upgradePolicy", "deletionProtection")
             if body.get(key) is not None]
    unsupported = [key for key in ("zonalShiftConfig", "computeConfig", "kubernetesNetworkConfig", "storageConfig",
                                   "remoteNetworkConfig", "controlPlaneScalingConfig") if body.get(key) is not None]
    if unsupported:
        raise EksError("InvalidParameterException", f"The sandbox does not support updating {', '.join(unsupported)}")
    if not kinds:
        raise EksError("InvalidParameterException", "No update type specified in request", clusterName=name)
    if len(kinds) > 1:
        raise EksError("InvalidParameterException",
                       f"Only one type of update can be allowed; got {', '.join(kinds)}. Send them in separate requests",
                       clusterName=name)
    kind = kinds[0]
    with LOCK:
        cluster = require_cluster(request.region, name)
        _require_no_update_in_progress(cluster)
        state: SandboxClusterState = cluster.sandbox
        if kind == "logging":
            wanted = _validate_logging(body["logging"])
            current = _logging_state(cluster.logging)
            new = dict(current)
            for setup in wanted.get("clusterLogging", []):
                for log_type in setup.get("types", []):
                    new[log_type] = bool(setup.get("enabled"))
            if new == current:
                raise EksError("InvalidParameterException", "No changes needed for the logging config provided", clusterName=name)
            logging_config = _logging_from_state(new)

            def apply() -> None:
                cluster.logging = logging_config

            update = new_update("LoggingUpdate", [{"type": "ClusterLogging", "value": json.dumps(logging_config)}], apply,
                                 cluster_level=True)
        elif kind == "resourcesVpcConfig":
            vpc = body["resourcesVpcConfig"]
            if vpc.get("subnetIds") is not None or vpc.get("securityGroupIds") is not None:
                raise EksError("InvalidParameterException", "The sandbox does not support changing subnetIds or securityGroupIds",
                               clusterName=name)
            public = state.endpoint_public if vpc.get("endpointPublicAccess") is None else bool(vpc["endpointPublicAccess"])
            private = state.endpoint_private if vpc.get("endpointPrivateAccess") is None else bool(vpc["endpointPrivateAccess"])
            cidrs = state.public_cidrs if vpc.get("publicAccessCidrs") is None else _validate_public_cidrs(vpc["publicAccessCidrs"])
            if not public and not private:
                raise EksError("InvalidParameterException", "Private and public endpoint access cannot both be disabled",
                               clusterName=name)
            if (public, private, list(cidrs)) == (state.endpoint_public, state.endpoint_private, list(state.public_cidrs)):
                raise EksError("InvalidParameterException", "Cluster is already at the desired configuration with "
                               f"endpointPrivateAccess: {str(private).lower()} , endpointPublicAccess: {str(public).lower()}, "
                               f"and Public Endpoint Restrictions: {cidrs}", clusterName=name)
            params = [{"type": "EndpointPublicAccess", "value": str(public).lower()},
                      {"type": "EndpointPrivateAccess", "value": str(private).lower()}]
            if vpc.get("publicAccessCidrs") is not None:
                params.append({"type": "PublicAccessCidrs", "value": json.dumps(list(cidrs))})

            def apply() -> None:
                state.endpoint_public, state.endpoint_private, state.public_cidrs = public, private, list(cidrs)

            update = new_update("EndpointAccessUpdate", params, apply, cluster_level=True)
        elif kind == "accessConfig":
            mode = body["accessConfig"].get("authenticationMode")
            order = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"]
            if mode not in order:
                raise EksError("InvalidParameterException", f"Unsupported authentication mode {mode}", clusterName=name)
            if mode == state.authentication_mode:
                raise EksError("InvalidParameterException", f"Cluster is already at the desired configuration with authenticationMode {mode}",
                               clusterName=name)
            if order.index(mode) < order.index(state.authentication_mode):
                raise EksError("InvalidParameterException",
                               f"Unsupported authentication mode update from {state.authentication_mode} to {mode}; "
                               "the authentication mode can only move forward: CONFIG_MAP -> API_AND_CONFIG_MAP -> API",
                               clusterName=name)

            def apply() -> None:
                state.authentication_mode = mode

            update = new_update("AccessConfigUpdate", [{"type": "AuthenticationMode", "value": mode}], apply, cluster_level=True)
        elif kind == "upgradePolicy":
            support = body["upgradePolicy"].get("supportType")
            if support not in ("STANDARD", "EXTENDED"):
                raise EksError("InvalidParameterException", f"Unsupported supportType {support}; use STANDARD or EXTENDED")

            def apply() -> None:
                state.upgrade_support_type = support

            update = new_update("UpgradePolicyUpdate", [{"type": "UpgradePolicy", "value": support}], apply, cluster_level=True)
        else:
            wanted_protection = bool(body["deletionProtection"])

            def apply() -> None:
                state.deletion_protection = wanted_protection

            update = new_update("DeletionProtectionUpdate", [{"type": "DeletionProtection", "value": str(wanted_protection).lower()}],
                                 apply, cluster_level=True)
        state.updates[update["id"]] = update
        state.status = "UPDATING"
        cluster.status = "UPDATING"
        return 200, {"update": public_view(update)}


def _update_scope(cluster, request: EksRequest) -> Callable[[dict], bool]:
    addon_name = request.q("addonName")
    nodegroup = request.q("nodegroupName")
    if addon_name:
        if addon_name not in cluster.sandbox.addons:
            raise EksError("ResourceNotFoundException", f"No addon: {addon_name} found in cluster: {cluster.name}",
                           clusterName=cluster.name, addonName=addon_name)
        return lambda update: update.get("_addon") == addon_name
    if nodegroup:
        if nodegroup not in cluster.nodegroups:
            raise EksError("ResourceNotFoundException", f"No node group found for name: {nodegroup}.",
                           clusterName=cluster.name, nodegroupName=nodegroup)
        return lambda update: False  # managed node group updates are not kept by the sandbox
    return lambda update: update["_cluster_level"]


@handler("DescribeUpdate")
def describe_update(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    update_id = request.path_params["updateId"]
    with LOCK:
        cluster = require_cluster(request.region, name)
        in_scope = _update_scope(cluster, request)
        update = cluster.sandbox.updates.get(update_id)
        if update is None or not in_scope(update):
            raise EksError("ResourceNotFoundException", f"No update found for ID: {update_id}", clusterName=name)
        return 200, {"update": public_view(update)}


@handler("ListUpdates")
def list_updates(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    with LOCK:
        cluster = require_cluster(request.region, name)
        in_scope = _update_scope(cluster, request)
        ids = [update["id"] for update in cluster.sandbox.updates.values() if in_scope(update)]
    page, token = paginate(ids, request)
    return 200, with_token({"updateIds": page}, token)
