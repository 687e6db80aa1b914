#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_cluster
short_description: Create, update, upgrade and delete an Amazon EKS control plane
version_added: 0.1.0
description:
  - Creates an EKS cluster, and on an existing cluster applies what EKS allows to change
    (control plane logging, endpoint access and public CIDRs, authentication mode forward
    only, secrets encryption when the cluster has none, tags).
  - Upgrades the Kubernetes version one minor version at a time (V(1.30) to V(1.32) is two
    waited C(UpdateClusterVersion) calls), after checking that no node's kubelet would
    fall further behind the control plane than the Kubernetes version skew policy allows
    (three minor versions from 1.28 on, two before; never newer).
  - Refuses, before changing anything, what EKS cannot do (new subnets, security groups,
    service CIDR, IP family or cluster role after creation; downgrades; unsupported
    versions; subnets in fewer than two availability zones; invalid CIDRs; authentication
    mode moving backwards), with a message naming the value and the fix.
  - EKS accepts one kind of configuration change per C(UpdateClusterConfig) call and none
    while another update runs, so each change is its own update and every update but the
    last is always waited for.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
requirements:
  - urllib3, for the kubelet version check before an upgrade (O(check_node_skew))
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
seealso:
  - module: selfmanaged.eks.eks_cluster_info
  - module: community.aws.eks_cluster
    description: >-
      Creates and deletes clusters only: no version upgrades, logging, endpoint access or access configuration changes.
options:
  name:
    description:
      - Name of the cluster.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the cluster, V(absent) deletes it and waits until it is gone when O(wait=true).
    type: str
    choices: [present, absent]
    default: present
  version:
    description:
      - Kubernetes version (C(MAJOR.MINOR)), one of V(1.29), V(1.30), V(1.31), V(1.32), V(1.33).
      - On create, omitted means the EKS default version.
      - On an existing cluster a higher version upgrades it one minor version at a time; a lower version is refused.
    type: str
  role_arn:
    description:
      - ARN of the cluster IAM role (trust C(eks.amazonaws.com), AmazonEKSClusterPolicy). Required to create.
      - Cannot change after creation.
    type: str
  subnets:
    description:
      - Subnet ids for the control plane network interfaces, in at least two availability zones. Required to create.
      - Cannot change after creation.
    type: list
    elements: str
  security_groups:
    description:
      - Additional security group ids for the control plane network interfaces.
      - Cannot change after creation.
    type: list
    elements: str
  endpoint_public_access:
    description:
      - Whether the API server endpoint is reachable from the internet. Omitted keeps the current (EKS default V(true)).
    type: bool
  endpoint_private_access:
    description:
      - Whether the API server endpoint is reachable from inside the VPC. Omitted keeps the current (EKS default V(false)).
    type: bool
  public_access_cidrs:
    description:
      - CIDR blocks allowed to reach the public endpoint. Omitted keeps the current (EKS default V(0.0.0.0/0)).
    type: list
    elements: str
  logging:
    description:
      - Control plane log types to enable; the others are disabled. V([]) disables all. Omitted keeps the current.
    type: list
    elements: str
    choices: [api, audit, authenticator, controllerManager, scheduler]
  secrets_encryption_key_arn:
    description:
      - ARN of a KMS key to envelope-encrypt Kubernetes secrets with.
      - Can be added to a cluster without one, never changed or removed.
    type: str
  service_ipv4_cidr:
    description:
      - Service IP range (private, V(/12) to V(/24)), for example V(172.20.0.0/16). Omitted lets EKS choose.
      - Cannot change after creation.
    type: str
  ip_family:
    description:
      - IP family of pods and services. Cannot change after creation.
    type: str
    choices: [ipv4, ipv6]
  authentication_mode:
    description:
      - How the cluster maps IAM principals, V(CONFIG_MAP), V(API_AND_CONFIG_MAP) or V(API).
      - Moves only forward, in that order; moving backwards is refused.
    type: str
    choices: [CONFIG_MAP, API_AND_CONFIG_MAP, API]
  bootstrap_cluster_creator_admin_permissions:
    description:
      - Whether the identity creating the cluster gets a cluster-admin access entry. Honoured at creation only.
    type: bool
  check_node_skew:
    description:
      - Before a version upgrade, list the cluster's Node objects through the Kubernetes API (EKS
        token signed with the task's AWS credentials) and refuse the upgrade when any kubelet
        would break the version skew policy. A cluster without nodes is upgraded.
      - Set to V(false) only when the API server cannot be reached from where the task runs and
        you have checked node versions another way.
    type: bool
    default: true
