# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS access entries: EKS's validation rules, applied before any call, and desired-vs-current diffs.

Pure functions over the shapes of the EKS API (camelCase dicts); the module
`eks_access_entry` does the calls.
"""

import re

from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import ROLE_ARN_FORM
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import arn_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import partition_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import principal_kind
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import role_arn_of_session
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_includes
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_of

ENTRY_TYPES = ("STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX")
NODE_ENTRY_TYPES = tuple(t for t in ENTRY_TYPES if t != "STANDARD")
RESERVED_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
POLICY_ARN_PREFIX = "arn:{partition}:eks::aws:cluster-access-policy/"

_POLICY_NAME = re.compile(r"^[A-Za-z0-9]+$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE_PREFIX = re.compile(r"^[a-z0-9][-a-z0-9]*$")


class AccessEntryError(ValueError):
    """Input EKS would refuse, or a change EKS cannot make; the message says what to do."""


def authentication_mode_problem(cluster_name, cluster):
    """Why access entries cannot be used on this cluster (DescribeCluster dict or None), or None."""
    if cluster is None:
        return "EKS cluster {0!r} does not exist; check cluster_name and region".format(cluster_name)
    mode = authentication_mode_of(cluster)
    if not authentication_mode_includes(mode, "API"):
        return (
            "EKS cluster {0!r} uses authentication mode {1}, which ignores access entries; switch it first with "
            "selfmanaged.eks.eks_cluster (authentication_mode: API_AND_CONFIG_MAP keeps aws-auth working meanwhile; "
            "modes only move forward), or manage aws-auth with selfmanaged.eks.eks_aws_auth".format(cluster_name, mode)
        )
    return None


def expand_policy_arn(value, partition="aws"):
    """A full access policy ARN from a short name (AmazonEKSClusterAdminPolicy) or a full ARN."""
    value = (value or "").strip()
    if _POLICY_NAME.match(value):
        return POLICY_ARN_PREFIX.format(partition=partition) + value
    if is_access_policy_arn(value):
        return value
    raise AccessEntryError(
        "access policy {0!r} is neither a policy name such as AmazonEKSClusterAdminPolicy nor an ARN "
        "arn:aws:eks::aws:cluster-access-policy/<name>".format(value)
    )


def is_access_policy_arn(value):
    """arn:<partition>:eks::aws:cluster-access-policy/<name>, in any partition."""
    parsed = arn_or_none(value)
    return (
        parsed is not None
        and (parsed.service, parsed.region, parsed.account, parsed.resource_type) == ("eks", "", "aws", "cluster-access-policy")
        and bool(_POLICY_NAME.match(parsed.resource))
    )


def is_namespace_pattern(value):
    """A Kubernetes namespace name (DNS-1123 label), or a prefix of one followed by the * wildcard EKS accepts."""
    if not isinstance(value, str) or not 0 < len(value) <= 63:
        return False
    if value.endswith("*"):
        return bool(_NAMESPACE_PREFIX.match(value[:-1]))
    return bool(_NAMESPACE.match(value))


def normalised_scope(scope, where):
    """{"type": "cluster"} or {"type": "namespace", "namespaces": [sorted, unique]}."""
    scope = scope or {"type": "cluster"}
    scope_type = scope.get("type") or "cluster"
    namespaces = scope.get("namespaces") or []
    if scope_type == "cluster":
        if namespaces:
            raise AccessEntryError(
                "{0}: access_scope type cluster takes no namespaces (got {1}); use type: namespace to limit it".format(where, namespaces)
            )
        return {"type": "cluster"}
    if scope_type != "namespace":
        raise AccessEntryError("{0}: access_scope type {1!r} is not cluster or namespace".format(where, scope_type))
    if not namespaces:
        raise AccessEntryError("{0}: access_scope type namespace needs at least one namespace in namespaces".format(where))
    for namespace in namespaces:
        if not is_namespace_pattern(namespace):
            raise AccessEntryError(
                "{0}: namespace {1!r} is not a valid Kubernetes namespace name (lower-case letters, digits and '-', "
                "at most 63 characters, optionally ending in * as a wildcard)".format(where, namespace)
            )
    return {"type": "namespace", "namespaces": sorted(set(namespaces))}


def _check_name(kind, value):
    lowered = value.lower()
    for prefix in RESERVED_PREFIXES:
        if lowered.startswith(prefix):
            hint = "; for cluster admin rights associate AmazonEKSClusterAdminPolicy instead" if lowered == "system:masters" else ""
            raise AccessEntryError(
                "{0} {1!r} starts with {2!r}, which EKS reserves ({3}); choose a name without it{4}".format(
                    kind, value, prefix, ", ".join(RESERVED_PREFIXES), hint
                )
            )


def validated_principal_arn(arn, entry_type):
    arn = (arn or "").strip()
    kind = principal_kind(arn)
    if kind == "assumed-role":
        raise AccessEntryError(
            "principal_arn {0!r} is an STS session; access entries take the role itself: {1!r}".format(arn, role_arn_of_session(arn))
        )
    if kind == "role":
        return arn
    if kind == "user":
        if entry_type != "STANDARD":
            raise AccessEntryError("principal_arn {0!r} is an IAM user; {1} entries take the node's IAM role ARN".format(arn, entry_type))
        return arn
    raise AccessEntryError("principal_arn {0!r} is not an IAM role or user ARN ({1})".format(arn, ROLE_ARN_FORM))


def desired_access_entry(params):
    """The entry a task asks for, validated like EKS does, in API field names.

    Options left out (None) are not managed: username, kubernetesGroups, accessPolicies and
    tags are None in the result then.
    """
    entry_type = params.get("type") or "STANDARD"
    if entry_type not in ENTRY_TYPES:
        raise AccessEntryError("type {0!r} is not one of {1}".format(entry_type, ", ".join(ENTRY_TYPES)))
    principal = validated_principal_arn(params.get("principal_arn"), entry_type)
    username = params.get("username")
    groups = params.get("kubernetes_groups")
    policies = params.get("access_policies")
    if entry_type in NODE_ENTRY_TYPES:
        given = [name for name, value in (("username", username), ("kubernetes_groups", groups), ("access_policies", policies)) if value]
        if given:
            raise AccessEntryError(
                "type {0} entries take no {1}: EKS gives nodes their user name and groups itself; drop {1} or use type STANDARD".format(
                    entry_type, " or ".join(given)
                )
            )
    if username is not None:
        if not username.strip():
            raise AccessEntryError("username is empty; leave it out to let EKS choose one")
        _check_name("username", username)
    if groups is not None:
        for group in groups:
            if not group or not group.strip():
                raise AccessEntryError("kubernetes_groups contains an empty group name")
            _check_name("kubernetes group", group)
        groups = sorted(set(groups))
    desired_policies = None
    if policies is not None:
        desired_policies = []
        seen = {}
        partition = partition_of(principal)
        for index, policy in enumerate(policies):
            where = "access_policies[{0}]".format(index)
            arn = expand_policy_arn(policy.get("policy_arn"), partition)
            if arn in seen:
                raise AccessEntryError(
                    "{0}: {1} is already listed as access_policies[{2}]; list each policy once with all its namespaces".format(where, arn, seen[arn])
                )
            seen[arn] = index
            desired_policies.append({"policyArn": arn, "accessScope": normalised_scope(policy.get("access_scope"), where)})
    return {
        "principalArn": principal,
        "type": entry_type,
        "username": username,
        "kubernetesGroups": groups,
        "accessPolicies": desired_policies,
        "tags": params.get("tags"),
    }


def immutable_problem(current, desired):
    """Why the existing entry cannot become the desired one in place, or None."""
    current_type = current.get("type") or "STANDARD"
    if current_type != desired["type"]:
        return (
            "the access entry of {0} has type {1} and EKS cannot change an entry's type to {2}; delete it (state: absent) and "
            "create it again, or set type: {1}".format(desired["principalArn"], current_type, desired["type"])
        )
    return None


def entry_updates(current, desired):
    """UpdateAccessEntry fields (username, kubernetesGroups) that differ; {} when none."""
    updates = {}
    if desired["kubernetesGroups"] is not None and sorted(current.get("kubernetesGroups") or []) != desired["kubernetesGroups"]:
        updates["kubernetesGroups"] = desired["kubernetesGroups"]
    if desired["username"] is not None and (current.get("username") or "") != desired["username"]:
        updates["username"] = desired["username"]
    return updates


def comparable_scope(scope):
    scope = scope or {"type": "cluster"}
    if scope.get("type") == "namespace":
        return {"type": "namespace", "namespaces": sorted(set(scope.get("namespaces") or []))}
    return {"type": "cluster"}


def policy_changes(current, desired, purge):
    """(associate, disassociate) for the entry's policy associations.

    `current`: ListAssociatedAccessPolicies items; `desired`: from desired_access_entry (None:
    not managed). associate lists {policyArn, accessScope} to (re)associate (new, or the scope
    differs); disassociate lists policy ARNs associated but not desired, when purge is true.
    """
    if desired is None:
        return [], []
    current_scopes = dict((item["policyArn"], comparable_scope(item.get("accessScope"))) for item in current)
    associate = [item for item in desired if current_scopes.get(item["policyArn"]) != item["accessScope"]]
    disassociate = []
    if purge:
        wanted = set(item["policyArn"] for item in desired)
        disassociate = sorted(arn for arn in current_scopes if arn not in wanted)
    return associate, disassociate


def readable_state(entry, policies, tags):
    """The entry as diffs and results show it (snake_case, policies sorted); {} when it does not exist."""
    if entry is None:
        return {}
    return {
        "principal_arn": entry.get("principalArn"),
        "type": entry.get("type") or "STANDARD",
        "username": entry.get("username"),
        "kubernetes_groups": sorted(entry.get("kubernetesGroups") or []),
        "access_policies": sorted(
            ({"policy_arn": p["policyArn"], "access_scope": comparable_scope(p.get("accessScope"))} for p in policies),
            key=lambda p: p["policy_arn"],
        ),
        "tags": dict(tags or {}),
    }


def predicted_state(current_entry, current_policies, current_tags, desired, purge_policies, tags_after):
    """What readable_state would return after applying `desired` (used for check mode and diffs)."""
    entry = dict(current_entry or {})
    entry["principalArn"] = desired["principalArn"]
    entry["type"] = desired["type"]
    if desired["username"] is not None:
        entry["username"] = desired["username"]
    if desired["kubernetesGroups"] is not None:
        entry["kubernetesGroups"] = desired["kubernetesGroups"]
    policies = dict((p["policyArn"], p.get("accessScope")) for p in current_policies)
    if desired["accessPolicies"] is not None:
        if purge_policies:
            policies = {}
        for item in desired["accessPolicies"]:
            policies[item["policyArn"]] = item["accessScope"]
    return readable_state(entry, [{"policyArn": k, "accessScope": v} for k, v in policies.items()], tags_after)
