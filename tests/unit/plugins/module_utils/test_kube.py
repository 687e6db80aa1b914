"""Building a Kubernetes client for an EKS cluster: which options win, CA handling, errors."""

import base64

import boto3
import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import (
    KUBE_CONNECTION_SPEC,
    KubeConnectionError,
    cluster_not_ready_message,
    connection_method,
    eks_configuration,
    host_configuration,
    kubeconfig_configuration,
    write_ca_file,
)

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CA_B64 = base64.b64encode(PEM).decode()


def cluster(status="ACTIVE", **extra):
    data = {
        "name": "prod",
        "status": status,
        "endpoint": "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        "certificateAuthority": {"data": CA_B64},
    }
    data.update(extra)
    return data


@pytest.fixture
def token_source():
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1")
    return EksTokenSource(session.client("sts"), "prod")


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"cluster_name": "prod"}, "eks"),
        ({"cluster_name": "prod", "kubeconfig": "/k"}, "kubeconfig"),
        ({"cluster_name": "prod", "context": "ctx"}, "kubeconfig"),
        ({"cluster_name": "prod", "kubeconfig": "/k", "host": "https://h"}, "host"),
        ({"host": "https://h"}, "host"),
    ],
)
def test_precedence_host_then_kubeconfig_then_eks(params, expected):
    assert connection_method(params) == expected


def test_no_connection_option_is_a_clear_error():
    with pytest.raises(KubeConnectionError, match="set cluster_name"):
        connection_method({"validate_certs": True})


def test_api_key_is_no_log():
    assert KUBE_CONNECTION_SPEC["api_key"]["no_log"] is True


def test_eks_configuration_uses_endpoint_ca_and_bearer_token(tmp_path, token_source):
    config = eks_configuration(cluster(), token_source, str(tmp_path))
    assert config.host == "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
    assert config.verify_ssl is True
    with open(config.ssl_ca_cert, "rb") as handle:
        assert handle.read() == PEM
    assert config.ssl_ca_cert.startswith(str(tmp_path))
    header = config.get_api_key_with_prefix("authorization")
    assert header.startswith("Bearer k8s-aws-v1.")


def test_eks_configuration_refreshes_token_through_hook(tmp_path, token_source):
    config = eks_configuration(cluster(), token_source, str(tmp_path))
    config.api_key["authorization"] = "Bearer stale"
    # The kubernetes client calls the hook before each request's auth settings.
    assert config.get_api_key_with_prefix("authorization").startswith("Bearer k8s-aws-v1.")


def test_ca_that_is_not_base64_is_reported(tmp_path):
    with pytest.raises(KubeConnectionError, match="not valid base64"):
        write_ca_file("not base64 !!", str(tmp_path))


def test_missing_cluster_message_names_cluster_region_and_fix():
    message = cluster_not_ready_message("prod", None, "eu-west-1")
    assert "'prod' does not exist in region eu-west-1" in message
    assert "eks_cluster" in message


@pytest.mark.parametrize("status", ["CREATING", "DELETING", "FAILED"])
def test_cluster_not_active_is_reported_with_its_state(status):
    message = cluster_not_ready_message("prod", cluster(status=status), "eu-west-1")
    assert status in message and "not ACTIVE" in message


@pytest.mark.parametrize("status", ["ACTIVE", "UPDATING"])
def test_active_and_updating_clusters_are_reachable(status):
    assert cluster_not_ready_message("prod", cluster(status=status)) is None


def test_cluster_without_ca_yet_is_not_reachable():
    assert "no endpoint or certificate authority" in cluster_not_ready_message("prod", cluster(certificateAuthority={}))


def test_host_configuration_kubernetes_core_style():
    config = host_configuration({"host": "https://10.0.0.1:6443", "api_key": "abc", "ca_cert": "/ca.pem", "validate_certs": False})
    assert config.host == "https://10.0.0.1:6443"
    assert config.verify_ssl is False
    assert config.ssl_ca_cert == "/ca.pem"
    assert config.get_api_key_with_prefix("authorization") == "Bearer abc"


