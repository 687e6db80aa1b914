#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_addon
short_description: Manage an Amazon EKS add-on (VPC CNI, CoreDNS, kube-proxy, CSI drivers, ...)
version_added: 0.1.0
description:
  - Creates, updates and deletes an EKS add-on through the EKS add-on API.
  - Resolves O(version) keywords and partial versions against the versions compatible with the
    cluster's Kubernetes version, and upgrades one minor version at a time.
  - Validates O(configuration_values) locally against the add-on version's JSON schema
    (DescribeAddonConfiguration) before anything changes, and compares configurations
    semantically, so key order and JSON vs YAML never cause a change.
  - CoreDNS, the CSI controllers and the snapshot controller cannot run before the cluster has a
    node; when such an add-on is C(DEGRADED) and the cluster has no Ready node, the module does
    not fail; it warns and returns RV(degraded_without_nodes=true).
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
requirements:
  - urllib3, to tell a CoreDNS or CSI controller DEGRADED for want of nodes from a real problem (counts the Ready nodes)
  - jsonschema, to check O(configuration_values) against the add-on's configuration schema before any change
  - PyYAML, to read O(configuration_values) given as a YAML string
options:
  cluster_name:
    description:
      - Name of the EKS cluster.
    type: str
    required: true
  name:
    description:
      - Name of the add-on, for example C(vpc-cni), C(coredns), C(kube-proxy),
        C(eks-pod-identity-agent), C(aws-ebs-csi-driver).
    type: str
    required: true
    aliases: [addon_name]
  state:
    description:
      - Whether the add-on should be installed.
    type: str
    choices: [present, absent]
    default: present
  version:
    description:
      - C(default) is the version EKS marks as default for the cluster's Kubernetes version.
      - C(latest) is the highest version compatible with the cluster.
      - An exact version such as C(v1.19.2-eksbuild.1) (the leading C(v) is optional).
      - A partial version such as C(v1.19) or C(v1.19.2) means the highest compatible version that
        starts with it.
      - An unknown or incompatible version fails with the list of compatible versions.
      - With C(default) or C(latest), an add-on already newer than the resolved version is left
        alone (EKS cannot downgrade add-ons); an explicit lower version fails.
    type: str
    default: default
  configuration_values:
    description:
      - Configuration of the add-on, as a dict or as a JSON or YAML string.
      - Validated against the schema of the target version before any change; the error names the
        path in the configuration and in the schema.
      - Omit to leave the configuration as it is; set to V({}) to remove it.
    type: raw
  resolve_conflicts_on_create:
    description:
      - How to handle fields of existing Kubernetes objects that differ from the add-on's when creating it.
      - C(PRESERVE) is only valid on update and is refused.
      - When omitted EKS uses C(NONE).
    type: str
  resolve_conflicts_on_update:
    description:
      - How to handle fields changed on the cluster when updating the add-on.
      - When omitted EKS uses C(NONE).
    type: str
    choices: [NONE, OVERWRITE, PRESERVE]
  service_account_role_arn:
    description:
      - ARN of the IAM role (IRSA) for the add-on's service account.
      - Omit to leave it as it is.
    type: str
  pod_identity_associations:
    description:
      - EKS Pod Identity associations of the add-on (needs the C(eks-pod-identity-agent) add-on).
      - Omit to leave them as they are; V([]) removes them.
    type: list
    elements: dict
    suboptions:
      service_account:
        description: Service account name in the add-on's namespace.
        type: str
        required: true
      role_arn:
        description: ARN of the IAM role the service account gets.
        type: str
        required: true
  preserve:
    description:
      - With O(state=absent), leave the add-on's software running on the cluster, unmanaged.
    type: bool
    default: false
  allow_multi_minor_upgrade:
    description:
      - Upgrade straight to the target version even when it is more than one minor version ahead.
      - By default the module steps through the highest compatible version of each minor in
        between, waiting for each step to settle.
    type: bool
    default: false
extends_documentation_fragment:
  - selfmanaged.eks.wait
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Intermediate steps of a multi-minor upgrade are always waited for, even with O(wait=false).
  - Checking for Ready nodes uses the cluster's Kubernetes API with an EKS token signed from the
    task's AWS credentials; when that fails the module trusts the add-on's health issues and says so.
"""

EXAMPLES = r"""
- name: VPC CNI at the EKS default version, with its own IRSA role and prefix delegation
  selfmanaged.eks.eks_addon:
    cluster_name: prod
    name: vpc-cni
    service_account_role_arn: arn:aws:iam::123456789012:role/prod-vpc-cni
    configuration_values:
      env:
        ENABLE_PREFIX_DELEGATION: "true"
    resolve_conflicts_on_create: OVERWRITE

