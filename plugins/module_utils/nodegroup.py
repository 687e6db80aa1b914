# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Self-managed node groups: AMI types, launch template data, ASG fields and tags, validation.

Pure functions over API-shaped dicts (the shapes boto3 takes and returns); the module
`eks_nodegroup_asg` reads the current state, asks these for the desired state and the
difference, and applies it.
"""

import copy

from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_CLUSTER_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_ENABLED_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_LABEL_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_TAINT_TAG
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import CLUSTER_TAG_VALUE
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import cluster_tag
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import decode_user_data
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import user_data_semantics

# The one place the AMI types and their SSM parameters are written down.
# ami type -> (bootstrap format, SSM parameter name pattern for {version})
AMI_TYPES = {
    "AL2023_x86_64_STANDARD": ("al2023", "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/standard/recommended/image_id"),
    "AL2023_ARM_64_STANDARD": ("al2023", "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/arm64/standard/recommended/image_id"),
    "AL2023_x86_64_NVIDIA": ("al2023", "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/nvidia/recommended/image_id"),
    "AL2023_ARM_64_NVIDIA": ("al2023", "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/arm64/nvidia/recommended/image_id"),
    "BOTTLEROCKET_x86_64": ("bottlerocket", "/aws/service/bottlerocket/aws-k8s-{version}/x86_64/latest/image_id"),
    "BOTTLEROCKET_ARM_64": ("bottlerocket", "/aws/service/bottlerocket/aws-k8s-{version}/arm64/latest/image_id"),
    "AL2_x86_64": ("al2", "/aws/service/eks/optimized-ami/{version}/amazon-linux-2/recommended/image_id"),
    "CUSTOM": (None, None),
}
DEFAULT_AMI_TYPE = "AL2023_x86_64_STANDARD"

# Where the volume that holds containers and pods lives, per bootstrap format. Bottlerocket
# boots from a small OS volume (/dev/xvda) and keeps images and pods on /dev/xvdb.
ROOT_DEVICE_NAMES = {"al2023": "/dev/xvda", "al2": "/dev/xvda", "bottlerocket": "/dev/xvdb"}

MAX_ASG_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256

SPOT_ALLOCATION_STRATEGIES = ("lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized")


class NodeGroupError(ValueError):
    """Invalid node group input; the message names the value and the fix."""


# ---------------------------------------------------------------------------------------
# AMI


def bootstrap_format_for(ami_type, bootstrap_format=None):
    """The user data family for `ami_type` ('al2023', 'al2', 'bottlerocket')."""
    if ami_type not in AMI_TYPES:
        raise NodeGroupError("unknown ami_type {0!r}; use one of {1}".format(ami_type, ", ".join(sorted(AMI_TYPES))))
    family = AMI_TYPES[ami_type][0]
    if family is None:
        if not bootstrap_format:
            raise NodeGroupError(
                "ami_type CUSTOM needs bootstrap_format (al2023, al2 or bottlerocket): say which bootstrap user data your AMI expects"
            )
        return bootstrap_format
    if bootstrap_format and bootstrap_format != family:
        raise NodeGroupError(
            "bootstrap_format {0!r} contradicts ami_type {1} (which boots with {2}); drop bootstrap_format".format(bootstrap_format, ami_type, family)
        )
    return family


def ami_ssm_parameter(ami_type, kubernetes_version):
    """The SSM public parameter holding the recommended AMI id for `ami_type` and version."""
    if ami_type not in AMI_TYPES:
        raise NodeGroupError("unknown ami_type {0!r}; use one of {1}".format(ami_type, ", ".join(sorted(AMI_TYPES))))
    pattern = AMI_TYPES[ami_type][1]
    if pattern is None:
        raise NodeGroupError("ami_type CUSTOM has no SSM parameter; give ami_id")
    return pattern.format(version=kubernetes_version)


def image_bootstrap_format(image):
    """The bootstrap format an EKS-optimized image expects, from its name and description; None when unknown.

    EKS images are named amazon-eks-node-al2023-... (nodeadm), amazon-eks[-gpu|-arm64]-node-<k8s>-...
    (bootstrap.sh) and bottlerocket-aws-k8s-... (TOML); other names (custom builds) tell nothing.
    """
    text = "{0} {1}".format(image.get("Name") or "", image.get("Description") or "").lower()
    if "bottlerocket" in text:
        return "bottlerocket"
    if "al2023" in text or "amazon-linux-2023" in text or "amazon linux 2023" in text:
        return "al2023"
    if "amazon-eks-node-" in text or "amazon-eks-gpu-node-" in text or "amazon-eks-arm64-node-" in text:
        return "al2"
    return None


def check_image_bootstrap_format(ami_id, image, family):
    """Refuse user data the image cannot read (an AL2023 image ignores bootstrap.sh user data, and so on)."""
    expected = image_bootstrap_format(image)
    if expected and expected != family:
        raise NodeGroupError(
            "{0} ({1}) boots with {2} bootstrap data, but this node group renders {3}; set bootstrap_format: {2} (or an ami_type of that"
            " family), or give an AMI of the {3} family".format(ami_id, image.get("Name"), expected, family)
        )


# ---------------------------------------------------------------------------------------
# Validation


def validate_sizes(min_size, max_size, desired_capacity=None):
    if min_size is None or max_size is None:
        raise NodeGroupError("min_size and max_size are required for state=present")
    if min_size < 0:
        raise NodeGroupError("min_size {0} is negative; use 0 or more".format(min_size))
    if min_size > max_size:
        raise NodeGroupError("min_size {0} is above max_size {1}; raise max_size or lower min_size".format(min_size, max_size))
    if desired_capacity is not None:
        if desired_capacity > max_size:
            raise NodeGroupError("desired_capacity {0} is above max_size {1}; raise max_size or lower desired_capacity".format(desired_capacity, max_size))
        if desired_capacity < min_size:
            raise NodeGroupError("desired_capacity {0} is below min_size {1}; lower min_size or raise desired_capacity".format(desired_capacity, min_size))


def validate_instance_types(instance_types):
    if not instance_types:
        raise NodeGroupError("instance_types is empty; give at least one instance type (for example m5.large)")
    names = [t["instance_type"] for t in instance_types]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise NodeGroupError("instance_types lists {0} more than once; list each type once".format(", ".join(duplicates)))


# ---------------------------------------------------------------------------------------
# Tags


def build_asg_tags(cluster_name, name, labels=None, taints=None, user_tags=None, autoscaler_discovery=True):
    """The ASG tags as {key: (value, propagate_at_launch)}; raises NodeGroupError beyond 50 tags."""
    tags = {
        "Name": (name, True),
        cluster_tag(cluster_name): (CLUSTER_TAG_VALUE, True),
    }
    if autoscaler_discovery:
        tags[AUTOSCALER_ENABLED_TAG] = ("true", False)
        tags[AUTOSCALER_CLUSTER_TAG.format(cluster=cluster_name)] = ("owned", False)
        for key, value in sorted((labels or {}).items()):
            tags[AUTOSCALER_LABEL_TAG.format(key=key)] = (value, False)
        for taint in taints or []:
            tags[AUTOSCALER_TAINT_TAG.format(key=taint["key"])] = ("{0}:{1}".format(taint.get("value") or "", taint["effect"]), False)
    for key, value in sorted((user_tags or {}).items()):
        if key == cluster_tag(cluster_name) and value != CLUSTER_TAG_VALUE:
            raise NodeGroupError("tag {0} must be 'owned' on node groups; remove it from tags".format(key))
        tags[key] = (str(value), True)
    for key, (value, _propagate) in tags.items():
        if len(key) > MAX_TAG_KEY:
            raise NodeGroupError("tag key {0!r} is {1} characters, over AWS's {2}; shorten the label, taint or tag key".format(key, len(key), MAX_TAG_KEY))
        if len(value) > MAX_TAG_VALUE:
            raise NodeGroupError("the value of tag {0!r} is over {1} characters; shorten it".format(key, MAX_TAG_VALUE))
    if len(tags) > MAX_ASG_TAGS:
        own = 2 + (2 if autoscaler_discovery else 0)
        label_tags = len(labels or {}) if autoscaler_discovery else 0
        taint_tags = len(taints or []) if autoscaler_discovery else 0
        raise NodeGroupError(
            "the node group needs {0} ASG tags, over AWS's limit of {1} ({2} of the module, {3} cluster-autoscaler label hints, {4} taint hints,"
            " {5} from tags); remove tags or labels, or set cluster_autoscaler_tags: false".format(
                len(tags), MAX_ASG_TAGS, own, label_tags, taint_tags, len(user_tags or {})
            )
        )
    return tags


def instance_tags(asg_tags):
    """The tags propagated to instances and volumes, as {key: value}."""
    return {key: value for key, (value, propagate) in asg_tags.items() if propagate}


def asg_tag_list(asg_name, tags):
    """{key: (value, propagate)} as the Tags list of CreateAutoScalingGroup / CreateOrUpdateTags."""
    return [
        {"ResourceId": asg_name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value, "PropagateAtLaunch": propagate}
        for key, (value, propagate) in sorted(tags.items())
    ]


def current_asg_tags(asg):
    return {t["Key"]: (t.get("Value", ""), bool(t.get("PropagateAtLaunch"))) for t in asg.get("Tags") or []}


# ---------------------------------------------------------------------------------------
# Launch template data


def block_device_mapping(device_name, volume_size, volume_type="gp3", encrypted=True, kms_key_id=None, iops=None, throughput=None, delete_on_termination=True):
    ebs = {"VolumeSize": volume_size, "VolumeType": volume_type, "Encrypted": encrypted, "DeleteOnTermination": delete_on_termination}
    if kms_key_id:
        ebs["KmsKeyId"] = kms_key_id
    if iops is not None:
        ebs["Iops"] = iops
    if throughput is not None:
        ebs["Throughput"] = throughput
    return {"DeviceName": device_name, "Ebs": ebs}


def build_launch_template_data(
    ami_id,
    instance_type,
    user_data_b64,
    instance_profile,
    security_group_ids,
    root_device_name,
    root_volume,
    extra_block_devices=None,
    key_name=None,
    metadata_hop_limit=1,
    metadata_http_tokens="required",
    detailed_monitoring=False,
    tags=None,
):
    """LaunchTemplateData for CreateLaunchTemplate(Version).

    `root_volume` is {size, type, encrypted, kms_key_id, iops, throughput};
    `extra_block_devices` a list of {device_name, volume_size, ...} (snake_case);
    `tags` the {key: value} put on instances and volumes at launch.
    """
    data = {
        "ImageId": ami_id,
        "InstanceType": instance_type,
        "UserData": user_data_b64,
        "MetadataOptions": {"HttpEndpoint": "enabled", "HttpTokens": metadata_http_tokens, "HttpPutResponseHopLimit": metadata_hop_limit},
        "Monitoring": {"Enabled": bool(detailed_monitoring)},
    }
    if instance_profile:
        data["IamInstanceProfile"] = {"Arn": instance_profile} if instance_profile.startswith("arn:") else {"Name": instance_profile}
    if security_group_ids:
        data["SecurityGroupIds"] = sorted(security_group_ids)
    if key_name:
        data["KeyName"] = key_name
    devices = [
        block_device_mapping(
            root_device_name,
            root_volume["size"],
            root_volume.get("type") or "gp3",
            root_volume.get("encrypted", True),
            root_volume.get("kms_key_id"),
            root_volume.get("iops"),
            root_volume.get("throughput"),
        )
    ]
    for extra in extra_block_devices or []:
        if extra["device_name"] == root_device_name:
            raise NodeGroupError(
                "extra_block_devices names {0}, the root volume's device; change its device_name or use root_volume_size".format(root_device_name)
            )
        devices.append(
            block_device_mapping(
                extra["device_name"],
                extra["volume_size"],
                extra.get("volume_type") or "gp3",
                extra.get("encrypted", True),
                extra.get("kms_key_id"),
                extra.get("iops"),
                extra.get("throughput"),
                extra.get("delete_on_termination", True),
            )
        )
    data["BlockDeviceMappings"] = sorted(devices, key=lambda d: d["DeviceName"])
    if tags:
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        data["TagSpecifications"] = [{"ResourceType": kind, "Tags": tag_list} for kind in ("instance", "volume")]
    return data


def _normalized_launch_template_data(data, family):
    data = copy.deepcopy(data or {})
    if "UserData" in data:
        data["UserData"] = user_data_semantics(family, decode_user_data(data["UserData"]))
    if "SecurityGroupIds" in data:
        data["SecurityGroupIds"] = sorted(data["SecurityGroupIds"])
    if "BlockDeviceMappings" in data:
        data["BlockDeviceMappings"] = sorted(data["BlockDeviceMappings"], key=lambda d: d.get("DeviceName", ""))
    if "TagSpecifications" in data:
        # Tags of the launch template itself are not launch data (some endpoints echo them back here).
        data["TagSpecifications"] = sorted(
            [
                {"ResourceType": s["ResourceType"], "Tags": sorted(s.get("Tags", []), key=lambda t: t["Key"])}
                for s in data["TagSpecifications"]
                if s.get("ResourceType") != "launch-template"
            ],
            key=lambda s: s["ResourceType"],
        )
        if not data["TagSpecifications"]:
            data.pop("TagSpecifications")
    if data.get("Monitoring") == {"Enabled": False}:
        data.pop("Monitoring")
    return data


def launch_template_data_changes(desired, current, family):
    """Top-level LaunchTemplateData keys whose meaning differs between `desired` and `current`."""
    want = _normalized_launch_template_data(desired, family)
    have = _normalized_launch_template_data(current, family)
    return sorted(key for key in set(want) | set(have) if want.get(key) != have.get(key))


def readable_launch_template_data(data):
    """LaunchTemplateData with the user data decoded, for diffs and return values."""
    if not data:
        return {}
    readable = copy.deepcopy(data)
    if "UserData" in readable:
        readable["UserData"] = decode_user_data(readable["UserData"])
    return readable


# ---------------------------------------------------------------------------------------
# Auto Scaling group


def launch_template_spec(template_id, version):
    return {"LaunchTemplateId": template_id, "Version": str(version)}


def build_mixed_instances_policy(template_id, version, instance_types, distribution):
    """MixedInstancesPolicy for instance types with weights and an on-demand/spot distribution."""
    overrides = []
    for entry in instance_types:
        override = {"InstanceType": entry["instance_type"]}
        if entry.get("weighted_capacity") is not None:
            override["WeightedCapacity"] = str(entry["weighted_capacity"])
        overrides.append(override)
    dist = {}
    if distribution.get("on_demand_base_capacity") is not None:
        dist["OnDemandBaseCapacity"] = distribution["on_demand_base_capacity"]
    if distribution.get("on_demand_percentage_above_base_capacity") is not None:
        dist["OnDemandPercentageAboveBaseCapacity"] = distribution["on_demand_percentage_above_base_capacity"]
    if distribution.get("spot_allocation_strategy"):
        dist["SpotAllocationStrategy"] = distribution["spot_allocation_strategy"]
    if distribution.get("spot_max_price"):
        dist["SpotMaxPrice"] = distribution["spot_max_price"]
    policy = {"LaunchTemplate": {"LaunchTemplateSpecification": launch_template_spec(template_id, version), "Overrides": overrides}}
    if dist:
        policy["InstancesDistribution"] = dist
    return policy


def uses_mixed_instances(instance_types, distribution):
    return len(instance_types) > 1 or any(v is not None for v in (distribution or {}).values()) or any(
        t.get("weighted_capacity") is not None for t in instance_types
    )


def build_asg_settings(template_id, version, params):
    """The ASG fields we manage, as CreateAutoScalingGroup keyword arguments (no name, tags or desired)."""
    settings = {
        "MinSize": params["min_size"],
        "MaxSize": params["max_size"],
        "VPCZoneIdentifier": ",".join(params["subnets"]),
        "HealthCheckType": params.get("health_check_type") or "EC2",
        "HealthCheckGracePeriod": params.get("health_check_grace_period") if params.get("health_check_grace_period") is not None else 300,
        "CapacityRebalance": bool(params.get("capacity_rebalance")),
    }
    if params.get("termination_policies"):
        settings["TerminationPolicies"] = list(params["termination_policies"])
    if params.get("max_instance_lifetime") is not None:
        settings["MaxInstanceLifetime"] = params["max_instance_lifetime"]
    if uses_mixed_instances(params["instance_types"], params.get("mixed_instances")):
        settings["MixedInstancesPolicy"] = build_mixed_instances_policy(template_id, version, params["instance_types"], params.get("mixed_instances") or {})
    else:
        settings["LaunchTemplate"] = launch_template_spec(template_id, version)
    return settings


def _current_template(asg):
    if asg.get("MixedInstancesPolicy"):
        return asg["MixedInstancesPolicy"].get("LaunchTemplate", {}).get("LaunchTemplateSpecification") or {}
    return asg.get("LaunchTemplate") or {}


def asg_template_version(asg):
    """(launch template id, version string) the ASG launches from, or (None, None)."""
    spec = _current_template(asg)
    return spec.get("LaunchTemplateId"), spec.get("Version")


def _comparable_mixed(policy):
    if not policy:
        return None
    lt = policy.get("LaunchTemplate", {})
    spec = lt.get("LaunchTemplateSpecification", {})
    overrides = [{"InstanceType": o.get("InstanceType"), "WeightedCapacity": o.get("WeightedCapacity")} for o in lt.get("Overrides", [])]
    return {
        "template": (spec.get("LaunchTemplateId"), str(spec.get("Version"))),
        "overrides": overrides,
        "distribution": policy.get("InstancesDistribution", {}),
    }


def asg_setting_changes(desired, current):
    """UpdateAutoScalingGroup keyword arguments for the managed fields that differ."""
    changes = {}
    for key in ("MinSize", "MaxSize", "HealthCheckType", "HealthCheckGracePeriod", "MaxInstanceLifetime"):
        if key in desired and desired[key] != current.get(key):
            changes[key] = desired[key]
    if bool(desired.get("CapacityRebalance")) != bool(current.get("CapacityRebalance")):
        changes["CapacityRebalance"] = bool(desired.get("CapacityRebalance"))
    if "TerminationPolicies" in desired and list(desired["TerminationPolicies"]) != list(current.get("TerminationPolicies") or []):
        changes["TerminationPolicies"] = desired["TerminationPolicies"]
    want_subnets = set(s for s in desired["VPCZoneIdentifier"].split(",") if s)
    have_subnets = set(s for s in (current.get("VPCZoneIdentifier") or "").split(",") if s)
    if want_subnets != have_subnets:
        changes["VPCZoneIdentifier"] = desired["VPCZoneIdentifier"]
    if "MixedInstancesPolicy" in desired:
        want = _comparable_mixed(desired["MixedInstancesPolicy"])
        have = _comparable_mixed(current.get("MixedInstancesPolicy"))
        if have is None or want["template"] != have["template"] or want["overrides"] != have["overrides"] or any(
            have["distribution"].get(k) != v for k, v in want["distribution"].items()
        ):
            changes["MixedInstancesPolicy"] = desired["MixedInstancesPolicy"]
    else:
        spec = current.get("LaunchTemplate") or {}
        want = desired["LaunchTemplate"]
        if current.get("MixedInstancesPolicy") or spec.get("LaunchTemplateId") != want["LaunchTemplateId"] or str(spec.get("Version")) != want["Version"]:
            changes["LaunchTemplate"] = want
    return changes


def desired_capacity_change(current_desired, min_size, max_size, wanted=None, force=False):
    """The DesiredCapacity to set on an existing ASG, or None to leave it alone.

    Cluster-autoscaler and operators own the desired capacity after creation: it changes only
    when forced, or when it falls outside new bounds (clamped into them).
    """
    if force and wanted is not None and wanted != current_desired:
        return wanted
    if current_desired < min_size:
        return min_size
    if current_desired > max_size:
        return max_size
    return None


def lifecycle_hook_changes(desired_hooks, current_hooks, asg_name):
    """(PutLifecycleHook argument dicts, names to delete) to make the ASG's hooks `desired_hooks`."""
    current = {h["LifecycleHookName"]: h for h in current_hooks}
    puts = []
    for hook in desired_hooks:
        wanted = {
            "LifecycleHookName": hook["name"],
            "AutoScalingGroupName": asg_name,
            "LifecycleTransition": hook["transition"],
            "HeartbeatTimeout": hook.get("heartbeat_timeout") or 300,
            "DefaultResult": hook.get("default_result") or "CONTINUE",
        }
        for key, option in (("NotificationTargetARN", "notification_target_arn"), ("RoleARN", "role_arn"), ("NotificationMetadata", "notification_metadata")):
            if hook.get(option):
                wanted[key] = hook[option]
        have = current.get(hook["name"])
        if have is None or any(have.get(k) != v for k, v in wanted.items() if k != "AutoScalingGroupName"):
            puts.append(wanted)
    names = set(h["name"] for h in desired_hooks)
    deletes = sorted(n for n in current if n not in names)
    return puts, deletes


def suspended_process_changes(desired, current_asg):
    """(to_suspend, to_resume) process names."""
    have = set(p["ProcessName"] for p in current_asg.get("SuspendedProcesses") or [])
    want = set(desired)
    return sorted(want - have), sorted(have - want)
