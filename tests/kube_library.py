"""The kubernetes library's ApiClient for an EKS cluster, for tests that read or seed cluster state with
its generated API classes. The collection itself talks to the API on urllib3 (module_utils/kube.py);
this uses the same endpoint, CA file and renewing EKS token (kube.eks_settings)."""

import kubernetes

from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import eks_settings


def eks_api_client(cluster, token_source, ca_dir=None):
    """An ApiClient for the DescribeCluster dict `cluster`, authenticated by `token_source` (renewed before it expires)."""
    settings = eks_settings(cluster, token_source, ca_dir)
    configuration = kubernetes.client.Configuration()
    configuration.host = settings["host"]
    configuration.ssl_ca_cert = settings["ca_file"]
    configuration.verify_ssl = settings["verify"]
    configuration.api_key = {"authorization": settings["authorization"]()}

    def renew(config):
        config.api_key["authorization"] = settings["authorization"]()

    configuration.refresh_api_key_hook = renew
    return kubernetes.client.ApiClient(configuration)
