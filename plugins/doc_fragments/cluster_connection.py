# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Options that say how a module reaches the cluster's Kubernetes API.
    DOCUMENTATION = r"""
options:
  cluster_name:
    description:
      - Name of the EKS cluster.
      - Without O(host), O(kubeconfig) or O(context), the module calls DescribeCluster, verifies
        TLS against the cluster's certificate authority and authenticates with an EKS token it
        signs itself with the AWS credentials of the task. No kubeconfig and no aws CLI needed.
    type: str
  kubeconfig:
    description:
      - Path to a kubeconfig file, for clusters reached another way.
      - Takes precedence over the EKS token made from O(cluster_name).
      - O(kubeconfig) and O(context) need the C(kubernetes) Python library (>= 29.0.0, not 37.0.2), which reads the
        kubeconfig (exec plugins, client certificates, tokens). O(cluster_name) and O(host) do not use it.
    type: path
  context:
    description:
      - Context of the kubeconfig to use.
    type: str
  host:
    description:
      - URL of the Kubernetes API server. Takes precedence over O(kubeconfig) and O(cluster_name).
    type: str
  api_key:
    description:
      - Bearer token for O(host). Never logged.
    type: str
  ca_cert:
    description:
      - Path to the CA certificate that signed the API server's certificate, for O(host).
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate (O(host) and O(kubeconfig)).
      - EKS connections made from O(cluster_name) always verify against the cluster's CA.
    type: bool
    default: true
    aliases: [verify_ssl]
  proxy:
    description:
      - URL of an HTTP proxy for the Kubernetes API requests (HTTPS through C(CONNECT)), for example
        V(http://proxy.example.com:3128); it may carry a user and password, and is never logged.
      - Without it, the C(HTTPS_PROXY) (or C(https_proxy)) environment variable is used, and C(HTTP_PROXY) for an
        C(http://) O(host). The AWS calls follow the same environment variables through boto3.
      - Applies to every connection method (EKS token, O(host), O(kubeconfig)).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts the Kubernetes API is reached at directly, read as curl reads C(NO_PROXY). Entries are
        V(*), host names (which match their subdomains too, V(.eks.amazonaws.com)), V(host:port), IP addresses and CIDR
        blocks.
      - Without it, the C(NO_PROXY) (or C(no_proxy)) environment variable is used. V("") sends every request through
        O(proxy).
    type: str
requirements:
  - urllib3, for the Kubernetes API calls (botocore depends on it)
notes:
  - The EKS token is signed in-process (the C(k8s-aws-v1.) presigned STS GetCallerIdentity
    scheme) and refreshed before its 15 minutes of validity run out during long operations.
    It never appears in output or logs.
"""
