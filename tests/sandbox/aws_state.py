"""Read-only views of the sandbox's AWS state for the Kubernetes side.

Everything runs in one process, so the Kubernetes side reads moto's in-memory backends through
these functions instead of calling the AWS API (which would count as API calls and could be
throttled by fault injection). All functions return plain dicts/lists (copies): mutating them
changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
from datetime import datetime

from tests.sandbox.aws import eks as _eks

DEFAULT_ACCOUNT_ID = "123456789012"

# Instance states in which an instance is still a node candidate.
_LIVE_STATES = ("pending", "running", "stopping", "stopped")


def cluster(region: str, name: str) -> dict | None:
    """The DescribeCluster ``cluster`` shape (camelCase), plus ``creatorArn`` and
    ``bootstrapClusterCreatorAdminPermissions``; ``None`` when no such cluster exists."""
    return _eks.cluster_view(region, name)


def access_entries(region: str, cluster_name: str) -> list[dict]:
    """``[{"principalArn", "type", "username", "kubernetesGroups", "accessPolicies": [...]}]``."""
    return _eks.access_entries_view(region, cluster_name)


def addons(region: str, cluster_name: str) -> list[dict]:
    """``[{"addonName", "addonVersion", "status", ...}]`` for the cluster's add-ons."""
    return _eks.addons_view(region, cluster_name)


def _ec2_backend(region: str):
    from moto.ec2.models import ec2_backends

    return ec2_backends[_eks.account_id()][region]


def _iam_backend():
    from moto.iam.models import iam_backends

    return iam_backends[_eks.account_id()]["aws"]


@functools.lru_cache(maxsize=4096)
def _decoded_text(text: str) -> str:
    try:
        return base64.b64decode(text, validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def _decoded_user_data(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else None
        if raw is None:
            return ""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return _decoded_text(str(raw))


def _profile_of(instance, iam=None) -> tuple[str, list[str]]:
    profile = getattr(instance, "iam_instance_profile", None)
    if not profile:
        return "", []
    arn = profile.get("Arn", "") if isinstance(profile, dict) else getattr(profile, "arn", "")
    if not arn:
        return "", []
    try:
        found = (iam or _iam_backend()).get_instance_profile_by_arn(arn)
    except Exception:  # the profile was deleted after launch: the instance keeps the ARN, no role
        return arn, []
    return arn, [role.arn for role in found.roles]


def _isoformat(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def cluster_instances(region: str, cluster_name: str) -> list[dict]:
    """Instances tagged ``kubernetes.io/cluster/<name>=owned`` that are pending, running,
    stopping or stopped (terminated instances are absent)."""
    return instances_by_cluster(region, [cluster_name])[cluster_name]


def instances_by_cluster(region: str, cluster_names) -> dict[str, list[dict]]:
    """``cluster_instances`` of several clusters of a region from one pass over its instances (the
    kubelet stand-in's tick: a pass per cluster made the tick grow with clusters x instances)."""
    from tests.sandbox.aws import autoscaling

    autoscaling.settle()  # the kubelet's tick moves due Pending instances to running
    backend = _ec2_backend(region)
    result = {name: [] for name in cluster_names}
    wanted = {f"kubernetes.io/cluster/{name}": name for name in result}
    iam = None
    for instance in list(backend.all_instances()):
        if instance.state not in _LIVE_STATES:
            continue
        tags = dict(backend.tags.get(instance.id, {}))
        owners = [wanted[key] for key, value in tags.items() if value == "owned" and key in wanted]
        if not owners:
            continue
        image = backend.amis.get(instance.image_id)
        if iam is None and getattr(instance, "iam_instance_profile", None):
            iam = _iam_backend()
        profile_arn, role_arns = _profile_of(instance, iam)
        record = {
            "instanceId": instance.id,
            "state": instance.state,
            "privateDnsName": instance.private_dns_name,
            "privateIpAddress": instance.private_ip,
            "availabilityZone": instance.placement.zone,
            "instanceType": instance.instance_type,
            "imageId": instance.image_id,
            "imageName": getattr(image, "name", "") or "",
            "imageDescription": getattr(image, "description", "") or "",
            "userData": _decoded_user_data(instance.user_data),
            "instanceProfileArn": profile_arn,
            "roleArns": role_arns,
            "launchTime": _isoformat(instance.launch_time),
            "tags": tags,
        }
        for name in owners:
            result[name].append(dict(record, tags=dict(tags)) if len(owners) > 1 else record)
    return result


def instance_type_max_pods(instance_type: str) -> int:
    """ENIs x (IPv4 addresses per ENI - 1) + 2, the VPC CNI formula without prefix delegation.
    Unknown instance types raise ``KeyError``."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    network = INSTANCE_TYPES[instance_type]["NetworkInfo"]
    return network["MaximumNetworkInterfaces"] * (network["Ipv4AddressesPerInterface"] - 1) + 2
