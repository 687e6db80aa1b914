#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_nodegroup_asg
short_description: Self-managed EKS worker nodes as one launch template and one Auto Scaling group
version_added: 0.1.0
description:
  - Creates, updates or deletes a self-managed node group of an EKS cluster, made of an EC2 launch template
    (EKS-optimized AMI pinned as a concrete C(ami-) id, bootstrap user data rendered from DescribeCluster)
    and an Auto Scaling group launching from it across several availability zones.
  - The user data follows the cluster's IP family (C(kubernetesNetworkConfig.ipFamily)). For an IPv6 cluster AL2
    user data passes C(--ip-family ipv6) and C(--service-ipv6-cidr) (bootstrap.sh, given the CA and endpoint,
    does not call DescribeCluster and would assume IPv4), AL2023 gives nodeadm the IPv6 service CIDR, and
    Bottlerocket's C(cluster-dns-ip) is that CIDR's network address + 0xa.
  - A change of the launch template data makes a new launch template version and points the ASG at it;
    existing instances keep their version and are reported as C(outdated) until they are replaced
    (see the rolling update role). Identical input never makes a version.
  - O(desired_capacity) is set when the group is created and left alone afterwards (cluster-autoscaler
    and operators own it) unless O(force_desired_capacity=true), or unless new O(min_size)/O(max_size)
    bounds exclude it.
  - Authorizing the node role (access entry or aws-auth) is not done here; see M(selfmanaged.eks.eks_access_entry),
    M(selfmanaged.eks.eks_aws_auth) and the C(selfmanaged.eks.node_bootstrap) role.
seealso:
  - module: selfmanaged.eks.eks_nodegroup_info
  - module: selfmanaged.eks.eks_nodegroup_rollout
  - module: community.aws.eks_nodegroup
    description: EKS managed node groups (EKS owns the launch template and the ASG); this module makes self-managed ones.
  - module: community.aws.eks_fargate_profile
    description: Fargate profiles, pods without nodes; nothing to do with node groups of EC2 instances.
  - module: amazon.aws.autoscaling_group
    description: >-
      A generic ASG: no EKS bootstrap user data, AMI lookup, cluster tags or outdated-instance report. This module
      manages the launch template and the ASG of a node group together.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
requirements:
  - urllib3, to report the Nodes of the group's instances
  - PyYAML, to render the nodeadm and Bottlerocket user data
