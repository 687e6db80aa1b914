"""EKS -> Kubernetes access from module_utils, checked against the sandbox's API servers,
which authenticate tokens the way aws-iam-authenticator does (STS call, cluster id header)."""

import boto3
import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError, KubeClient, TransportError, eks_settings, get_json
from tests.sandbox.clusters import create_cluster


@pytest.fixture
def two_clusters(sandbox, unique_name):
    return create_cluster(sandbox, unique_name("a")), create_cluster(sandbox, unique_name("b"))


def sts_client(sandbox):
    return boto3.client("sts", endpoint_url=sandbox.endpoint_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def test_token_from_module_utils_is_accepted_over_verified_tls(sandbox, two_clusters, tmp_path):
    cluster, _ = two_clusters
    client = KubeClient(**eks_settings(cluster, EksTokenSource(sts_client(sandbox), cluster["name"]), str(tmp_path)))
    namespaces = get_json(client, "/api/v1/namespaces")
    assert "kube-system" in [ns["metadata"]["name"] for ns in namespaces["items"]]


def test_token_for_another_cluster_is_refused(sandbox, two_clusters, tmp_path):
    cluster_a, cluster_b = two_clusters
    # Cluster b's endpoint and CA, but a token whose x-k8s-aws-id names cluster a.
    client = KubeClient(**eks_settings(cluster_b, EksTokenSource(sts_client(sandbox), cluster_a["name"]), str(tmp_path)))
    with pytest.raises(KubeApiError) as info:
        get_json(client, "/api/v1/namespaces")
    assert info.value.status == 401


def test_tls_is_verified_against_the_cluster_ca(sandbox, two_clusters, tmp_path):
    cluster_a, cluster_b = two_clusters
    wrong_ca = dict(cluster_a, certificateAuthority=cluster_b["certificateAuthority"])
    client = KubeClient(**eks_settings(wrong_ca, EksTokenSource(sts_client(sandbox), cluster_a["name"]), str(tmp_path)))
    with pytest.raises(TransportError) as info:
        get_json(client, "/api/v1/namespaces")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate verify failed" in str(info.value)
