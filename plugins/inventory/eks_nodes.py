# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: eks_nodes
short_description: Self-managed EKS worker nodes (Auto Scaling Group instances) as an inventory
version_added: 0.1.0
description:
  - One host per EC2 instance of the Auto Scaling groups tagged C(kubernetes.io/cluster/<cluster>=owned),
    grouped by cluster, node group, region, availability zone, instance type, purchase option, Auto Scaling
    lifecycle state, launch template drift and, with O(kubernetes=true), Kubernetes node state.
  - Host variables carry the Auto Scaling view (lifecycle state, health, scale-in protection, launch
    template version) that M(amazon.aws.ec2_instance_info) and the P(amazon.aws.aws_ec2#inventory)
    inventory do not have, all prefixed C(eks_node_).
  - The configuration file name must end with C(eks_nodes.yml) or C(eks_nodes.yaml).
  - "API use per region: ListClusters (only when O(clusters) is empty), DescribeAutoScalingGroups filtered on the
    cluster tag keys (100 groups a call), DescribeInstances by instance id (1000 a call), DescribeLaunchTemplateVersions
    (one account-wide call for C($Latest)/C($Default) when several templates are involved, else one per template),
    and with O(kubernetes=true) DescribeCluster plus one Node list per cluster. Regions are read concurrently;
    throttling is retried with jittered backoff. A cache hit makes no API call at all, and does not import boto3."
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
requirements:
  - python >= 3.9
  - boto3 >= 1.34.0
  - botocore >= 1.34.0
  - urllib3 (only with O(kubernetes=true); botocore depends on it)
  - PyYAML (a dependency of ansible-core)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: Marks this file as an eks_nodes inventory source.
    type: str
    required: true
    choices: [selfmanaged.eks.eks_nodes]
  regions:
    description:
      - Regions to read, concurrently.
      - Empty (the default) means every region DescribeRegions returns, as P(amazon.aws.aws_ec2#inventory) does;
        name your regions to save calls.
    type: list
    elements: str
    default: []
  clusters:
    description:
      - Names of the EKS clusters whose self-managed nodes to list.
      - Empty (the default) means every cluster ListClusters returns in O(regions).
      - A name that exists in none of O(regions) is an error.
    type: list
    elements: str
    default: []
  node_groups:
    description:
      - Shell-style patterns (V(workers-*)) of the Auto Scaling group names to include. Empty includes all.
    type: list
    elements: str
    default: []
  exclude_node_groups:
    description:
      - Shell-style patterns of Auto Scaling group names to leave out; applied after O(node_groups).
    type: list
    elements: str
    default: []
  include_managed_node_groups:
    description:
      - Also list instances of EKS managed node groups (Auto Scaling groups tagged C(eks:nodegroup-name)).
        EKS replaces those itself, so they are left out by default.
    type: bool
    default: false
  lifecycle_states:
    description:
      - Auto Scaling lifecycle states of the instances to list, for example V(InService), V(Pending), V(Standby),
        V(Terminating:Wait).
    type: list
    elements: str
    default: [InService]
  hostnames:
    description:
      - Host name sources in order of preference; the first one an instance has a value for names it.
      - V(private-dns-name) is the Kubernetes node name; V(tag:<Key>) uses the value of an instance tag.
      - Two instances with the same name are an error; keep a unique source first.
    type: list
    elements: str
    default: [private-dns-name, private-ip-address, instance-id]
  kubernetes:
    description:
      - Join each host with its Kubernetes Node (matched by C(spec.providerID), else by node name), read with an
        EKS token signed from the inventory's AWS credentials (no kubeconfig, no aws CLI).
      - Adds the C(not_ready), C(cordoned), C(not_joined) and C(kubelet_<major>_<minor>) groups and the node variables.
      - The AWS identity needs list access to nodes (an access entry with AmazonEKSViewPolicy, or an aws-auth mapping).
    type: bool
    default: false
  connection:
    description:
      - V(ssh) sets C(ansible_host) to the private IP address.
      - V(ssm) sets C(ansible_connection=community.aws.aws_ssm), C(ansible_aws_ssm_instance_id) and
        C(ansible_aws_ssm_region) (the community.aws.aws_ssm connection also needs a bucket, C(ansible_aws_ssm_bucket_name)).
    type: str
    choices: [ssh, ssm]
    default: ssh
  strict_permissions:
    description:
      - When V(false), a region where the credentials are denied access is skipped with a warning instead of failing.
    type: bool
    default: true
  max_concurrency:
    description: How many regions (and, inside a region, calls) are read at the same time.
    type: int
    default: 8
"""

EXAMPLES = r"""
# inventories/prod/aws.eks_nodes.yml: every self-managed node of two clusters, cached for 5 minutes
plugin: selfmanaged.eks.eks_nodes
regions: [eu-west-1]
clusters: [prod-blue, prod-green]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible-eks-nodes
cache_timeout: 300

---
# Join Kubernetes node state, connect through SSM, add Standby instances and a custom group
plugin: selfmanaged.eks.eks_nodes
regions: [us-east-1]
clusters: [demo]
kubernetes: true
connection: ssm
lifecycle_states: [InService, Standby]
compose:
  ansible_aws_ssm_bucket_name: "'my-ssm-transfer-bucket'"
groups:
  gpu: eks_node_instance_type.startswith('g5')
keyed_groups:
  - key: eks_node_labels['node.kubernetes.io/lifecycle'] | default('none')
    prefix: label_lifecycle
"""

import hashlib
import json

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.plugins.inventory import Cacheable
from ansible.plugins.inventory import Constructable

from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_hosts import InventoryConfigError
from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_hosts import build_inventory
from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_hosts import validate_hostnames
from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_hosts import validate_lifecycle_states

# The options that change what is fetched; the cache key includes them so that editing the
# file never serves a fleet read for other options.
FETCH_OPTIONS = ("regions", "clusters", "node_groups", "exclude_node_groups", "include_managed_node_groups", "lifecycle_states", "kubernetes")

# The options amazon.aws's inventory plugins template (AWSInventoryBase.TemplatedOptions).
TEMPLATABLE_OPTIONS = ("access_key", "secret_key", "session_token", "profile", "endpoint_url", "assume_role_arn", "region", "regions", "filters")


class _TemplatedOptions:
    """amazon.aws's inventory option templating, for the same options.

    Only values that are templates are templated (without the `disable_lookups` argument
    ansible-core 2.19 deprecates), so plain lists cost nothing and warn nothing.
    """

    def __init__(self, templar, options):
        self.original_options = options
        self.templar = templar

    def _template(self, value):
        if isinstance(value, str) and self.templar.is_template(value):
            return self.templar.template(value)
        return value

    def get(self, *args):
        value = self.original_options.get(*args)
        if not value or not self.templar or args[0] not in TEMPLATABLE_OPTIONS:
            return value
        if isinstance(value, dict):
            return {k: self._template(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._template(v) for v in value]
        return self._template(value)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "selfmanaged.eks.eks_nodes"
    INVENTORY_FILE_SUFFIXES = ("eks_nodes.yml", "eks_nodes.yaml")

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(self.INVENTORY_FILE_SUFFIXES)

    def get_options(self, *args):
        return _TemplatedOptions(self.templar, super().get_options(*args))

    def get_option(self, option, hostvars=None):
        return _TemplatedOptions(self.templar, {option: super().get_option(option, hostvars)}).get(option)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path)
        self._read_config_data(path)
        try:
            hostnames = validate_hostnames(self.get_option("hostnames"))
            lifecycle_states = validate_lifecycle_states(self.get_option("lifecycle_states"))
        except InventoryConfigError as exc:
            raise AnsibleParserError("{0}: {1}".format(path, exc))
        if self.get_option("max_concurrency") < 1:
            raise AnsibleParserError("{0}: max_concurrency {1} must be 1 or more".format(path, self.get_option("max_concurrency")))

        fleet = None
        cache_key = self._fleet_cache_key(path)
        if cache and self.get_option("cache"):
            try:
                fleet = self._cache[cache_key]
            except KeyError:
                fleet = None
        if fleet is None:
            fleet = self._read_fleet(lifecycle_states)
            if self.get_option("cache"):
                self._cache[cache_key] = fleet

        try:
            model = build_inventory(
                fleet,
                hostnames=hostnames,
                lifecycle_states=lifecycle_states,
                kubernetes=self.get_option("kubernetes"),
                connection=self.get_option("connection"),
                node_groups=self.get_option("node_groups"),
                exclude_node_groups=self.get_option("exclude_node_groups"),
                include_managed=self.get_option("include_managed_node_groups"),
            )
        except InventoryConfigError as exc:
            raise AnsibleParserError("{0}: {1}".format(path, exc))
        self._populate(model)

    def _fleet_cache_key(self, path):
        options = {name: self.get_option(name) for name in FETCH_OPTIONS}
        digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]
        return "{0}_{1}".format(self.get_cache_key(path), digest)

    def _read_fleet(self, lifecycle_states):
        # A cache miss: only now import boto3 (through amazon.aws's inventory base) and read AWS.
        from ansible_collections.selfmanaged.eks.plugins.plugin_utils.inventory_aws import FleetReader

        return FleetReader(self).read(lifecycle_states)

    def _populate(self, model):
        strict = self.get_option("strict")
        for group in model["groups"]:
            self.inventory.add_group(group)
        for parent, children in model["children"].items():
            for child in children:
                self.inventory.add_child(parent, child)
        for name, hostvars in model["hosts"].items():
            self.inventory.add_host(name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
        for group, members in model["groups"].items():
            for name in members:
                self.inventory.add_host(name, group=group)
        compose, groups, keyed_groups = self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups")
        if not (compose or groups or keyed_groups):
            return
        for name, hostvars in model["hosts"].items():
            self._set_composite_vars(compose, hostvars, name, strict=strict)
            self._add_host_to_composed_groups(groups, hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(keyed_groups, hostvars, name, strict=strict)
