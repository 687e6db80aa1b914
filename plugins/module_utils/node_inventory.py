# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The shape of the eks_nodes inventory: which instances are hosts, their names, groups and variables.

Pure functions over plain dicts, no AWS or Ansible imports, unit-tested without a server.
`plugins/module_utils/node_fetch.py` turns API responses into the compact "fleet" records
below (JSON-safe, so an inventory cache can hold them); `build_inventory()` turns a fleet
into sorted hosts and groups.

Fleet record (one per region):
    {"region": "us-east-1",
     "groups": [{"name", "cluster", "tags", "launch_template": {"id", "name", "version"} | None,
                 "instances": [{"instance_id", "lifecycle_state", "health_status",
                                "protected_from_scale_in", "availability_zone", "launch_template_version"}]}],
     "instances": {instance_id: {"instance_id", "private_ip_address", "private_dns_name",
                                 "instance_type", "image_id", "launch_time", "availability_zone",
                                 "lifecycle", "state", "tags", "launch_template_id", "launch_template_version"}},
     "launch_templates": {template_id: {version spec ("$Latest", "$Default", "3"): {"version", "image_id"}}},
     "nodes": {cluster: [compact Node dicts]}   # only with kubernetes: true
    }
"""

import fnmatch
import functools
import re

HOSTVAR_PREFIX = "eks_node_"
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
CLUSTER_TAG_VALUE = "owned"
# Managed node groups' ASGs carry this tag; EKS rolls them, not us.
MANAGED_NODEGROUP_TAG = "eks:nodegroup-name"
# EC2 tags AWS puts on every instance launched from a launch template: the version it was
# really launched with (DescribeAutoScalingGroups also reports it per instance).
LT_ID_TAG = "aws:ec2launchtemplate:id"
LT_VERSION_TAG = "aws:ec2launchtemplate:version"

DEFAULT_HOSTNAMES = ("private-dns-name", "private-ip-address", "instance-id")
DEFAULT_LIFECYCLE_STATES = ("InService",)
HOSTNAME_SOURCES = {
    "private-dns-name": "private_dns_name",
    "private-ip-address": "private_ip_address",
    "instance-id": "instance_id",
}
SSM_CONNECTION = "community.aws.aws_ssm"

_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class InventoryConfigError(ValueError):
    """An option value the plugin cannot work with; the message names it and the fix."""


@functools.lru_cache(maxsize=4096)
def group_name(*parts):
    """A valid Ansible group name from parts: lower case, anything but [a-z0-9_] becomes '_'."""
    return _GROUP_UNSAFE.sub("_", "_".join(str(p) for p in parts if p != "")).lower()


@functools.lru_cache(maxsize=256)
def snake_state(state):
    """'InService' -> 'in_service', 'Terminating:Wait' -> 'terminating_wait'."""
    spaced = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", state.replace(":", "_"))
    return spaced.replace("__", "_").lower()


def cluster_of_tags(tags):
    """The cluster an ASG or instance belongs to (`kubernetes.io/cluster/<name>=owned`), or None."""
    for key in sorted(tags):
        if key.startswith(CLUSTER_TAG_PREFIX) and tags[key] == CLUSTER_TAG_VALUE:
            return key[len(CLUSTER_TAG_PREFIX):]
    return None


def tags_dict(tag_list):
    """{'Key': .., 'Value': ..} list (EC2 and Auto Scaling shapes) -> dict."""
    return {tag["Key"]: tag.get("Value", "") for tag in tag_list or []}


def validate_hostnames(preferences):
    """The hostnames option checked; InventoryConfigError naming the bad entry otherwise."""
    if not preferences:
        return list(DEFAULT_HOSTNAMES)
    checked = []
    for preference in preferences:
        if not isinstance(preference, str) or not (preference in HOSTNAME_SOURCES or (preference.startswith("tag:") and len(preference) > 4)):
            raise InventoryConfigError(
                "hostnames entry {0!r} is not supported; use one of {1} or tag:<Key>".format(preference, ", ".join(sorted(HOSTNAME_SOURCES)))
            )
        checked.append(preference)
    return checked


def validate_lifecycle_states(states):
    known = (
        "Pending", "Pending:Wait", "Pending:Proceed", "Quarantined", "InService", "Terminating", "Terminating:Wait",
        "Terminating:Proceed", "Terminated", "Detaching", "Detached", "EnteringStandby", "Standby",
        "Warmed:Pending", "Warmed:Pending:Wait", "Warmed:Pending:Proceed", "Warmed:Terminating", "Warmed:Terminating:Wait",
        "Warmed:Terminating:Proceed", "Warmed:Terminated", "Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated",
    )
    if not states:
        return list(DEFAULT_LIFECYCLE_STATES)
    for state in states:
        if state not in known:
            raise InventoryConfigError(
                "lifecycle_states entry {0!r} is not an Auto Scaling lifecycle state; use e.g. InService, Pending, Standby, Terminating:Wait".format(state)
            )
    return list(states)


def hostname_for(instance, preferences):
    """The first non-empty name for an instance record in the order of `preferences`, or None."""
    for preference in preferences:
        if preference.startswith("tag:"):
            value = instance.get("tags", {}).get(preference[4:])
        else:
            value = instance.get(HOSTNAME_SOURCES[preference])
        if value:
            return value
    return None


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def group_selected(group, node_groups=None, exclude_node_groups=None, include_managed=False):
    """Whether an ASG record passes the node_groups include/exclude patterns (shell-style)."""
    if not include_managed and MANAGED_NODEGROUP_TAG in group.get("tags", {}):
        return False
    if node_groups and not _matches(group["name"], node_groups):
        return False
    if exclude_node_groups and _matches(group["name"], exclude_node_groups):
        return False
    return True


def current_template_version(group, templates):
    """(version number as str, image id) the group launches now, or (None, None) when unknown.

    The group's version spec may be a number, "$Latest" or "$Default"; `templates` holds
    what DescribeLaunchTemplateVersions said for each spec.
    """
    spec = group.get("launch_template")
    if not spec:
        return None, None
    resolved = templates.get(spec["id"], {}).get(spec.get("version") or "$Default")
    if not resolved:
        return None, None
    return str(resolved["version"]), resolved.get("image_id")


def instance_template_version(member, instance):
    """The launch template version an instance was launched with (EC2 tag first, then the ASG's report)."""
    version = (instance or {}).get("launch_template_version") or member.get("launch_template_version")
    if version and not str(version).startswith("$"):
        return str(version)
    return None


def outdated_reasons(group, member, instance, templates):
    """Why an instance no longer matches its group's current launch template; [] when it does."""
    current_version, current_image = current_template_version(group, templates)
    reasons = []
    launched_version = instance_template_version(member, instance)
    template = group.get("launch_template") or {}
    launched_template = instance.get("launch_template_id")
    if template.get("id") and launched_template and launched_template != template["id"]:
        reasons.append("launch template {0} differs from the group's {1}".format(launched_template, template["id"]))
    elif current_version and launched_version and launched_version != current_version:
        reasons.append("launch template version {0} differs from the group's current version {1}".format(launched_version, current_version))
    if current_image and instance.get("image_id") and instance["image_id"] != current_image:
        reasons.append("AMI {0} differs from the group's current AMI {1}".format(instance["image_id"], current_image))
    return reasons


def node_index(nodes):
    """Node records keyed by instance id (from spec.providerID) and by node name."""
    by_instance, by_name = {}, {}
    for node in nodes:
        if node.get("instance_id"):
            by_instance[node["instance_id"]] = node
        by_name[node["name"]] = node
    return by_instance, by_name


def compact_node(node):
    """A Kubernetes Node (API JSON) -> the fields the inventory uses."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    provider_id = spec.get("providerID") or ""
    instance_id = provider_id.rsplit("/", 1)[-1] if provider_id.startswith("aws://") else None
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return {
        "name": metadata.get("name"),
        "instance_id": instance_id,
        "labels": dict(sorted((metadata.get("labels") or {}).items())),
        "taints": [
            {"key": t.get("key"), "value": t.get("value", ""), "effect": t.get("effect")} for t in spec.get("taints") or []
        ],
        "unschedulable": bool(spec.get("unschedulable", False)),
        "ready": ready.get("status") == "True",
        "ready_reason": ready.get("reason", ""),
        "kubelet_version": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
    }


def kubelet_minor(version):
    """'v1.31.2-eks-abc' -> '1.31'; '' when it cannot be read."""
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    return "{0}.{1}".format(match.group(1), match.group(2)) if match else ""


def _host_record(region, group, member, instance, templates):
    current_version, current_image = current_template_version(group, templates)
    reasons = outdated_reasons(group, member, instance, templates)
    template = group.get("launch_template") or {}
    values = {
        "instance_id": instance["instance_id"],
        "region": region,
        "cluster": group["cluster"],
        "node_group": group["name"],
        "availability_zone": member.get("availability_zone") or instance.get("availability_zone"),
        "instance_type": instance.get("instance_type"),
        "lifecycle": instance.get("lifecycle", "on_demand"),
        "instance_state": instance.get("state"),
        "lifecycle_state": member.get("lifecycle_state"),
        "health_status": member.get("health_status"),
        "protected_from_scale_in": bool(member.get("protected_from_scale_in")),
        "private_ip_address": instance.get("private_ip_address"),
        "private_dns_name": instance.get("private_dns_name"),
        "node_name": instance.get("private_dns_name"),
        "launch_template_id": instance.get("launch_template_id") or template.get("id"),
        "launch_template_name": template.get("name"),
        "launch_template_version": instance_template_version(member, instance),
        "current_launch_template_version": current_version,
        "image_id": instance.get("image_id"),
        "current_image_id": current_image,
        "outdated": bool(reasons),
        "outdated_reasons": reasons,
        "launch_time": instance.get("launch_time"),
        "tags": dict(sorted(instance.get("tags", {}).items())),
    }
    return values


def _kube_values(node):
    if node is None:
        return {"joined": False, "ready": False, "ready_reason": "", "unschedulable": False, "kubelet_version": "", "labels": {}, "taints": []}
    return {
        "joined": True,
        "node_name": node["name"],
        "ready": node["ready"],
        "ready_reason": node["ready_reason"],
        "unschedulable": node["unschedulable"],
        "kubelet_version": node["kubelet_version"],
        "labels": node["labels"],
        "taints": node["taints"],
    }


def default_groups(values, kubernetes):
    """The groups a host belongs to (besides its node group, nested under the cluster group)."""
    groups = [
        group_name("region", values["region"]),
        group_name("az", values["availability_zone"]),
        group_name("instance_type", values["instance_type"]),
        "spot" if values["lifecycle"] == "spot" else "on_demand",
        group_name("lifecycle_state", snake_state(values["lifecycle_state"] or "unknown")),
    ]
    if values["outdated"]:
        groups.append("outdated")
    if kubernetes:
        if not values["joined"]:
            groups.append("not_joined")
        elif not values["ready"]:
            groups.append("not_ready")
        if values["unschedulable"]:
            groups.append("cordoned")
        minor = kubelet_minor(values["kubelet_version"])
        if minor:
            groups.append(group_name("kubelet", minor))
    return groups


def connection_vars(values, connection):
    """ansible_* variables for `connection` ('ssh' or 'ssm')."""
    if connection == "ssm":
        return {
            "ansible_connection": SSM_CONNECTION,
            "ansible_aws_ssm_instance_id": values["instance_id"],
            "ansible_aws_ssm_region": values["region"],
        }
    if values.get("private_ip_address"):
        return {"ansible_host": values["private_ip_address"]}
    return {}


def build_inventory(fleet, hostnames=None, lifecycle_states=None, kubernetes=False, connection="ssh",
                    node_groups=None, exclude_node_groups=None, include_managed=False):
    """Hosts and groups for a fleet (list of region records), sorted and deterministic.

    Returns {"hosts": {name: {var: value}}, "groups": {group: sorted host names},
    "children": {parent group: sorted child groups}} with every dict key sorted.
    Raises InventoryConfigError when two instances would get the same host name.
    """
    preferences = validate_hostnames(hostnames)
    states = set(validate_lifecycle_states(lifecycle_states))
    if connection not in ("ssh", "ssm"):
        raise InventoryConfigError("connection {0!r} is not supported; use ssh or ssm".format(connection))
    hosts, owners, groups, children = {}, {}, {}, {}
    for region_record in sorted(fleet, key=lambda r: r["region"]):
        region = region_record["region"]
        templates = region_record.get("launch_templates", {})
        instances = region_record.get("instances", {})
        nodes = region_record.get("nodes", {})
        for group in sorted(region_record.get("groups", []), key=lambda g: g["name"]):
            if not group_selected(group, node_groups, exclude_node_groups, include_managed):
                continue
            by_instance, by_name = node_index(nodes.get(group["cluster"], []))
            for member in sorted(group.get("instances", []), key=lambda m: m["instance_id"]):
                if member.get("lifecycle_state") not in states:
                    continue
                instance = instances.get(member["instance_id"])
                if instance is None:
                    continue  # terminated between the two calls
                values = _host_record(region, group, member, instance, templates)
                if kubernetes:
                    node = by_instance.get(instance["instance_id"]) or by_name.get(instance.get("private_dns_name") or "")
                    values.update(_kube_values(node))
                name = hostname_for(instance, preferences)
                if not name:
                    continue
                if name in owners:
                    raise InventoryConfigError(
                        "hostname {0!r} names both {1} and {2}; put a unique choice such as private-dns-name or instance-id "
                        "first in hostnames".format(name, owners[name], instance["instance_id"])
                    )
                owners[name] = instance["instance_id"]
                hostvars = {HOSTVAR_PREFIX + key: value for key, value in values.items()}
                hostvars.update(connection_vars(values, connection))
                hosts[name] = dict(sorted(hostvars.items()))
                cluster_group = group_name("cluster", group["cluster"])
                node_group = group_name("node_group", group["name"])
                children.setdefault(cluster_group, set()).add(node_group)
                groups.setdefault(cluster_group, set())
                groups.setdefault(node_group, set()).add(name)
                for extra in default_groups(values, kubernetes):
                    groups.setdefault(extra, set()).add(name)
    return {
        "hosts": dict(sorted(hosts.items())),
        "groups": {g: sorted(members) for g, members in sorted(groups.items())},
        "children": {g: sorted(members) for g, members in sorted(children.items())},
    }
