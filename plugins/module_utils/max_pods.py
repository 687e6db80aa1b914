# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How many pods a node can run with the Amazon VPC CNI, from its instance type's network limits."""

# With prefix delegation the ENI limits allow far more pods than kubelet and the CNI
# handle well; AWS's max-pods calculator caps them at these values.
PREFIX_DELEGATION_CAP_SMALL = 110
PREFIX_DELEGATION_CAP_LARGE = 250
PREFIX_DELEGATION_LARGE_VCPUS = 30
IPS_PER_PREFIX = 16  # each secondary IP slot becomes a /28 prefix


def max_pods(enis, ipv4_per_eni, vcpus=None, prefix_delegation=False):
    """Max pods for `enis` network interfaces of `ipv4_per_eni` addresses each.

    ENIs x (addresses per ENI - 1) + 2: the primary address of each ENI is not given to
    pods, and the two host-network pods (aws-node, kube-proxy) do not take an address.
    With prefix delegation each secondary slot is a /28, capped at 110 pods below 30
    vCPUs and 250 from 30 vCPUs on.
    """
    if enis < 1 or ipv4_per_eni < 1:
        raise ValueError("an instance type needs at least one ENI and one IPv4 address per ENI (got {0} and {1})".format(enis, ipv4_per_eni))
    slots = enis * (ipv4_per_eni - 1)
    if not prefix_delegation:
        return slots + 2
    pods = slots * IPS_PER_PREFIX + 2
    if vcpus is not None and vcpus >= PREFIX_DELEGATION_LARGE_VCPUS:
        return min(pods, PREFIX_DELEGATION_CAP_LARGE)
    return min(pods, PREFIX_DELEGATION_CAP_SMALL)


def max_pods_for_instance_type(instance_type_info, prefix_delegation=False):
    """Max pods for one DescribeInstanceTypes `InstanceTypes` entry."""
    network = instance_type_info.get("NetworkInfo") or {}
    enis = network.get("MaximumNetworkInterfaces")
    ips = network.get("Ipv4AddressesPerInterface")
    if not enis or not ips:
        raise ValueError(
            "DescribeInstanceTypes gave no ENI limits for {0}; set max_pods explicitly".format(instance_type_info.get("InstanceType", "this instance type"))
        )
    vcpus = (instance_type_info.get("VCpuInfo") or {}).get("DefaultVCpus")
    return max_pods(enis, ips, vcpus=vcpus, prefix_delegation=prefix_delegation)


def max_pods_for_instance_types(instance_type_infos, prefix_delegation=False):
    """The smallest max pods over several instance types (one launch template serves them all)."""
    if not instance_type_infos:
        raise ValueError("no instance types to compute max pods from")
    return min(max_pods_for_instance_type(info, prefix_delegation) for info in instance_type_infos)
