"""Speed fixes for moto at fleet scale (thousands of instances), same answers.

moto's ``TaggedEC2Resource.get_tags`` scans every tag of every EC2 resource with regular
expressions to find one resource's tags, so DescribeInstances is quadratic in the fleet size
(200 instances: ~3 s; 2,000: minutes). The resource's tags are one dict lookup away.
"""

from __future__ import annotations

_installed = False


def _get_tags(self) -> list[dict[str, str]]:
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    tags = self.ec2_backend.tags.get(resource_id)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in list(tags.items())]


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.ec2.models.core import TaggedEC2Resource

    TaggedEC2Resource.get_tags = _get_tags
    _installed = True
