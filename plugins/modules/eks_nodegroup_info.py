#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_nodegroup_info
version_added: 0.1.0
short_description: Report self-managed node groups of an EKS cluster, their instances and Nodes, and wait for them
description:
  - For each self-managed node group (Auto Scaling group) of an EKS cluster, returns the group (sizes, launch template and
    the version and AMI it launches now, suspended processes, tags), its instances, and each instance's Node.
  - Each instance says whether it is outdated (it does not run the launch template version or AMI its group launches now),
    with reasons and reason codes, and whether its Node joined, is Ready, schedulable (not cordoned) and available
    (both). The same meanings as M(selfmanaged.eks.eks_nodegroup_asg) and the C(selfmanaged.eks.eks_nodes) inventory.
  - An instance without an available Node gets a join diagnosis, checked in the order a node gets stuck. Codes
    C(pending) (EC2 is starting it, or it runs but no Node registered yet, since when and where to look), C(not_running)
    (stopped or terminating), C(wrong_bootstrap_data) (its user data names another cluster, endpoint, CA or service
    CIDR), C(not_authorized) (the node role has no C(EC2_LINUX) access entry or aws-auth mapping, as the cluster's
    authentication mode requires), C(not_ready) (registered but not Ready, look at the VPC CNI and the kubelet) and C(cordoned) (Ready,
    but not schedulable).
  - With O(wait_ready), polls until each group has that many available Nodes among its own instances, and fails with
    the per-instance diagnosis when time runs out.
  - Nodes are matched to instances by C(spec.providerID), else by private DNS name, so a group counts only its own Nodes.
requirements:
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  cluster_name:
    description:
      - Name of the EKS cluster. Its node groups are the Auto Scaling groups tagged C(kubernetes.io/cluster/<name>=owned).
      - Also how the module reaches the Kubernetes API unless O(host), O(kubeconfig) or O(context) is given.
    type: str
    required: true
  names:
    description:
      - Names of the Auto Scaling groups to report. Every name must be a group of the cluster.
      - Empty reports every self-managed node group of the cluster; the Auto Scaling groups of EKS managed node groups
        (tag C(eks:nodegroup-name)) are left out.
    type: list
    elements: str
    default: []
  node_role_arn:
    description:
      - ARN of the IAM role the nodes join with, for the C(not_authorized) diagnosis.
      - Defaults to the role of the instance profile in each group's launch template.
    type: str
  wait_ready:
    description:
      - Wait until each reported group has O(wait_ready.count) Ready Nodes among its own instances (Nodes of other groups
        never count). With O(wait_ready.schedulable=true) only available Nodes count (Ready and not cordoned).
      - A cordoned Ready Node counts by default, so a group whose node an operator cordoned for maintenance does not time
        out a re-run of the playbook that created it.
      - On timeout the module fails; its message lists every instance that is short and why, and the result carries the
        same RV(node_groups) as without waiting.
      - Omit to report once, without waiting.
    type: dict
    suboptions:
      count:
        description:
          - Ready (or, with O(wait_ready.schedulable), available) Nodes each group needs. Defaults to each group's desired
            capacity.
        type: int
      schedulable:
        description:
          - Count only Nodes that are also schedulable (not cordoned), that is available.
        type: bool
        default: false
      timeout:
        description:
          - Seconds to wait for all groups together.
        type: int
        default: 600
      delay:
        description:
          - Seconds between the first polls; the gap doubles up to O(wait_ready.max_delay).
        type: int
        default: 5
      max_delay:
        description:
          - Longest gap between polls, in seconds. Defaults to four times O(wait_ready.delay); set it to O(wait_ready.delay)
            to poll at a fixed interval (a caller that acts as soon as the nodes are Ready, such as a rolling replacement).
        type: int
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Supports check mode; the module never changes anything.
  - The C(wrong_bootstrap_data) check reads the user data of instances without a Node (DescribeInstanceAttribute) and
    knows the format from the AMI's name; instances of custom AMIs with other names skip it.
  - The C(not_authorized) check calls DescribeAccessEntry (authentication modes C(API), C(API_AND_CONFIG_MAP)) and reads
    C(kube-system/aws-auth) (C(CONFIG_MAP), C(API_AND_CONFIG_MAP)) once per node role, only when an instance has no Node.