extends_documentation_fragment:
  - selfmanaged.eks.wait
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - With O(wait=false) the module still waits for every update except the last one, because EKS refuses an update while another runs.
  - Supports check mode and diff mode; check mode reads the cluster (and its nodes for an upgrade) and reports the same C(changed) and diff without writing.
"""

EXAMPLES = r"""
- name: Create a cluster
  selfmanaged.eks.eks_cluster:
    name: prod
    version: "1.32"
    role_arn: "{{ iam_roles.cluster_role_arn }}"
    subnets: [subnet-0a1b2c3d, subnet-4e5f6a7b]
    endpoint_private_access: true
    public_access_cidrs: [203.0.113.0/24]
    logging: [api, audit, authenticator]
    service_ipv4_cidr: 172.20.0.0/16
    authentication_mode: API_AND_CONFIG_MAP
    tags:
      team: platform

- name: Upgrade from 1.32 to 1.33 (refused if a kubelet would fall too far behind)
  selfmanaged.eks.eks_cluster:
    name: prod
    version: "1.33"
    wait_timeout: 3600

- name: Delete the cluster
  selfmanaged.eks.eks_cluster:
    name: prod
    state: absent
"""

RETURN = r"""
cluster:
  description:
    - The cluster as DescribeCluster returns it, keys in snake_case (tag keys as they are).
    - Empty when the cluster does not exist (after O(state=absent), or a create in check mode).
  returned: always
  type: dict
  contains:
    name:
      description: Cluster name.
      type: str
      sample: prod
    arn:
      description: Cluster ARN.
      type: str
    version:
      description: Kubernetes version.
      type: str
      sample: "1.32"
    status:
      description: CREATING, ACTIVE, UPDATING, DELETING or FAILED.
      type: str
    endpoint:
      description: API server URL.
      type: str
    platform_version:
      description: EKS platform version.
      type: str
      sample: eks.5
    certificate_authority:
      description: C(data) holds the base64 PEM of the cluster CA.
      type: dict
    kubernetes_network_config:
      description: C(service_ipv4_cidr), C(ip_family).
      type: dict
    identity:
      description: C(oidc.issuer) is the OIDC issuer URL for IAM roles for service accounts.
      type: dict
    access_config:
      description: C(authentication_mode).
      type: dict
    resources_vpc_config:
      description: Subnets, security groups, endpoint access, public CIDRs and the cluster security group.
      type: dict
    logging:
      description: Control plane logging settings.
      type: dict
    tags:
      description: Tags, keys unchanged.
      type: dict
timed_out:
  description:
    - Whether O(wait_timeout) ran out. The module then fails, with C(changed) true when it had already created the cluster
      or started an update, C(waiting_for) (what it waited for) and C(last_state); running it again picks up where it
      stopped (it waits for the cluster to be ACTIVE, then applies what is still missing), so a role can wait in slices.
  returned: always
  type: bool
  sample: false
updates:
  description: The EKS updates started by this run, in order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Update id (absent in check mode).
      type: str
    type:
      description: VersionUpdate, LoggingUpdate, EndpointAccessUpdate, AccessConfigUpdate or AssociateEncryptionConfig.
      type: str
    status:
      description: Successful, or InProgress when not waited for.
      type: str
    version:
      description: Target version of a VersionUpdate.
      type: str
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.selfmanaged.eks.plugins.module_utils import cluster as logic
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitFailed
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import SubnetError
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import describe_subnets
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import validated_subnets
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tags_after

