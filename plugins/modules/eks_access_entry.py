#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_access_entry
version_added: 0.1.0
short_description: Manage EKS access entries and their access policy associations
description:
  - Creates, updates or deletes the access entry of one IAM principal on an EKS cluster, and associates or
    disassociates its access policies (cluster-wide or limited to namespaces).
  - EKS's rules are checked before any call, so bad input fails with nothing changed.
  - The cluster's authentication mode must be C(API) or C(API_AND_CONFIG_MAP). Switch a C(CONFIG_MAP) cluster with
    M(selfmanaged.eks.eks_cluster) (O(selfmanaged.eks.eks_cluster#module:authentication_mode=API_AND_CONFIG_MAP)),
    or keep using M(selfmanaged.eks.eks_aws_auth).
options:
  cluster_name:
    description:
      - Name of the EKS cluster.
    type: str
    required: true
  principal_arn:
    description:
      - ARN of the IAM role or user. Node entry types (C(EC2_LINUX), C(EC2_WINDOWS), C(FARGATE_LINUX), C(HYBRID_LINUX)) take roles only.
      - STS assumed-role session ARNs are refused; give the role ARN.
      - The principal of an entry cannot change; another ARN is another entry.
    type: str
    required: true
  type:
    description:
      - Type of the entry. C(STANDARD) for people and tools; C(EC2_LINUX) or C(EC2_WINDOWS) for the IAM role of
        self-managed nodes (EKS gives them the node user name and groups).
      - EKS cannot change the type of an existing entry; the module refuses and says so.
    type: str
    choices: [STANDARD, EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, HYBRID_LINUX]
    default: STANDARD
  username:
    description:
      - Kubernetes user name (C(STANDARD) only). May not start with C(system:), C(eks:), C(aws:), C(amazon:) or C(iam:).
      - Left out, EKS chooses one when the entry is created and the module leaves it alone afterwards.
    type: str
  kubernetes_groups:
    description:
      - Kubernetes groups for RBAC bindings (C(STANDARD) only). The same reserved prefixes as O(username) apply,
        so C(system:masters) is not possible; associate C(AmazonEKSClusterAdminPolicy) instead.
      - Left out, the groups are left alone. An empty list removes all groups.
    type: list
    elements: str
  access_policies:
    description:
      - Access policies to associate (C(STANDARD) only).
      - Left out, associations are left alone.
    type: list
    elements: dict
    suboptions:
      policy_arn:
        description:
          - A policy name such as C(AmazonEKSClusterAdminPolicy), C(AmazonEKSAdminPolicy), C(AmazonEKSEditPolicy)
            or C(AmazonEKSViewPolicy), expanded to C(arn:aws:eks::aws:cluster-access-policy/<name>), or a full ARN.
        type: str
        required: true
      access_scope:
        description:
          - Where the policy applies. Defaults to the whole cluster.
        type: dict
        suboptions:
          type:
            description:
              - V(cluster) or V(namespace).
            type: str
            choices: [cluster, namespace]
            default: cluster
          namespaces:
            description:
              - Namespaces for O(access_policies[].access_scope.type=namespace). A trailing C(*) is a wildcard (C(dev-*)).
            type: list
            elements: str
  purge_access_policies:
    description:
      - When O(access_policies) is given, disassociate the policies that are not listed, like the C(purge_tags) of
        amazon.aws modules. Set to V(false) to only add or re-scope the listed policies.
      - Has no effect when O(access_policies) is left out.
    type: bool
    default: true
  state:
    description:
      - V(present) creates or updates the entry; V(absent) deletes it with its policy associations.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Supports check mode and diff mode (the entry's type, user name, groups, policies and tags before and after).
seealso:
  - module: selfmanaged.eks.eks_aws_auth
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Let the self-managed nodes join
  selfmanaged.eks.eks_access_entry:
    cluster_name: demo
    principal_arn: arn:aws:iam::111122223333:role/demo-nodes
    type: EC2_LINUX

- name: Cluster admins
  selfmanaged.eks.eks_access_entry:
    cluster_name: demo
    principal_arn: arn:aws:iam::111122223333:role/platform-admins
    access_policies:
      - policy_arn: AmazonEKSClusterAdminPolicy

- name: A team edits its own namespaces and reads the rest through RBAC groups
  selfmanaged.eks.eks_access_entry:
    cluster_name: demo
    principal_arn: arn:aws:iam::111122223333:role/team-payments
    username: team-payments
    kubernetes_groups: [payments-readers]
    access_policies:
      - policy_arn: AmazonEKSEditPolicy
        access_scope:
          type: namespace
          namespaces: [payments, payments-*]
    tags:
      team: payments

- name: Remove an entry
  selfmanaged.eks.eks_access_entry:
    cluster_name: demo
    principal_arn: arn:aws:iam::111122223333:role/team-payments
    state: absent
"""

RETURN = r"""
access_entry:
  description: The entry after the task (in check mode, as it would be); empty after O(state=absent).
  returned: always
  type: dict
  contains:
    principal_arn:
      description: ARN of the IAM principal.
      type: str
      sample: arn:aws:iam::111122223333:role/platform-admins
    type:
      description: Entry type.
      type: str
      sample: STANDARD
    username:
      description: Kubernetes user name (possibly chosen by EKS; unknown in check mode before creation).
      type: str
      sample: arn:aws:sts::111122223333:assumed-role/platform-admins/{{SessionName}}
    kubernetes_groups:
      description: Kubernetes groups, sorted.
      type: list
      elements: str
      sample: [payments-readers]
    access_policies:
      description: Associated access policies with their scopes.
      type: list
      elements: dict
      sample: [{"policy_arn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy", "access_scope": {"type": "cluster"}}]
    tags:
      description: Tags of the entry.
      type: dict
      sample: {"team": "payments"}
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils.access_entry import (
    AccessEntryError,
    authentication_mode_problem,
    desired_access_entry,
    entry_updates,
    immutable_problem,
    policy_changes,
    predicted_state,
    readable_state,
)
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule, all_pages, aws_client, describe_cluster, describe_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tags_after


def describe_entry(eks, cluster_name, principal_arn):
    return describe_or_none(eks.describe_access_entry, "accessEntry", clusterName=cluster_name, principalArn=principal_arn)


def associated_policies(eks, cluster_name, principal_arn):
    return all_pages(eks.list_associated_access_policies, "associatedAccessPolicies", clusterName=cluster_name, principalArn=principal_arn)


def current_state(eks, cluster_name, principal_arn):
    entry = describe_entry(eks, cluster_name, principal_arn)
    if entry is None:
        return None, [], {}
    return entry, associated_policies(eks, cluster_name, principal_arn), entry.get("tags") or {}


def ensure_present(module, eks, cluster_name, desired, entry, policies, tags):
    """Apply the desired entry; return True when something changed (or would, in check mode)."""
    params = module.params
    if entry is not None:
        problem = immutable_problem(entry, desired)
        if problem:
            module.fail_json(msg=problem)
    updates = entry_updates(entry or {}, desired) if entry is not None else {}
    associate, disassociate = policy_changes(policies, desired["accessPolicies"], params["purge_access_policies"])
    tags_to_set, tags_to_remove = {}, []
    if entry is not None:
        tags_to_set, tags_to_remove = tag_changes(tags, desired["tags"], params["purge_tags"])
    changed = entry is None or bool(updates or associate or disassociate or tags_to_set or tags_to_remove)
    if not changed or module.check_mode:
        return changed
    if entry is None:
        create = dict(clusterName=cluster_name, principalArn=desired["principalArn"], type=desired["type"])
        if desired["username"] is not None:
            create["username"] = desired["username"]
        if desired["kubernetesGroups"]:
            create["kubernetesGroups"] = desired["kubernetesGroups"]
        if desired["tags"]:
            create["tags"] = desired["tags"]
        entry = eks.create_access_entry(aws_retry=True, **create)["accessEntry"]
    elif updates:
        eks.update_access_entry(clusterName=cluster_name, principalArn=desired["principalArn"], aws_retry=True, **updates)
    for policy in associate:
        eks.associate_access_policy(
            clusterName=cluster_name, principalArn=desired["principalArn"], policyArn=policy["policyArn"], accessScope=policy["accessScope"], aws_retry=True
        )
    for policy_arn in disassociate:
        eks.disassociate_access_policy(clusterName=cluster_name, principalArn=desired["principalArn"], policyArn=policy_arn, aws_retry=True)
    if tags_to_remove:
        eks.untag_resource(resourceArn=entry["accessEntryArn"], tagKeys=tags_to_remove, aws_retry=True)
    if tags_to_set:
        eks.tag_resource(resourceArn=entry["accessEntryArn"], tags=tags_to_set, aws_retry=True)
    return True


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        principal_arn=dict(type="str", required=True),
        type=dict(type="str", default="STANDARD", choices=["STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX"]),
        username=dict(type="str"),
        kubernetes_groups=dict(type="list", elements="str"),
        access_policies=dict(
            type="list",
            elements="dict",
            options=dict(
                policy_arn=dict(type="str", required=True),
                access_scope=dict(
                    type="dict",
                    options=dict(
                        type=dict(type="str", default="cluster", choices=["cluster", "namespace"]),
                        namespaces=dict(type="list", elements="str"),
                    ),
                ),
            ),
        ),
        purge_access_policies=dict(type="bool", default=True),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    cluster_name = params["cluster_name"]

    desired = None
    if params["state"] == "present":
        try:
            desired = desired_access_entry(params)
        except AccessEntryError as exc:
            module.fail_json(msg=str(exc))
    principal_arn = desired["principalArn"] if desired else params["principal_arn"].strip()

    eks = aws_client(module, "eks")
    try:
        cluster = describe_cluster(eks, cluster_name)
        if params["state"] == "present":
            problem = authentication_mode_problem(cluster_name, cluster)
            if problem:
                module.fail_json(msg=problem)
        elif cluster is None:
            module.exit_json(changed=False, access_entry={})

        entry, policies, tags = current_state(eks, cluster_name, principal_arn)
        before = readable_state(entry, policies, tags)

        if params["state"] == "absent":
            changed = entry is not None
            if changed and not module.check_mode:
                eks.delete_access_entry(clusterName=cluster_name, principalArn=principal_arn, aws_retry=True)
            after = {}
        else:
            changed = ensure_present(module, eks, cluster_name, desired, entry, policies, tags)
            if changed and not module.check_mode:
                after = readable_state(*current_state(eks, cluster_name, principal_arn))
            else:
                after = predicted_state(
                    entry, policies, tags, desired, params["purge_access_policies"], tags_after(tags, *tag_changes(tags, desired["tags"], params["purge_tags"]))
                )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="access entry of {0} on cluster {1}".format(principal_arn, cluster_name))

    result = dict(changed=changed, access_entry=after)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
