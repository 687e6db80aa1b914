#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_oidc_provider
short_description: Manage the IAM OIDC identity provider of an Amazon EKS cluster
version_added: 0.1.0
description:
  - Makes sure IAM has an OpenID Connect provider for the cluster's service account token
    issuer, so that IAM roles for service accounts (IRSA) can trust it.
  - The issuer comes from the cluster (O(cluster_name), DescribeCluster C(identity.oidc.issuer))
    or is given directly (O(issuer)).
  - Thumbprints. IAM no longer uses thumbprints to validate EKS issuers (it trusts the
    issuer's certificate through its own root CA store), and C(ThumbprintList) is optional in
    the IAM API, so by default the module sends none and IAM fills one in. Pass O(thumbprints)
    only for partitions or tooling that still need specific values, which are then managed exactly.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
options:
  cluster_name:
    description:
      - EKS cluster whose OIDC issuer the provider is for. One of O(cluster_name) or O(issuer) is required.
    type: str
  issuer:
    description:
      - OIDC issuer URL (C(https://) optional), for example V(https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE).
    type: str
  state:
    description:
      - V(present) creates or updates the provider, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  client_ids:
    description:
      - Audiences (client ids) the provider accepts. Managed exactly.
    type: list
    elements: str
    default: [sts.amazonaws.com]
  thumbprints:
    description:
      - SHA-1 thumbprints (40 hex digits) of the issuer's top intermediate or root CA certificate.
      - Omitted lets IAM choose and leaves the provider's thumbprints alone.
    type: list
    elements: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: OIDC provider for the cluster's issuer
  selfmanaged.eks.eks_oidc_provider:
    cluster_name: prod
  register: oidc

- name: Remove it
  selfmanaged.eks.eks_oidc_provider:
    cluster_name: prod
    state: absent
"""

RETURN = r"""
arn:
  description:
    - ARN of the OIDC provider; empty after O(state=absent).
    - For a create in check mode, the ARN IAM will give it.
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE
issuer:
  description: Issuer URL the provider is for.
  returned: always
  type: str
url:
  description: Provider URL as IAM stores it (issuer without C(https://)).
  returned: always
  type: str
client_ids:
  description: Audiences the provider accepts.
  returned: when the provider exists
  type: list
  elements: str
thumbprints:
  description: Thumbprints IAM holds for the provider.
  returned: when the provider exists
  type: list
  elements: str
tags:
  description: Tags of the provider.
  returned: when the provider exists
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import arn_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import oidc_provider_arn
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import partition_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.iam_policy import PolicyError
from ansible_collections.selfmanaged.eks.plugins.module_utils.iam_policy import issuer_host_path
from ansible_collections.selfmanaged.eks.plugins.module_utils.iam_policy import normalised_thumbprints
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tag_changes
from ansible_collections.selfmanaged.eks.plugins.module_utils.tags import tags_after

AWS_ERRORS = ()
try:
    AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
except NameError:
    pass


def cluster_issuer(module):
    name = module.params["cluster_name"]
    cluster = describe_cluster(aws_client(module, "eks"), name)
    if cluster is None:
        module.fail_json(msg="EKS cluster {0!r} does not exist in {1}; create it first or pass issuer".format(name, module.region))
    issuer = ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer")
    if not issuer:
        module.fail_json(msg="EKS cluster {0!r} has no OIDC issuer yet (status {1}); wait until it is ACTIVE".format(name, cluster.get("status")))
    return issuer


def find_provider(iam, host_path):
    """(arn, GetOpenIDConnectProvider response) of the provider for `host_path`, or (None, None)."""
    for entry in iam.list_open_id_connect_providers(aws_retry=True).get("OpenIDConnectProviderList", []):
        provider_arn = arn_or_none(entry["Arn"])
        if provider_arn is not None and provider_arn.resource == host_path:
            return entry["Arn"], iam.get_open_id_connect_provider(OpenIDConnectProviderArn=entry["Arn"], aws_retry=True)
    return None, None


def predicted_arn(module, host_path):
    """The ARN IAM will give the provider (for check mode, so that later tasks can use it)."""
    caller = aws_client(module, "sts").get_caller_identity(aws_retry=True)
    return oidc_provider_arn(partition_of(caller["Arn"]), caller["Account"], host_path)


def provider_result(arn, provider, issuer, host_path):
    result = dict(arn=arn or "", issuer=issuer, url=host_path)
    if provider is not None:
        result.update(
            client_ids=sorted(provider.get("ClientIDList", [])),
            thumbprints=sorted(provider.get("ThumbprintList", [])),
            tags=boto3_tag_list_to_ansible_dict(provider.get("Tags", [])),
        )
    return result


def diff_view(result):
    return {key: result[key] for key in ("url", "client_ids", "thumbprints", "tags")}


def ensure_present(module, iam, arn, provider, issuer, host_path, thumbprints):
    params = module.params
    client_ids = sorted(set(params["client_ids"]))
    if arn is None:
        diff = {"before": {}, "after": dict(url=host_path, client_ids=client_ids, thumbprints=thumbprints or [], tags=params.get("tags") or {})}
        if module.check_mode:
            return dict(changed=True, diff=diff, **provider_result(predicted_arn(module, host_path), None, issuer, host_path))
        request = dict(Url="https://" + host_path, ClientIDList=client_ids)
        if thumbprints:
            request["ThumbprintList"] = thumbprints
        if params.get("tags"):
            request["Tags"] = ansible_dict_to_boto3_tag_list(params["tags"])
        arn = iam.create_open_id_connect_provider(aws_retry=True, **request)["OpenIDConnectProviderArn"]
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn, aws_retry=True)
        return dict(changed=True, diff=diff, **provider_result(arn, provider, issuer, host_path))

    before = provider_result(arn, provider, issuer, host_path)
    after = dict(before)
    have_ids = set(before["client_ids"])
    add_ids = sorted(set(client_ids) - have_ids)
    remove_ids = sorted(have_ids - set(client_ids))
    after["client_ids"] = client_ids
    new_thumbprints = thumbprints is not None and thumbprints != before["thumbprints"]
    if new_thumbprints:
        after["thumbprints"] = thumbprints
    tags_to_set, tags_to_remove = tag_changes(before["tags"], params.get("tags"), params["purge_tags"])
    after["tags"] = tags_after(before["tags"], tags_to_set, tags_to_remove)
    changed = bool(add_ids or remove_ids or new_thumbprints or tags_to_set or tags_to_remove)
    diff = {"before": diff_view(before), "after": diff_view(after)}
    if not changed or module.check_mode:
        return dict(changed=changed, diff=diff, **after)
    for client_id in add_ids:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id, aws_retry=True)
    for client_id in remove_ids:
        iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id, aws_retry=True)
    if new_thumbprints:
        iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=thumbprints, aws_retry=True)
    if tags_to_remove:
        iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=tags_to_remove, aws_retry=True)
    if tags_to_set:
        iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=ansible_dict_to_boto3_tag_list(tags_to_set), aws_retry=True)
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn, aws_retry=True)
    return dict(changed=True, diff=diff, **provider_result(arn, provider, issuer, host_path))