seealso:
  - module: selfmanaged.eks.eks_nodegroup_asg
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Every self-managed node group of the cluster
  selfmanaged.eks.eks_nodegroup_info:
    cluster_name: demo
  register: fleet

- name: Instances that run an old launch template version or AMI
  ansible.builtin.debug:
    msg: "{{ fleet.node_groups | map(attribute='instances') | flatten | selectattr('outdated') | map(attribute='instance_id') }}"

- name: Wait until the general group has its desired number of Ready nodes
  selfmanaged.eks.eks_nodegroup_info:
    cluster_name: demo
    names: [demo-general]
    wait_ready:
      timeout: 900

- name: Wait for at least two available (Ready, not cordoned) nodes per group, naming the node role for the diagnosis
  selfmanaged.eks.eks_nodegroup_info:
    cluster_name: demo
    names: [demo-general, demo-spot]
    node_role_arn: arn:aws:iam::111122223333:role/demo-nodes
    wait_ready:
      count: 2
      schedulable: true
      timeout: 600
"""

RETURN = r"""
node_groups:
  description: One entry per group, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the Auto Scaling group.
      type: str
      sample: demo-general
    min_size:
      description: Minimum size.
      type: int
      sample: 1
    max_size:
      description: Maximum size.
      type: int
      sample: 3
    desired_capacity:
      description: Desired capacity.
      type: int
      sample: 2
    launch_template:
      description:
        - The launch template the group launches from (C(version) as the group names it, C($Latest) for one) and the
          version and AMI that resolves to now. None for a group without a launch template.
      type: dict
      sample: {"id": "lt-0abc", "name": "demo-general", "version": "3", "current_version": "3", "current_image_id": "ami-0abc"}
    suspended_processes:
      description: Suspended scaling processes.
      type: list
      elements: str
      sample: []
    tags:
      description: Tags of the Auto Scaling group.
      type: dict
      sample: {"kubernetes.io/cluster/demo": "owned"}
    counts:
      description: How many instances the group has, and how many of them are outdated, joined, Ready and available.
      type: dict
      sample: {"instances": 2, "outdated": 0, "joined": 2, "ready": 2, "available": 2}
    instances:
      description:
        - The group's instances (the Auto Scaling group's and EC2's view), sorted by id. Keys as in
          M(selfmanaged.eks.eks_nodegroup_asg)'s RV(selfmanaged.eks.eks_nodegroup_asg#module:instances), plus C(node) and
          C(join_diagnosis).
        - C(outdated), C(outdated_reasons) (sentences) and C(outdated_codes) (C(launch_template), C(launch_template_version),
          C(ami), C(unknown); unknown counts as outdated).
        - C(node) is the instance's Node, C(joined), C(node_name), C(ready), C(ready_reason), C(schedulable),
          C(unschedulable), C(available), C(kubelet_version), C(boot_id).
        - C(join_diagnosis) is None when the Node is available, else C(code) and C(message) (see the description).
      type: list
      elements: dict
      sample: [{"instance_id": "i-0abc", "instance_state": "running", "lifecycle_state": "InService", "private_dns_name": "ip-10-0-1-10.ec2.internal",
                "launch_template_version": "3", "current_launch_template_version": "3", "image_id": "ami-0abc", "outdated": false,
                "outdated_reasons": [], "outdated_codes": [],
                "node": {"joined": true, "node_name": "ip-10-0-1-10.ec2.internal", "ready": true, "ready_reason": "KubeletReady",
                         "schedulable": true, "unschedulable": false, "available": true, "kubelet_version": "v1.31.10-eks-1a2b3c4",
                         "boot_id": "0f1e2d3c"},
                "join_diagnosis": null}]
authentication_mode:
  description: The cluster's authentication mode, which decides what the node role needs to join.
  returned: always
  type: str
  sample: API_AND_CONFIG_MAP
waited:
  description: Seconds spent waiting with O(wait_ready) (0 without it).
  returned: always
  type: int
  sample: 42
timed_out:
  description:
    - Whether O(wait_ready.timeout) ran out (the module then fails, with RV(node_groups) and the per-instance diagnosis), so
      that a role can wait in slices and go on after a timed-out slice.
  returned: always
  type: bool
  sample: false
