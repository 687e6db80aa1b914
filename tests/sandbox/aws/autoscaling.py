"""Fidelity fixes for moto's Auto Scaling groups, where moto would mislead our tests.

- moto launches every instance into the first subnet of ``VPCZoneIdentifier``. AWS spreads
  them across the group's subnets/AZs, keeping the AZs balanced (AZRebalance). Here each new
  instance goes to the subnet whose AZ has the fewest InService instances of the group (ties:
  the order of the subnets as given).
- moto ignores the launch template's ``IamInstanceProfile`` and ``MetadataOptions`` for ASG
  instances, and tags them from the template's *default* version instead of the version the
  group uses. Here the group's own version (``$Latest``/``$Default``/number) is resolved, and
  its instance profile (association visible in DescribeInstances and
  DescribeIamInstanceProfileAssociations), metadata options and user data are applied.
  Launch configurations get their ``IamInstanceProfile`` and ``MetadataOptions`` applied too.

- moto launches every instance of a group with a ``MixedInstancesPolicy`` as On-Demand. AWS
  keeps ``OnDemandBaseCapacity`` instances On-Demand and, above it,
  ``OnDemandPercentageAboveBaseCapacity`` percent (rounded up); the rest are Spot
  (``InstanceLifecycle: spot`` in DescribeInstances). Here each new instance gets the purchase
  option that keeps the group closest to that split.

- moto scales in by removing the first unprotected instances it holds. AWS's default
  termination policy first picks the AZ with the most instances, then the instance launched
  from the oldest launch template version/configuration, then the oldest instance; here
  InService instances are removed in that order (Standby ones stay, as in AWS).

``install()`` replaces ``FakeAutoScalingGroup.replace_autoscaling_group_instances`` and
``set_desired_capacity`` once.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

LOG = logging.getLogger("sandbox.autoscaling")

_installed = False


def _subnet_plan(group, count: int) -> list[tuple[str | None, str | None]]:
    """(subnet id, availability zone) for each of ``count`` new instances."""
    ec2 = group.autoscaling_backend.ec2_backend
    subnet_ids = [s.strip() for s in (group.vpc_zone_identifier or "").split(",") if s.strip()]
    if subnet_ids:
        slots = [(subnet_id, ec2.get_subnet(subnet_id).availability_zone) for subnet_id in subnet_ids]
    else:
        slots = [(None, zone) for zone in (group.availability_zones or [])] or [(None, None)]
    per_zone = Counter(state.instance.placement.zone for state in group.active_instances())
    plan = []
    for _ in range(count):
        index = min(range(len(slots)), key=lambda i: (per_zone[slots[i][1]], i))
        plan.append(slots[index])
        per_zone[slots[index][1]] += 1
    return plan


def _purchase_plan(group, count: int) -> list[str | None]:
    """"spot" or None (On-Demand) for each of ``count`` new instances of ``group``."""
    policy = group.mixed_instances_policy or {}
    if not policy:
        return [None] * count
    distribution = policy.get("InstancesDistribution") or {}
    base = int(distribution.get("OnDemandBaseCapacity") or 0)
    percent = distribution.get("OnDemandPercentageAboveBaseCapacity")
    percent = 100 if percent in (None, "") else int(percent)
    active = group.active_instances()
    spot = sum(1 for state in active if getattr(state.instance, "lifecycle", None) == "spot")
    on_demand = len(active) - spot
    plan = []
    for _ in range(count):
        above = max(0, on_demand - base)
        if on_demand < base or above < math.ceil((above + spot + 1) * percent / 100):
            plan.append(None)
            on_demand += 1
        else:
            plan.append("spot")
            spot += 1
    return plan


def _template_version(group):
    template = group.ec2_launch_template
    if not template:
        return None
    return template.get_version(group.launch_template_version or "$Default")


def _apply_profile_and_metadata(group, instance, template_data: dict[str, Any] | None) -> None:
    from moto.ec2.models.instances import MetadataOptions

    ec2 = group.autoscaling_backend.ec2_backend
    profile_name = profile_arn = None
    metadata = None
    if template_data is not None:
        profile = template_data.get("IamInstanceProfile") or {}
        profile_name, profile_arn = profile.get("Name"), profile.get("Arn")
        metadata = template_data.get("MetadataOptions")
    elif group.launch_config is not None:
        configured = group.launch_config.iam_instance_profile
        if configured:
            if str(configured).startswith("arn:"):
                profile_arn = configured
            else:
                profile_name = configured
        if isinstance(group.launch_config.metadata_options, dict):
            metadata = group.launch_config.metadata_options
    if profile_name or profile_arn:
        try:
            ec2.associate_iam_instance_profile(instance_id=instance.id, iam_instance_profile_name=profile_name,
                                               iam_instance_profile_arn=profile_arn)
        except Exception:  # AWS would fail the launch; the sandbox logs it and the instance has no profile
            LOG.warning("instance profile %s of %s does not exist; instance %s launched without one",
                        profile_arn or profile_name, group.name, instance.id)
    if metadata:
        instance.metadata_options = MetadataOptions({key: (str(value) if key == "HttpPutResponseHopLimit" else value)
                                                     for key, value in metadata.items()})


def replace_autoscaling_group_instances(self, count_needed: int, propagated_tags: dict[str, str]) -> None:
    from moto.autoscaling.models import ASG_NAME_TAG, InstanceState

    propagated_tags[ASG_NAME_TAG] = self.name
    propagated_tags.update(self.instance_tags)
    associate_public_ip = self.launch_config.associate_public_ip_address if self.launch_config else None
    version = _template_version(self)
    launch_template = None
    if version is not None:
        launch_template = {"LaunchTemplateId": self.ec2_launch_template.id, "Version": str(version.number)}
    ec2 = self.autoscaling_backend.ec2_backend
    for (subnet_id, zone), lifecycle in zip(_subnet_plan(self, count_needed), _purchase_plan(self, count_needed)):
        reservation = ec2.run_instances(
            self.image_id,
            1,
            self.user_data,
            self.security_groups,
            instance_type=self.instance_type,
            tags={"instance": dict(propagated_tags)},
            placement=zone,
            launch_config=self.launch_config,
            launch_template=launch_template,
            is_instance_type_default=False,
            associate_public_ip=associate_public_ip,
            subnet_id=subnet_id,
        )
        for instance in reservation.instances:
            instance.lifecycle = lifecycle
            _apply_profile_and_metadata(self, instance, version.data if version is not None else None)
            instance.autoscaling_group = self
            state = InstanceState(instance, protected_from_scale_in=self.new_instances_protected_from_scale_in)
            state.launched_template_version = version.number if version is not None else None
            self.instance_states.append(state)


def _is_current(group, state, version) -> bool:
    instance = state.instance
    if version is not None:
        tags = instance.ec2_backend.tags.get(instance.id, {})
        return tags.get("aws:ec2launchtemplate:id") == group.ec2_launch_template.id and \
            tags.get("aws:ec2launchtemplate:version") == str(version.number)
    return getattr(instance, "image_id", None) == getattr(group.launch_config, "image_id", None)


def termination_order(group) -> list:
    """The group's unprotected InService instances in the order the default termination policy
    would terminate them."""
    version = _template_version(group)
    remaining = [s for s in group.active_instances() if not s.protected_from_scale_in]
    order = []
    while remaining:
        per_zone = Counter(s.instance.placement.zone for s in remaining)
        zone = max(sorted(per_zone), key=lambda z: per_zone[z])
        in_zone = [s for s in remaining if s.instance.placement.zone == zone]
        chosen = min(in_zone, key=lambda s: (_is_current(group, s, version), s.instance.launch_time))
        order.append(chosen)
        remaining.remove(chosen)
    return order


def set_desired_capacity(self, new_capacity: int | None) -> None:
    """moto's, with AWS's instance count and scale-in order.

    moto computes a mixed-instances group's size from truncated On-Demand/Spot shares, so
    DesiredCapacity 5 at 50% On-Demand launched 4 instances. Here a group has DesiredCapacity
    instances (WeightedCapacity is not modelled: every instance counts 1), the purchase option
    of each new one coming from ``_purchase_plan``, and scale-in follows ``termination_order``.
    """
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    target = self.desired_capacity or 0
    current = len(self.active_instances())
    if target > current:
        self.replace_autoscaling_group_instances(target - current, self.get_propagated_tags())
    elif target < current:
        doomed = termination_order(self)[:current - target]
        if doomed:
            self.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id for state in doomed])
            self.instance_states = [state for state in self.instance_states if state not in doomed]
    if self.name in self.autoscaling_backend.autoscaling_groups:
        self.autoscaling_backend.update_attached_elbs(self.name)
        self.autoscaling_backend.update_attached_target_groups(self.name)


def _instance_launch_template(self) -> dict[str, Any] | None:
    """The launch template version this instance was launched from (moto reports the
    template's default version for every instance, which hides drift)."""
    group = self.auto_scaling_group
    template = group.ec2_launch_template
    if template is None:
        return None
    number = getattr(self, "launched_template_version", None) or template.default_version_number
    return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": str(number)}


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState

    InstanceState.launch_template = property(_instance_launch_template)

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity
    _installed = True
