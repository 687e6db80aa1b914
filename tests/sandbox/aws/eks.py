"""EKS as the sandbox serves it: moto's EKS backend, extended with what moto lacks.

moto keeps the clusters (``eks_backends[account][region].clusters``, so ``/moto-api/reset``
clears everything) and serves node groups and Fargate profiles. This module serves the
cluster lifecycle (with CREATING/UPDATING/DELETING transitions), accessConfig and the creator's
admin access, add-ons, access entries, cluster updates (version and config) and tags. State it
adds lives in a ``SandboxClusterState`` attached to each moto ``Cluster`` as ``cluster.sandbox``.

Transitions are evaluated lazily against the clock (``settings.status_delay``), so no timer
threads are needed: whoever looks after the deadline sees the new state. The Kubernetes side
is called through ``tests.sandbox.hooks`` outside of this module's lock.

Requests are routed by botocore's own service model (HTTP method + requestUri), and errors
use the model's error codes and HTTP statuses.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

import botocore
import jsonschema
import yaml

from tests.sandbox import hooks
from tests.sandbox.aws import eks_catalog as catalog

LOG = logging.getLogger("sandbox.eks")

_lock = threading.RLock()


@dataclass
class EksSettings:
    account_id: str = "123456789012"
    status_delay: float = 0.3


SETTINGS = EksSettings()


def configure(account_id: str, status_delay: float) -> None:
    SETTINGS.account_id = account_id
    SETTINGS.status_delay = status_delay


def account_id() -> str:
    return SETTINGS.account_id


# ---------------------------------------------------------------------------------------
# Errors (shapes and HTTP statuses from botocore's model).

_ERROR_STATUS = {
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "ClientException": 400,
    "ResourceNotFoundException": 404,
    "ResourceInUseException": 409,
    "ResourceLimitExceededException": 400,
    "NotFoundException": 404,
    "BadRequestException": 400,
    "ServerException": 500,
}


class EksError(Exception):
    def __init__(self, code: str, message: str, **fields: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = {k: v for k, v in fields.items() if v is not None}

    @property
    def status(self) -> int:
        return _ERROR_STATUS.get(self.code, 400)

    def body(self) -> dict:
        return {"message": self.message, **self.fields}


def _not_found_cluster(name: str) -> EksError:
    return EksError("ResourceNotFoundException", f"No cluster found for name: {name}.", clusterName=name)


# ---------------------------------------------------------------------------------------
# State.


def _now() -> float:
    return time.time()


def _deadline() -> float:
    return time.monotonic() + SETTINGS.status_delay


def _due(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@dataclass
class SandboxClusterState:
    region: str
    status: str = "CREATING"
    ready_at: float = 0.0
    delete_at: float | None = None
    endpoint: str | None = None
    certificate_authority: str | None = None
    authentication_mode: str = "CONFIG_MAP"
    bootstrap_creator_admin: bool = True
    creator_arn: str = ""
    platform_version: str = ""
    cluster_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    cluster_security_group_id: str = ""
    vpc_id: str = ""
    endpoint_public: bool = True
    endpoint_private: bool = False
    public_cidrs: list = field(default_factory=lambda: ["0.0.0.0/0"])
    upgrade_support_type: str = "STANDARD"
    deletion_protection: bool = False
    access_entries: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    addons: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    updates: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    pod_identity: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)


def _eks_backend(region: str):
    from moto.eks.models import eks_backends

    return eks_backends[account_id()][region]


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _settle(cluster) -> bool:
    """Apply the transitions whose deadline passed. Returns False when the cluster is gone."""
    state: SandboxClusterState = cluster.sandbox
    if state.status == "DELETING":
        if _due(state.delete_at):
            backend = _eks_backend(state.region)
            backend.clusters.pop(cluster.name, None)
            return False
        return True
    if state.status == "CREATING" and _due(state.ready_at) and state.endpoint:
        state.status = "ACTIVE"
    for update in state.updates.values():
        if update["status"] == "InProgress" and _due(update["_done_at"]):
            update["_apply"]()
            update["status"] = "Successful"
    for name, addon in list(state.addons.items()):
        update = addon.get("_pending_update")
        if addon["status"] == "DELETING":
            if _due(addon["_deadline"]):
                del state.addons[name]
                _drop_owned_associations(state, addon["addonArn"], keep=())
        elif addon["status"] in ("CREATING", "UPDATING") and _due(addon["_deadline"]):
            if update is None or update["status"] != "InProgress":
                addon["status"] = "ACTIVE"
                addon["_pending_update"] = None
    if state.status == "UPDATING" and not any(
        u["status"] == "InProgress" for u in state.updates.values() if u.get("_cluster_level")
    ):
        state.status = "ACTIVE"
    cluster.status = state.status  # moto's own node group code reads it
    return True


def _get_cluster(region: str, name: str, *, settle: bool = True):
    backend = _eks_backend(region)
    cluster = backend.clusters.get(name)
    if cluster is None or not hasattr(cluster, "sandbox"):
        if cluster is not None:  # created before the sandbox was in place; adopt it
            _adopt(cluster, region)
        else:
            return None
    if settle and not _settle(cluster):
        return None
    return cluster


def settle(region: str, name: str | None) -> None:
    """Bring a cluster's status up to date before moto serves a request about it (node groups,
    Fargate profiles read moto's ``cluster.status``)."""
    if name:
        with _lock:
            _get_cluster(region, name)


def _adopt(cluster, region: str) -> None:
    cluster.sandbox = SandboxClusterState(region=region, status="ACTIVE", ready_at=0.0,
                                          endpoint=cluster.endpoint,
                                          certificate_authority=cluster.certificate_authority.get("data"),
                                          platform_version=cluster.platformVersion)


def _require_cluster(region: str, name: str):
    cluster = _get_cluster(region, name)
    if cluster is None:
        raise _not_found_cluster(name)
    return cluster


