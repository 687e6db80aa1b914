"""EKS access entries and access policies (Create/Describe/List/Update/DeleteAccessEntry,
Associate/DisassociateAccessPolicy, ListAssociatedAccessPolicies, ListAccessPolicies)."""

from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict

from tests.sandbox.aws import eks_catalog as catalog
from tests.sandbox.aws.eks_common import (
    LOCK, EksError, EksRequest, account_id, epoch_now, get_cluster, handler, paginate, partition_of, public_view,
    request_tags, require_cluster, with_token,
)


def access_entries_view(region: str, cluster_name: str) -> list[dict]:
    with LOCK:
        cluster = get_cluster(region, cluster_name)
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


def session_username(principal_arn: str) -> str:
    match = re.match(r"^arn:([^:]+):iam::(\d+):role/(?:.*/)?([^/]+)$", principal_arn)
    if match:
        partition, account, name = match.groups()
        return f"arn:{partition}:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}"
    return principal_arn


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


def _access_cluster(request: EksRequest):
    cluster = require_cluster(request.region, request.path_params["name"])
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
    return session_username(principal_arn)


def new_access_entry(cluster, principal_arn: str, entry_type: str, username: str | None, groups: list, tags: dict) -> dict:
    state = cluster.sandbox
    match = re.match(r"^arn:[^:]+:iam::(\d+):(role|user)/(?:.*/)?([^/]+)$", principal_arn)
    account, kind, name = match.groups() if match else (account_id(), "role", principal_arn)
    now = epoch_now()
    return {
        "clusterName": cluster.name,
        "principalArn": principal_arn,
        "kubernetesGroups": list(groups),
        "accessEntryArn": f"arn:{partition_of(state.region)}:eks:{state.region}:{account_id()}:access-entry/{cluster.name}/"
                          f"{kind}/{account}/{name}/{uuid.uuid4().hex[:32]}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": tags,
        "username": username or _default_username(entry_type, principal_arn),
        "type": entry_type,
        "_policies": OrderedDict(),
    }


@handler("CreateAccessEntry")
def create_access_entry(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    principal_arn = body.get("principalArn") or ""
    entry_type = body.get("type") or "STANDARD"
    groups = body.get("kubernetesGroups") or []
    username = body.get("username")
    with LOCK:
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
        entry = new_access_entry(cluster, principal_arn, entry_type, username, groups, request_tags(body))
        cluster.sandbox.access_entries[principal_arn] = entry
        return 200, {"accessEntry": public_view(entry)}


def _require_entry(cluster, principal_arn: str) -> dict:
    entry = cluster.sandbox.access_entries.get(principal_arn)
    if entry is None:
        raise EksError("ResourceNotFoundException", f"The specified principalArn {principal_arn} could not be found on "
                       f"cluster {cluster.name}.", clusterName=cluster.name)
    return entry


@handler("DescribeAccessEntry")
def describe_access_entry(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = _access_cluster(request)
        return 200, {"accessEntry": public_view(_require_entry(cluster, request.path_params["principalArn"]))}


@handler("ListAccessEntries")
def list_access_entries(request: EksRequest) -> tuple[int, dict]:
    policy = request.q("associatedPolicyArn")
    with LOCK:
        cluster = _access_cluster(request)
        arns = [arn for arn, entry in cluster.sandbox.access_entries.items() if not policy or policy in entry["_policies"]]
    page, token = paginate(arns, request)
    return 200, with_token({"accessEntries": page}, token)


@handler("UpdateAccessEntry")
def update_access_entry(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    with LOCK:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        groups = body.get("kubernetesGroups")
        username = body.get("username")
        _validate_username_groups(entry["type"], username, groups or [])
        if groups is not None:
            entry["kubernetesGroups"] = list(groups)
        if username is not None:
            entry["username"] = username
        entry["modifiedAt"] = epoch_now()
        return 200, {"accessEntry": public_view(entry)}


@handler("DeleteAccessEntry")
def delete_access_entry(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = _access_cluster(request)
        _require_entry(cluster, request.path_params["principalArn"])
        del cluster.sandbox.access_entries[request.path_params["principalArn"]]
        return 200, {}


@handler("AssociateAccessPolicy")
def associate_access_policy(request: EksRequest) -> tuple[int, dict]:
    body = request.body
    policy_arn = body.get("policyArn")
    scope = body.get("accessScope") or {}
    with LOCK:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        if entry["type"] != "STANDARD":
            raise EksError("InvalidRequestException",
                           f"Access policies can only be associated with STANDARD access entries; this entry is {entry['type']}",
                           clusterName=cluster.name)
        valid = {p["arn"] for p in catalog.access_policies(partition_of(cluster.sandbox.region))}
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
        now = epoch_now()
        existing = entry["_policies"].get(policy_arn)
        association = {"policyArn": policy_arn, "accessScope": {"type": scope_type, "namespaces": namespaces},
                       "associatedAt": existing["associatedAt"] if existing else now, "modifiedAt": now}
        entry["_policies"][policy_arn] = association
        return 200, {"clusterName": cluster.name, "principalArn": entry["principalArn"],
                     "associatedAccessPolicy": json.loads(json.dumps(association))}


@handler("DisassociateAccessPolicy")
def disassociate_access_policy(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        policy_arn = request.path_params["policyArn"]
        if policy_arn not in entry["_policies"]:
            raise EksError("ResourceNotFoundException", f"The policy {policy_arn} is not associated with {entry['principalArn']}",
                           clusterName=cluster.name)
        del entry["_policies"][policy_arn]
        return 200, {}


@handler("ListAssociatedAccessPolicies")
def list_associated_access_policies(request: EksRequest) -> tuple[int, dict]:
    with LOCK:
        cluster = _access_cluster(request)
        entry = _require_entry(cluster, request.path_params["principalArn"])
        policies = [json.loads(json.dumps(p)) for p in entry["_policies"].values()]
    page, token = paginate(policies, request)
    return 200, with_token({"clusterName": cluster.name, "principalArn": entry["principalArn"],
                             "associatedAccessPolicies": page}, token)


@handler("ListAccessPolicies")
def list_access_policies(request: EksRequest) -> tuple[int, dict]:
    page, token = paginate(catalog.access_policies(partition_of(request.region)), request)
    return 200, with_token({"accessPolicies": page}, token)
