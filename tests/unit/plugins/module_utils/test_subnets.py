"""Subnets of a cluster and of a node group: one read, one set of rules, missing ids named."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import SubnetError
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import describe_subnets
from ansible_collections.selfmanaged.eks.plugins.module_utils.subnets import validated_subnets


def subnet(subnet_id, vpc, az):
    return {"SubnetId": subnet_id, "VpcId": vpc, "AvailabilityZone": az}


SUBNETS = [subnet("subnet-a", "vpc-1", "us-east-1a"), subnet("subnet-b", "vpc-1", "us-east-1b"), subnet("subnet-c", "vpc-1", "us-east-1c")]
ONLY_A = [SUBNETS[0], subnet("subnet-a2", "vpc-1", "us-east-1a")]


def test_subnets_in_three_azs_of_the_cluster_vpc_pass():
    assert validated_subnets(["subnet-a", "subnet-b", "subnet-c"], SUBNETS, "vpc-1") == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_subnets_from_another_vpc_are_refused():
    with pytest.raises(SubnetError, match="are in vpc-2, not in the cluster's VPC vpc-1; give subnets of vpc-1"):
        validated_subnets(["subnet-x", "subnet-y"], [subnet("subnet-x", "vpc-2", "us-east-1a"), subnet("subnet-y", "vpc-2", "us-east-1b")], "vpc-1")


def test_subnets_spanning_vpcs_are_refused():
    with pytest.raises(SubnetError, match=r"span several VPCs \(subnet-a in vpc-1, subnet-x in vpc-2\)"):
        validated_subnets(["subnet-a", "subnet-x"], [SUBNETS[0], subnet("subnet-x", "vpc-2", "us-east-1b")])


def test_single_az_is_refused_with_the_callers_way_out():
    with pytest.raises(SubnetError) as err:
        validated_subnets(["subnet-a", "subnet-a2"], ONLY_A)
    assert str(err.value) == (
        "all subnets are in one availability zone (us-east-1a): subnet-a, subnet-a2; EKS needs subnets in at least two "
        "availability zones, add a subnet from another zone"
    )
    with pytest.raises(SubnetError, match="another zone, or set allow_single_az for an AZ-bound group$"):
        validated_subnets(["subnet-a", "subnet-a2"], ONLY_A, single_az_fix="set allow_single_az for an AZ-bound group")
    assert validated_subnets(["subnet-a", "subnet-a2"], ONLY_A, allow_single_az=True) == ["us-east-1a"]


def test_every_missing_subnet_is_named():
    with pytest.raises(SubnetError, match="^subnets subnet-zzz, subnet-yyy do not exist in this region; check the ids and the region$"):
        validated_subnets(["subnet-a", "subnet-zzz", "subnet-yyy"], SUBNETS)


def test_no_subnets():
    with pytest.raises(SubnetError, match="subnets is empty"):
        validated_subnets([], SUBNETS)


def test_describe_subnets_asks_by_filter_so_missing_ids_do_not_hide_the_others():
    calls = []

    def describe(aws_retry=False, **params):
        calls.append((aws_retry, params))
        wanted = params["Filters"][0]["Values"]
        return {"Subnets": [s for s in SUBNETS if s["SubnetId"] in wanted]}

    found = describe_subnets(type("EC2", (), {"describe_subnets": staticmethod(describe)}), ["subnet-b", "subnet-zzz", "subnet-b"])
    assert found == [SUBNETS[1]]
    assert calls == [(True, {"Filters": [{"Name": "subnet-id", "Values": ["subnet-b", "subnet-zzz"]}]})]
    assert describe_subnets(None, []) == []
