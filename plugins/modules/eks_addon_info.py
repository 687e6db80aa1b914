#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_addon_info
short_description: List the add-ons of an EKS cluster and the versions available for an add-on
version_added: 0.1.0
description:
  - With O(cluster_name), returns the add-ons installed on the cluster with their status and
    health issues.
  - With O(name), also returns the versions of that add-on compatible with a Kubernetes version
    (O(kubernetes_version), or the cluster's version), highest first, the EKS default flagged.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
options:
  cluster_name:
    description:
      - Name of the EKS cluster whose add-ons to list.
      - At least one of O(cluster_name) and O(name) with O(kubernetes_version) is required.
    type: str
  name:
    description:
      - Only this add-on, and list the versions available for it.
    type: str
    aliases: [addon_name]
  kubernetes_version:
    description:
      - Kubernetes version (C(1.31)) to list compatible versions of O(name) for.
      - Defaults to the version of O(cluster_name).
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Health of every add-on of the cluster
  selfmanaged.eks.eks_addon_info:
    cluster_name: prod
  register: addons

- name: Versions of CoreDNS for Kubernetes 1.32 (before upgrading the control plane)
  selfmanaged.eks.eks_addon_info:
    name: coredns
    kubernetes_version: "1.32"
  register: coredns

- name: Show the default
  ansible.builtin.debug:
    msg: "{{ coredns.default_version }}"
"""

RETURN = r"""
addons:
  description: Installed add-ons (DescribeAddon, snake_case; tags keep their keys). Empty without O(cluster_name).
  returned: always
  type: list
  elements: dict
  contains:
    addon_name:
      description: Name of the add-on.
      type: str
    addon_version:
      description: Installed version.
      type: str
    status:
      description: Status of the add-on.
      type: str
      sample: DEGRADED
    health:
      description: C(issues), each with C(code), C(message) and C(resource_ids).
      type: dict
kubernetes_version:
  description: The Kubernetes version the available versions are compatible with.
  returned: when O(name) is given
  type: str
  sample: "1.31"
available_versions:
  description: Versions of O(name) compatible with RV(kubernetes_version), highest first.
  returned: when O(name) is given
  type: list
  elements: dict
  contains:
    version:
      description: Add-on version.
      type: str
      sample: v1.19.2-eksbuild.1
    default:
      description: Whether EKS installs this version by default for that Kubernetes version.
      type: bool
default_version:
  description: The version flagged default (null when none is).
  returned: when O(name) is given
  type: str
latest_version:
  description: The highest compatible version (null when none is).
  returned: when O(name) is given
  type: str
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import compatible_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule, all_pages_or_empty, aws_client, describe_cluster, describe_or_none


def list_addon_names(eks, cluster_name):
    return all_pages_or_empty(eks.list_addons, "addons", clusterName=cluster_name)


def describe_addons(eks, cluster_name, names):
    found = []
    for name in names:
        # None: deleted between the list and the describe.
        addon = describe_or_none(eks.describe_addon, "addon", clusterName=cluster_name, addonName=name)
        if addon is not None:
            found.append(camel_dict_to_snake_dict(addon, ignore_list=["tags"]))
    return found


def version_entries(eks, name, kubernetes_version):
    # An add-on name EKS does not know has no versions.
    entries = all_pages_or_empty(eks.describe_addon_versions, "addons", addonName=name, kubernetesVersion=kubernetes_version)
    return [entry for entry in entries if entry.get("addonName") == name]


def main():
    argument_spec = dict(
        cluster_name=dict(type="str"),
        name=dict(type="str", aliases=["addon_name"]),
        kubernetes_version=dict(type="str"),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True, required_one_of=[["cluster_name", "name"]])
    params = module.params
    eks = aws_client(module, "eks")
    result = dict(changed=False, addons=[])
    try:
        cluster = None
        if params["cluster_name"]:
            cluster = describe_cluster(eks, params["cluster_name"])
            if cluster is None:
                module.fail_json(
                    msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(params["cluster_name"], module.region)
                )
            names = [params["name"]] if params["name"] else list_addon_names(eks, params["cluster_name"])
            result["addons"] = describe_addons(eks, params["cluster_name"], names)
        if params["name"]:
            kubernetes_version = params["kubernetes_version"] or (cluster or {}).get("version")
            if not kubernetes_version:
                module.fail_json(msg="set kubernetes_version (for example '1.31') or cluster_name to list the versions of {0}".format(params["name"]))
            versions = compatible_versions(version_entries(eks, params["name"], kubernetes_version), kubernetes_version)
            defaults = [v["version"] for v in versions if v["default"]]
            result.update(
                kubernetes_version=kubernetes_version,
                available_versions=versions,
                default_version=defaults[0] if defaults else None,
                latest_version=versions[0]["version"] if versions else None,
            )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="could not describe EKS add-ons")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