options:
  name:
    description:
      - Name of the Auto Scaling group (and, unless O(launch_template_name) is set, of the launch template).
    type: str
    required: true
  cluster_name:
    description:
      - Name of the EKS cluster the nodes join. Required for O(state=present).
    type: str
  state:
    description:
      - C(present) creates or updates; C(absent) deletes the ASG (waiting for its instances to terminate) and then
        the launch template. Draining nodes before deletion is the caller's job.
    type: str
    choices: [present, absent]
    default: present
  launch_template_name:
    description:
      - Name of the launch template. Defaults to O(name).
    type: str
  ami_type:
    description:
      - EKS-optimized AMI family. The AMI id is read from the SSM public parameter for the cluster's Kubernetes
        version at apply time and pinned in the launch template.
      - C(CUSTOM) uses O(ami_id) and needs O(bootstrap_format).
    type: str
    default: AL2023_x86_64_STANDARD
    choices: [AL2023_x86_64_STANDARD, AL2023_ARM_64_STANDARD, AL2023_x86_64_NVIDIA, AL2023_ARM_64_NVIDIA,
              BOTTLEROCKET_x86_64, BOTTLEROCKET_ARM_64, AL2_x86_64, CUSTOM]
  ami_id:
    description:
      - A concrete AMI id to use instead of the SSM lookup. Required with O(ami_type=CUSTOM).
    type: str
  bootstrap_format:
    description:
      - Which bootstrap user data the AMI expects. Required with O(ami_type=CUSTOM); otherwise implied by O(ami_type).
      - C(al2023) is nodeadm's MIME multipart NodeConfig, C(al2) the legacy /etc/eks/bootstrap.sh, C(bottlerocket) TOML settings.
    type: str
    choices: [al2023, al2, bottlerocket]
  kubernetes_version:
    description:
      - Kubernetes version whose AMI to look up. Defaults to the cluster's version (DescribeCluster).
    type: str
  instance_types:
    description:
      - Instance types of the group. The first one is the launch template's instance type; several types (or any
        weight, or O(mixed_instances)) make a mixed instances policy.
      - Each item is an instance type name or a dict with C(instance_type) and optional C(weighted_capacity).
    type: list
    elements: raw
  mixed_instances:
    description:
      - On-demand and spot distribution of a mixed instances policy.
    type: dict
    suboptions:
      on_demand_base_capacity:
        description: Capacity always served by on-demand instances.
        type: int
      on_demand_percentage_above_base_capacity:
        description: Percentage of on-demand instances above the base (0 means all spot).
        type: int
      spot_allocation_strategy:
        description: How spot capacity is chosen.
        type: str
        choices: [lowest-price, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized]
      spot_max_price:
        description: Maximum spot price per hour; empty means the on-demand price.
        type: str
  instance_profile:
    description:
      - Name or ARN of the node IAM instance profile.
    type: str
  security_group_ids:
    description:
      - Security groups of the nodes (usually the cluster security group plus any node group ones).
    type: list
    elements: str
    default: []
  key_name:
    description:
      - EC2 key pair for SSH (optional; Session Manager is the recommended way in).
    type: str
  metadata_hop_limit:
    description:
      - IMDSv2 hop limit. C(1) keeps pods away from the node's instance profile (IRSA / Pod Identity);
        C(2) lets pods reach IMDS.
    type: int
    default: 1
  metadata_http_tokens:
    description:
      - C(required) enforces IMDSv2.
    type: str
    choices: [required, optional]
    default: required
  root_volume_size:
    description: Size in GiB of the volume holding images and pods (the root volume; Bottlerocket's data volume /dev/xvdb).
    type: int
    default: 80
  root_volume_type:
    description: EBS volume type of that volume.
    type: str
    default: gp3
  root_volume_iops:
    description: Provisioned IOPS (gp3, io1, io2).
    type: int
  root_volume_throughput:
    description: Throughput in MiB/s (gp3).
    type: int
  root_volume_kms_key_id:
    description: KMS key for the encrypted volume; the account's default EBS key when omitted.
    type: str
  extra_block_devices:
    description: More EBS volumes.
    type: list
    elements: dict
    default: []
    suboptions:
      device_name:
        description: Device name, for example C(/dev/xvdf).
        type: str
        required: true
      volume_size:
        description: Size in GiB.
        type: int
        required: true
      volume_type:
        description: EBS volume type.
        type: str
        default: gp3
      encrypted:
        description: Encrypt the volume.
        type: bool
        default: true
      kms_key_id:
        description: KMS key.
        type: str
      iops:
        description: Provisioned IOPS.
        type: int
      throughput:
        description: Throughput in MiB/s.
        type: int
      delete_on_termination:
        description: Delete the volume with the instance.
        type: bool
        default: true
  detailed_monitoring:
    description: EC2 detailed (1-minute) monitoring.
    type: bool
    default: false
  labels:
    description:
      - Kubernetes labels the nodes register with (also cluster-autoscaler node-template tags).
    type: dict
    default: {}
  taints:
    description:
      - Kubernetes taints the nodes register with.
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
      value:
        description: Taint value.
        type: str
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
  max_pods:
    description:
      - Max pods per node. Computed from the instance types' ENI limits (DescribeInstanceTypes; the smallest over
        all types) when omitted, unless O(kubelet_config) sets C(maxPods) (AL2023), which is then used.
      - AL2023 user data carries it as C(kubelet.config.maxPods) (and as C(maxPodsExpression), from which nodeadm
        computes the kubelet's reserved memory); AL2 as C(--max-pods); Bottlerocket as C(settings.kubernetes.max-pods).
    type: int
  prefix_delegation:
    description:
      - The VPC CNI runs with prefix delegation; raises the computed max pods (capped at 110, or 250 from 30 vCPUs).
    type: bool
    default: false
  kubelet_config:
    description:
      - KubeletConfiguration fields merged into nodeadm's defaults (AL2023 only), written under C(kubelet.config) of the
        NodeConfig. Values may be any JSON value, as nodeadm reads them (for example C(shutdownGracePeriod) set to C(30s),
        C(evictionHard) as a mapping).
      - C(maxPods) here is used as the node group's max pods when O(max_pods) is omitted; giving both with different
        values is refused.
    type: dict
  kubelet_flags:
    description:
      - Extra kubelet flags (AL2023 and AL2).
    type: list
    elements: str
  pre_bootstrap_scripts:
    description:
      - Shell scripts run before the node joins (AL2023 as MIME parts, AL2 before bootstrap.sh). Not for Bottlerocket.
    type: list
    elements: str
  extra_node_config:
    description:
      - Extra nodeadm NodeConfig parts (full objects or just their C(spec)), after the module's own part so they win
        where they overlap (AL2023 only). They may not change the cluster fields.
    type: list
    elements: dict
  bottlerocket_settings:
    description:
      - Extra Bottlerocket settings merged under C([settings]) (Bottlerocket only).
    type: dict
  subnets:
    description:
      - Private subnet ids of the cluster's VPC, in two or more availability zones.
    type: list
    elements: str
  allow_single_az:
    description:
      - Allow subnets of a single availability zone (an AZ-bound group, for example for EBS-backed workloads).
    type: bool
    default: false
  min_size:
    description: Minimum size of the group.
    type: int
  max_size:
    description: Maximum size of the group.
    type: int
  desired_capacity:
    description:
      - Desired capacity at creation (defaults to O(min_size)). Afterwards only applied with O(force_desired_capacity=true).
    type: int
  force_desired_capacity:
    description: Set O(desired_capacity) on an existing group too.
    type: bool
    default: false
  capacity_rebalance:
    description: Replace spot instances proactively when EC2 signals a rebalance recommendation.
    type: bool
    default: false
  lifecycle_hooks:
    description:
      - Lifecycle hooks of the group. When given, the list is the whole set (hooks not listed are deleted); omit to leave hooks alone.
    type: list
    elements: dict
    suboptions:
      name:
        description: Hook name.
        type: str
        required: true
      transition:
        description: C(autoscaling:EC2_INSTANCE_LAUNCHING) or C(autoscaling:EC2_INSTANCE_TERMINATING).
        type: str
        required: true
        choices: ['autoscaling:EC2_INSTANCE_LAUNCHING', 'autoscaling:EC2_INSTANCE_TERMINATING']
      heartbeat_timeout:
        description: Seconds before the default result applies.
        type: int
        default: 300
      default_result:
        description: Result when the heartbeat times out.
        type: str
        choices: [CONTINUE, ABANDON]
        default: CONTINUE
      notification_target_arn:
        description: SQS queue or SNS topic notified.
        type: str
      role_arn:
        description: Role allowing the ASG to publish to the target.
        type: str
      notification_metadata:
        description: Extra text sent with notifications.
        type: str
  health_check_type:
    description: C(EC2) or C(ELB).
    type: str
    choices: [EC2, ELB]
    default: EC2
  health_check_grace_period:
    description: Seconds after launch before health checks count.
    type: int
    default: 300
  termination_policies:
    description: Termination policies in order of precedence.
    type: list
    elements: str
    default: []
  max_instance_lifetime:
    description: Seconds after which instances are replaced (0 for no limit; at least 86400 otherwise).
    type: int
  suspended_processes:
    description:
      - Scaling processes to keep suspended (for example C(AZRebalance)). The list is the whole set.
    type: list
    elements: str
    default: []
  cluster_autoscaler_tags:
    description:
      - Add cluster-autoscaler discovery tags and node-template label/taint hints to the ASG.
    type: bool
    default: true
  purge_tags:
    description: Remove ASG tags that are not given (or made by the module).
    type: bool
    default: true
extends_documentation_fragment:
  - selfmanaged.eks.wait
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - The Auto Scaling group holds at most 50 tags; the module counts its own, the cluster-autoscaler hints and O(tags)
    before any change and fails when they do not fit.
  - Raw user data is limited to 16 KB by EC2; larger rendered user data is refused before any change.
"""

EXAMPLES = r"""
- name: Two-AZ general purpose node group
  selfmanaged.eks.eks_nodegroup_asg:
    name: prod-general
    cluster_name: prod
    instance_types: [m5.large]
    instance_profile: "{{ iam_roles.node_instance_profile_arn }}"
    security_group_ids: ["{{ control_plane_cluster.security_group_id }}"]
    subnets: [subnet-0a, subnet-0b, subnet-0c]
    min_size: 2
    max_size: 6
    desired_capacity: 3
    labels:
      selfmanaged.eks/nodegroup: prod-general

- name: Spot group on Bottlerocket with a taint
  selfmanaged.eks.eks_nodegroup_asg:
    name: prod-spot
    cluster_name: prod
    ami_type: BOTTLEROCKET_x86_64
    instance_types:
      - m5.large
      - instance_type: m5a.large
      - instance_type: m6i.large
    mixed_instances:
      on_demand_base_capacity: 0
      on_demand_percentage_above_base_capacity: 0
      spot_allocation_strategy: price-capacity-optimized
    capacity_rebalance: true
    instance_profile: eks-node
    subnets: [subnet-0a, subnet-0b, subnet-0c]
    min_size: 0
    max_size: 10
    taints:
      - key: spot
        value: "true"
        effect: NoSchedule

- name: Remove a node group (drain it first)
  selfmanaged.eks.eks_nodegroup_asg:
    name: prod-old
    state: absent
"""

RETURN = r"""
launch_template:
  description: The launch template and the version the ASG launches from.
  returned: state=present
  type: dict
  contains:
    id:
      description: Launch template id (C(None) in check mode before creation).
      type: str
    name:
      description: Launch template name.
      type: str
    version:
      description: The version the ASG points at.
      type: int
    data:
      description: The launch template data of that version, with the user data decoded.
      type: dict
  sample: {"id": "lt-0abc", "name": "prod-general", "version": 3, "data": {"ImageId": "ami-0123"}}
auto_scaling_group:
  description: The Auto Scaling group.
  returned: state=present
  type: dict
  contains:
    name:
      description: ASG name.
      type: str
    arn:
      description: ASG ARN (C(None) in check mode before creation).
      type: str
    min_size:
      description: Minimum size.
      type: int
    max_size:
      description: Maximum size.
      type: int
    desired_capacity:
      description: Desired capacity.
      type: int
    availability_zones:
      description: Availability zones of the subnets.
      type: list
      elements: str
ami_id:
  description: The concrete AMI id pinned in the launch template.
  returned: state=present
  type: str
  sample: ami-0123456789abcdef0
bootstrap_format:
  description: The user data family rendered.
  returned: state=present
  type: str
  sample: al2023
max_pods:
  description: Max pods written into the user data.
  returned: state=present
  type: int
  sample: 29
user_data:
  description: The rendered user data, decoded.
  returned: state=present
  type: str
instances:
  description: The ASG's instances.
  returned: state=present
  type: list
  elements: dict
  contains:
    instance_id:
      description: Instance id.
      type: str
    availability_zone:
      description: Availability zone.
      type: str
    lifecycle_state:
      description: ASG lifecycle state (C(Pending), C(InService), ...).
      type: str
    health_status:
      description: ASG health status.
      type: str
    launch_template_version:
      description: Launch template version the instance was launched from.
      type: str
    image_id:
      description: AMI of the instance.
      type: str
    private_dns_name:
      description: Private DNS name (the Kubernetes node name).
      type: str
    instance_state:
      description: EC2 state (C(pending), C(running), ...).
      type: str
    state:
      description: The same as RV(instances.instance_state), the name this value had first.
      type: str
    protected_from_scale_in:
      description: The instance is protected from scale-in.
      type: bool
    instance_type:
      description: Instance type.
      type: str
    lifecycle:
      description: C(on_demand) or C(spot).
      type: str
    private_ip_address:
      description: Private IPv4 address.
      type: str
    launch_template_id:
      description: Launch template the instance was launched from.
      type: str
    launch_template_name:
      description: The group's launch template name.
      type: str
    current_launch_template_version:
      description: The version the group launches now.
      type: str
    current_image_id:
      description: The AMI the group launches now.
      type: str
    launch_time:
      description: Launch time (ISO 8601).
      type: str
    outdated:
      description:
        - The instance does not run what the group launches now (another launch template, version or AMI), or its launch template
          version is unknown, which counts as outdated (see RV(instances.outdated_codes)).
      type: bool
    outdated_reasons:
      description: Why the instance is outdated, one sentence each; empty when it is current.
      type: list
      elements: str
    outdated_codes:
      description: The reasons as codes, C(launch_template), C(launch_template_version), C(ami) or C(unknown).
      type: list
      elements: str
    bootstrap_problems:
      description:
        - Where the user data of an outdated instance disagrees with the cluster (name, endpoint, CA, service CIDR, IP family);
          empty when it matches.
        - Instances on the current launch template version run the user data the module rendered from the cluster.
      type: list
      elements: str
tags:
  description: The ASG tags.
  returned: state=present
  type: dict
diff:
  description: Before/after of the launch template data and the ASG fields (in diff mode).
  returned: when diff mode is on
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitFailed
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until
from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils import nodegroup as ng
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_instances
from ansible_collections.selfmanaged.eks.plugins.module_utils.max_pods import max_pods_for_instance_types
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import SubnetError
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import describe_subnets
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import validated_subnets
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import HAS_YAML
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import UserDataError
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import bootstrap_mismatches
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import cluster_bootstrap_info
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import decode_user_data
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import encode_user_data
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import kubelet_config_max_pods
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import normalize_taints
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import render_user_data
from ansible_collections.selfmanaged.eks.plugins.module_utils.userdata import validate_labels


class NodeGroup:
    """One run of the module: read, compare, apply."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.changed = False
        self.diff_before = {}
        self.diff_after = {}
        self.ec2 = aws_client(module, "ec2")
        self.asg = aws_client(module, "autoscaling")

    def fail(self, msg, exc=None):
        if exc is not None:
            self.module.fail_json_aws(exc, msg=msg)
        self.module.fail_json(msg=msg)

    # -- reading -------------------------------------------------------------------------

    def find_asg(self):
        groups = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.params["name"]], aws_retry=True)["AutoScalingGroups"]
        return groups[0] if groups else None

    def find_launch_template(self, name):
        try:
            templates = self.ec2.describe_launch_templates(LaunchTemplateNames=[name], aws_retry=True)["LaunchTemplates"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"):
                return None
            raise
        return templates[0] if templates else None

    def launch_template_version(self, template_id, version):
        versions = self.ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[str(version)], aws_retry=True)["LaunchTemplateVersions"]
        return versions[0] if versions else None

    def instance_user_data(self, instance_id):
        try:
            attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData", aws_retry=True)
        except botocore.exceptions.ClientError:
            return None
        return decode_user_data((attr.get("UserData") or {}).get("Value"))

    # -- inputs --------------------------------------------------------------------------

    def instance_types(self):
        result = []
        for item in self.params["instance_types"] or []:
            if isinstance(item, str):
                result.append({"instance_type": item, "weighted_capacity": None})
            elif isinstance(item, dict) and item.get("instance_type"):
                unknown = sorted(set(item) - {"instance_type", "weighted_capacity"})
                if unknown:
                    self.fail("instance_types entry {0!r} has unknown keys {1}; use instance_type and weighted_capacity".format(item, unknown))
                result.append({"instance_type": item["instance_type"], "weighted_capacity": item.get("weighted_capacity")})
            else:
                self.fail("instance_types entry {0!r} must be an instance type name or a dict with instance_type".format(item))
        return result

    def validate_offline(self):
        """Every check that needs no AWS call, before any call."""
        p = self.params
        try:
            self.family = ng.bootstrap_format_for(p["ami_type"], p["bootstrap_format"])
            if p["ami_type"] == "CUSTOM" and not p["ami_id"]:
                raise ng.NodeGroupError("ami_type CUSTOM needs ami_id: the EKS-optimized SSM parameters do not cover custom AMIs")
            ng.validate_sizes(p["min_size"], p["max_size"], p["desired_capacity"])
            self.types = self.instance_types()
            ng.validate_instance_types(self.types)
            validate_labels(p["labels"])
            self.taints = normalize_taints(p["taints"])
            self.tags = ng.build_asg_tags(p["cluster_name"], p["name"], p["labels"], self.taints, p["tags"], p["cluster_autoscaler_tags"])
            if p["max_instance_lifetime"] not in (None, 0) and p["max_instance_lifetime"] < 86400:
                raise ng.NodeGroupError(
                    "max_instance_lifetime {0} is below AWS's minimum of 86400 seconds; use 0 (no limit) or 86400 or more".format(p["max_instance_lifetime"])
                )
            if p["metadata_hop_limit"] < 1 or p["metadata_hop_limit"] > 64:
                raise ng.NodeGroupError("metadata_hop_limit {0} must be between 1 and 64".format(p["metadata_hop_limit"]))
        except (ng.NodeGroupError, UserDataError) as exc:
            self.fail(str(exc))

    def resolve_ami(self, cluster):
        p = self.params
        if p["ami_id"]:
            return p["ami_id"]
        version = p["kubernetes_version"] or cluster.get("version")
        parameter = ng.ami_ssm_parameter(p["ami_type"], version)
        ssm = aws_client(self.module, "ssm")
        try:
            return ssm.get_parameter(Name=parameter, aws_retry=True)["Parameter"]["Value"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                self.fail(
                    "no {0} AMI is published for Kubernetes {1} (SSM parameter {2} not found); check the cluster version and ami_type,"
                    " or give ami_id".format(p["ami_type"], version, parameter)
                )
            self.fail("could not read SSM parameter {0}".format(parameter), exc)

    def check_image(self, ami_id):
        try:
            images = self.ec2.describe_images(ImageIds=[ami_id], aws_retry=True)["Images"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
                images = []
            else:
                raise
        if not images:
            self.fail("AMI {0} does not exist in this region (or is not shared with this account); check ami_id and the region".format(ami_id))
        try:
            ng.check_image_bootstrap_format(ami_id, images[0], self.family)
        except ng.NodeGroupError as exc:
            self.fail(str(exc))

    def resolve_max_pods(self):
        if self.params["max_pods"] is not None:
            return self.params["max_pods"]
        try:
            own = kubelet_config_max_pods(self.params["kubelet_config"]) if self.family == "al2023" else None
        except UserDataError as exc:
            self.fail(str(exc))
        if own is not None:
            return own
        names = [t["instance_type"] for t in self.types]
        try:
            infos = self.ec2.describe_instance_types(InstanceTypes=names, aws_retry=True)["InstanceTypes"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "InvalidInstanceType":
                self.fail("instance_types {0} contains a type EC2 does not offer in this region; check the names".format(names))
            raise
        found = set(i["InstanceType"] for i in infos)
        missing = [n for n in names if n not in found]
        if missing:
            self.fail("instance types {0} are not offered in this region; check the names".format(", ".join(missing)))
        try:
            return max_pods_for_instance_types(infos, self.params["prefix_delegation"])
        except ValueError as exc:
            self.fail(str(exc))

    def check_subnets(self, cluster):
        p = self.params
        try:
            return validated_subnets(
                p["subnets"],
                describe_subnets(self.ec2, p["subnets"]),
                (cluster.get("resourcesVpcConfig") or {}).get("vpcId"),
                p["allow_single_az"],
                single_az_fix="set allow_single_az for an AZ-bound group",
            )
        except SubnetError as exc:
            self.fail(str(exc))

    # -- present -------------------------------------------------------------------------

    def present(self):
        p = self.params
        if not p["cluster_name"]:
            self.fail("cluster_name is required with state=present")
        if not p["instance_types"]:
            self.fail("instance_types is required with state=present; give at least one instance type")
        if not p["subnets"]:
            self.fail("subnets is required with state=present; give private subnets of the cluster's VPC in two or more AZs")
        self.validate_offline()

        eks = aws_client(self.module, "eks")
        cluster = describe_cluster(eks, p["cluster_name"])
        if cluster is None:
            self.fail("EKS cluster {0!r} does not exist; create it first (selfmanaged.eks.eks_cluster) or check region".format(p["cluster_name"]))
        if cluster.get("status") not in ("ACTIVE", "UPDATING"):
            self.fail("EKS cluster {0!r} is {1}; wait until it is ACTIVE before creating nodes".format(p["cluster_name"], cluster.get("status")))
        zones = self.check_subnets(cluster)
        try:
            cluster_info = cluster_bootstrap_info(cluster)
        except UserDataError as exc:
            self.fail(str(exc))
        ami_id = self.resolve_ami(cluster)
        self.check_image(ami_id)
        max_pods = self.resolve_max_pods()
        try:
            user_data = render_user_data(
                self.family,
                cluster_info,
                labels=p["labels"],
                taints=self.taints,
                max_pods=max_pods,
                kubelet_config=p["kubelet_config"],
                kubelet_flags=p["kubelet_flags"],
                pre_bootstrap_scripts=p["pre_bootstrap_scripts"],
                extra_node_config=p["extra_node_config"],
                bottlerocket_settings=p["bottlerocket_settings"],
            )
            desired_data = ng.build_launch_template_data(
                ami_id=ami_id,
                instance_type=self.types[0]["instance_type"],
                user_data_b64=encode_user_data(user_data),
                instance_profile=p["instance_profile"],
                security_group_ids=p["security_group_ids"],
                root_device_name=ng.ROOT_DEVICE_NAMES[self.family],
                root_volume=dict(
                    size=p["root_volume_size"],
                    type=p["root_volume_type"],
                    encrypted=True,
                    kms_key_id=p["root_volume_kms_key_id"],
                    iops=p["root_volume_iops"],
                    throughput=p["root_volume_throughput"],
                ),
                extra_block_devices=p["extra_block_devices"],
                key_name=p["key_name"],
                metadata_hop_limit=p["metadata_hop_limit"],
                metadata_http_tokens=p["metadata_http_tokens"],
                detailed_monitoring=p["detailed_monitoring"],
                tags=ng.instance_tags(self.tags),
            )
        except (UserDataError, ng.NodeGroupError) as exc:
            self.fail(str(exc))

        asg = self.find_asg()
        template_id, version, data = self.ensure_launch_template(desired_data, asg)
        asg = self.ensure_asg(asg, template_id, version)

        instances = []
        if asg:
            group = fleet.compact_group(asg)
            group["launch_template"] = {"id": template_id, "name": self.template_name, "version": str(version)}
            templates = fleet.known_template(template_id, version, ami_id)
            by_id = describe_instances(self.ec2, [m["instance_id"] for m in group["instances"]])
            for member in sorted(group["instances"], key=lambda m: m["instance_id"]):
                record = fleet.instance_record(group, member, by_id.get(member["instance_id"]), templates)
                record["state"] = record["instance_state"]  # the name this module returned before the fleet model
                instances.append(record)
            for inst in instances:
                # Instances on the current version run the data rendered above; only the others can disagree.
                text = self.instance_user_data(inst["instance_id"]) if inst["outdated"] else None
                inst["bootstrap_problems"] = bootstrap_mismatches(self.family, text, cluster_info) if text is not None else []

        result = dict(
            changed=self.changed,
            ami_id=ami_id,
            bootstrap_format=self.family,
            max_pods=max_pods,
            user_data=user_data,
            launch_template=dict(id=template_id, name=self.template_name, version=version, data=ng.readable_launch_template_data(data)),
            auto_scaling_group=dict(
                name=p["name"],
                arn=(asg or {}).get("AutoScalingGroupARN"),
                min_size=(asg or {}).get("MinSize", p["min_size"]),
                max_size=(asg or {}).get("MaxSize", p["max_size"]),
                desired_capacity=(asg or {}).get("DesiredCapacity", self.planned_desired),
                availability_zones=zones,
                subnets=p["subnets"],
            ),
            instances=instances,
            tags={k: v for k, (v, _propagate) in self.tags.items()},
        )
        if self.module._diff:
            result["diff"] = dict(before=self.diff_before, after=self.diff_after)
        self.module.exit_json(**result)

    def ensure_launch_template(self, desired_data, asg):
        """(template id, version the ASG should use, that version's data); creates what is missing."""
        name = self.params["launch_template_name"] or self.params["name"]
        self.template_name = name
        template = self.find_launch_template(name)
        if template is None:
            self.changed = True
            self.diff_before["launch_template"] = {}
            self.diff_after["launch_template"] = dict(version=1, data=ng.readable_launch_template_data(desired_data))
            if self.check:
                return None, 1, desired_data
            created = self.ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData=desired_data,
                TagSpecifications=[
                    {"ResourceType": "launch-template", "Tags": [{"Key": k, "Value": v} for k, v in sorted(ng.instance_tags(self.tags).items())]}
                ],
                aws_retry=True,
            )["LaunchTemplate"]
            return created["LaunchTemplateId"], int(created["LatestVersionNumber"]), desired_data

        template_id = template["LaunchTemplateId"]
        asg_template, asg_version = ng.asg_template_version(asg) if asg else (None, None)
        if asg_template == template_id and asg_version and asg_version.isdigit():
            base_version = int(asg_version)
        else:
            base_version = int(template["LatestVersionNumber"])
        current = self.launch_template_version(template_id, base_version) or {}
        current_data = current.get("LaunchTemplateData") or {}
        changed_keys = ng.launch_template_data_changes(desired_data, current_data, self.family)
        if not changed_keys:
            return template_id, base_version, current_data

        self.changed = True
        new_version = int(template["LatestVersionNumber"]) + 1
        self.diff_before["launch_template"] = dict(version=base_version, data={k: ng.readable_launch_template_data(current_data).get(k) for k in changed_keys})
        self.diff_after["launch_template"] = dict(version=new_version, data={k: ng.readable_launch_template_data(desired_data).get(k) for k in changed_keys})
        if self.check:
            return template_id, new_version, desired_data
        # No SourceVersion: EC2 would lay our data over the source's and keep keys we removed.
        created = self.ec2.create_launch_template_version(
            LaunchTemplateId=template_id,
            LaunchTemplateData=desired_data,
            VersionDescription="selfmanaged.eks: {0} changed".format(", ".join(changed_keys)),
            aws_retry=True,
        )["LaunchTemplateVersion"]
        new_version = int(created["VersionNumber"])
        # The default version follows, so a console launch or an ASG without a version uses the current data.
        self.ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(new_version), aws_retry=True)
        return template_id, new_version, desired_data

    def ensure_asg(self, asg, template_id, version):
        p = self.params
        name = p["name"]
        params = dict(p, instance_types=self.types)
        settings = ng.build_asg_settings(template_id or "(new)", version, params)
        self.planned_desired = p["desired_capacity"] if p["desired_capacity"] is not None else p["min_size"]
        if asg is None:
            self.changed = True
            self.diff_before["auto_scaling_group"] = {}
            self.diff_after["auto_scaling_group"] = dict(
                settings,
                DesiredCapacity=self.planned_desired,
                Tags={k: v for k, (v, _p) in self.tags.items()},
                SuspendedProcesses=sorted(p["suspended_processes"]),
                LifecycleHooks=[h["name"] for h in p["lifecycle_hooks"] or []],
            )
            if self.check:
                return None
            self.asg.create_auto_scaling_group(
                AutoScalingGroupName=name, DesiredCapacity=self.planned_desired, Tags=ng.asg_tag_list(name, self.tags), aws_retry=True, **settings
            )
            if p["lifecycle_hooks"]:
                puts, _deletes = ng.lifecycle_hook_changes(p["lifecycle_hooks"], [], name)
                for hook in puts:
                    self.asg.put_lifecycle_hook(aws_retry=True, **hook)
            if p["suspended_processes"]:
                self.asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=sorted(p["suspended_processes"]), aws_retry=True)
            return self.find_asg()

        before, after = {}, {}
        changes = ng.asg_setting_changes(settings, asg)
        desired = ng.desired_capacity_change(asg["DesiredCapacity"], p["min_size"], p["max_size"], p["desired_capacity"], p["force_desired_capacity"])
        if desired is not None:
            changes["DesiredCapacity"] = desired
        for key, value in changes.items():
            before[key] = asg.get(key)
            after[key] = value
        tags_to_set, tags_to_delete = tag_changes(ng.current_asg_tags(asg), self.tags, p["purge_tags"])
        if tags_to_set or tags_to_delete:
            current_tags = ng.current_asg_tags(asg)
            before["Tags"] = {k: current_tags[k][0] for k in sorted(set(tags_to_set) | set(tags_to_delete)) if k in current_tags}
            after["Tags"] = {k: v for k, (v, _p) in sorted(tags_to_set.items())}
        to_suspend, to_resume = ng.suspended_process_changes(p["suspended_processes"], asg)
        if to_suspend or to_resume:
            before["SuspendedProcesses"] = sorted(x["ProcessName"] for x in asg.get("SuspendedProcesses") or [])
            after["SuspendedProcesses"] = sorted(p["suspended_processes"])
        hook_puts, hook_deletes = [], []
        if p["lifecycle_hooks"] is not None:
            current_hooks = self.asg.describe_lifecycle_hooks(AutoScalingGroupName=name, aws_retry=True)["LifecycleHooks"]
            hook_puts, hook_deletes = ng.lifecycle_hook_changes(p["lifecycle_hooks"], current_hooks, name)
            if hook_puts or hook_deletes:
                before["LifecycleHooks"] = sorted(h["LifecycleHookName"] for h in current_hooks)
                after["LifecycleHooks"] = sorted(h["name"] for h in p["lifecycle_hooks"])
                after["LifecycleHooksChanged"] = [h["LifecycleHookName"] for h in hook_puts]
        if not after:
            return asg

        self.changed = True
        self.diff_before["auto_scaling_group"] = before
        self.diff_after["auto_scaling_group"] = after
        if self.check:
            return asg
        if changes:
            self.asg.update_auto_scaling_group(AutoScalingGroupName=name, aws_retry=True, **changes)
        if tags_to_set:
            self.asg.create_or_update_tags(Tags=ng.asg_tag_list(name, tags_to_set), aws_retry=True)
        if tags_to_delete:
            self.asg.delete_tags(Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k} for k in tags_to_delete], aws_retry=True)
        if to_suspend:
            self.asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=to_suspend, aws_retry=True)
        if to_resume:
            self.asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=to_resume, aws_retry=True)
        for hook in hook_puts:
            self.asg.put_lifecycle_hook(aws_retry=True, **hook)
        for hook_name in hook_deletes:
            self.asg.delete_lifecycle_hook(LifecycleHookName=hook_name, AutoScalingGroupName=name, aws_retry=True)
        return self.find_asg()

    # -- absent --------------------------------------------------------------------------

    def absent(self):
        p = self.params
        name = p["name"]
        template_name = p["launch_template_name"] or name
        asg = self.find_asg()
        template = self.find_launch_template(template_name)
        if asg is None and template is None:
            self.module.exit_json(changed=False)
        before = {}
        if asg:
            before["auto_scaling_group"] = dict(name=name, instances=sorted(i["InstanceId"] for i in asg.get("Instances") or []))
        if template:
            before["launch_template"] = dict(id=template["LaunchTemplateId"], name=template_name)
        result = dict(changed=True)
        if self.module._diff:
            result["diff"] = dict(before=before, after={})
        if self.check:
            self.module.exit_json(**result)
        timeout = p["wait_timeout"]
        if asg:
            if asg.get("Instances"):
                self.asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=0, DesiredCapacity=0, aws_retry=True)
                if p["wait"]:
                    self.wait(self.find_asg, lambda g: g is None or not g.get("Instances"),
                              lambda g: "{0} instances left".format(len((g or {}).get("Instances") or [])), timeout,
                              "the instances of ASG {0} to terminate".format(name))
            try:
                self.asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True, aws_retry=True)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "ValidationError":
                    raise
            if p["wait"]:
                self.wait(self.find_asg, lambda g: g is None, lambda g: "still {0}".format((g or {}).get("Status") or "present"), timeout,
                          "ASG {0} to be deleted".format(name))
        if template:
            try:
                self.ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"], aws_retry=True)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) not in ("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"):
                    raise
        self.module.exit_json(**result)

    def wait(self, fetch, is_done, describe, timeout, what):
        try:
            wait_until(fetch, is_done, describe, timeout, what)
        except (WaitTimeout, WaitFailed) as exc:
            self.fail(str(exc))


