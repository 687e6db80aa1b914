"""DescribeInstances paging as EC2 does it.

EC2 answers a request by instance ids (up to 1000 of them; MaxResults is refused with ids)
in one response. moto pages every answer at 100 reservations, so a client asking for 1,000
ids got ten pages, and one that did not follow NextToken lost instances silently.
"""

from __future__ import annotations

_installed = False

DEFAULT_PAGE = 100  # moto's page size when neither ids nor MaxResults are given


def describe_instances(self):
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidParameterCombination

    self.error_on_dryrun()
    if "InstanceId.1" in self.data and "MaxResults" in self.data:
        raise InvalidParameterCombination("The parameter instancesSet cannot be used with the parameter maxResults")
    filters = self._filters_from_querystring()
    instance_ids = self._get_param("InstanceIds", [])
    if instance_ids:
        reservations = self.ec2_backend.get_reservations_by_instance_ids(instance_ids, filters=filters)
        return ActionResult({"Reservations": reservations, "NextToken": None})
    reservations = self.ec2_backend.describe_instances(filters=filters)
    token = self._get_param("NextToken")
    start = [r.id for r in reservations].index(token) + 1 if token else 0
    page_size = int(self._get_param("MaxResults", DEFAULT_PAGE))
    page = reservations[start:start + page_size]
    next_token = page[-1].id if len(reservations) > start + page_size else None
    return ActionResult({"Reservations": page, "NextToken": next_token})


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.ec2.responses.instances import InstanceResponse

    InstanceResponse.describe_instances = describe_instances
    _installed = True
