"""Node groups on an IPv6 cluster: every bootstrap family tells its kubelet the cluster is IPv6.

bootstrap.sh only calls DescribeCluster (and learns the IP family) when it is not given the CA and
the endpoint; the module gives both, so AL2 user data must pass --ip-family ipv6 and the IPv6
service CIDR itself. The sandbox's kubelet refuses user data that leaves the kubelet on IPv4 or puts
cluster DNS outside the IPv6 service range, as a real node would fail to resolve services.
"""

import ipaddress
import time

import pytest

from tests.integration.eks_nodegroup_env import Env
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture(scope="module")
def env(sandbox):
    env = Env(sandbox, "v6-" + str(int(time.time() * 1000) % 10 ** 8), network={"ipFamily": "ipv6"})
    env.authorize()
    return env


@pytest.mark.parametrize("family, ami_type", [("al2023", "AL2023_x86_64_STANDARD"), ("al2", "AL2_x86_64"), ("br", "BOTTLEROCKET_x86_64")])
def test_nodes_of_every_family_join_an_ipv6_cluster(env, module_runner, family, ami_type):
    network = env.cluster["kubernetesNetworkConfig"]
    assert network["ipFamily"] == "ipv6"
    service_range = ipaddress.ip_network(network["serviceIpv6Cidr"])
    result = module_runner("eks_nodegroup_asg", env.group_args(family, ami_type=ami_type, min_size=1, desired_capacity=1))
    assert result.get("failed") is not True, result.get("msg")
    dns = str(service_range.network_address + 10)
    if family == "al2023":
        assert "cidr: {0}".format(service_range) in result["user_data"]  # nodeadm derives cluster DNS from it
    else:
        assert dns in result["user_data"]
    if family == "al2":
        assert "--ip-family ipv6" in result["user_data"]
        assert "--service-ipv6-cidr {0}".format(service_range) in result["user_data"]
    wait_for(lambda: env.ready_nodes(family) or None, timeout=30.0, interval=0.2, message="1 Ready {0} node".format(family))
