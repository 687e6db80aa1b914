"""Max pods per instance type, as the VPC CNI allows them."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.max_pods import max_pods
from ansible_collections.selfmanaged.eks.plugins.module_utils.max_pods import max_pods_for_instance_type
from ansible_collections.selfmanaged.eks.plugins.module_utils.max_pods import max_pods_for_instance_types


def instance_type(name, enis, ips, vcpus):
    """A DescribeInstanceTypes entry with the fields max pods depends on."""
    return {
        "InstanceType": name,
        "VCpuInfo": {"DefaultVCpus": vcpus},
        "NetworkInfo": {"MaximumNetworkInterfaces": enis, "Ipv4AddressesPerInterface": ips},
    }


M5_LARGE = instance_type("m5.large", 3, 10, 2)
T3_MEDIUM = instance_type("t3.medium", 3, 6, 2)
M5_XLARGE = instance_type("m5.xlarge", 4, 15, 4)
M5_8XLARGE = instance_type("m5.8xlarge", 8, 30, 32)
T3_NANO = instance_type("t3.nano", 2, 2, 2)


@pytest.mark.parametrize(
    "info, expected",
    [(M5_LARGE, 29), (T3_MEDIUM, 17), (M5_XLARGE, 58), (M5_8XLARGE, 234), (T3_NANO, 4)],
)
def test_max_pods_without_prefix_delegation_matches_eks_published_values(info, expected):
    assert max_pods_for_instance_type(info) == expected


def test_prefix_delegation_is_capped_at_110_below_30_vcpus():
    # m5.large: 3 x 9 slots x 16 = 434 + 2, far above what a 2-vCPU node should run
    assert max_pods_for_instance_type(M5_LARGE, prefix_delegation=True) == 110
    assert max_pods_for_instance_type(T3_NANO, prefix_delegation=True) == 2 * 1 * 16 + 2


def test_prefix_delegation_is_capped_at_250_from_30_vcpus():
    assert max_pods_for_instance_type(M5_8XLARGE, prefix_delegation=True) == 250


def test_mixed_instance_types_use_the_smallest_max_pods():
    # one launch template serves every type: the smallest limit keeps all of them schedulable
    assert max_pods_for_instance_types([M5_XLARGE, T3_MEDIUM, M5_LARGE]) == 17


def test_missing_network_info_says_to_set_max_pods():
    with pytest.raises(ValueError, match="set max_pods explicitly"):
        max_pods_for_instance_type({"InstanceType": "x1.weird", "NetworkInfo": {}})


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError, match="at least one ENI"):
        max_pods(0, 10)