- name: CoreDNS, newest compatible 1.11 patch, before any node exists
  selfmanaged.eks.eks_addon:
    cluster_name: prod
    name: coredns
    version: v1.11
  register: coredns

- name: Say when CoreDNS waits for nodes
  ansible.builtin.debug:
    msg: CoreDNS becomes ACTIVE once nodes join
  when: coredns.degraded_without_nodes

- name: EBS CSI driver with Pod Identity
  selfmanaged.eks.eks_addon:
    cluster_name: prod
    name: aws-ebs-csi-driver
    version: latest
    pod_identity_associations:
      - service_account: ebs-csi-controller-sa
        role_arn: arn:aws:iam::123456789012:role/prod-ebs-csi

- name: Remove the add-on but keep its software running
  selfmanaged.eks.eks_addon:
    cluster_name: prod
    name: kube-proxy
    state: absent
    preserve: true
"""

RETURN = r"""
addon:
  description: The add-on as DescribeAddon returns it, in snake_case (tags keep their keys). Empty when absent.
  returned: always
  type: dict
  contains:
    addon_name:
      description: Name of the add-on.
      type: str
      sample: coredns
    addon_version:
      description: Installed version.
      type: str
      sample: v1.11.4-eksbuild.2
    status:
      description: C(CREATING), C(ACTIVE), C(DEGRADED), C(UPDATING), C(CREATE_FAILED), ...
      type: str
      sample: ACTIVE
    health:
      description: Health issues (C(issues) list of C(code), C(message), C(resource_ids)).
      type: dict
    configuration_values:
      description: The configuration string EKS stores.
      type: str
    service_account_role_arn:
      description: IRSA role of the add-on's service account.
      type: str
    addon_arn:
      description: ARN of the add-on.
      type: str
    tags:
      description: Tags of the add-on.
      type: dict
resolved_version:
  description: The concrete version O(version) resolved to (the installed one when left alone).
  returned: when O(state=present)
  type: str
  sample: v1.19.2-eksbuild.1
upgrade_path:
  description: The versions the add-on was (or, in check mode, would be) updated through, target last.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [v1.18.5-eksbuild.1, v1.19.2-eksbuild.1]
degraded_without_nodes:
  description:
    - True when the add-on is C(DEGRADED) only because the cluster has no Ready node yet.
      It becomes C(ACTIVE) once nodes join.
  returned: when O(state=present)
  type: bool
timed_out:
  description:
    - Whether O(wait_timeout) ran out. The module then fails, with C(changed) true when it had already written
      (created, updated, tagged or deleted the add-on), C(waiting_for) (what it waited for) and C(last_state)
      (status, version and health issues). Running it again picks up where it stopped (it waits for an add-on
      that is still C(CREATING) or C(UPDATING), then applies what is still missing), so a role can wait in slices
      of under a minute and print the state after each.
  returned: always
  type: bool
  sample: false
waiting_for:
  description: What the module waited for when O(wait_timeout) ran out.
  returned: when RV(timed_out) is true
  type: str
  sample: add-on coredns on cluster prod to become ACTIVE
last_state:
  description: The add-on's last state when O(wait_timeout) ran out.
  returned: when RV(timed_out) is true
  type: str
  sample: "CREATING at v1.11.4-eksbuild.2 (no health issues)"
diff:
  description: Before and after (version, configuration, roles, tags) with O(ignore:--diff).
  returned: with --diff
  type: dict
