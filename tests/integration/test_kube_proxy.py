"""Kubernetes API calls through an HTTP proxy (enterprise egress): the `proxy`/`no_proxy`
options and HTTPS_PROXY/NO_PROXY from the environment, through a real CONNECT proxy on loopback."""

import pytest

from tests.integration.conftest import run_module
from tests.integration.forward_proxy import ForwardProxy
from tests.sandbox.clusters import create_cluster


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, "proxy-it")


def endpoint_target(cluster):
    return cluster["endpoint"].split("://", 1)[1].rstrip("/")


def test_the_proxy_option_tunnels_the_kubernetes_calls(sandbox, cluster):
    with ForwardProxy() as proxy:
        result = run_module(sandbox, "eks_nodegroup_info", {"cluster_name": cluster["name"], "proxy": proxy.url, "no_proxy": ""})
    assert not result.get("failed"), result
    assert proxy.tunnels and set(proxy.tunnels) == {endpoint_target(cluster)}
    # the URL may carry a password: it is not echoed
    assert proxy.url not in repr(result)


def test_https_proxy_from_the_environment_is_used_and_no_proxy_exempts(sandbox, cluster):
    with ForwardProxy() as proxy:
        through = run_module(sandbox, "eks_nodegroup_info", {"cluster_name": cluster["name"]},
                             env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "", "no_proxy": ""})
        tunnels = len(proxy.tunnels)
        direct = run_module(sandbox, "eks_nodegroup_info", {"cluster_name": cluster["name"]},
                            env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.0/8", "no_proxy": ""})
    assert not through.get("failed") and not direct.get("failed"), (through, direct)
    assert tunnels >= 1
    assert len(proxy.tunnels) == tunnels  # NO_PROXY sent the second run direct
