# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""An EKS add-on as data: the checks EKS would make, and the change from what DescribeAddon
says to what the task asks for (version, configuration, IRSA role, Pod Identity
associations, tags).

Pure functions, no AWS or Ansible imports: `plugins/modules/eks_addon.py` reads the add-on,
calls these, and applies what they return. Version resolution lives in addon_versions.py,
configuration parsing in addon_config.py.
"""

from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import parse_configuration
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import render_configuration
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import ArnError
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import validated_role_arn
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tags_after

# Add-ons whose pods need a node: DEGRADED is expected while the cluster has none.
NODE_DEPENDENT_ADDONS = frozenset(
    [
        "coredns",
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
        "snapshot-controller",
        "aws-mountpoint-s3-csi-driver",
        "aws-guardduty-agent",
        "amazon-cloudwatch-observability",
        "adot",
        "metrics-server",
    ]
)
FAILED_STATES = ("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED")
CREATE_CONFLICT_RESOLUTIONS = ("NONE", "OVERWRITE")


class AddonError(ValueError):
    """A request EKS would refuse; the message names the option, the value and the fix."""


def validated_create_conflicts(value):
    """resolve_conflicts_on_create upper-cased, or None; raises AddonError for what EKS refuses on create."""
    if value is None:
        return None
    if value.upper() == "PRESERVE":
        raise AddonError(
            "resolve_conflicts_on_create PRESERVE is not allowed: EKS accepts PRESERVE only when updating an add-on; "
            "use NONE or OVERWRITE on create and put PRESERVE in resolve_conflicts_on_update"
        )
    if value.upper() not in CREATE_CONFLICT_RESOLUTIONS:
        raise AddonError("resolve_conflicts_on_create {0!r} is not valid; use NONE or OVERWRITE".format(value))
    return value.upper()


def check_role_arns(service_account_role_arn, pod_identity_associations):
    """Raise AddonError naming the first option whose value is not an IAM role ARN."""
    arns = []
    if service_account_role_arn:
        arns.append(("service_account_role_arn", service_account_role_arn))
    for index, association in enumerate(pod_identity_associations or []):
        arns.append(("pod_identity_associations[{0}].role_arn".format(index), association["role_arn"]))
    for option, arn in arns:
        try:
            validated_role_arn(arn, option)
        except ArnError as exc:
            raise AddonError(str(exc))


def wanted_associations(pod_identity_associations):
    """The task's [{service_account, role_arn}] sorted, or None when associations are not managed."""
    if pod_identity_associations is None:
        return None
    return sorted(
        ({"service_account": a["service_account"], "role_arn": a["role_arn"]} for a in pod_identity_associations),
        key=lambda a: (a["service_account"], a["role_arn"]),
    )


def association_id(arn):
    """The id of a Pod Identity association from its ARN (the last path segment)."""
    return arn.rsplit("/", 1)[-1]


def api_associations(associations):
    return [{"serviceAccount": a["service_account"], "roleArn": a["role_arn"]} for a in associations]


def health_text(addon):
    issues = ((addon or {}).get("health") or {}).get("issues") or []
    if not issues:
        return "no health issues reported"
    return "; ".join(
        "{0}: {1}{2}".format(i.get("code"), i.get("message"), " ({0})".format(", ".join(i["resourceIds"])) if i.get("resourceIds") else "")
        for i in issues
    )


def describe_state(addon):
    if addon is None:
        return "not found"
    return "{0} at {1} ({2})".format(addon.get("status"), addon.get("addonVersion"), health_text(addon))


def failure_reason(addon):
    """Why waiting for `addon` to settle is pointless, or None."""
    if addon is None:
        return "the add-on disappeared"
    if addon.get("status") in FAILED_STATES:
        return "status {0}, health issues: {1}".format(addon["status"], health_text(addon))
    return None


def degraded_for_want_of_nodes(name, addon, available_nodes):
    """True when add-on `name` is DEGRADED only because no node can run its pods.

    `available_nodes` is the number of Ready, schedulable nodes, or None when the Kubernetes
    API could not be asked; then the add-on's own DEGRADED state is trusted (a replica
    shortfall means no node runs the pods).
    """
    if addon is None or addon.get("status") != "DEGRADED" or name not in NODE_DEPENDENT_ADDONS:
        return False
    return available_nodes is None or available_nodes == 0


def addon_view(version, configuration, role_arn, associations, tags):
    """The add-on as diffs show it (configuration parsed, so key order and JSON vs YAML do not matter)."""
    return {
        "addon_version": version,
        "configuration_values": parse_configuration(configuration),
        "service_account_role_arn": role_arn or None,
        "pod_identity_associations": associations,
        "tags": tags or {},
    }


def create_request(cluster_name, name, version, params, associations):
    """CreateAddon keyword arguments (without the client request token)."""
    request = dict(clusterName=cluster_name, addonName=name, addonVersion=version)
    if params["configuration_values"]:
        request["configurationValues"] = render_configuration(params["configuration_values"])
    if params["service_account_role_arn"]:
        request["serviceAccountRoleArn"] = params["service_account_role_arn"]
    if params["resolve_conflicts_on_create"]:
        request["resolveConflicts"] = params["resolve_conflicts_on_create"]
    if params["tags"]:
        request["tags"] = params["tags"]
    if associations:
        request["podIdentityAssociations"] = api_associations(associations)
    return request


def planned_changes(current, have_associations, target, params):
    """What an update does to the existing add-on `current` (DescribeAddon dict).

    `have_associations`: its Pod Identity associations ([{service_account, role_arn}]; None when
    the task does not manage them); `target`: the resolved version; `params`: the module's
    options. Returns a dict: configuration, role_arn, associations (each None when unchanged),
    tags_to_set, tags_to_remove, and before/after views for the diff.
    """
    config = params["configuration_values"]
    role = params["service_account_role_arn"]
    wanted = wanted_associations(params["pod_identity_associations"])
    current_role = current.get("serviceAccountRoleArn") or ""
    config_changed = config is not None and parse_configuration(current.get("configurationValues")) != config
    role_changed = role is not None and role != current_role
    associations_changed = wanted is not None and wanted != have_associations
    to_set, to_remove = tag_changes(current.get("tags"), params["tags"], params["purge_tags"])

    before = addon_view(
        current.get("addonVersion"), current.get("configurationValues"), current.get("serviceAccountRoleArn"), have_associations, current.get("tags")
    )
    after = addon_view(
        target,
        config if config is not None else current.get("configurationValues"),
        role if role is not None else current.get("serviceAccountRoleArn"),
        wanted if wanted is not None else have_associations,
        tags_after(current.get("tags"), to_set, to_remove),
    )
    if have_associations is None:
        before.pop("pod_identity_associations")
        after.pop("pod_identity_associations")
    return {
        # "{}" rather than "" to clear: an explicit empty document.
        "configuration": (render_configuration(config) or "{}") if config_changed else None,
        "role_arn": role if role_changed else None,
        "associations": api_associations(wanted) if associations_changed else None,
        "tags_to_set": to_set,
        "tags_to_remove": to_remove,
        "before": before,
        "after": after,
    }


def update_fields(changes):
    """The UpdateAddon fields of `changes` (planned_changes), for the last step of an upgrade path."""
    fields = {}
    if changes["configuration"] is not None:
        fields["configurationValues"] = changes["configuration"]
    if changes["role_arn"] is not None:
        fields["serviceAccountRoleArn"] = changes["role_arn"]
    if changes["associations"] is not None:
        fields["podIdentityAssociations"] = changes["associations"]
    return fields