"""

import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_report import FleetReport
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_error_message


def counted(schedulable):
    """The group count a wait looks at: Ready Nodes, or available ones (Ready and schedulable)."""
    return "available" if schedulable else "ready"


def lacking(reports, count, schedulable=False):
    """{group name: (have, wanted)} of the groups with fewer Ready (or available) Nodes than wanted."""
    short = {}
    for report in reports:
        wanted = report["desired_capacity"] if count is None else count
        have = report["counts"][counted(schedulable)]
        if have < wanted:
            short[report["name"]] = (have, wanted)
    return short


def timeout_message(reports, count, timeout, schedulable=False):
    """What did not become Ready (available) in time, group by group and instance by instance."""
    lines = []
    short = lacking(reports, count, schedulable)
    for report in reports:
        if report["name"] not in short:
            continue
        have, wanted = short[report["name"]]
        what = "available" if schedulable else "Ready"
        lines.append("Node group {0}: {1} of {2} nodes {3} after {4}s.".format(report["name"], have, wanted, what, timeout))
        for inst in report["instances"]:
            diagnosis = inst["join_diagnosis"]
            if diagnosis and (schedulable or diagnosis["code"] != fleet.JOIN_CORDONED):
                lines.append("- {0} ({1}): {2}".format(inst["instance_id"], inst["private_dns_name"], diagnosis["message"]))
        if len(report["instances"]) < wanted:
            lines.append("- the group has {0} instances for the {1} nodes wanted: check its desired capacity ({2}) and its activity history "
                         "(capacity, Spot availability, launch template errors).".format(len(report["instances"]), wanted, report["desired_capacity"]))
    return "\n".join(lines)


def main():
    argument_spec = dict(KUBE_CONNECTION_SPEC)
    argument_spec.update(
        cluster_name=dict(type="str", required=True),
        names=dict(type="list", elements="str", default=[]),
        node_role_arn=dict(type="str"),
        wait_ready=dict(
            type="dict",
            options=dict(count=dict(type="int"), schedulable=dict(type="bool", default=False), timeout=dict(type="int", default=600),
                         delay=dict(type="int", default=5), max_delay=dict(type="int")),
        ),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    wait = module.params["wait_ready"]
    if wait is not None:
        for key in ("count", "timeout", "delay"):
            if wait[key] is not None and wait[key] < (1 if key == "delay" else 0):
                module.fail_json(msg="wait_ready.{0} {1} must be {2}".format(key, wait[key], "at least 1" if key == "delay" else "0 or more"))
    name = module.params["cluster_name"]
    try:
        cluster = describe_cluster(aws_client(module, "eks"), name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(name))
    if cluster is None:
        module.fail_json(msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(name, module.region))
    report = FleetReport(module, cluster, kube_api_client(module, cluster))
    started = time.monotonic()
    state = {}

    def fetch():
        state["reports"] = report.snapshot()
        return state["reports"]

    try:
        if wait is None:
            reports = fetch()
        else:
            reports = wait_until(
                fetch,
                is_done=lambda reports: not lacking(reports, wait["count"], wait["schedulable"]),
                describe=lambda reports: "; ".join("{0} {1} of {2} {3}".format(g, n[0], n[1], counted(wait["schedulable"]))
                                                   for g, n in sorted(lacking(reports or [], wait["count"], wait["schedulable"]).items())),
                timeout=wait["timeout"],
                what="{0} nodes in the node groups of cluster {1}".format("available" if wait["schedulable"] else "Ready", name),
                delay=wait["delay"],
                max_delay=max(wait["delay"], wait["max_delay"] or wait["delay"] * 4),
            )
        reports = report.diagnose(reports)
    except WaitTimeout:
        reports = report.diagnose(state.get("reports") or [])
        module.fail_json(msg=timeout_message(reports, wait["count"], wait["timeout"], wait["schedulable"]), node_groups=reports,
                         authentication_mode=report.mode, waited=int(time.monotonic() - started), timed_out=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot read the node groups of cluster {0}".format(name))
    except KubeApiError as exc:
        module.fail_json(msg=kube_api_error_message("cannot list the Nodes of cluster {0}".format(name), exc.status, exc.reason,
                                                    "list Nodes (an access entry with AmazonEKSViewPolicy, or RBAC that allows it)"))
    module.exit_json(changed=False, node_groups=reports, authentication_mode=report.mode,
                     waited=int(time.monotonic() - started) if wait is not None else 0, timed_out=False)


if __name__ == "__main__":
    main()
