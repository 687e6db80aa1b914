#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_cluster_info
short_description: Describe one or all Amazon EKS clusters
version_added: 0.1.0
description:
  - Returns clusters as DescribeCluster does, keys in snake_case, in the same shape as the
    C(cluster) return value of M(selfmanaged.eks.eks_cluster).
seealso:
  - module: selfmanaged.eks.eks_cluster
  - module: community.aws.eks_cluster
    description: Creates and deletes clusters; returns the cluster only when it changes it.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
options:
  name:
    description:
      - Name of the cluster to describe. Omitted describes every cluster of the region.
      - A cluster that does not exist gives an empty list, not an error.
    type: str
    aliases: [cluster_name]
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read one cluster
  selfmanaged.eks.eks_cluster_info:
    name: prod
  register: prod_info

- name: Show its endpoint
  ansible.builtin.debug:
    msg: "{{ prod_info.clusters[0].endpoint }}"

- name: List every cluster of the region
  selfmanaged.eks.eks_cluster_info:
  register: all_clusters
"""

RETURN = r"""
clusters:
  description: The clusters found, sorted by name; see the C(cluster) return value of M(selfmanaged.eks.eks_cluster).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Cluster name.
      type: str
    version:
      description: Kubernetes version.
      type: str
    status:
      description: Cluster status.
      type: str
    endpoint:
      description: API server URL.
      type: str
    certificate_authority:
      description: C(data) holds the base64 PEM of the cluster CA.
      type: dict
    identity:
      description: C(oidc.issuer) is the OIDC issuer URL.
      type: dict
    tags:
      description: Tags, keys unchanged.
      type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster


def cluster_names(eks):
    return sorted(all_pages(eks.list_clusters, "clusters"))


def main():
    module = EksAWSModule(argument_spec=dict(name=dict(type="str", aliases=["cluster_name"])), supports_check_mode=True)
    eks = aws_client(module, "eks")
    try:
        names = [module.params["name"]] if module.params["name"] else cluster_names(eks)
        # A cluster deleted between ListClusters and DescribeCluster is simply left out.
        clusters = [c for c in (describe_cluster(eks, name) for name in names) if c is not None]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot describe EKS clusters")
    module.exit_json(changed=False, clusters=[camel_dict_to_snake_dict(c, ignore_list=["tags"]) for c in clusters])


if __name__ == "__main__":
    main()