# ---------------------------------------------------------------------------------------
# Views (also used by tests.sandbox.aws_state).


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
    with _lock:
        cluster = _get_cluster(region, name)
        if cluster is None:
            return None
        view = _cluster_dict(cluster)
        view["creatorArn"] = cluster.sandbox.creator_arn
        view["bootstrapClusterCreatorAdminPermissions"] = cluster.sandbox.bootstrap_creator_admin
        view["endpoint"] = cluster.sandbox.endpoint
        view["certificateAuthority"] = {"data": cluster.sandbox.certificate_authority}
        return view


def access_entries_view(region: str, cluster_name: str) -> list[dict]:
    with _lock:
        cluster = _get_cluster(region, cluster_name)
        if cluster is None:
            return []
        return [
            {
                "principalArn": entry["principalArn"],
                "type": entry["type"],
                "username": entry["username"],
                "kubernetesGroups": list(entry["kubernetesGroups"]),
                "accessPolicies": [
                    {"policyArn": p["policyArn"], "accessScope": json.loads(json.dumps(p["accessScope"]))}
                    for p in entry["_policies"].values()
                ],
            }
            for entry in cluster.sandbox.access_entries.values()
        ]


def addons_view(region: str, cluster_name: str) -> list[dict]:
    with _lock:
        cluster = _get_cluster(region, cluster_name)
        if cluster is None:
            return []
        addons = [_public(addon) for addon in cluster.sandbox.addons.values()]
    return [_with_health(region, cluster_name, addon) for addon in addons]


def _public(record: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in record.items() if not k.startswith("_")}))


def _with_health(region: str, cluster_name: str, addon: dict) -> dict:
    """ACTIVE becomes DEGRADED while no node can run the add-on's Deployment. Evaluated outside
    the lock because it asks the Kubernetes side."""
    if addon["status"] == "ACTIVE" and addon["addonName"] in catalog.NEEDS_NODES:
        if hooks.ready_nodes(region, cluster_name) == 0:
            addon["status"] = "DEGRADED"
            addon["health"] = {
                "issues": [
                    {
                        "code": "InsufficientNumberOfReplicas",
                        "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                        "resourceIds": [],
                    }
                ]
            }
    return addon


# ---------------------------------------------------------------------------------------
# Request plumbing.


@dataclass
class EksRequest:
    region: str
    method: str
    path_params: dict
    query: dict
    body: dict
    access_key: str

    def q(self, name: str, default: Any = None) -> Any:
        values = self.query.get(name)
        return values[0] if values else default

    def q_list(self, name: str) -> list:
        return list(self.query.get(name, []))


_HANDLERS: dict[str, Callable[[EksRequest], tuple[int, dict]]] = {}


def _handler(operation: str):
    def register(function):
        _HANDLERS[operation] = function
        return function

    return register


def _load_routes() -> list[tuple[str, str, re.Pattern]]:
    path = f"{botocore.__path__[0]}/data/eks/2017-11-01/service-2.json.gz"
    with gzip.open(path) as stream:
        model = json.load(stream)
    routes = []
    for name, operation in model["operations"].items():
        uri = operation["http"]["requestUri"].split("?")[0]
        pattern = re.sub(r"\{(\w+)\+?\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", uri)
        routes.append((name, operation["http"]["method"], re.compile(f"^{pattern}$")))
    # Literal paths before templated ones (/addons/supported-versions before /addons/{x}).
    routes.sort(key=lambda route: route[2].pattern.count("(?P"))
    return routes


_ROUTES: list | None = None


def operation_for(method: str, raw_path: str) -> tuple[str | None, dict]:
    """Which EKS operation a request is, by botocore's model; and its path parameters."""
    global _ROUTES
    if _ROUTES is None:
        _ROUTES = _load_routes()
    path = raw_path.split("?")[0]
    for name, route_method, pattern in _ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}
    return None, {}


def handles(operation: str | None) -> bool:
    return operation in _HANDLERS


def handle(operation: str, region: str, method: str, path_params: dict, query_string: str,
           body: bytes, access_key: str) -> tuple[int, dict, bytes]:
    """Serve one EKS request. Returns (status, headers, body)."""
    try:
        payload = json.loads(body) if body and body.strip() else {}
    except ValueError:
        payload = None
    try:
        if payload is None or not isinstance(payload, dict):
            raise EksError("InvalidParameterException", "The request body is not valid JSON.")
        request = EksRequest(region, method, path_params, parse_qs(query_string, keep_blank_values=True), payload, access_key)
        status, result = _HANDLERS[operation](request)
        return status, {"Content-Type": "application/json"}, json.dumps(result).encode()
    except EksError as error:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        return error.status, headers, json.dumps(error.body()).encode()


def _callback(function: Callable, *args) -> None:
    thread = threading.Thread(target=function, args=args, daemon=True, name=f"sandbox-eks-{function.__name__}")
    thread.start()


# ---------------------------------------------------------------------------------------
# Identity of the caller (for the cluster creator).


def caller_arn(access_key: str, region: str) -> str:
    """IAM ARN of the caller, role ARN form for assumed roles (what EKS records as creator)."""
    from moto.sts.models import sts_backends

    _, arn, _ = sts_backends[account_id()][_partition(region)].get_caller_identity(access_key, region)
    match = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/.+$", arn)
    if match:
        partition, account, role_name = match.groups()
        try:
            from moto.iam.models import iam_backends

            return iam_backends[account][partition].get_role(role_name).arn
        except Exception:
            return f"arn:{partition}:iam::{account}:role/{role_name}"
    return arn


def _session_username(principal_arn: str) -> str:
    match = re.match(r"^arn:([^:]+):iam::(\d+):role/(?:.*/)?([^/]+)$", principal_arn)
    if match:
        partition, account, name = match.groups()
        return f"arn:{partition}:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}"
    return principal_arn


# ---------------------------------------------------------------------------------------
# Validation helpers.


def _validate_role_exists(role_arn: str, what: str = "roleArn") -> None:
    from moto.iam.models import iam_backends

    match = re.match(r"^arn:[^:]+:iam::(\d+):role/(?:.*/)?([^/]+)$", role_arn or "")
    if not match:
        raise EksError("InvalidParameterException", f"Invalid Role Arn: '{role_arn}'")
    account, name = match.groups()
    try:
        iam_backends[account]["aws"].get_role(name)
    except Exception:
        raise EksError("InvalidParameterException", f"Role with arn: {role_arn}, does not exist") from None


