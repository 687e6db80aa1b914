# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: eks_token
short_description: A fresh EKS bearer token for a cluster's Kubernetes API
version_added: 0.1.0
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
description:
  - Returns the token C(aws eks get-token) would print (C(k8s-aws-v1.) followed by a presigned STS
    GetCallerIdentity URL carrying the C(x-k8s-aws-id) header), signed in-process with the AWS
    credentials of the play. No aws CLI and no kubeconfig needed.
  - Feed it to C(kubernetes.core) modules as O(kubernetes.core.k8s#module:api_key), with the
    cluster endpoint as O(kubernetes.core.k8s#module:host) and the cluster CA written to a file
    as O(kubernetes.core.k8s#module:ca_cert).
  - A token is accepted for 15 minutes; look it up again for longer plays.
  - Honours C(AWS_ENDPOINT_URL) (and C(AWS_ENDPOINT_URL_STS)) like every boto3 client.
options:
  _terms:
    description: Name of the EKS cluster.
    required: true
    type: str
extends_documentation_fragment:
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
notes:
  - The token is a secret; set C(no_log) on tasks that show it.
"""

EXAMPLES = r"""
- name: Write the cluster CA where kubernetes.core can read it
  ansible.builtin.copy:
    content: "{{ control_plane_cluster.certificate_authority_data | b64decode }}"
    dest: "{{ ca_file }}"
    mode: "0600"

- name: Make gp3 the default StorageClass
  kubernetes.core.k8s:
    host: "{{ control_plane_cluster.endpoint }}"
    api_key: "{{ lookup('selfmanaged.eks.eks_token', control_plane_cluster.name) }}"
    ca_cert: "{{ ca_file }}"
    definition: "{{ gp3_storage_class }}"
"""

RETURN = r"""
_raw:
  description: The bearer token, one per term.
  type: list
  elements: str
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AWSLookupBase

from ansible.errors import AnsibleLookupError

from ansible_collections.amazon.aws.plugins.plugin_utils.lookup import AWSLookupBase

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import generate_eks_token


class LookupModule(AWSLookupBase):
    def run(self, terms, variables=None, **kwargs):
        super().run(terms, variables, **kwargs)
        if not terms:
            raise AnsibleLookupError("eks_token needs the cluster name: lookup('selfmanaged.eks.eks_token', 'my-cluster')")
        tokens = []
        for cluster_name in terms:
            if not cluster_name or not isinstance(cluster_name, str):
                raise AnsibleLookupError("eks_token: cluster name must be a non-empty string, got {0!r}".format(cluster_name))
            try:
                # A plain client: presigning makes no request, so there is nothing to retry.
                sts = self.client("sts")
                tokens.append(generate_eks_token(sts, cluster_name).value)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise AnsibleLookupError("eks_token: could not sign a token for cluster {0!r}: {1}".format(cluster_name, exc))
        return tokens