# Polls start fast (updates of small changes finish in seconds) and back off to one
# DescribeCluster/DescribeUpdate every MAX_POLL_DELAY seconds for the long ones (creation,
# version upgrades take 10 to 30 minutes).
FIRST_POLL_DELAY = 0.5
MAX_POLL_DELAY = 15.0
KUBE_REQUEST_TIMEOUT = 30


def snake_cluster(cluster):
    if not cluster:
        return {}
    return camel_dict_to_snake_dict(cluster, ignore_list=["tags"])


def cluster_state(cluster):
    return "absent" if cluster is None else cluster.get("status", "unknown")


class ClusterManager:
    def __init__(self, module):
        self.module = module
        self.name = module.params["name"]
        self.eks = aws_client(module, "eks")
        self.updates = []
        # Whether this run has written anything: a failure (a wait that timed out) after a write is still a change.
        self.wrote = False

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, updates=self.updates, changed=self.wrote, **kwargs)

    def fail_waiting(self, exc):
        """WaitTimeout: `timed_out` with what was awaited and its last state, so a role can wait in slices and run again."""
        if isinstance(exc, WaitTimeout):
            self.fail(str(exc), timed_out=True, waiting_for=exc.what, last_state=exc.state)
        self.fail(str(exc))

    def describe(self):
        try:
            return describe_cluster(self.eks, self.name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(self.name))

    # ---- waiting -------------------------------------------------------------------

    def wait_for_cluster(self, is_done, what):
        def fetch():
            return describe_cluster(self.eks, self.name)

        def failed(cluster):
            if cluster is not None and cluster.get("status") == "FAILED":
                return "the cluster is FAILED; see its health issues in the EKS console, delete it and create it again"
            return None

        try:
            return wait_until(
                fetch, is_done, cluster_state, self.module.params["wait_timeout"], what, is_failed=failed, delay=FIRST_POLL_DELAY, max_delay=MAX_POLL_DELAY
            )
        except (WaitTimeout, WaitFailed) as exc:
            self.fail_waiting(exc)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="error while waiting for {0}".format(what))

    def wait_active(self):
        return self.wait_for_cluster(lambda c: c is not None and c.get("status") == "ACTIVE", "cluster {0} to be ACTIVE".format(self.name))

    def wait_update(self, update):
        def fetch():
            return self.eks.describe_update(name=self.name, updateId=update["id"], aws_retry=True)["update"]

        def failed(current):
            if current.get("status") in ("Failed", "Cancelled"):
                return logic.update_errors_message(current)
            return None

        what = "{0} {1} of cluster {2}".format(update["type"], update["id"], self.name)
        try:
            done = wait_until(
                fetch,
                lambda u: u.get("status") == "Successful",
                lambda u: (u or {}).get("status", "unknown"),
                self.module.params["wait_timeout"],
                what,
                is_failed=failed,
                delay=FIRST_POLL_DELAY,
                max_delay=MAX_POLL_DELAY,
            )
        except (WaitTimeout, WaitFailed) as exc:
            self.fail_waiting(exc)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="error while waiting for {0}".format(what))
        update["status"] = done["status"]
        # The cluster goes back to ACTIVE a moment after the update reports success.
        self.wait_active()

    def start_update(self, kind, call, wait, **extra):
        try:
            response = call()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="EKS refused {0} of cluster {1}".format(kind, self.name), updates=self.updates)
        self.wrote = True
        update = {"id": response["update"]["id"], "type": response["update"].get("type", kind), "status": response["update"].get("status")}
        update.update(extra)
        self.updates.append(update)
        if wait:
            self.wait_update(update)

    # ---- checks that read AWS or Kubernetes ---------------------------------------

    def check_subnets(self, subnet_ids):
        try:
            subnets = describe_subnets(aws_client(self.module, "ec2"), subnet_ids)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            self.module.fail_json_aws(exc, msg="cannot describe subnets {0}".format(", ".join(subnet_ids)))
        try:
            validated_subnets(subnet_ids, subnets)
        except SubnetError as exc:
            self.fail(str(exc))

    def kubelet_versions(self, cluster):
        """{node name: kubelet version} of the cluster's nodes (the fleet model's node records)."""
        # Imported here: only upgrades call the Kubernetes API.
        from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
        from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client

        self.module.params["cluster_name"] = self.name
        api = kube_api_client(self.module, cluster)
        try:
            nodes = list_nodes(api, timeout=KUBE_REQUEST_TIMEOUT)
        except Exception as exc:  # pylint: disable=broad-except
            self.fail(
                "cannot list the nodes of cluster {0} to check kubelet versions before the upgrade: {1}; "
                "make the API server reachable with the task's AWS identity, or set check_node_skew=false after checking node versions yourself".format(
                    self.name, exc
                )
            )
        return dict((node["name"], node["kubelet_version"]) for node in nodes if node["kubelet_version"])

    def check_skew(self, cluster, target):
        problems = logic.kubelet_skew_violations(target, self.kubelet_versions(cluster))
        if problems:
            self.fail(
                "refusing to upgrade cluster {0} from {1} to {2}: {3}. Upgrade or replace those nodes to kubelet {4} or newer first, "
                "then run again (Kubernetes allows kubelets at most {5} minor versions older than the API server)".format(
                    self.name, cluster["version"], target, "; ".join(problems), logic.oldest_kubelet_for(target), logic.allowed_kubelet_skew(target)
                )
            )

    # ---- present / absent --------------------------------------------------------

    def present(self, desired):
        cluster = self.describe()
        if cluster is not None and cluster.get("status") == "DELETING":
            cluster = self.wait_for_cluster(lambda c: c is None, "cluster {0} to finish deleting".format(self.name))
        if cluster is None:
            return self.create(desired)
        if cluster.get("status") == "FAILED":
            self.fail("cluster {0} is FAILED; delete it (state=absent) and create it again".format(self.name))
        if cluster.get("status") != "ACTIVE":
            cluster = self.wait_active()
        return self.update(cluster, desired)

    def create(self, desired):
        params = self.module.params
        missing = [option for option in ("role_arn", "subnets") if not params.get(option)]
        if missing:
            self.fail("cluster {0} does not exist; creating it needs {1}".format(self.name, " and ".join(missing)))
        self.check_subnets(params["subnets"])
        request = logic.create_request(self.name, params, desired)
        after = {key: value for key, value in desired.items() if value is not None}
        after["tags"] = dict(params.get("tags") or {})
        diff = {"before": {}, "after": after}
        if self.module.check_mode:
            return dict(changed=True, cluster={}, updates=[], diff=diff)
        try:
            cluster = self.eks.create_cluster(aws_retry=True, **request)["cluster"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="EKS refused to create cluster {0}".format(self.name))
        self.wrote = True
        if params["wait"]:
            cluster = self.wait_active()
        return dict(changed=True, cluster=snake_cluster(cluster), updates=[], diff=diff)

    def update(self, cluster, desired):
        params = self.module.params
        current = logic.cluster_settings(cluster)
        problems = logic.immutable_changes(current, desired)
        if problems:
            self.fail("cannot apply to cluster {0}: {1}".format(self.name, "; ".join(problems)))
        try:
            config = logic.config_updates(current, desired)
            path = logic.plan_upgrade_path(cluster["version"], desired["version"]) if desired.get("version") else []
        except logic.ClusterConfigError as exc:
            self.fail("cluster {0}: {1}".format(self.name, exc))

        tags_to_set, tags_to_remove = tag_changes(current["tags"], params.get("tags"), params["purge_tags"])

        if path and params["check_node_skew"]:
            self.check_skew(cluster, path[-1])

        changed = bool(config or path or tags_to_set or tags_to_remove)
        diff = {"before": current, "after": logic.settings_after(current, desired, tags_after(current["tags"], tags_to_set, tags_to_remove))}
        if self.module.check_mode or not changed:
            planned = [{"type": step[0]} for step in config] + [{"type": "VersionUpdate", "version": v} for v in path]
            return dict(changed=changed, cluster=snake_cluster(cluster), updates=planned, diff=diff)

        self.apply_tags(cluster["arn"], tags_to_set, tags_to_remove)
        steps = [(kind, request, {}) for kind, request in config] + [("VersionUpdate", {"version": v}, {"version": v}) for v in path]
        for index, (kind, request, extra) in enumerate(steps):
            wait = params["wait"] or index < len(steps) - 1
            if kind == "VersionUpdate":
                call = self.version_call(request["version"])
            elif kind == "AssociateEncryptionConfig":
                call = self.encryption_call(request)
            else:
                call = self.config_call(request)
            self.start_update(kind, call, wait, **extra)
        cluster = self.describe()
        return dict(changed=True, cluster=snake_cluster(cluster), updates=self.updates, diff=diff)

    def version_call(self, version):
        return lambda: self.eks.update_cluster_version(name=self.name, version=version, aws_retry=True)

    def config_call(self, request):
        return lambda: self.eks.update_cluster_config(name=self.name, aws_retry=True, **request)

    def encryption_call(self, request):
        return lambda: self.eks.associate_encryption_config(clusterName=self.name, aws_retry=True, **request)

    def apply_tags(self, arn, to_set, to_remove):
        try:
            if to_remove:
                self.eks.untag_resource(resourceArn=arn, tagKeys=to_remove, aws_retry=True)
            if to_set:
                self.eks.tag_resource(resourceArn=arn, tags=to_set, aws_retry=True)
            self.wrote = self.wrote or bool(to_set or to_remove)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="cannot update the tags of cluster {0}".format(self.name))

    def absent(self):
        cluster = self.describe()
        if cluster is None:
            return dict(changed=False, cluster={}, updates=[], diff={"before": {}, "after": {}})
        diff = {"before": logic.cluster_settings(cluster), "after": {}}
        if self.module.check_mode:
            return dict(changed=True, cluster=snake_cluster(cluster), updates=[], diff=diff)
        if cluster.get("status") != "DELETING":
            try:
                self.eks.delete_cluster(name=self.name, aws_retry=True)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    self.module.fail_json_aws(
                        exc, msg="EKS refused to delete cluster {0} (delete its managed node groups and Fargate profiles first)".format(self.name)
                    )
            except botocore.exceptions.BotoCoreError as exc:
                self.module.fail_json_aws(exc, msg="cannot delete cluster {0}".format(self.name))
            self.wrote = True
        if self.module.params["wait"]:
            self.wait_for_cluster(lambda c: c is None, "cluster {0} to be deleted".format(self.name))
        return dict(changed=True, cluster={}, updates=[], diff=diff)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        version=dict(type="str"),
        role_arn=dict(type="str"),
        subnets=dict(type="list", elements="str"),
        security_groups=dict(type="list", elements="str"),
        endpoint_public_access=dict(type="bool"),
        endpoint_private_access=dict(type="bool"),
        public_access_cidrs=dict(type="list", elements="str"),
        logging=dict(type="list", elements="str", choices=list(logic.LOG_TYPES)),
        secrets_encryption_key_arn=dict(type="str", no_log=False),
        service_ipv4_cidr=dict(type="str"),
        ip_family=dict(type="str", choices=list(logic.IP_FAMILIES)),
        authentication_mode=dict(type="str", choices=list(logic.AUTHENTICATION_MODES)),
        bootstrap_cluster_creator_admin_permissions=dict(type="bool"),
        check_node_skew=dict(type="bool", default=True),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1200),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = ClusterManager(module)
    if module.params["state"] == "absent":
        result = manager.absent()
    else:
        try:
            desired = logic.desired_settings(module.params)
            logic.validate_desired(desired)
        except logic.ClusterConfigError as exc:
            module.fail_json(msg="cluster {0}: {1}".format(module.params["name"], exc))
        result = manager.present(desired)
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff", None)
    module.exit_json(timed_out=False, **result)


if __name__ == "__main__":
    main()
