#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_nodegroup_info
version_added: 1.0.0
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
          - Seconds between the first polls; the gap doubles up to four times this.
        type: int
        default: 5
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

try:
    from kubernetes.client.exceptions import ApiException
except ImportError:
    ApiException = None  # kube_api_client() reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_includes
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import authentication_mode_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_cluster_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_instances
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import resolve_template_versions
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import template_specs
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import get_json
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_error_message
from ansible_collections.selfmanaged.eks.plugins.module_utils.nodegroup import image_bootstrap_format
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import UserDataError
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import bootstrap_mismatches
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import cluster_bootstrap_info
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import decode_user_data

AWS_AUTH_PATH = "/api/v1/namespaces/kube-system/configmaps/aws-auth"


class FleetReport:
    """One run: read the groups, their instances and Nodes; diagnose the instances without an available Node."""

    def __init__(self, module, cluster, api_client):
        self.module = module
        self.cluster = cluster
        self.name = module.params["cluster_name"]
        self.mode = authentication_mode_of(cluster)
        self.api_client = api_client
        self.ec2 = aws_client(module, "ec2")
        self.autoscaling = aws_client(module, "autoscaling")
        self.nodes = {}  # instance id -> node record, of the last snapshot

    # -- the fleet as it is now --------------------------------------------------------------

    def groups(self):
        names = self.module.params["names"]
        if not names:
            return [g for g in describe_cluster_groups(self.autoscaling, [self.name]) if not fleet.is_managed_nodegroup(g)]
        groups = describe_groups(self.autoscaling, names)
        found = dict((g["name"], g) for g in groups)
        missing = sorted(set(names) - set(found))
        foreign = sorted(g["name"] for g in groups if g["cluster"] != self.name)
        if missing or foreign:
            problems = []
            if missing:
                problems.append("{0} do not exist".format(", ".join(missing)))
            if foreign:
                problems.append("{0} are not tagged {1}=owned".format(", ".join(foreign), fleet.cluster_tag(self.name)))
            self.module.fail_json(msg="names: Auto Scaling groups {0}; name node groups of cluster {1}, or leave names empty for all of "
                                  "them".format(" and ".join(problems), self.name))
        return groups

    def snapshot(self):
        """Group reports (no diagnosis yet): the group, its instances with their Nodes, and the counts."""
        groups = self.groups()
        templates = resolve_template_versions(self.ec2, template_specs(groups))
        instances = describe_instances(self.ec2, [m["instance_id"] for g in groups for m in g["instances"]])
        by_instance, by_name = fleet.node_index(list_nodes(self.api_client))
        self.nodes = {}
        reports = []
        for group in groups:
            records = []
            for member in sorted(group["instances"], key=lambda m: m["instance_id"]):
                record = fleet.instance_record(group, member, instances.get(member["instance_id"]), templates)
                node = fleet.node_of_instance(record, by_instance, by_name)
                self.nodes[record["instance_id"]] = node
                record["node"] = fleet.node_record(node)
                record["join_diagnosis"] = None
                records.append(record)
            current_version, current_image = fleet.current_template_version(group, templates)
            template = dict(group["launch_template"], current_version=current_version, current_image_id=current_image) if group["launch_template"] else None
            reports.append({
                "name": group["name"],
                "min_size": group["min_size"],
                "max_size": group["max_size"],
                "desired_capacity": group["desired_capacity"],
                "launch_template": template,
                "suspended_processes": group["suspended_processes"],
                "tags": group["tags"],
                "instances": records,
                "counts": fleet.group_counts(records),
            })
        return reports

    # -- why instances have no available Node ------------------------------------------------

    def diagnose(self, reports):
        """Set join_diagnosis on every instance without an available Node; AWS is asked only about those."""
        waiting = [(report, inst) for report in reports for inst in report["instances"] if not inst["node"]["available"]]
        unjoined = [inst for _report, inst in waiting if not inst["node"]["joined"] and inst["instance_state"] == "running"]
        problems = self.bootstrap_problems(unjoined)
        authorizations = {}
        for report, inst in waiting:
            if report["name"] not in authorizations and not inst["node"]["joined"]:
                authorizations[report["name"]] = self.authorization(report)
            inst["join_diagnosis"] = fleet.join_diagnosis(inst, self.nodes.get(inst["instance_id"]), problems.get(inst["instance_id"]),
                                                          authorizations.get(report["name"]))
        return reports

    def bootstrap_problems(self, instances):
        """{instance id: what its user data gets wrong about the cluster} for instances whose AMI says its format."""
        if not instances:
            return {}
        try:
            cluster_info = cluster_bootstrap_info(self.cluster)
        except UserDataError:
            return {}  # the cluster itself is not ACTIVE yet: no node could join, whatever its user data
        image_ids = sorted(set(inst["image_id"] for inst in instances if inst.get("image_id")))
        formats = {}
        if image_ids:
            images = self.ec2.describe_images(Filters=[{"Name": "image-id", "Values": image_ids}], aws_retry=True)["Images"]
            formats = dict((image["ImageId"], image_bootstrap_format(image)) for image in images)
        problems = {}
        for inst in instances:
            family = formats.get(inst.get("image_id"))
            if not family:
                continue
            try:
                attribute = self.ec2.describe_instance_attribute(InstanceId=inst["instance_id"], Attribute="userData", aws_retry=True)
            except botocore.exceptions.ClientError:
                continue  # gone since it was listed
            text = decode_user_data((attribute.get("UserData") or {}).get("Value"))
            problems[inst["instance_id"]] = bootstrap_mismatches(family, text, cluster_info)
        return problems

    def node_role(self, report):
        """(node role ARN, None) from node_role_arn or the launch template's instance profile, or (None, why not)."""
        if self.module.params["node_role_arn"]:
            return self.module.params["node_role_arn"], None
        template = report["launch_template"]
        if not template or not template.get("current_version"):
            return None, "group {0} has no readable launch template; set node_role_arn".format(report["name"])
        versions = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=template["id"], Versions=[template["current_version"]], aws_retry=True)["LaunchTemplateVersions"]
        profile = ((versions[0].get("LaunchTemplateData") or {}).get("IamInstanceProfile") or {}) if versions else {}
        name = profile.get("Name") or (profile.get("Arn") or "").rsplit("/", 1)[-1]
        if not name:
            return None, "launch template {0} version {1} has no instance profile; set node_role_arn".format(template["id"], template["current_version"])
        iam = aws_client(self.module, "iam")
        found = describe_or_none(iam.get_instance_profile, "InstanceProfile", InstanceProfileName=name)
        roles = (found or {}).get("Roles") or []
        if not roles:
            return None, "instance profile {0} {1}; set node_role_arn".format(name, "has no role" if found else "does not exist")
        return roles[0]["Arn"], None

    def authorization(self, report):
        """fleet.node_role_authorization for the group's node role, or None when the check could not be made."""
        try:
            role_arn, why = self.node_role(report)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            role_arn, why = None, "cannot read the node role ({0})".format(exc)
        if role_arn is None:
            return fleet.node_role_authorization(self.name, self.mode, None, unknown_reason=why)
        entry_type, mapped = None, None
        try:
            if authentication_mode_includes(self.mode, "API"):
                entry = describe_or_none(aws_client(self.module, "eks").describe_access_entry, "accessEntry", clusterName=self.name, principalArn=role_arn)
                entry_type = (entry or {}).get("type")
            if authentication_mode_includes(self.mode, "CONFIG_MAP"):
                mapped = fleet.aws_auth_maps_node_role(self.aws_auth_data(), role_arn)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            return fleet.node_role_authorization(self.name, self.mode, role_arn, unknown_reason="DescribeAccessEntry failed ({0})".format(exc))
        except ApiException as exc:
            return fleet.node_role_authorization(self.name, self.mode, role_arn,
                                                 unknown_reason="kube-system/aws-auth cannot be read (HTTP {0} {1})".format(exc.status, exc.reason))
        return fleet.node_role_authorization(self.name, self.mode, role_arn, entry_type, mapped)

    def aws_auth_data(self):
        try:
            return get_json(self.api_client, AWS_AUTH_PATH).get("data")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


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
                         delay=dict(type="int", default=5)),
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
                max_delay=wait["delay"] * 4,
            )
        reports = report.diagnose(reports)
    except WaitTimeout:
        reports = report.diagnose(state.get("reports") or [])
        module.fail_json(msg=timeout_message(reports, wait["count"], wait["timeout"], wait["schedulable"]), node_groups=reports,
                         authentication_mode=report.mode, waited=int(time.monotonic() - started), timed_out=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot read the node groups of cluster {0}".format(name))
    except ApiException as exc:
        module.fail_json(msg=kube_api_error_message("cannot list the Nodes of cluster {0}".format(name), exc.status, exc.reason,
                                                    "list Nodes (an access entry with AmazonEKSViewPolicy, or RBAC that allows it)"))
    module.exit_json(changed=False, node_groups=reports, authentication_mode=report.mode,
                     waited=int(time.monotonic() - started) if wait is not None else 0, timed_out=False)


if __name__ == "__main__":
    main()
