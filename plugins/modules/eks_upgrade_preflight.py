#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_upgrade_preflight
short_description: Check that an EKS cluster can be upgraded to a version, and plan the steps
version_added: 0.1.0
description:
  - Reads the cluster, the kubelet version of every Node, the installed EKS add-ons and the
    versions available for them, and the cluster's upgrade insights, and fails before anything
    changes when the upgrade to O(version) cannot go through.
  - "Checks: O(version) is supported, not older than the cluster and, with O(step_through=false),
    at most one minor version away; no kubelet breaks the version skew policy at any control
    plane step; every installed add-on has a version for every step; no upgrade insight is
    C(ERROR) (when the EKS API answers C(ListInsights); otherwise a note says it was skipped)."
  - Returns the steps (one minor version each) and the versions whose add-on and node phases
    run, the current version first, so that a run that failed half-way is finished by the next.
  - Never writes; the same in check mode.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
requirements:
  - urllib3, to read the kubelet versions of the nodes
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  cluster_name:
    description:
      - Name of the EKS cluster.
    type: str
    required: true
  version:
    description:
      - The Kubernetes version (C(MAJOR.MINOR)) to upgrade to, for example V(1.32).
    type: str
    required: true
  step_through:
    description:
      - Whether one run may pass through several minor versions (each upgraded and waited for in turn).
      - With V(false) a target more than one minor version away is refused.
    type: bool
    default: true
  nodes_follow:
    description:
      - Whether the node groups are replaced with the new version's AMI after every control plane step.
      - With V(true) only the first step meets today's kubelets; with V(false) every step does.
    type: bool
    default: true
  check_node_skew:
    description:
      - List the cluster's Node objects through the Kubernetes API (EKS token signed with the
        task's AWS credentials) and check kubelet skew at each step.
      - Set to V(false) only when the API server cannot be reached from the controller and you
        have checked node versions yourself.
    type: bool
    default: true
  check_insights:
    description:
      - Read the cluster's C(UPGRADE_READINESS) insights (C(ListInsights)). When the API does not
        answer (an older endpoint, a partition without insights, missing permission) the check is
        skipped with a note in RV(notes).
    type: bool
    default: true
  fail_on_insight_errors:
    description:
      - Refuse the upgrade when an insight has status C(ERROR). C(WARNING) insights are only reported.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Read-only. Supports check mode (the same reads, the same result).
  - Upgrade insights are refreshed by EKS about once a day; an insight fixed since may still read C(ERROR).
"""

EXAMPLES = r"""
- name: Can prod go to 1.32, and through which steps?
  selfmanaged.eks.eks_upgrade_preflight:
    cluster_name: prod
    version: "1.32"
  register: preflight

- name: One minor at a time only (fails for a target two minors away)
  selfmanaged.eks.eks_upgrade_preflight:
    cluster_name: prod
    version: "1.31"
    step_through: false
"""

RETURN = r"""
current_version:
  description: The control plane's version now.
  returned: always
  type: str
  sample: "1.30"
target_version:
  description: O(version), normalised.
  returned: always
  type: str
  sample: "1.32"
steps:
  description: The versions the control plane is upgraded to, one minor each, in order; empty when it is at the target.
  returned: always
  type: list
  elements: str
  sample: ["1.31", "1.32"]
runs:
  description:
    - The versions whose phases run, in order. The first is the current version with C(control_plane=false)
      (add-ons and nodes only, which change nothing when they are already there); then one per step.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "1.30", "control_plane": false}, {"version": "1.31", "control_plane": true}]
kubelet_versions:
  description: Node name -> kubelet version of every Node (empty with O(check_node_skew=false)).
  returned: always
  type: dict
  sample: {"ip-10-0-1-5.ec2.internal": "v1.30.4-eks-a737599"}
addons:
  description: Installed add-on names.
  returned: always
  type: list
  elements: str
addon_defaults:
  description: For the current version and every step, add-on name -> the version EKS flags as default.
  returned: always
  type: dict
  sample: {"1.31": {"coredns": "v1.11.3-eksbuild.2"}}
insights:
  description: One line per upgrade insight, C(STATUS) then its name and reason; empty when skipped or none.
  returned: always
  type: list
  elements: str
notes:
  description: What was not checked, and why.
  returned: always
  type: list
  elements: str
problems:
  description: Why the upgrade is refused (the module fails with them); empty when it may go ahead.
  returned: always
  type: list
  elements: str
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import upgrade as logic
from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import compatible_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule, all_pages, all_pages_or_empty, aws_client, describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import ClusterConfigError, validate_target_version

