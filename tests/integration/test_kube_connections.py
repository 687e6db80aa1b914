"""The three ways a module reaches the Kubernetes API, against one sandbox cluster: a kubeconfig
(with an exec plugin, loaded by the kubernetes library), `host` with `api_key` and `ca_cert`
(kubernetes.core style), and the EKS token made from `cluster_name`. Each writes to the same
Lease, so each one's requests really reached the API server, over TLS verified against the
cluster's CA."""

import base64

import kubernetes
import pytest

from tests.integration.conftest import run_module
from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.token_client import generate_token


@pytest.fixture(scope="module")
def cluster(sandbox):
    cluster = cluster_with_nodes(sandbox, 3)
    cluster["nodes"] = sorted(scenarios.ready_node_names(kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))))
    return cluster


def lock(sandbox, holder, node, **connection):
    result = run_module(sandbox, "eks_disruption_lock", dict(lease_name="connections", holder=holder, nodes=[node], max_unavailable=3,
                                                             **connection))
    assert result.get("failed") is not True, result.get("msg")
    return result


def test_kubeconfig_host_and_eks_token_all_reach_the_api_server(sandbox, cluster, tmp_path):
    node_a, node_b, node_c = cluster["nodes"]
    by_kubeconfig = lock(sandbox, "by-kubeconfig", node_a, kubeconfig=sandbox.kube.kubeconfig_path(cluster["name"]))
    assert by_kubeconfig["changed"] is True

    ca_cert = tmp_path / "ca.crt"
    ca_cert.write_bytes(base64.b64decode(cluster["certificateAuthority"]["data"]))
    token, _expires = generate_token(cluster["name"], sandbox.endpoint_url, sandbox.settings.region)
    by_host = lock(sandbox, "by-host", node_b, host=cluster["endpoint"], api_key=token, ca_cert=str(ca_cert))
    assert by_host["changed"] is True
    assert token not in repr(by_host)  # api_key is no_log

    by_token = lock(sandbox, "by-eks-token", node_c, cluster_name=cluster["name"])
    assert by_token["holders"] == {"by-kubeconfig": [node_a], "by-host": [node_b], "by-eks-token": [node_c]}


def test_host_with_a_bad_token_is_refused_with_what_to_do(sandbox, cluster, tmp_path):
    ca_cert = tmp_path / "ca.crt"
    ca_cert.write_bytes(base64.b64decode(cluster["certificateAuthority"]["data"]))
    result = run_module(sandbox, "eks_disruption_lock", dict(lease_name="connections-refused", holder="x", nodes=cluster["nodes"][:1], max_unavailable=1,
                                                             host=cluster["endpoint"], api_key="not-a-token", ca_cert=str(ca_cert)))
    assert result.get("failed") is True
    assert "HTTP 401 Unauthorized: the cluster does not recognise the identity" in result["msg"]


def test_host_without_the_cluster_ca_fails_tls(sandbox, cluster):
    token, _expires = generate_token(cluster["name"], sandbox.endpoint_url, sandbox.settings.region)
    result = run_module(sandbox, "eks_disruption_lock", dict(lease_name="connections-tls", holder="x", nodes=cluster["nodes"][:1], max_unavailable=1,
                                                             host=cluster["endpoint"], api_key=token))
    assert result.get("failed") is True
    assert "cannot reach the Kubernetes API" in result["msg"] and "CERTIFICATE_VERIFY_FAILED" in result["msg"]
