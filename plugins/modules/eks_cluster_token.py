#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_cluster_token
short_description: An EKS bearer token for a cluster's Kubernetes API, signed with the module's AWS credentials
version_added: 0.1.0
description:
  - Returns the token C(aws eks get-token) would print (C(k8s-aws-v1.) followed by a presigned STS
    GetCallerIdentity URL carrying the C(x-k8s-aws-id) header), signed in-process. No aws CLI, no kubeconfig
    and no AWS API call.
  - Unlike the C(selfmanaged.eks.eks_token) lookup, it is a module of the C(group/selfmanaged.eks.eks) action
    group (which extends C(group/amazon.aws.aws), so one C(module_defaults) entry serves both collections), so the
    credentials, profile, assumed-role session and endpoint set there sign the token, the same identity as every
    other AWS call of the play.
  - Feed it to C(kubernetes.core) modules as O(kubernetes.core.k8s#module:api_key). A token is accepted for
    15 minutes; RV(expires_at) says when to sign a new one (three minutes of margin taken off). Run the module again before that for
    longer work; the internal role C(selfmanaged.eks.kube_api) does this for the other roles.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
options:
  cluster_name:
    description: Name of the EKS cluster the token is for (the C(x-k8s-aws-id) header).
    type: str
    required: true
    aliases: [name]
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - The token is a secret; register the result on a task with C(no_log=true). C(kubernetes.core) modules keep
    their O(kubernetes.core.k8s#module:api_key) out of their own output.
  - Supports check mode (signing writes nothing).
seealso:
  - plugin: selfmanaged.eks.eks_token
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Sign a token with the credentials of module_defaults
  selfmanaged.eks.eks_cluster_token:
    cluster_name: prod
  register: prod_token
  no_log: true

- name: List the nodes
  kubernetes.core.k8s_info:
    kind: Node
    host: "{{ prod_cluster.endpoint }}"
    api_key: "{{ prod_token.token }}"
    ca_cert: "{{ ca_file }}"
"""

RETURN = r"""
cluster_name:
  description: The cluster the token is for.
  returned: always
  type: str
  sample: prod
token:
  description: The bearer token (C(k8s-aws-v1.)...). A secret.
  returned: always
  type: str
expires_at:
  description: When to sign a new one (UTC, ISO 8601), three minutes before EKS stops accepting it.
  returned: always
  type: str
  sample: "2025-01-01T12:12:00+00:00"
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import generate_eks_token


def main():
    module = EksAWSModule(argument_spec=dict(cluster_name=dict(type="str", required=True, aliases=["name"])), supports_check_mode=True)
    try:
        token = generate_eks_token(aws_client(module, "sts"), module.params["cluster_name"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot sign an EKS token for cluster {0}: check the AWS credentials".format(module.params["cluster_name"]))
    module.exit_json(changed=False, cluster_name=module.params["cluster_name"], token=token.value, expires_at=token.refresh_at.isoformat())


if __name__ == "__main__":
    main()