def ensure_absent(module, iam, arn, provider, issuer, host_path):
    if arn is None:
        return dict(changed=False, diff={"before": {}, "after": {}}, **provider_result(None, None, issuer, host_path))
    before = provider_result(arn, provider, issuer, host_path)
    diff = {"before": diff_view(before), "after": {}}
    if not module.check_mode:
        try:
            iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn, aws_retry=True)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
    return dict(changed=True, diff=diff, **provider_result(None, None, issuer, host_path))


def main():
    argument_spec = dict(
        cluster_name=dict(type="str"),
        issuer=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        client_ids=dict(type="list", elements="str", default=["sts.amazonaws.com"]),
        thumbprints=dict(type="list", elements="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = EksAWSModule(
        argument_spec=argument_spec,
        required_one_of=[["cluster_name", "issuer"]],
        mutually_exclusive=[["cluster_name", "issuer"]],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "present" and not params["client_ids"]:
        module.fail_json(msg="client_ids is empty; IRSA needs at least sts.amazonaws.com")
    try:
        issuer = params["issuer"] or cluster_issuer(module)
        host_path = issuer_host_path(issuer)
        thumbprints = normalised_thumbprints(params["thumbprints"]) if params["thumbprints"] is not None else None
    except PolicyError as exc:
        module.fail_json(msg=str(exc))
    except AWS_ERRORS as exc:
        module.fail_json_aws(exc, msg="cannot read the OIDC issuer of cluster {0}".format(params["cluster_name"]))
    iam = aws_client(module, "iam")
    try:
        arn, provider = find_provider(iam, host_path)
        if params["state"] == "absent":
            result = ensure_absent(module, iam, arn, provider, issuer, host_path)
        else:
            result = ensure_present(module, iam, arn, provider, issuer, host_path, thumbprints)
    except AWS_ERRORS as exc:
        module.fail_json_aws(exc, msg="cannot manage the OIDC provider for {0}".format(host_path))
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