KUBE_REQUEST_TIMEOUT = 30


def kubelet_versions(module, cluster):
    """{node name: kubelet version} of the cluster's Nodes (the fleet model's node records)."""
    from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client

    api = kube_api_client(module, cluster)
    try:
        nodes = list_nodes(api, timeout=KUBE_REQUEST_TIMEOUT)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(
            msg="cannot list the nodes of cluster {0} to check kubelet versions: {1}; make the API server reachable with the task's AWS "
            "identity, or set check_node_skew=false after checking node versions yourself".format(cluster["name"], exc)
        )
    return dict((node["name"], node["kubelet_version"]) for node in nodes if node["kubelet_version"])


def addon_versions_by_version(eks, names, versions):
    """{kubernetes version: {add-on: compatible versions}} for each installed add-on."""
    found = {}
    for version in versions:
        found[version] = {}
        for name in names:
            entries = all_pages_or_empty(eks.describe_addon_versions, "addons", addonName=name, kubernetesVersion=version)
            found[version][name] = compatible_versions([e for e in entries if e.get("addonName") == name], version)
    return found


def upgrade_insights(eks, cluster_name):
    """ListInsights' UPGRADE_READINESS summaries, or None when the API does not answer."""
    try:
        return all_pages(eks.list_insights, "insights", clusterName=cluster_name, filter={"categories": [logic.UPGRADE_INSIGHT_CATEGORY]})
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, AttributeError):
        return None


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        version=dict(type="str", required=True),
        step_through=dict(type="bool", default=True),
        nodes_follow=dict(type="bool", default=True),
        check_node_skew=dict(type="bool", default=True),
        check_insights=dict(type="bool", default=True),
        fail_on_insight_errors=dict(type="bool", default=True),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["cluster_name"]
    eks = aws_client(module, "eks")
    result = dict(changed=False, kubelet_versions={}, addons=[], addon_defaults={}, insights=[], notes=[], problems=[])
    try:
        cluster = describe_cluster(eks, name)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(name))
    if cluster is None:
        module.fail_json(msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(name, module.region), **result)
    result["current_version"] = cluster["version"]
    try:
        result["target_version"] = validate_target_version(params["version"])
        steps = logic.upgrade_steps(cluster["version"], params["version"], step_through=params["step_through"])
        runs = logic.upgrade_runs(cluster["version"], steps)
    except ClusterConfigError as exc:
        module.fail_json(msg="cluster {0}: {1}. Nothing was changed.".format(name, exc), **result)
    result.update(steps=steps, runs=runs)
    if cluster.get("status") != "ACTIVE":
        module.fail_json(
            msg="cluster {0} is {1}: EKS accepts one update at a time; wait until it is ACTIVE (selfmanaged.eks.eks_cluster_info) "
            "and run again. Nothing was changed.".format(name, cluster.get("status")),
            **result
        )

    problems = []
    if params["check_node_skew"]:
        params["kubeconfig"] = params["host"] = params["context"] = None
        result["kubelet_versions"] = kubelet_versions(module, cluster)
        problems.extend(logic.skew_problems(steps, result["kubelet_versions"], nodes_follow=params["nodes_follow"]))
    else:
        result["notes"].append("kubelet skew not checked (check_node_skew=false)")

    try:
        result["addons"] = sorted(all_pages_or_empty(eks.list_addons, "addons", clusterName=name))
        available = addon_versions_by_version(eks, result["addons"], [run["version"] for run in runs])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot read the add-ons of cluster {0} and their versions".format(name))
    problems.extend(logic.addon_version_problems(result["addons"], dict((s, available[s]) for s in steps)))
    result["addon_defaults"] = logic.default_addon_versions(available)

    if params["check_insights"] and steps:
        insights = upgrade_insights(eks, name)
        if insights is None:
            result["notes"].append("upgrade insights skipped: the EKS API did not answer ListInsights for cluster {0}".format(name))
        else:
            result["insights"] = [logic.insight_summary(i) for i in insights]
            if params["fail_on_insight_errors"]:
                problems.extend(logic.insight_problems(insights))

    result["problems"] = problems
    if problems:
        module.fail_json(
            msg="cluster {0} cannot be upgraded from {1} to {2}: {3}. Nothing was changed.".format(
                name, cluster["version"], result["target_version"], "; ".join(problems)
            ),
            **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
