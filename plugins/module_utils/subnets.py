# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Subnets a cluster or a node group is asked to use: one read, one set of rules.

EKS places the control plane's network interfaces, and the ASG its instances, in the
subnets given: every subnet must exist, all in one VPC (the cluster's, for nodes), spread
over at least two availability zones.
"""

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages


class SubnetError(ValueError):
    """Subnets that cannot be used; the message names them and says what to give instead."""


def describe_subnets(ec2, subnet_ids):
    """The DescribeSubnets dicts of those of `subnet_ids` that exist (retried, paged).

    Filtering by id rather than passing SubnetIds: AWS answers SubnetIds with one unknown id
    by InvalidSubnetID.NotFound and no subnet at all; the filter returns what exists, so the
    rules below can name every missing id.
    """
    if not subnet_ids:
        return []
    return all_pages(ec2.describe_subnets, "Subnets", "NextToken", Filters=[{"Name": "subnet-id", "Values": sorted(set(subnet_ids))}])


def validated_subnets(subnet_ids, subnets, vpc_id=None, allow_single_az=False, single_az_fix=None):
    """The sorted availability zones of `subnet_ids`, given the DescribeSubnets `subnets`.

    Raises SubnetError when one is missing, they span VPCs, they are not in `vpc_id` (when
    given), or they are all in one zone (unless `allow_single_az`; `single_az_fix` is how
    the caller's user may allow it).
    """
    if not subnet_ids:
        raise SubnetError("subnets is empty; give the private subnet ids to use, in two or more availability zones")
    found = dict((s["SubnetId"], s) for s in subnets or [] if s["SubnetId"] in subnet_ids)
    missing = [s for s in subnet_ids if s not in found]
    if missing:
        raise SubnetError("subnets {0} do not exist in this region; check the ids and the region".format(", ".join(missing)))
    vpcs = sorted(set(s["VpcId"] for s in found.values()))
    if len(vpcs) > 1:
        by_vpc = ", ".join("{0} in {1}".format(s["SubnetId"], s["VpcId"]) for s in sorted(found.values(), key=lambda s: s["SubnetId"]))
        raise SubnetError("subnets span several VPCs ({0}); give subnets of one VPC{1}".format(by_vpc, ", the cluster's" if vpc_id else ""))
    if vpc_id and vpcs[0] != vpc_id:
        raise SubnetError("subnets {0} are in {1}, not in the cluster's VPC {2}; give subnets of {2}".format(", ".join(subnet_ids), vpcs[0], vpc_id))
    zones = sorted(set(s["AvailabilityZone"] for s in found.values()))
    if len(zones) < 2 and not allow_single_az:
        raise SubnetError(
            "all subnets are in one availability zone ({0}): {1}; EKS needs subnets in at least two availability zones, "
            "add a subnet from another zone{2}".format(zones[0], ", ".join(sorted(found)), ", or " + single_az_fix if single_az_fix else "")
        )
    return zones