def _principal_exists(principal_arn: str) -> bool:
    from moto.iam.models import iam_backends

    match = re.match(r"^arn:[^:]+:iam::(\d+):(role|user)/(?:.*/)?([^/]+)$", principal_arn or "")
    if not match:
        return False
    account, kind, name = match.groups()
    backend = iam_backends[account]["aws"]
    try:
        backend.get_role(name) if kind == "role" else backend.get_user(name)
        return True
    except Exception:
        return False


def _tags(body: dict) -> dict:
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise EksError("InvalidParameterException", "tags must be a map of strings")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise EksError("InvalidParameterException", f"Tag keys starting with 'aws:' are reserved: {key}")
    return dict(tags)


def _paginate(items: list, request: EksRequest, maximum: int = 100) -> tuple[list, str | None]:
    try:
        max_results = int(request.q("maxResults") or maximum)
    except ValueError:
        raise EksError("InvalidParameterException", "maxResults must be an integer") from None
    if not 1 <= max_results <= maximum:
        raise EksError("InvalidParameterException", f"maxResults must be between 1 and {maximum}")
    start = 0
    token = request.q("nextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except Exception:
            raise EksError("InvalidParameterException", "The nextToken is invalid.") from None
    page = items[start:start + max_results]
    end = start + max_results
    next_token = base64.b64encode(str(end).encode()).decode() if end < len(items) else None
    return page, next_token


def _with_token(result: dict, token: str | None) -> dict:
    if token:
        result["nextToken"] = token
    return result


# ---------------------------------------------------------------------------------------
# Clusters.


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


@_handler("CreateCluster")
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
    try:
        service_cidr = ipaddress.ip_network(network["serviceIpv4Cidr"], strict=True)
    except ValueError:
        raise EksError("InvalidParameterException", f"serviceIpv4Cidr {network['serviceIpv4Cidr']} is not a valid CIDR block") from None
    if not (service_cidr.is_private and 12 <= service_cidr.prefixlen <= 24):
        raise EksError("InvalidParameterException",
                       f"serviceIpv4Cidr {service_cidr} must be a private (RFC 1918) block between /12 and /24")
    tags = _tags(body)
    if body.get("logging") is not None:
        _validate_logging(body["logging"])
    with _lock:
        backend = _eks_backend(request.region)
        existing = backend.clusters.get(name)
        if existing is not None and _get_cluster(request.region, name) is not None:
            raise EksError("ResourceInUseException", f"Cluster already exists with name: {name}", clusterName=name)
        _validate_role_exists(body.get("roleArn"))
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
        state = SandboxClusterState(region=request.region, ready_at=_deadline())
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
        cluster.sandbox_created_at = _now()
        cluster.status = "CREATING"
        cluster.endpoint = None
        if bootstrap and mode != "CONFIG_MAP":
            _add_creator_entry(cluster)
        result = _cluster_dict(cluster)
        hook_view = dict(result, creatorArn=state.creator_arn, bootstrapClusterCreatorAdminPermissions=bootstrap)
    _callback(_start_api_server, request.region, name, hook_view, state)
    return 200, {"cluster": result}


def _start_api_server(region: str, name: str, view: dict, state: SandboxClusterState) -> None:
    endpoint, ca_data = hooks.cluster_created(region, view)
    with _lock:
        state.endpoint = endpoint
        state.certificate_authority = ca_data
        cluster = _eks_backend(region).clusters.get(name)
        if cluster is not None and cluster.sandbox is state:
            cluster.endpoint = endpoint
            cluster.certificate_authority = {"data": ca_data}


def _add_creator_entry(cluster) -> None:
    state: SandboxClusterState = cluster.sandbox
    arn = state.creator_arn
    if not re.match(r"^arn:[^:]+:iam::\d+:(role|user)/", arn):
        return  # moto's default identity (sts user/moto) is not an IAM principal
    entry = _new_access_entry(cluster, arn, "STANDARD", None, [], {})
    policy_arn = catalog.access_policy_arn("AmazonEKSClusterAdminPolicy", _partition(state.region))
    entry["_policies"][policy_arn] = {"policyArn": policy_arn, "accessScope": {"type": "cluster", "namespaces": []},
                                      "associatedAt": _now(), "modifiedAt": _now()}
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


@_handler("DescribeCluster")
def describe_cluster(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        return 200, {"cluster": _cluster_dict(cluster)}


@_handler("ListClusters")
def list_clusters(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        backend = _eks_backend(request.region)
        names = [name for name in list(backend.clusters) if _get_cluster(request.region, name) is not None]
    page, token = _paginate(sorted(names), request)
    return 200, _with_token({"clusters": page}, token)


@_handler("DeleteCluster")
def delete_cluster(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    with _lock:
        cluster = _require_cluster(request.region, name)
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
        state.delete_at = _deadline()
        cluster.status = "DELETING"
        result = _cluster_dict(cluster)
        addons = list(state.addons.values())
    for addon in addons:
        hooks.addon_changed(request.region, name, dict(_public(addon), status="DELETING", deleted=True, preserve=False))
    _callback(hooks.cluster_deleted, request.region, name)
    return 200, {"cluster": result}


# ---------------------------------------------------------------------------------------
# Updates.


def _new_update(update_type: str, params: list[dict], apply: Callable[[], None], *, cluster_level: bool) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "status": "InProgress",
        "type": update_type,
        "params": params,
        "createdAt": _now(),
        "errors": [],
        "_done_at": _deadline(),
        "_apply": apply,
        "_cluster_level": cluster_level,
    }


def _require_no_update_in_progress(cluster) -> None:
    state: SandboxClusterState = cluster.sandbox
    if state.status == "CREATING":
        raise EksError("ResourceInUseException", f"Cluster {cluster.name} is still being created; wait until it is ACTIVE",
                       clusterName=cluster.name)
    if state.status == "DELETING":
        raise EksError("ResourceNotFoundException", f"Cluster {cluster.name} is being deleted", clusterName=cluster.name)
    if any(u["status"] == "InProgress" for u in state.updates.values() if u["_cluster_level"]):
        raise EksError("ResourceInUseException", "Cluster has an update in progress", clusterName=cluster.name)


@_handler("UpdateClusterVersion")
def update_cluster_version(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    target = request.body.get("version")
    with _lock:
        cluster = _require_cluster(request.region, name)
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

        update = _new_update("VersionUpdate", [{"type": "Version", "value": target}, {"type": "PlatformVersion", "value": platform}],
                             apply, cluster_level=True)
        state.updates[update["id"]] = update
        state.status = "UPDATING"
        cluster.status = "UPDATING"
        return 200, {"update": _public(update)}


@_handler("UpdateClusterConfig")
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
    with _lock:
        cluster = _require_cluster(request.region, name)
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

            update = _new_update("LoggingUpdate", [{"type": "ClusterLogging", "value": json.dumps(logging_config)}], apply,
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

            update = _new_update("EndpointAccessUpdate", params, apply, cluster_level=True)
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

            update = _new_update("AccessConfigUpdate", [{"type": "AuthenticationMode", "value": mode}], apply, cluster_level=True)
        elif kind == "upgradePolicy":
            support = body["upgradePolicy"].get("supportType")
            if support not in ("STANDARD", "EXTENDED"):
                raise EksError("InvalidParameterException", f"Unsupported supportType {support}; use STANDARD or EXTENDED")

            def apply() -> None:
                state.upgrade_support_type = support

            update = _new_update("UpgradePolicyUpdate", [{"type": "UpgradePolicy", "value": support}], apply, cluster_level=True)
        else:
            wanted_protection = bool(body["deletionProtection"])

            def apply() -> None:
                state.deletion_protection = wanted_protection

            update = _new_update("DeletionProtectionUpdate", [{"type": "DeletionProtection", "value": str(wanted_protection).lower()}],
                                 apply, cluster_level=True)
        state.updates[update["id"]] = update
        state.status = "UPDATING"
        cluster.status = "UPDATING"
        return 200, {"update": _public(update)}


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


@_handler("DescribeUpdate")
def describe_update(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    update_id = request.path_params["updateId"]
    with _lock:
        cluster = _require_cluster(request.region, name)
        in_scope = _update_scope(cluster, request)
        update = cluster.sandbox.updates.get(update_id)
        if update is None or not in_scope(update):
            raise EksError("ResourceNotFoundException", f"No update found for ID: {update_id}", clusterName=name)
        return 200, {"update": _public(update)}


@_handler("ListUpdates")
def list_updates(request: EksRequest) -> tuple[int, dict]:
    name = request.path_params["name"]
    with _lock:
        cluster = _require_cluster(request.region, name)
        in_scope = _update_scope(cluster, request)
        ids = [update["id"] for update in cluster.sandbox.updates.values() if in_scope(update)]
    page, token = _paginate(ids, request)
    return 200, _with_token({"updateIds": page}, token)


# ---------------------------------------------------------------------------------------
# Add-ons.


def _addon_arn(cluster, addon_name: str, version: str) -> str:
    state = cluster.sandbox
    return f"arn:{_partition(state.region)}:eks:{state.region}:{account_id()}:addon/{cluster.name}/{addon_name}/{uuid.uuid4()}"


def _parse_configuration(addon_name: str, version: str, text: str | None) -> str | None:
    if text is None or text == "":
        return text
    try:
        values = json.loads(text)
    except ValueError:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise EksError("InvalidParameterException",
                           f"ConfigurationValue provided in request is not supported: not valid JSON or YAML ({error})",
                           addonName=addon_name) from None
    if not isinstance(values, dict):
        raise EksError("InvalidParameterException",
                       "ConfigurationValue provided in request is not supported: it must be a JSON or YAML object",
                       addonName=addon_name)
    schema = catalog.configuration_schema(addon_name, version)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        described = []
        for error in errors:
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                for key in extra:
                    described.append(f"{path}.{key}: is not defined in the schema and the schema does not allow additional properties")
            else:
                described.append(f"{path}: {error.message}")
        raise EksError("InvalidParameterException",
                       "ConfigurationValue provided in request is not supported: Json schema validation failed with error: ["
                       + ", ".join(described) + "]", addonName=addon_name)
    return text


def _pod_identity(cluster, addon_name: str, associations: Any, owner_arn: str) -> tuple[list, list]:
    """Validate an add-on's podIdentityAssociations and create them (owned by the add-on)."""
    if associations is None:
        return [], []
    if not isinstance(associations, list):
        raise EksError("InvalidParameterException", "podIdentityAssociations must be a list", addonName=addon_name)
    allowed = {sa for sa, _ in catalog.POD_IDENTITY.get(addon_name, [])}
    for item in associations:
        service_account = item.get("serviceAccount")
        _validate_role_exists(item.get("roleArn"))
        if service_account not in allowed:
            raise EksError("InvalidParameterException",
                           f"Service account {service_account} is not used by add-on {addon_name}; "
                           f"valid service accounts: {', '.join(sorted(allowed)) or 'none'}", addonName=addon_name)
        other = _association_for(cluster.sandbox, "kube-system", service_account)
        if other is not None and other.get("ownerArn") != owner_arn:
            raise EksError("ResourceInUseException", f"Association already exists for kube-system/{service_account}: "
                           f"{other['associationArn']}", addonName=addon_name, clusterName=cluster.name)
    arns = []
    for item in associations:
        existing = _association_for(cluster.sandbox, "kube-system", item["serviceAccount"])
        if existing is not None:
            existing.update(roleArn=item["roleArn"], modifiedAt=_now())
            arns.append(existing["associationArn"])
        else:
            arns.append(_new_association(cluster, "kube-system", item["serviceAccount"], item["roleArn"], {}, owner_arn)["associationArn"])
    return list(associations), arns


# ---------------------------------------------------------------------------------------
# Pod Identity associations (standalone, or owned by an add-on).


def _association_for(state: SandboxClusterState, namespace: str, service_account: str) -> dict | None:
    for association in state.pod_identity.values():
        if association["namespace"] == namespace and association["serviceAccount"] == service_account:
            return association
    return None


def _new_association(cluster, namespace: str, service_account: str, role_arn: str, tags: dict, owner_arn: str | None) -> dict:
    association_id = f"a-{uuid.uuid4().hex[:17]}"
    now = _now()
    association = {
        "clusterName": cluster.name,
        "namespace": namespace,
        "serviceAccount": service_account,
        "roleArn": role_arn,
        "associationArn": f"arn:{_partition(cluster.sandbox.region)}:eks:{cluster.sandbox.region}:{account_id()}:"
                          f"podidentityassociation/{cluster.name}/{association_id}",
        "associationId": association_id,
        "tags": dict(tags),
        "createdAt": now,
        "modifiedAt": now,
        "disableSessionTags": False,
    }
    if owner_arn:
        association["ownerArn"] = owner_arn
    cluster.sandbox.pod_identity[association_id] = association
    return association


def _drop_owned_associations(state: SandboxClusterState, owner_arn: str, keep) -> None:
    for association_id, association in list(state.pod_identity.items()):
        if association.get("ownerArn") == owner_arn and association["associationArn"] not in keep:
            del state.pod_identity[association_id]


def _require_association(cluster, association_id: str) -> dict:
    association = cluster.sandbox.pod_identity.get(association_id)
    if association is None:
        raise EksError("ResourceNotFoundException", f"Association {association_id} not found in cluster {cluster.name}",
                       clusterName=cluster.name)
    return association


@_handler("CreatePodIdentityAssociation")
def create_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    with _lock:
        cluster = _addon_cluster(request)
        namespace, service_account = body.get("namespace"), body.get("serviceAccount")
        for field_name, value in (("namespace", namespace), ("serviceAccount", service_account), ("roleArn", body.get("roleArn"))):
            if not value:
                raise EksError("InvalidParameterException", f"{field_name} is required", clusterName=cluster.name)
        _validate_role_exists(body["roleArn"])
        existing = _association_for(cluster.sandbox, namespace, service_account)
        if existing is not None:
            raise EksError("ResourceInUseException", f"Association already exists: {existing['associationArn']}",
                           clusterName=cluster.name)
        association = _new_association(cluster, namespace, service_account, body["roleArn"], _tags(body), None)
        return 200, {"association": _public(association)}


@_handler("DescribePodIdentityAssociation")
def describe_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        association = _require_association(cluster, request.path_params["associationId"])
        return 200, {"association": _public(association)}


@_handler("ListPodIdentityAssociations")
def list_pod_identity_associations(request: EksRequest) -> tuple[int, dict]:
    namespace, service_account = request.q("namespace"), request.q("serviceAccount")
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        summaries = [
            {key: association[key] for key in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId", "ownerArn")
             if key in association}
            for association in cluster.sandbox.pod_identity.values()
            if (not namespace or association["namespace"] == namespace)
            and (not service_account or association["serviceAccount"] == service_account)
        ]
    page, token = _paginate(summaries, request)
    return 200, _with_token({"associations": page}, token)


def _standalone_association(request: EksRequest, verb: str) -> tuple:
    """The cluster and the association the request names, refused when an add-on owns it."""
    cluster = _require_cluster(request.region, request.path_params["name"])
    association = _require_association(cluster, request.path_params["associationId"])
    if association.get("ownerArn"):
        raise EksError("InvalidRequestException", f"Association {association['associationId']} is managed by "
                       f"{association['ownerArn']}; {verb} it through that add-on", clusterName=cluster.name)
    return cluster, association


@_handler("UpdatePodIdentityAssociation")
def update_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        _, association = _standalone_association(request, "change")
        if request.body.get("roleArn"):
            _validate_role_exists(request.body["roleArn"])
            association.update(roleArn=request.body["roleArn"], modifiedAt=_now())
        return 200, {"association": _public(association)}


@_handler("DeletePodIdentityAssociation")
def delete_pod_identity_association(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster, association = _standalone_association(request, "remove")
        del cluster.sandbox.pod_identity[association["associationId"]]
        return 200, {"association": _public(association)}


def _addon_cluster(request: EksRequest):
    cluster = _require_cluster(request.region, request.path_params["name"])
    if cluster.sandbox.status in ("CREATING", "DELETING"):
        raise EksError("InvalidRequestException", f"Cluster {cluster.name} is in {cluster.sandbox.status} state; "
                       "wait until it is ACTIVE", clusterName=cluster.name)
    return cluster


@_handler("CreateAddon")
def create_addon(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    addon_name = body.get("addonName")
    resolve = body.get("resolveConflicts") or "NONE"
    with _lock:
        cluster = _addon_cluster(request)
        if resolve not in ("NONE", "OVERWRITE"):
            raise EksError("InvalidParameterException",
                           f"ResolveConflicts {resolve} is not supported for CreateAddon; use NONE or OVERWRITE "
                           "(PRESERVE is only accepted by UpdateAddon)", addonName=addon_name, clusterName=cluster.name)
        if addon_name not in catalog.addon_names():
            raise EksError("InvalidParameterException", f"Addon {addon_name} specified is not supported; valid add-ons: "
                           + ", ".join(catalog.addon_names()), addonName=addon_name, clusterName=cluster.name)
        if addon_name in cluster.sandbox.addons:
            raise EksError("ResourceInUseException", "Addon already exists.", addonName=addon_name, clusterName=cluster.name)
        version = body.get("addonVersion") or catalog.default_version(addon_name, cluster.version)
        if not catalog.compatible(addon_name, version, cluster.version):
            raise EksError("InvalidParameterException",
                           f"Addon version {version} specified is not supported for {addon_name} on Kubernetes {cluster.version}; "
                           "see DescribeAddonVersions", addonName=addon_name, clusterName=cluster.name)
        if body.get("serviceAccountRoleArn"):
            _validate_role_exists(body["serviceAccountRoleArn"], "serviceAccountRoleArn")
        configuration = _parse_configuration(addon_name, version, body.get("configurationValues"))
        addon_arn = _addon_arn(cluster, addon_name, version)
        associations, association_arns = _pod_identity(cluster, addon_name, body.get("podIdentityAssociations"), addon_arn)
        now = _now()
        addon = {
            "addonName": addon_name,
            "clusterName": cluster.name,
            "status": "CREATING",
            "addonVersion": version,
            "health": {"issues": []},
            "addonArn": addon_arn,
            "createdAt": now,
            "modifiedAt": now,
            "tags": _tags(body),
            "publisher": "eks",
            "owner": "aws",
            "marketplaceInformation": {},
            "podIdentityAssociations": association_arns,
            "namespaceConfig": {"namespace": "kube-system"},
            "_deadline": _deadline(),
            "_resolve_conflicts": resolve,
            "_pod_identity": associations,
            "_pending_update": None,
        }
        if body.get("serviceAccountRoleArn"):
            addon["serviceAccountRoleArn"] = body["serviceAccountRoleArn"]
        if configuration:
            addon["configurationValues"] = configuration
        cluster.sandbox.addons[addon_name] = addon
        result = _public(addon)
    hooks.addon_changed(request.region, cluster.name, dict(result, resolveConflicts=resolve, podIdentityAssociationRoles=associations))
    return 200, {"addon": result}


def _require_addon(cluster, addon_name: str) -> dict:
    addon = cluster.sandbox.addons.get(addon_name)
    if addon is None:
        raise EksError("ResourceNotFoundException", f"No addon: {addon_name} found in cluster: {cluster.name}",
                       clusterName=cluster.name, addonName=addon_name)
    return addon


@_handler("DescribeAddon")
def describe_addon(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        addon = _public(_require_addon(cluster, request.path_params["addonName"]))
    return 200, {"addon": _with_health(request.region, cluster.name, addon)}


@_handler("ListAddons")
def list_addons(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        names = list(cluster.sandbox.addons)
    page, token = _paginate(names, request)
    return 200, _with_token({"addons": page}, token)


@_handler("UpdateAddon")
def update_addon(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    addon_name = request.path_params["addonName"]
    with _lock:
        cluster = _addon_cluster(request)
        addon = _require_addon(cluster, addon_name)
        if addon["status"] in ("CREATING", "DELETING"):
            raise EksError("InvalidRequestException", f"Addon {addon_name} is in {addon['status']} state and cannot be updated",
                           addonName=addon_name, clusterName=cluster.name)
        if addon["status"] == "UPDATING":
            raise EksError("ResourceInUseException", f"Addon {addon_name} has an update in progress",
                           addonName=addon_name, clusterName=cluster.name)
        resolve = body.get("resolveConflicts") or "NONE"
        if resolve not in ("NONE", "OVERWRITE", "PRESERVE"):
            raise EksError("InvalidParameterException", f"Unsupported resolveConflicts {resolve}", addonName=addon_name)
        params = []
        version = body.get("addonVersion") or addon["addonVersion"]
        if body.get("addonVersion"):
            if not catalog.compatible(addon_name, version, cluster.version):
                raise EksError("InvalidParameterException",
                               f"Addon version {version} specified is not supported for {addon_name} on Kubernetes {cluster.version}; "
                               "see DescribeAddonVersions", addonName=addon_name, clusterName=cluster.name)
            if catalog.compare_versions(version, addon["addonVersion"]) < 0:
                raise EksError("InvalidParameterException",
                               f"Updating {addon_name} from {addon['addonVersion']} to the older {version} is not supported",
                               addonName=addon_name, clusterName=cluster.name)
            params.append({"type": "AddonVersion", "value": version})
        role = body.get("serviceAccountRoleArn")
        if role is not None:
            if role:
                _validate_role_exists(role, "serviceAccountRoleArn")
            params.append({"type": "ServiceAccountRoleArn", "value": role})
        params.append({"type": "ResolveConflicts", "value": resolve})
        configuration = body.get("configurationValues")
        if configuration is not None:
            _parse_configuration(addon_name, version, configuration)
            params.append({"type": "ConfigurationValues", "value": configuration})
        elif addon.get("configurationValues") and body.get("addonVersion"):
            _parse_configuration(addon_name, version, addon["configurationValues"])
        associations = None
        if body.get("podIdentityAssociations") is not None:
            associations, association_arns = _pod_identity(cluster, addon_name, body["podIdentityAssociations"], addon["addonArn"])
            params.append({"type": "PodIdentityAssociations", "value": json.dumps(associations)})

        def apply() -> None:
            addon["addonVersion"] = version
            addon["modifiedAt"] = _now()
            addon["_resolve_conflicts"] = resolve
            if role is not None:
                if role:
                    addon["serviceAccountRoleArn"] = role
                else:
                    addon.pop("serviceAccountRoleArn", None)
            if configuration is not None:
                if configuration:
                    addon["configurationValues"] = configuration
                else:
                    addon.pop("configurationValues", None)
            if associations is not None:
                addon["podIdentityAssociations"] = association_arns
                addon["_pod_identity"] = associations
                _drop_owned_associations(cluster.sandbox, addon["addonArn"], keep=association_arns)

        update = _new_update("AddonUpdate", params, apply, cluster_level=False)
        update["_addon"] = addon_name
        cluster.sandbox.updates[update["id"]] = update
        addon["status"] = "UPDATING"
        addon["_deadline"] = update["_done_at"]
        addon["_pending_update"] = update
        result = _public(update)
        changed = dict(_public(addon), addonVersion=version, resolveConflicts=resolve,
                       podIdentityAssociationRoles=associations if associations is not None else addon["_pod_identity"])
        if configuration is not None:
            changed["configurationValues"] = configuration
    hooks.addon_changed(request.region, cluster.name, changed)
    return 200, {"update": result}


@_handler("DeleteAddon")
def delete_addon(request: EksRequest) -> tuple[int, dict]:
    addon_name = request.path_params["addonName"]
    preserve = (request.q("preserve") or "false").lower() == "true"
    with _lock:
        cluster = _require_cluster(request.region, request.path_params["name"])
        addon = _require_addon(cluster, addon_name)
        if addon["status"] == "DELETING":
            raise EksError("ResourceInUseException", f"Addon {addon_name} is already being deleted", addonName=addon_name)
        addon["status"] = "DELETING"
        addon["_deadline"] = _deadline()
        result = _public(addon)
    hooks.addon_changed(request.region, cluster.name, dict(result, deleted=True, preserve=preserve))
    return 200, {"addon": result}


@_handler("DescribeAddonVersions")
def describe_addon_versions(request: EksRequest) -> tuple[int, dict]:
    kubernetes_version = request.q("kubernetesVersion")
    addon_name = request.q("addonName")
    types = request.q_list("types")
    publishers = request.q_list("publishers")
    owners = request.q_list("owners")
    names = catalog.addon_names()
    if addon_name:
        if addon_name not in names:
            raise EksError("ResourceNotFoundException", f"Addon {addon_name} not found", addonName=addon_name)
        names = [addon_name]
    infos = []
    for name in names:
        info = catalog.addon_info(name, kubernetes_version)
        if not info["addonVersions"]:
            continue
        if types and info["type"] not in types:
            continue
        if publishers and info["publisher"] not in publishers:
            continue
        if owners and info["owner"] not in owners:
            continue
        infos.append(info)
    page, token = _paginate(infos, request)
    return 200, _with_token({"addons": page}, token)


@_handler("DescribeAddonConfiguration")
def describe_addon_configuration(request: EksRequest) -> tuple[int, dict]:
    addon_name = request.q("addonName")
    version = request.q("addonVersion")
    if addon_name not in catalog.addon_names() or not catalog.known_version(addon_name, version or ""):
        raise EksError("ResourceNotFoundException", f"No configuration schema found for add-on {addon_name} version {version}",
                       addonName=addon_name)
    return 200, {
        "addonName": addon_name,
        "addonVersion": version,
        "configurationSchema": catalog.configuration_schema_text(addon_name, version),
        "podIdentityConfiguration": [
            {"serviceAccount": sa, "recommendedManagedPolicies": [policy]} for sa, policy in catalog.POD_IDENTITY.get(addon_name, [])
        ],
    }


# ---------------------------------------------------------------------------------------
# Access entries.


def _access_cluster(request: EksRequest):
    cluster = _require_cluster(request.region, request.path_params["name"])
    if cluster.sandbox.authentication_mode == "CONFIG_MAP":
        raise EksError("InvalidRequestException",
                       "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this "
                       "operation.", clusterName=cluster.name)
    return cluster


def _validate_username_groups(entry_type: str, username: str | None, groups: list) -> None:
    if entry_type != "STANDARD":
        if username:
            raise EksError("InvalidParameterException", f"username is not allowed for access entries of type {entry_type}")
        if groups:
            raise EksError("InvalidParameterException", f"kubernetesGroups are not allowed for access entries of type {entry_type}")
        return
    if username is not None:
        if username == "" or any(username.startswith(prefix) for prefix in catalog.RESERVED_PREFIXES):
            raise EksError("InvalidParameterException",
                           f"username {username!r} is invalid: it must not be empty or start with "
                           + ", ".join(catalog.RESERVED_PREFIXES))
    for group in groups:
        if not isinstance(group, str) or not group or any(group.startswith(prefix) for prefix in catalog.RESERVED_PREFIXES):
            raise EksError("InvalidParameterException",
                           f"kubernetesGroups value {group!r} is invalid: it must not be empty or start with "
                           + ", ".join(catalog.RESERVED_PREFIXES))


def _default_username(entry_type: str, principal_arn: str) -> str:
    if entry_type in ("EC2_LINUX", "EC2_WINDOWS", "EC2"):
        return "system:node:{{EC2PrivateDNSName}}"
    if entry_type in ("FARGATE_LINUX", "HYBRID_LINUX", "HYPERPOD_LINUX"):
        return "system:node:{{SessionName}}"
    return _session_username(principal_arn)


def _new_access_entry(cluster, principal_arn: str, entry_type: str, username: str | None, groups: list, tags: dict) -> dict:
    state = cluster.sandbox
    match = re.match(r"^arn:[^:]+:iam::(\d+):(role|user)/(?:.*/)?([^/]+)$", principal_arn)
    account, kind, name = match.groups() if match else (account_id(), "role", principal_arn)
    now = _now()
    return {
        "clusterName": cluster.name,
        "principalArn": principal_arn,
        "kubernetesGroups": list(groups),
        "accessEntryArn": f"arn:{_partition(state.region)}:eks:{state.region}:{account_id()}:access-entry/{cluster.name}/"
                          f"{kind}/{account}/{name}/{uuid.uuid4().hex[:32]}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": tags,
        "username": username or _default_username(entry_type, principal_arn),
        "type": entry_type,
        "_policies": OrderedDict(),
    }


@_handler("CreateAccessEntry")
def create_access_entry(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    principal_arn = body.get("principalArn") or ""
    entry_type = body.get("type") or "STANDARD"
    groups = body.get("kubernetesGroups") or []
    username = body.get("username")
    with _lock:
        cluster = _access_cluster(request)
        if entry_type not in catalog.ACCESS_ENTRY_TYPES:
            raise EksError("InvalidParameterException",
                           f"The type {entry_type} is not supported; valid types: {', '.join(catalog.ACCESS_ENTRY_TYPES)}")
        if not re.match(r"^arn:[^:]+:iam::\d{12}:(role|user)/.+$", principal_arn):
            raise EksError("InvalidParameterException",
                           f"The specified principalArn is invalid: {principal_arn!r} is not an IAM role or user ARN")
        if entry_type != "STANDARD" and ":user/" in principal_arn:
            raise EksError("InvalidParameterException", f"Access entries of type {entry_type} need an IAM role, not a user")
        if not _principal_exists(principal_arn):
            raise EksError("InvalidParameterException", f"The specified principalArn could not be found: {principal_arn}. "
                           "Create the IAM role or user first")
        _validate_username_groups(entry_type, username, groups)
        if principal_arn in cluster.sandbox.access_entries:
            raise EksError("ResourceInUseException", "The specified access entry resource is already in use on this cluster.",
                           clusterName=cluster.name)
        entry = _new_access_entry(cluster, principal_arn, entry_type, username, groups, _tags(body))
        cluster.sandbox.access_entries[principal_arn] = entry
        return 200, {"accessEntry": _public(entry)}


def _require_entry(cluster, principal_arn: str) -> dict:
    entry = cluster.sandbox.access_entries.get(principal_arn)
    if entry is None:
        raise EksError("ResourceNotFoundException", f"The specified principalArn {principal_arn} could not be found on "
                       f"cluster {cluster.name}.", clusterName=cluster.name)
    return entry


@_handler("DescribeAccessEntry")
def describe_access_entry(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _access_cluster(request)
        return 200, {"accessEntry": _public(_require_entry(cluster, request.path_params["principalArn"]))}


@_handler("ListAccessEntries")
def list_access_entries(request: EksRequest) -> tuple[int, dict]:
    policy = request.q("associatedPolicyArn")
    with _lock:
        cluster = _access_cluster(request)
        arns = [arn for arn, entry in cluster.sandbox.access_entries.items() if not policy or policy in entry["_policies"]]
    page, token = _paginate(arns, request)
    return 200, _with_token({"accessEntries": page}, token)


@_handler("UpdateAccessEntry")
def update_access_entry(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    with _lock:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        groups = body.get("kubernetesGroups")
        username = body.get("username")
        _validate_username_groups(entry["type"], username, groups or [])
        if groups is not None:
            entry["kubernetesGroups"] = list(groups)
        if username is not None:
            entry["username"] = username
        entry["modifiedAt"] = _now()
        return 200, {"accessEntry": _public(entry)}


@_handler("DeleteAccessEntry")
def delete_access_entry(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _access_cluster(request)
        _require_entry(cluster, request.path_params["principalArn"])
        del cluster.sandbox.access_entries[request.path_params["principalArn"]]
        return 200, {}


@_handler("AssociateAccessPolicy")
def associate_access_policy(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    policy_arn = body.get("policyArn")
    scope = body.get("accessScope") or {}
    with _lock:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        if entry["type"] != "STANDARD":
            raise EksError("InvalidRequestException",
                           f"Access policies can only be associated with STANDARD access entries; this entry is {entry['type']}",
                           clusterName=cluster.name)
        valid = {p["arn"] for p in catalog.access_policies(_partition(cluster.sandbox.region))}
        if policy_arn not in valid:
            raise EksError("InvalidParameterException", f"The specified policyArn {policy_arn} is invalid; see ListAccessPolicies")
        scope_type = scope.get("type")
        namespaces = list(scope.get("namespaces") or [])
        if scope_type not in ("cluster", "namespace"):
            raise EksError("InvalidParameterException", f"accessScope.type {scope_type!r} is invalid; use cluster or namespace")
        if scope_type == "namespace" and not namespaces:
            raise EksError("InvalidParameterException", "accessScope of type namespace needs at least one namespace")
        if scope_type == "cluster" and namespaces:
            raise EksError("InvalidParameterException", "accessScope of type cluster cannot list namespaces")
        now = _now()
        existing = entry["_policies"].get(policy_arn)
        association = {"policyArn": policy_arn, "accessScope": {"type": scope_type, "namespaces": namespaces},
                       "associatedAt": existing["associatedAt"] if existing else now, "modifiedAt": now}
        entry["_policies"][policy_arn] = association
        return 200, {"clusterName": cluster.name, "principalArn": entry["principalArn"],
                     "associatedAccessPolicy": json.loads(json.dumps(association))}


@_handler("DisassociateAccessPolicy")
def disassociate_access_policy(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        policy_arn = request.path_params["policyArn"]
        if policy_arn not in entry["_policies"]:
            raise EksError("ResourceNotFoundException", f"The policy {policy_arn} is not associated with {entry['principalArn']}",
                           clusterName=cluster.name)
        del entry["_policies"][policy_arn]
        return 200, {}


@_handler("ListAssociatedAccessPolicies")
def list_associated_access_policies(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        policies = [json.loads(json.dumps(p)) for p in entry["_policies"].values()]
    page, token = _paginate(policies, request)
    return 200, _with_token({"clusterName": cluster.name, "principalArn": entry["principalArn"],
                             "associatedAccessPolicies": page}, token)


@_handler("ListAccessPolicies")
def list_access_policies(request: EksRequest) -> tuple[int, dict]:
    page, token = _paginate(catalog.access_policies(_partition(request.region)), request)
    return 200, _with_token({"accessPolicies": page}, token)


# ---------------------------------------------------------------------------------------
# Tags on clusters, add-ons, access entries, node groups and Fargate profiles (moto's own
# tagging cannot find node groups by ARN).


def _tagged_resource(region: str, arn: str) -> dict | None:
    backend = _eks_backend(region)
    for name in list(backend.clusters):
        cluster = _get_cluster(region, name)
        if cluster is None:
            continue
        if cluster.arn == arn:
            if cluster.tags is None:
                cluster.tags = {}
            return cluster.tags
        for addon in cluster.sandbox.addons.values():
            if addon["addonArn"] == arn:
                return addon["tags"]
        for entry in cluster.sandbox.access_entries.values():
            if entry["accessEntryArn"] == arn:
                return entry["tags"]
        for nodegroup in cluster.nodegroups.values():
            if nodegroup.arn == arn:
                return nodegroup.tags
        for profile in cluster.fargate_profiles.values():
            if profile.fargate_profile_arn == arn:
                return profile.tags
    return None


def owns_tag_target(region: str, arn: str) -> bool:
    with _lock:
        return _tagged_resource(region, arn) is not None


def _resource_tags(request: EksRequest) -> dict:
    """The live tag dict of the resource the request's ARN names."""
    arn = request.path_params["resourceArn"]
    tags = _tagged_resource(request.region, arn)
    if tags is None:
        raise EksError("NotFoundException", f"Resource {arn} not found")
    return tags


@_handler("TagResource")
def tag_resource(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        _resource_tags(request).update(_tags(request.body))
    return 200, {}


@_handler("UntagResource")
def untag_resource(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        tags = _resource_tags(request)
        for key in request.q_list("tagKeys"):
            tags.pop(key, None)
    return 200, {}


@_handler("ListTagsForResource")
def list_tags_for_resource(request: EksRequest) -> tuple[int, dict]:
    with _lock:
        return 200, {"tags": dict(_resource_tags(request))}