"""

import uuid

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.selfmanaged.eks.plugins.module_utils import addon as logic
from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import AddonConfigurationError
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import parse_configuration
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_config import schema_errors
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import AddonVersionError
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import compatible_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import is_downgrade
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import is_keyword
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import resolve_version
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import upgrade_path
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitFailed
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages_or_empty
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until


def validate_static_params(module):
    """Every check that needs no AWS call: fail before anything happens."""
    params = module.params
    try:
        params["resolve_conflicts_on_create"] = logic.validated_create_conflicts(params["resolve_conflicts_on_create"])
        logic.check_role_arns(params["service_account_role_arn"], params["pod_identity_associations"])
        if params["configuration_values"] is not None:
            params["configuration_values"] = parse_configuration(params["configuration_values"])
    except (logic.AddonError, AddonConfigurationError) as exc:
        module.fail_json(msg=str(exc))


def describe_addon(eks, cluster_name, name):
    return describe_or_none(eks.describe_addon, "addon", clusterName=cluster_name, addonName=name)


def addon_version_entries(eks, **params):
    """The DescribeAddonVersions `addons` list; empty for an add-on name EKS does not know."""
    return all_pages_or_empty(eks.describe_addon_versions, "addons", **params)


def unknown_addon_message(eks, name, cluster_version):
    """Why no version was found: an unknown name (with the known ones) or none for this cluster version."""
    if addon_version_entries(eks, addonName=name):
        return "add-on {0!r} has no version compatible with Kubernetes {1}".format(name, cluster_version)
    known = sorted(set(entry["addonName"] for entry in addon_version_entries(eks, kubernetesVersion=cluster_version)))
    return "unknown add-on name {0!r}; add-ons available for Kubernetes {1}: {2}".format(name, cluster_version, ", ".join(known) or "none")


def current_associations(eks, cluster_name, addon):
    """[{service_account, role_arn}] of the add-on's Pod Identity associations, sorted."""
    found = []
    for arn in addon.get("podIdentityAssociations") or []:
        association = eks.describe_pod_identity_association(clusterName=cluster_name, associationId=logic.association_id(arn), aws_retry=True)["association"]
        found.append({"service_account": association["serviceAccount"], "role_arn": association["roleArn"]})
    return sorted(found, key=lambda a: (a["service_account"], a["role_arn"]))


# Most add-on changes settle within seconds: poll often at first, backing off to every few seconds.
FIRST_DELAY = 0.5
MAX_DELAY = 5.0


def poll(fetch, is_done, describe, timeout, what, is_failed):
    """wait_until() polling after FIRST_DELAY seconds, the gap doubling up to MAX_DELAY."""
    return wait_until(fetch, is_done, describe, timeout, what, is_failed, delay=FIRST_DELAY, max_delay=MAX_DELAY)


class NodeCounter:
    """Counts available (Ready, schedulable) nodes with the fleet model; None when the Kubernetes API cannot be reached."""

    def __init__(self, module, cluster):
        self.module = module
        self.cluster = cluster
        self.error = None
        self._api = None

    def available_nodes(self):
        try:
            if self._api is None:
                from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
                from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import cluster_not_ready_message, kube_api_client

                problem = cluster_not_ready_message(self.module.params["cluster_name"], self.cluster)
                if problem:
                    raise RuntimeError(problem)
                self._api = kube_api_client(self.module, self.cluster)
            nodes = list_nodes(self._api)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return None
        return sum(1 for node in nodes if fleet.is_available(node))


class AddonManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.eks = aws_client(module, "eks")
        self.cluster_name = self.params["cluster_name"]
        self.name = self.params["name"]
        self.cluster = None
        self.degraded_without_nodes = False
        self.nodes = None
        # Whether this run has written anything: a wait that timed out after a write is still a change.
        self.wrote = False

    def fail_waiting(self, exc, addon=None):
        """WaitTimeout: `timed_out` with what was awaited and its last state, so a role can wait in slices and run again."""
        details = dict(changed=self.wrote, addon=camel_dict_to_snake_dict(addon or {}, ignore_list=["tags"]))
        if isinstance(exc, WaitTimeout):
            details.update(timed_out=True, waiting_for=exc.what, last_state=exc.state)
        self.module.fail_json(msg=str(exc), **details)

    # -- waiting ---------------------------------------------------------------------------

    def waits_for_nodes(self, addon):
        """True when `addon` is DEGRADED only because the cluster has no available node."""
        if not logic.degraded_for_want_of_nodes(self.name, addon, 0):
            return False
        if self.nodes is None:
            self.nodes = NodeCounter(self.module, self.cluster)
        return logic.degraded_for_want_of_nodes(self.name, addon, self.nodes.available_nodes())

    def wait_settled(self, timeout):
        def fetch():
            return describe_addon(self.eks, self.cluster_name, self.name)

        def is_done(addon):
            if addon is None:
                return False
            if addon.get("status") == "ACTIVE":
                return True
            return self.waits_for_nodes(addon)

        try:
            what = "add-on {0} on cluster {1} to become ACTIVE".format(self.name, self.cluster_name)
            addon = poll(fetch, is_done, logic.describe_state, timeout, what, logic.failure_reason)
        except (WaitTimeout, WaitFailed) as exc:
            self.fail_waiting(exc, fetch())
        self.note_degraded(addon)
        return addon

    def note_degraded(self, addon):
        if addon and addon.get("status") == "DEGRADED" and self.waits_for_nodes(addon):
            self.degraded_without_nodes = True
            how = ""
            if self.nodes is not None and self.nodes.error:
                how = " (the Kubernetes API could not be asked for nodes: {0}; going by the health issues)".format(self.nodes.error)
            self.module.warn(
                "add-on {0} is DEGRADED because cluster {1} has no Ready node yet{2}; it becomes ACTIVE once nodes join. Health: {3}".format(
                    self.name, self.cluster_name, how, logic.health_text(addon)
                )
            )
        else:
            self.degraded_without_nodes = False

    def wait_gone(self, timeout):
        def fetch():
            return describe_addon(self.eks, self.cluster_name, self.name)

        def is_failed(addon):
            if addon and addon.get("status") == "DELETE_FAILED":
                return "status DELETE_FAILED, health issues: {0}".format(logic.health_text(addon))
            return None

        try:
            what = "add-on {0} on cluster {1} to be deleted".format(self.name, self.cluster_name)
            poll(fetch, lambda a: a is None, logic.describe_state, timeout, what, is_failed)
        except (WaitTimeout, WaitFailed) as exc:
            self.fail_waiting(exc, fetch())

    # -- desired state ---------------------------------------------------------------------

    def target_version(self, current):
        cluster_version = self.cluster.get("version")
        entries = addon_version_entries(self.eks, addonName=self.name, kubernetesVersion=cluster_version)
        versions = compatible_versions([e for e in entries if e.get("addonName") == self.name], cluster_version)
        if not versions:
            self.module.fail_json(msg=unknown_addon_message(self.eks, self.name, cluster_version))
        requested = self.params["version"]
        try:
            target = resolve_version(requested, versions, addon_name=self.name, cluster_version=cluster_version)
        except AddonVersionError as exc:
            self.module.fail_json(msg=str(exc), compatible_versions=versions)
        installed = (current or {}).get("addonVersion")
        if installed and is_downgrade(installed, target):
            if is_keyword(requested):
                # A newer add-on than the default is someone's deliberate upgrade; never undo it.
                return installed, versions
            self.module.fail_json(
                msg="add-on {0} is at {1}; version {2!r} resolves to {3}, which is lower. EKS cannot downgrade add-ons: "
                "set version to {1} or later, or delete the add-on and create it again".format(self.name, installed, requested, target)
            )
        return target, versions

    def check_configuration(self, version):
        """Fail unless the configuration matches the schema of `version`; nothing has been written yet."""
        config = self.params["configuration_values"]
        if not config:
            return
        schema = self.eks.describe_addon_configuration(addonName=self.name, addonVersion=version, aws_retry=True).get("configurationSchema")
        try:
            errors = schema_errors(config, schema)
        except AddonConfigurationError as exc:
            self.module.fail_json(msg=str(exc))
        if errors:
            self.module.fail_json(
                msg="configuration_values does not match the configuration schema of {0} {1}: {2}. "
                "Nothing was changed; fix the configuration (DescribeAddonConfiguration shows the schema)".format(self.name, version, "; ".join(errors)),
                schema_errors=errors,
            )

    # -- present ---------------------------------------------------------------------------

    def ensure_present(self):
        current = describe_addon(self.eks, self.cluster_name, self.name)
        target, versions = self.target_version(current)
        self.check_configuration(target)
        if current is None:
            return self.create(target)
        return self.update(current, target, versions)

    def create(self, target):
        params = self.params
        wanted_assoc = logic.wanted_associations(params["pod_identity_associations"])
        after = logic.addon_view(target, params["configuration_values"], params["service_account_role_arn"], wanted_assoc or [], params["tags"])
        result = dict(changed=True, resolved_version=target, upgrade_path=[], addon={}, degraded_without_nodes=False)
        result["diff"] = dict(before={}, after=after)
        if self.module.check_mode:
            return result
        request = logic.create_request(self.cluster_name, self.name, target, params, wanted_assoc)
        addon = self.eks.create_addon(aws_retry=True, clientRequestToken=str(uuid.uuid4()), **request)["addon"]
        self.wrote = True
        if params["wait"]:
            addon = self.wait_settled(params["wait_timeout"])
        result["addon"] = camel_dict_to_snake_dict(addon, ignore_list=["tags"])
        result["degraded_without_nodes"] = self.degraded_without_nodes
        return result

    def update(self, current, target, versions):
        params = self.params
        have_assoc = current_associations(self.eks, self.cluster_name, current) if params["pod_identity_associations"] is not None else None
        changes = logic.planned_changes(current, have_assoc, target, params)
        fields = logic.update_fields(changes)
        path = upgrade_path(current.get("addonVersion"), target, versions, params["allow_multi_minor_upgrade"])
        needs_update = bool(path) or bool(fields)
        changed = needs_update or bool(changes["tags_to_set"]) or bool(changes["tags_to_remove"])
        result = dict(changed=changed, resolved_version=target, upgrade_path=path, diff=dict(before=changes["before"], after=changes["after"]))
        if not changed:
            if params["wait"] and not self.module.check_mode and current.get("status") in ("CREATING", "UPDATING"):
                # A run before this one (or someone else) started the change: this run sees it through.
                current = self.wait_settled(params["wait_timeout"])
            else:
                self.note_degraded(current)
            result.update(addon=camel_dict_to_snake_dict(current, ignore_list=["tags"]), degraded_without_nodes=self.degraded_without_nodes)
            return result
        if self.module.check_mode:
            result.update(addon=camel_dict_to_snake_dict(current, ignore_list=["tags"]), degraded_without_nodes=False)
            return result

        self.wrote = True
        if changes["tags_to_remove"]:
            self.eks.untag_resource(resourceArn=current["addonArn"], tagKeys=changes["tags_to_remove"], aws_retry=True)
        if changes["tags_to_set"]:
            self.eks.tag_resource(resourceArn=current["addonArn"], tags=changes["tags_to_set"], aws_retry=True)

        if needs_update:
            if current.get("status") in ("CREATING", "UPDATING"):
                self.wait_settled(params["wait_timeout"])
            steps = path or [target]
            for index, version in enumerate(steps):
                last = index == len(steps) - 1
                request = dict(clusterName=self.cluster_name, addonName=self.name, addonVersion=version, clientRequestToken=str(uuid.uuid4()))
                if params["resolve_conflicts_on_update"]:
                    request["resolveConflicts"] = params["resolve_conflicts_on_update"]
                if last:
                    request.update(fields)
                self.eks.update_addon(aws_retry=True, **request)
                if not last or params["wait"]:
                    self.wait_settled(params["wait_timeout"])
        addon = describe_addon(self.eks, self.cluster_name, self.name) or {}
        if not params["wait"]:
            self.degraded_without_nodes = False
        result.update(addon=camel_dict_to_snake_dict(addon, ignore_list=["tags"]), degraded_without_nodes=self.degraded_without_nodes)
        return result

    # -- absent ----------------------------------------------------------------------------

    def ensure_absent(self):
        params = self.params
        current = describe_addon(self.eks, self.cluster_name, self.name)
        if current is None or (current.get("status") == "DELETING" and not params["wait"]):
            return dict(changed=False, addon={})
        if current.get("status") == "DELETING":
            self.wait_gone(params["wait_timeout"])
            return dict(changed=False, addon={})
        before = logic.addon_view(
            current.get("addonVersion"), current.get("configurationValues"), current.get("serviceAccountRoleArn"), None, current.get("tags")
        )
        before.pop("pod_identity_associations")
        result = dict(changed=True, addon={}, diff=dict(before=before, after={}))
        if self.module.check_mode:
            return result
        self.eks.delete_addon(clusterName=self.cluster_name, addonName=self.name, preserve=params["preserve"], aws_retry=True)
        self.wrote = True
        if params["wait"]:
            self.wait_gone(params["wait_timeout"])
        return result

    def run(self):
        self.cluster = describe_cluster(self.eks, self.cluster_name)
        if self.cluster is None:
            self.module.fail_json(
                msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(self.cluster_name, self.module.region)
            )
        if self.params["state"] == "absent":
            return self.ensure_absent()
        return self.ensure_present()


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        name=dict(type="str", required=True, aliases=["addon_name"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        version=dict(type="str", default="default"),
        configuration_values=dict(type="raw"),
        resolve_conflicts_on_create=dict(type="str"),
        resolve_conflicts_on_update=dict(type="str", choices=["NONE", "OVERWRITE", "PRESERVE"]),
        service_account_role_arn=dict(type="str"),
        pod_identity_associations=dict(
            type="list", elements="dict", options=dict(service_account=dict(type="str", required=True), role_arn=dict(type="str", required=True))
        ),
        preserve=dict(type="bool", default=False),
        allow_multi_minor_upgrade=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1200),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    validate_static_params(module)
    manager = AddonManager(module)
    try:
        result = manager.run()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="EKS add-on {0} on cluster {1} could not be managed".format(module.params["name"], module.params["cluster_name"]))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(timed_out=False, **result)


if __name__ == "__main__":
    main()
