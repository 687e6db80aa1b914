# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The shape of the eks_nodes inventory: which instances are hosts, their names, groups and variables.

Pure functions over plain dicts, no AWS or Ansible imports, unit-tested without a server.
`inventory_aws.py` reads one fleet record per region (the fleet model's records, see
`module_utils/fleet.py`, which also decides what outdated and Ready mean);
`build_inventory()` turns a fleet into sorted hosts and groups.

Fleet record (one per region):
    {"region": "us-east-1",
     "groups": [group records],
     "instances": {instance_id: instance record},
     "launch_templates": {template_id: {version spec ("$Latest", "$Default", "3"): {"version", "image_id"}}},
     "nodes": {cluster: [node records]}   # only with kubernetes: true
    }
"""

import fnmatch
import functools
import re

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet as fm

HOSTVAR_PREFIX = "eks_node_"

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
    if not include_managed and fm.is_managed_nodegroup(group):
        return False
    if node_groups and not _matches(group["name"], node_groups):
        return False
    if exclude_node_groups and _matches(group["name"], exclude_node_groups):
        return False
    return True


# Instance record fields that are not host variables (the codes are for the roles' modules).
_NOT_HOSTVARS = ("outdated_codes",)


def _host_record(region, group, member, instance, templates):
    values = fm.instance_record(group, member, instance, templates)
    for key in _NOT_HOSTVARS:
        del values[key]
    values.update({
        "region": region,
        "cluster": group["cluster"],
        "node_group": group["name"],
        "node_name": instance.get("private_dns_name"),
        "tags": dict(sorted(instance.get("tags", {}).items())),
    })
    return values


def _kube_values(node):
    """Host variables of an instance's Node (the fleet model's node_record, as the inventory has always named them)."""
    record = fm.node_record(node)
    values = {key: record[key] for key in ("joined", "ready", "ready_reason", "unschedulable", "kubelet_version")}
    if node is None:
        values.update({"labels": {}, "taints": []})
    else:
        values.update({"node_name": record["node_name"], "labels": node["labels"], "taints": node["taints"]})
    return values


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
        minor = fm.kubelet_minor(values["kubelet_version"])
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
            by_instance, by_name = fm.node_index(nodes.get(group["cluster"], []))
            for member in sorted(group.get("instances", []), key=lambda m: m["instance_id"]):
                if member.get("lifecycle_state") not in states:
                    continue
                instance = instances.get(member["instance_id"])
                if instance is None:
                    continue  # terminated between the two calls
                values = _host_record(region, group, member, instance, templates)
                if kubernetes:
                    node = fm.node_of_instance(instance, by_instance, by_name)
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
