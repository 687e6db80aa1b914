# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet model: node groups (ASGs), their instances, launch template versions and Nodes.

The one place that knows their shapes and what they mean. Every caller (the eks_nodes
inventory, eks_nodegroup_asg, eks_nodegroup_info, eks_addon, the day-2 roles through those
modules) asks here; nothing else decides whether an instance is outdated or a Node Ready.

Pure functions over plain, JSON-safe dicts (an inventory cache can hold them); no AWS,
Kubernetes or Ansible imports. `fleet_aws.py` turns API responses into these records.

Records:
    group    {"name", "cluster", "tags", "launch_template": {"id", "name", "version"} | None,
              "min_size", "max_size", "desired_capacity", "suspended_processes", "health_check_type",
              "instances": [member]}
    member   {"instance_id", "lifecycle_state", "health_status", "protected_from_scale_in",
              "availability_zone", "launch_template_version"}          (the ASG's view)
    instance {"instance_id", "private_ip_address", "private_dns_name", "instance_type",
              "image_id", "launch_time", "availability_zone", "lifecycle", "state", "tags",
              "launch_template_id", "launch_template_version"}           (EC2's view)
    templates {template id: {version spec ("$Latest", "$Default", "3"): {"version", "image_id"}}}
    node     {"name", "instance_id", "labels", "taints", "unschedulable", "ready",
              "ready_reason", "kubelet_version", "boot_id"}

Meanings:
    outdated    the instance does not run what its group launches now. Reasons (codes):
                - launch_template: launched from another launch template than the group's;
                - launch_template_version: launched from another version of it;
                - ami: runs another AMI than the group's current version names;
                - unknown: the instance's launch template version, or the group's current
                  one, cannot be read (no `aws:ec2launchtemplate:version` tag and no ASG
                  report; a launch configuration; a deleted template). Unknown COUNTS AS
                  OUTDATED: a rollout replaces what it cannot prove current, and the reason
                  says why, so an operator can exclude it.
    Ready       the Node's Ready condition is "True".
    schedulable the Node is not cordoned (spec.unschedulable is not true).
    available   Ready and schedulable: a node pods can be placed on now.
"""

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import AwsAuthError
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import entry_key
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import parse_section
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import ClusterConfigError
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_includes
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import parse_version

# ---------------------------------------------------------------------------------------
# Tag, label and annotation names

CLUSTER_TAG = "kubernetes.io/cluster/{cluster}"
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
CLUSTER_TAG_VALUE = "owned"
AUTOSCALER_ENABLED_TAG = "k8s.io/cluster-autoscaler/enabled"
AUTOSCALER_CLUSTER_TAG = "k8s.io/cluster-autoscaler/{cluster}"
AUTOSCALER_LABEL_TAG = "k8s.io/cluster-autoscaler/node-template/label/{key}"
AUTOSCALER_TAINT_TAG = "k8s.io/cluster-autoscaler/node-template/taint/{key}"
# The Node annotation that keeps cluster-autoscaler from removing a node.
AUTOSCALER_SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
# The Node label that takes a node out of cloud load balancer backends (a cordon alone no longer does, since 1.19).
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# The Node annotation eks_node_drain writes when it cordons: who and why (JSON), so that an uncordon
# never undoes a cordon an operator made by hand.
CORDON_OWNER_ANNOTATION = "selfmanaged.eks/cordoned-by"
# The ASG tag node_rollout keeps while it replaces a group's instances: what it changed (JSON), so that a run
# killed half-way is resumed or undone by the next one, never left suspended silently.
ROLLOUT_STATE_TAG = "selfmanaged.eks/rollout"
# The ASG tag beside it naming the run that owns the rollout (its disruption lock holder): the run that resumes or
# aborts the roll takes that holder's slots over. A tag of its own: with it, the state record would pass the 256
# characters an ASG tag value holds (a 210-character record plus a 51-character default holder).
ROLLOUT_HOLDER_TAG = "selfmanaged.eks/rollout-holder"
# The Node annotation node_rollout adds beside AUTOSCALER_SCALE_DOWN_DISABLED, so that it removes only the
# scale-down-disabled annotations it added itself.
ROLLOUT_SCALE_DOWN_MARK = "selfmanaged.eks/rollout-scale-down-disabled"
# The EC2 instance tag eks_node_maintenance keeps while a node is in maintenance (node_patching): what it added
# (scale-in protection, suspended ReplaceUnhealthy, scale-down-disabled), by whom, since when (JSON), so that only
# that is removed, also by a later run after a killed one.
MAINTENANCE_TAG = "selfmanaged.eks/maintenance"
# Managed node groups' ASGs carry this tag; EKS rolls them, not us.
MANAGED_NODEGROUP_TAG = "eks:nodegroup-name"
# Tags AWS puts on every instance: its group, and the launch template (version) it really
# launched with (DescribeAutoScalingGroups also reports the version per instance).
ASG_NAME_TAG = "aws:autoscaling:groupName"
LT_ID_TAG = "aws:ec2launchtemplate:id"
LT_VERSION_TAG = "aws:ec2launchtemplate:version"
# The Node label every node of a node_bootstrap/eks_nodegroup_asg group carries (value: group name).
NODEGROUP_LABEL = "selfmanaged.eks/nodegroup"

OUTDATED_LAUNCH_TEMPLATE = "launch_template"
OUTDATED_VERSION = "launch_template_version"
OUTDATED_AMI = "ami"
OUTDATED_UNKNOWN = "unknown"


def cluster_tag(cluster):
    """`kubernetes.io/cluster/<cluster>`: the tag every ASG and instance of the cluster carries (value `owned`)."""
    return CLUSTER_TAG.format(cluster=cluster)


def tags_dict(tag_list):
    """{'Key': .., 'Value': ..} list (EC2 and Auto Scaling shapes) -> dict."""
    return {tag["Key"]: tag.get("Value", "") for tag in tag_list or []}


def cluster_of_tags(tags):
    """The cluster an ASG or instance belongs to (`kubernetes.io/cluster/<name>=owned`), or None."""
    for key in sorted(tags):
        if key.startswith(CLUSTER_TAG_PREFIX) and tags[key] == CLUSTER_TAG_VALUE:
            return key[len(CLUSTER_TAG_PREFIX):]
    return None


def is_managed_nodegroup(group):
    """True for the ASG of an EKS managed node group (EKS replaces its nodes, not us)."""
    return MANAGED_NODEGROUP_TAG in (group.get("tags") or {})


# ---------------------------------------------------------------------------------------
# Shapes: API responses -> records


def _isoformat(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def compact_group(asg):
    """A DescribeAutoScalingGroups entry -> a group record."""
    tags = tags_dict(asg.get("Tags"))
    spec = asg.get("LaunchTemplate") or ((asg.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    template = None
    if spec and (spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")):
        template = {"id": spec.get("LaunchTemplateId"), "name": spec.get("LaunchTemplateName"), "version": str(spec.get("Version") or "$Default")}
    return {
        "name": asg["AutoScalingGroupName"],
        "cluster": cluster_of_tags(tags),
        "tags": tags,
        "launch_template": template,
        "min_size": asg.get("MinSize"),
        "max_size": asg.get("MaxSize"),
        "desired_capacity": asg.get("DesiredCapacity"),
        "suspended_processes": sorted(p["ProcessName"] for p in asg.get("SuspendedProcesses") or []),
        "health_check_type": asg.get("HealthCheckType") or "EC2",
        "instances": [
            {
                "instance_id": member["InstanceId"],
                "lifecycle_state": member.get("LifecycleState"),
                "health_status": member.get("HealthStatus"),
                "protected_from_scale_in": bool(member.get("ProtectedFromScaleIn")),
                "availability_zone": member.get("AvailabilityZone"),
                "launch_template_version": (member.get("LaunchTemplate") or {}).get("Version"),
            }
            for member in asg.get("Instances", [])
        ],
    }


def compact_instance(instance):
    """A DescribeInstances entry -> an instance record."""
    tags = tags_dict(instance.get("Tags"))
    return {
        "instance_id": instance["InstanceId"],
        "private_ip_address": instance.get("PrivateIpAddress"),
        "private_dns_name": instance.get("PrivateDnsName"),
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
        "launch_time": _isoformat(instance.get("LaunchTime")),
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "lifecycle": "spot" if instance.get("InstanceLifecycle") == "spot" else "on_demand",
        "state": (instance.get("State") or {}).get("Name"),
        "launch_template_id": tags.get(LT_ID_TAG),
        "launch_template_version": tags.get(LT_VERSION_TAG),
        "tags": tags,
    }


def template_version_record(version):
    """A DescribeLaunchTemplateVersions entry -> {"version", "image_id"} (image None when resolved at launch)."""
    image = (version.get("LaunchTemplateData") or {}).get("ImageId")
    if image and image.startswith("resolve:ssm:"):
        image = None  # resolved at launch; compare on the version only
    return {"version": version["VersionNumber"], "image_id": image}


def known_template(template_id, version, image_id):
    """A templates map for a group whose current version is already known (the node group module made it)."""
    record = {"version": int(version), "image_id": image_id}
    return {template_id: {str(version): record, "$Latest": record, "$Default": record}}


def ready_condition(node):
    """The Ready condition of a Node (API JSON), or {} when it has none yet."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return {}


def instance_id_of_node(node):
    """The EC2 instance id in a Node's spec.providerID (aws:///us-east-1a/i-0abc), or None."""
    provider_id = (node.get("spec") or {}).get("providerID") or ""
    return provider_id.rsplit("/", 1)[-1] if provider_id.startswith("aws://") else None


def compact_node(node):
    """A Kubernetes Node (API JSON) -> a node record."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    node_info = (node.get("status") or {}).get("nodeInfo") or {}
    ready = ready_condition(node)
    return {
        "name": metadata.get("name"),
        "instance_id": instance_id_of_node(node),
        "labels": dict(sorted((metadata.get("labels") or {}).items())),
        "taints": [
            {"key": t.get("key"), "value": t.get("value", ""), "effect": t.get("effect")} for t in spec.get("taints") or []
        ],
        "unschedulable": bool(spec.get("unschedulable", False)),
        "ready": ready.get("status") == "True",
        "ready_reason": ready.get("reason", ""),
        "kubelet_version": node_info.get("kubeletVersion", ""),
        "boot_id": node_info.get("bootID", ""),
        # what node_rollout keeps cluster-autoscaler off a Node with (so that it needs no GET of each Node)
        "scale_down_annotations": dict((key, value) for key, value in (metadata.get("annotations") or {}).items()
                                       if key in (AUTOSCALER_SCALE_DOWN_DISABLED, ROLLOUT_SCALE_DOWN_MARK)),
    }


# ---------------------------------------------------------------------------------------
# Node state


def is_ready(node):
    """A node record's Ready condition is True."""
    return bool(node and node.get("ready"))


def is_schedulable(node):
    """A node record is not cordoned."""
    return bool(node) and not node.get("unschedulable")


def is_available(node):
    """Ready and schedulable: pods can be placed on it now."""
    return is_ready(node) and is_schedulable(node)


def kubelet_minor(version):
    """'v1.31.2-eks-abc' -> '1.31'; '' when it cannot be read."""
    try:
        return "{0}.{1}".format(*parse_version(version or ""))
    except ClusterConfigError:
        return ""


def node_index(nodes):
    """Node records keyed by instance id (from spec.providerID) and by node name."""
    by_instance, by_name = {}, {}
    for node in nodes:
        if node.get("instance_id"):
            by_instance[node["instance_id"]] = node
        by_name[node["name"]] = node
    return by_instance, by_name


def node_of_instance(instance, by_instance, by_name):
    """The node record of an instance record: by provider id, else by private DNS name; None when it has not joined."""
    return by_instance.get(instance["instance_id"]) or by_name.get(instance.get("private_dns_name") or "")


# ---------------------------------------------------------------------------------------
# Outdated


def current_template_version(group, templates):
    """(version number as str, image id) the group launches now, or (None, None) when unknown.

    The group's version spec may be a number, "$Latest" or "$Default"; `templates` holds
    what DescribeLaunchTemplateVersions said for each spec.
    """
    spec = group.get("launch_template")
    if not spec:
        return None, None
    resolved = templates.get(spec.get("id"), {}).get(spec.get("version") or "$Default")
    if not resolved:
        return None, None
    return str(resolved["version"]), resolved.get("image_id")


def instance_template_version(member, instance):
    """The launch template version an instance was launched with (EC2 tag first, then the ASG's report); None when unknown."""
    version = (instance or {}).get("launch_template_version") or (member or {}).get("launch_template_version")
    if version and not str(version).startswith("$"):
        return str(version)
    return None


def outdated_reasons(group, member, instance, templates):
    """Why an instance does not run what its group launches now: [{"code", "message"}]; [] when current.

    See the module docstring for the codes; `unknown` counts as outdated.
    """
    current_version, current_image = current_template_version(group, templates)
    launched_version = instance_template_version(member, instance)
    template_id = (group.get("launch_template") or {}).get("id")
    launched_template = (instance or {}).get("launch_template_id")
    reasons = []
    if template_id and launched_template and launched_template != template_id:
        reasons.append({
            "code": OUTDATED_LAUNCH_TEMPLATE,
            "message": "launch template {0} differs from the group's {1}".format(launched_template, template_id),
        })
    elif current_version is None:
        reasons.append({
            "code": OUTDATED_UNKNOWN,
            "message": "the group's current launch template version cannot be read (no launch template, or it was deleted)",
        })
    elif launched_version is None:
        reasons.append({
            "code": OUTDATED_UNKNOWN,
            "message": "the launch template version this instance was launched with is unknown (no {0} tag, no ASG report)".format(LT_VERSION_TAG),
        })
    elif launched_version != current_version:
        reasons.append({
            "code": OUTDATED_VERSION,
            "message": "launch template version {0} differs from the group's current version {1}".format(launched_version, current_version),
        })
    image = (instance or {}).get("image_id")
    if current_image and image and image != current_image:
        reasons.append({"code": OUTDATED_AMI, "message": "AMI {0} differs from the group's current AMI {1}".format(image, current_image)})
    return reasons


def instance_record(group, member, instance, templates):
    """One instance of a group as every caller reports it: the ASG's and EC2's view, and whether it is outdated."""
    instance = instance or {"instance_id": member["instance_id"]}
    current_version, current_image = current_template_version(group, templates)
    reasons = outdated_reasons(group, member, instance, templates)
    template = group.get("launch_template") or {}
    return {
        "instance_id": member["instance_id"],
        "availability_zone": member.get("availability_zone") or instance.get("availability_zone"),
        "instance_type": instance.get("instance_type"),
        "lifecycle": instance.get("lifecycle", "on_demand"),
        "instance_state": instance.get("state"),
        "lifecycle_state": member.get("lifecycle_state"),
        "health_status": member.get("health_status"),
        "protected_from_scale_in": bool(member.get("protected_from_scale_in")),
        "private_ip_address": instance.get("private_ip_address"),
        "private_dns_name": instance.get("private_dns_name"),
        "launch_template_id": instance.get("launch_template_id") or template.get("id"),
        "launch_template_name": template.get("name"),
        "launch_template_version": instance_template_version(member, instance),
        "current_launch_template_version": current_version,
        "image_id": instance.get("image_id"),
        "current_image_id": current_image,
        "outdated": bool(reasons),
        "outdated_reasons": [reason["message"] for reason in reasons],
        "outdated_codes": [reason["code"] for reason in reasons],
        "launch_time": instance.get("launch_time"),
    }


def node_record(node):
    """What a caller reports of an instance's Node: joined, Ready, schedulable, available, kubelet, boot id."""
    if node is None:
        return {"joined": False, "node_name": None, "ready": False, "ready_reason": "", "schedulable": False, "available": False,
                "unschedulable": False, "kubelet_version": "", "boot_id": ""}
    return {
        "joined": True,
        "node_name": node["name"],
        "ready": is_ready(node),
        "ready_reason": node.get("ready_reason", ""),
        "schedulable": is_schedulable(node),
        "available": is_available(node),
        "unschedulable": bool(node.get("unschedulable")),
        "kubelet_version": node.get("kubelet_version", ""),
        "boot_id": node.get("boot_id", ""),
    }


# ---------------------------------------------------------------------------------------
# Why an instance has no available Node

JOIN_PENDING = "pending"
JOIN_NOT_RUNNING = "not_running"
JOIN_WRONG_BOOTSTRAP_DATA = "wrong_bootstrap_data"
JOIN_NOT_AUTHORIZED = "not_authorized"
JOIN_NOT_READY = "not_ready"
JOIN_CORDONED = "cordoned"

NODE_ACCESS_ENTRY_TYPE = "EC2_LINUX"


def aws_auth_maps_node_role(data, role_arn):
    """True when aws-auth `data` (the ConfigMap's data, None when there is none) maps `role_arn` to system:nodes.

    A mapRoles section that does not parse counts as no mapping: aws-iam-authenticator ignores it whole.
    """
    try:
        section = parse_section("mapRoles", (data or {}).get("mapRoles"))
    except AwsAuthError:
        return False
    wanted = entry_key("mapRoles", {"rolearn": role_arn})
    mapped = {}
    for entry in section.entries:
        if entry_key("mapRoles", entry) == wanted:
            mapped = entry  # the last duplicate wins, as in the authenticator
    return "system:nodes" in (mapped.get("groups") or [])


def node_role_authorization(cluster, mode, role_arn, access_entry_type=None, aws_auth_mapped=None, unknown_reason=None):
    """Whether the node role may join the cluster under its authentication `mode`: {"authorized", "message"}.

    `access_entry_type` is the type of the role's access entry (None: none, or not looked up);
    `aws_auth_mapped` whether aws-auth maps it to system:nodes (None: not looked up). `authorized`
    is None when it could not be told (`unknown_reason` says why).
    """
    if not role_arn or unknown_reason:
        return {"authorized": None, "message": "the node role's authorization could not be checked: {0}".format(
            unknown_reason or "no node role (set node_role_arn, or give the launch template an instance profile)")}
    by_entry = authentication_mode_includes(mode, "API") and access_entry_type == NODE_ACCESS_ENTRY_TYPE
    by_map = authentication_mode_includes(mode, "CONFIG_MAP") and bool(aws_auth_mapped)
    if by_entry or by_map:
        how = "its {0} access entry".format(NODE_ACCESS_ENTRY_TYPE) if by_entry else "its aws-auth mapping"
        return {"authorized": True, "message": "node role {0} may join cluster {1} through {2}".format(role_arn, cluster, how)}
    wanted = []
    if authentication_mode_includes(mode, "API"):
        wanted.append("{0} access entry".format(NODE_ACCESS_ENTRY_TYPE)
                      + (" (it has a {0} entry)".format(access_entry_type) if access_entry_type else ""))
    if authentication_mode_includes(mode, "CONFIG_MAP"):
        wanted.append("aws-auth mapping to system:nodes")
    return {
        "authorized": False,
        "message": "node role {0} has no {1} in cluster {2} (authentication mode {3}); authorize it (node_bootstrap_authorization "
        "auto, or selfmanaged.eks.eks_access_entry with type {4} / selfmanaged.eks.eks_aws_auth)".format(
            role_arn, " nor ".join(wanted), cluster, mode, NODE_ACCESS_ENTRY_TYPE),
    }


def join_diagnosis(instance, node, bootstrap_problems=None, authorization=None):
    """Why an instance record has no available Node: {"code", "message"}; None when its Node is available.

    `node` is its node record (None: not joined); `bootstrap_problems` what in its user data
    disagrees with the cluster (userdata.bootstrap_mismatches); `authorization` the
    node_role_authorization() of its node role. Checked in the order a node gets stuck:
    EC2 start, user data, authorization, kubelet/CNI, cordon.
    """
    if is_available(node):
        return None
    if node is not None and is_ready(node):
        return {"code": JOIN_CORDONED, "message": "Ready but cordoned (spec.unschedulable): uncordon it (kubectl uncordon {0}) once "
                "its maintenance is over".format(node.get("name"))}
    if node is not None:
        return {"code": JOIN_NOT_READY, "message": "registered as {0} but not Ready ({1}): check the VPC CNI (aws-node) pod on it and the "
                "kubelet (journalctl -u kubelet through Session Manager)".format(node.get("name"), node.get("ready_reason") or "no Ready condition")}
    state = instance.get("instance_state")
    if state == "pending":
        return {"code": JOIN_PENDING, "message": "still pending: EC2 is starting it; wait longer"}
    if state and state != "running":
        return {"code": JOIN_NOT_RUNNING, "message": "the instance is {0}; it cannot join until it runs (check the ASG's activity "
                "history)".format(state)}
    if bootstrap_problems:
        return {"code": JOIN_WRONG_BOOTSTRAP_DATA, "message": "wrong bootstrap data: {0}. Fix the node group's user data settings and replace "
                "the instance".format("; ".join(bootstrap_problems))}
    if authorization and authorization.get("authorized") is False:
        return {"code": JOIN_NOT_AUTHORIZED, "message": "not authorized: " + authorization["message"]}
    message = "still pending: running since {0} but no Node object yet; the bootstrap may still be running (kubelet logs: journalctl -u " \
        "kubelet through Session Manager)".format(instance.get("launch_time") or "an unknown time")
    if authorization and authorization.get("authorized") is None:
        message += "; " + authorization["message"]
    return {"code": JOIN_PENDING, "message": message}


def group_counts(instances):
    """{"instances", "outdated", "joined", "ready", "available"} of a group's reported instances (each with its "node")."""
    nodes = [inst.get("node") or {} for inst in instances]
    return {
        "instances": len(instances),
        "outdated": sum(1 for inst in instances if inst.get("outdated")),
        "joined": sum(1 for node in nodes if node.get("joined")),
        "ready": sum(1 for node in nodes if node.get("ready")),
        "available": sum(1 for node in nodes if node.get("available")),
    }