def test_kubeconfig_configuration_picks_the_context(tmp_path):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "a", "cluster": {"server": "https://a.example:443", "certificate-authority-data": CA_B64}},
            {"name": "b", "cluster": {"server": "https://b.example:443", "certificate-authority-data": CA_B64}},
        ],
        "users": [{"name": "u", "user": {"token": "t0k"}}],
        "contexts": [{"name": "ctx-a", "context": {"cluster": "a", "user": "u"}}, {"name": "ctx-b", "context": {"cluster": "b", "user": "u"}}],
        "current-context": "ctx-a",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    assert kubeconfig_configuration({"kubeconfig": str(path), "context": None}).host == "https://a.example:443"
    assert kubeconfig_configuration({"kubeconfig": str(path), "context": "ctx-b"}).host == "https://b.example:443"


def test_401_is_an_authentication_problem_and_403_a_permission_one():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_error_message

    unauthorized = kube_api_error_message("cannot list the Nodes of cluster prod", 401, "Unauthorized", "list Nodes")
    assert unauthorized.startswith("cannot list the Nodes of cluster prod: HTTP 401 Unauthorized: an authentication problem")
    assert "access entry" in unauthorized and "list Nodes" not in unauthorized
    forbidden = kube_api_error_message("cannot list the Nodes of cluster prod", 403, "Forbidden", "list Nodes (AmazonEKSViewPolicy)")
    assert forbidden == "cannot list the Nodes of cluster prod: HTTP 403 Forbidden: the cluster knows the identity, but it may not list Nodes (AmazonEKSViewPolicy)"


@pytest.mark.parametrize("host, no_proxy, bypass", [
    ("https://ABC.gr7.eu-west-1.eks.amazonaws.com", ".eks.amazonaws.com", True),
    ("https://abc.gr7.eu-west-1.eks.amazonaws.com", "eks.amazonaws.com", True),
    ("https://abc.gr7.eu-west-1.eks.amazonaws.com", "amazonaws.co", False),
    ("https://10.0.3.4", "10.0.0.0/16", True),
    ("https://10.1.3.4", "10.0.0.0/16", False),
    ("https://127.0.0.1:6443", "127.0.0.1:6443", True),
    ("https://127.0.0.1:6443", "127.0.0.1:443", False),
    ("https://anything", "*", True),
    ("https://anything", "", False),
])
def test_no_proxy_rules_read_as_curl_reads_them(host, no_proxy, bypass):
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import bypasses_proxy

    assert bypasses_proxy(host, no_proxy) is bypass


def test_proxy_options_win_over_the_environment():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import proxy_settings

    environ = {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": ".internal", "HTTP_PROXY": "http://plain:80"}
    assert proxy_settings({"host": "https://api"}, environ) == ("http://env:3128", ".internal")
    assert proxy_settings({"host": "https://api", "proxy": "http://opt:8080", "no_proxy": ""}, environ) == ("http://opt:8080", "")
    assert proxy_settings({"host": "http://api"}, environ)[0] == "http://plain:80"
    assert proxy_settings({}, {"https_proxy": "http://lower:1"}) == ("http://lower:1", "")
    assert proxy_settings({}, {}) == (None, "")


def test_apply_proxy_leaves_exempt_hosts_direct():
    from kubernetes.client import Configuration

    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import apply_proxy

    configuration = Configuration()
    configuration.host = "https://abc.eks.amazonaws.com"
    assert apply_proxy(configuration, {"proxy": "http://p:3128"}, {}).proxy == "http://p:3128"
    direct = Configuration()
    direct.host = "https://abc.eks.amazonaws.com"
    assert apply_proxy(direct, {"proxy": "http://p:3128", "no_proxy": ".amazonaws.com"}, {}).proxy is None


def test_a_kubeconfig_proxy_url_stays_without_proxy_settings():
    from kubernetes.client import Configuration

    from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import apply_proxy

    configuration = Configuration()
    configuration.host = "https://abc.eks.amazonaws.com"
    configuration.proxy = "http://from-kubeconfig:3128"
    assert apply_proxy(configuration, {}, {}).proxy == "http://from-kubeconfig:3128"