def argument_spec():
    hook = dict(
        name=dict(type="str", required=True),
        transition=dict(type="str", required=True, choices=["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"]),
        heartbeat_timeout=dict(type="int", default=300),
        default_result=dict(type="str", choices=["CONTINUE", "ABANDON"], default="CONTINUE"),
        notification_target_arn=dict(type="str"),
        role_arn=dict(type="str"),
        notification_metadata=dict(type="str"),
    )
    device = dict(
        device_name=dict(type="str", required=True),
        volume_size=dict(type="int", required=True),
        volume_type=dict(type="str", default="gp3"),
        encrypted=dict(type="bool", default=True),
        kms_key_id=dict(type="str"),
        iops=dict(type="int"),
        throughput=dict(type="int"),
        delete_on_termination=dict(type="bool", default=True),
    )
    return dict(
        name=dict(type="str", required=True),
        cluster_name=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        launch_template_name=dict(type="str"),
        ami_type=dict(type="str", default=ng.DEFAULT_AMI_TYPE, choices=sorted(ng.AMI_TYPES)),
        ami_id=dict(type="str"),
        bootstrap_format=dict(type="str", choices=["al2023", "al2", "bottlerocket"]),
        kubernetes_version=dict(type="str"),
        instance_types=dict(type="list", elements="raw"),
        mixed_instances=dict(
            type="dict",
            options=dict(
                on_demand_base_capacity=dict(type="int"),
                on_demand_percentage_above_base_capacity=dict(type="int"),
                spot_allocation_strategy=dict(type="str", choices=list(ng.SPOT_ALLOCATION_STRATEGIES)),
                spot_max_price=dict(type="str"),
            ),
        ),
        instance_profile=dict(type="str"),
        security_group_ids=dict(type="list", elements="str", default=[]),
        key_name=dict(type="str", no_log=False),
        metadata_hop_limit=dict(type="int", default=1),
        metadata_http_tokens=dict(type="str", choices=["required", "optional"], default="required"),
        root_volume_size=dict(type="int", default=80),
        root_volume_type=dict(type="str", default="gp3"),
        root_volume_iops=dict(type="int"),
        root_volume_throughput=dict(type="int"),
        root_volume_kms_key_id=dict(type="str", no_log=False),
        extra_block_devices=dict(type="list", elements="dict", options=device, default=[]),
        detailed_monitoring=dict(type="bool", default=False),
        labels=dict(type="dict", default={}),
        taints=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                key=dict(type="str", required=True, no_log=False),
                value=dict(type="str"),
                effect=dict(type="str", required=True, choices=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
            ),
        ),
        max_pods=dict(type="int"),
        prefix_delegation=dict(type="bool", default=False),
        kubelet_config=dict(type="dict"),
        kubelet_flags=dict(type="list", elements="str"),
        pre_bootstrap_scripts=dict(type="list", elements="str"),
        extra_node_config=dict(type="list", elements="dict"),
        bottlerocket_settings=dict(type="dict"),
        subnets=dict(type="list", elements="str"),
        allow_single_az=dict(type="bool", default=False),
        min_size=dict(type="int"),
        max_size=dict(type="int"),
        desired_capacity=dict(type="int"),
        force_desired_capacity=dict(type="bool", default=False),
        capacity_rebalance=dict(type="bool", default=False),
        lifecycle_hooks=dict(type="list", elements="dict", options=hook),
        health_check_type=dict(type="str", choices=["EC2", "ELB"], default="EC2"),
        health_check_grace_period=dict(type="int", default=300),
        termination_policies=dict(type="list", elements="str", default=[]),
        max_instance_lifetime=dict(type="int"),
        suspended_processes=dict(type="list", elements="str", default=[]),
        cluster_autoscaler_tags=dict(type="bool", default=True),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1200),
    )


def main():
    module = EksAWSModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("state", "present", ["cluster_name", "instance_types", "subnets", "min_size", "max_size"])],
    )
    if not HAS_YAML:
        module.fail_json(msg="eks_nodegroup_asg needs PyYAML (it ships with ansible-core); install it in the controller's Python")
    group = NodeGroup(module)
    try:
        if module.params["state"] == "present":
            group.present()
        else:
            group.absent()
    except botocore.exceptions.ClientError as exc:
        module.fail_json_aws(exc, msg="AWS call failed for node group {0}".format(module.params["name"]))
    except botocore.exceptions.BotoCoreError as exc:
        module.fail_json_aws(exc, msg="AWS call failed for node group {0}".format(module.params["name"]))


if __name__ == "__main__":
    main()
