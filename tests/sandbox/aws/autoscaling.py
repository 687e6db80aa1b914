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

Instance lifecycle and processes (moto has every instance InService at once, records
suspended processes without honouring them, and lets desired capacity leave [min, max]):

- A launched instance is ``Pending`` (EC2 ``pending``) for ``SETTINGS.launch_delay`` seconds,
  then ``InService`` (``running``); Pending instances count towards desired capacity, as in AWS.
- ``TerminateInstanceInAutoScalingGroup``: the instance is ``Terminating`` (EC2
  ``shutting-down``) for ``SETTINGS.terminate_delay`` seconds, then gone (EC2 ``terminated``).
  Without ``ShouldDecrementDesiredCapacity`` the group launches a replacement at once; with it
  desired drops by one, refused below ``MinSize`` with AWS's message (moto detached the
  instance and never refused).
- Suspended processes are honoured: ``Launch`` (nothing is launched; desired may exceed the
  instances until it is resumed), ``Terminate`` (no scale-in), ``HealthCheck`` (an InService
  instance whose EC2 instance is stopped/stopping is marked Unhealthy unless suspended),
  ``ReplaceUnhealthy`` (Unhealthy instances are terminated and replaced unless suspended),
  ``InstanceRefresh`` (see ``autoscaling_refresh``). ``AZRebalance``: the sandbox never
  rebalances AZs on its own (it only balances new launches and scale-in), so suspending it
  changes nothing.
- Scale-in skips instances protected from scale-in (``SetInstanceProtection``,
  ``NewInstancesProtectedFromScaleIn``), and Standby ones.
- ``DesiredCapacity`` outside ``[MinSize, MaxSize]`` is refused (ValidationError) by
  SetDesiredCapacity, CreateAutoScalingGroup and UpdateAutoScalingGroup with AWS's messages.
- ``EnterStandby`` needs InService instances and, with ``ShouldDecrementDesiredCapacity``,
  desired staying at or above MinSize; without it the group launches a replacement.
  ``ExitStandby`` needs Standby instances and increments desired (refused above MaxSize).

Time-driven transitions happen in ``settle()``: the middleware calls it before every Auto
Scaling and EC2 request, and ``aws_state.cluster_instances`` (the kubelet stand-in's tick) too,
so no timer thread is needed.

``install()`` patches moto's classes once.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("sandbox.autoscaling")

_installed = False


@dataclass
class AutoScalingSettings:
    launch_delay: float = 0.0  # seconds an instance stays Pending (EC2 pending)
    terminate_delay: float = 0.0  # seconds an instance stays Terminating (EC2 shutting-down)


SETTINGS = AutoScalingSettings()
# Held while instances change state (requests run in parallel threads; the kubelet ticks too).
LOCK = threading.RLock()

# The processes the sandbox honours (SuspendProcesses accepts every process name AWS knows).
LAUNCH, TERMINATE, HEALTH_CHECK, REPLACE_UNHEALTHY, AZ_REBALANCE, INSTANCE_REFRESH = (
    "Launch", "Terminate", "HealthCheck", "ReplaceUnhealthy", "AZRebalance", "InstanceRefresh")
CAPACITY_STATES = ("Pending", "InService")  # the instances that count towards desired capacity


def configure(launch_delay: float, terminate_delay: float) -> None:
    SETTINGS.launch_delay = float(launch_delay)
    SETTINGS.terminate_delay = float(terminate_delay)


def is_suspended(group, process: str) -> bool:
    return process in {p["ProcessName"] for p in group.suspended_processes}


def capacity_instances(group) -> list:
    """Pending and InService instances: what desired capacity counts (not Standby, not Terminating)."""
    return [s for s in group.instance_states if s.lifecycle_state in CAPACITY_STATES]


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


def template_version(group):
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
    from moto.ec2.models.instances import InstanceState as Ec2State

    if count_needed <= 0:
        return
    if is_suspended(self, LAUNCH):
        LOG.info("group %s: Launch is suspended; %d instance(s) not launched", self.name, count_needed)
        return

    propagated_tags[ASG_NAME_TAG] = self.name
    propagated_tags.update(self.instance_tags)
    associate_public_ip = self.launch_config.associate_public_ip_address if self.launch_config else None
    version = template_version(self)
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
            state.launched_at = time.monotonic()
            if SETTINGS.launch_delay > 0:
                state.lifecycle_state = "Pending"
                state.in_service_at = state.launched_at + SETTINGS.launch_delay
                instance._state = Ec2State("pending", 0)
            self.instance_states.append(state)


def is_current(group, state, version) -> bool:
    instance = state.instance
    if version is not None:
        tags = instance.ec2_backend.tags.get(instance.id, {})
        return tags.get("aws:ec2launchtemplate:id") == group.ec2_launch_template.id and \
            tags.get("aws:ec2launchtemplate:version") == str(version.number)
    return getattr(instance, "image_id", None) == getattr(group.launch_config, "image_id", None)


def termination_order(group) -> list:
    """The group's unprotected InService instances in the order the default termination policy
    would terminate them."""
    version = template_version(group)
    remaining = [s for s in capacity_instances(group) if not s.protected_from_scale_in]
    order = []
    while remaining:
        per_zone = Counter(s.instance.placement.zone for s in remaining)
        zone = max(sorted(per_zone), key=lambda z: per_zone[z])
        in_zone = [s for s in remaining if s.instance.placement.zone == zone]
        chosen = min(in_zone, key=lambda s: (is_current(group, s, version), s.instance.launch_time))
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
    reconcile(self)
    if self.name in self.autoscaling_backend.autoscaling_groups:
        self.autoscaling_backend.update_attached_elbs(self.name)
        self.autoscaling_backend.update_attached_target_groups(self.name)


def begin_termination(group, state) -> None:
    """Take one instance out of service: Terminating now, gone ``terminate_delay`` later."""
    from moto.ec2.models.instances import InstanceState as Ec2State

    state.lifecycle_state = "Terminating"
    state.terminated_at = time.monotonic() + SETTINGS.terminate_delay
    if SETTINGS.terminate_delay <= 0:
        _finish_termination(group, state)
    else:
        state.instance._state = Ec2State("shutting-down", 32)


def _finish_termination(group, state) -> None:
    group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
    group.instance_states = [s for s in group.instance_states if s is not state]


def reconcile(group) -> None:
    """Bring the group's Pending + InService instances to desired capacity (plus an instance
    refresh's surge), as far as the suspended processes allow."""
    target = (group.desired_capacity or 0) + getattr(group, "sandbox_surge", 0)
    current = len(capacity_instances(group))
    if target > current:
        group.replace_autoscaling_group_instances(target - current, group.get_propagated_tags())
    elif target < current and not is_suspended(group, TERMINATE):
        for state in termination_order(group)[:current - target]:
            begin_termination(group, state)


def _settle_group(group, now: float) -> None:
    from moto.ec2.models.instances import InstanceState as Ec2State

    for state in list(group.instance_states):
        if state.lifecycle_state == "Pending" and now >= getattr(state, "in_service_at", 0):
            state.lifecycle_state = "InService"
            if state.instance.state == "pending":
                state.instance._state = Ec2State("running", 16)
        elif state.lifecycle_state == "Terminating" and now >= getattr(state, "terminated_at", 0):
            _finish_termination(group, state)
    if not is_suspended(group, HEALTH_CHECK):
        for state in group.instance_states:
            if state.lifecycle_state == "InService" and state.instance.state in ("stopping", "stopped"):
                state.health_status = "Unhealthy"
    if not is_suspended(group, REPLACE_UNHEALTHY):
        for state in [s for s in group.instance_states if s.lifecycle_state == "InService" and s.health_status == "Unhealthy"]:
            LOG.info("group %s: replacing unhealthy instance %s", group.name, state.instance.id)
            begin_termination(group, state)
    from tests.sandbox.aws import autoscaling_refresh

    autoscaling_refresh.step(group, now)
    reconcile(group)


def settle() -> None:
    """Apply every transition that is due (Pending -> InService, Terminating -> gone, health
    replacement, instance refresh batches) in every account and region."""
    from moto.autoscaling.models import autoscaling_backends

    now = time.monotonic()
    with LOCK:
        for regions in list(autoscaling_backends.values()):
            for backend in list(regions.values()):
                for group in list(backend.autoscaling_groups.values()):
                    try:
                        _settle_group(group, now)
                    except Exception:  # noqa: BLE001 - one broken group must not fail every EC2 request
                        LOG.exception("group %s: settling its instances failed", group.name)


def _validation_error(message: str):
    from moto.autoscaling.exceptions import ValidationError

    return ValidationError(message)


def check_capacity(min_size, max_size, desired) -> None:
    """AWS's answer to a group whose desired capacity would leave [min, max]."""
    if min_size is not None and max_size is not None and min_size > max_size:
        raise _validation_error(f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}")
    if desired is None:
        return
    if (min_size is not None and desired < min_size) or (max_size is not None and desired > max_size):
        raise _validation_error(f"Desired capacity:{desired} must be between the specified min size:{min_size} "
                                f"and max size:{max_size}")


def _find_state(backend, instance_id: str):
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    raise _validation_error(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")


def _locked(function):
    def wrapper(*args, **kwargs):
        with LOCK:
            return function(*args, **kwargs)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _patch_backend(backend_class, response_class) -> None:
    original_create = backend_class.create_auto_scaling_group
    original_update = backend_class.update_auto_scaling_group
    original_enter = backend_class.enter_standby_instances
    original_exit = backend_class.exit_standby_instances
    original_set_protection = backend_class.set_instance_protection
    original_suspend = backend_class.suspend_processes
    original_resume = backend_class.resume_processes
    original_delete = backend_class.delete_auto_scaling_group

    def delete_auto_scaling_group(self, group_name):
        # Deleting a group terminates all its instances whatever is suspended or in Standby.
        group = self.autoscaling_groups.get(group_name)
        if group is not None:
            group.suspended_processes = []
            group.sandbox_surge = 0
        original_delete(self, group_name)
        if group is not None:
            for state in list(group.instance_states):
                _finish_termination(group, state)

    def create_auto_scaling_group(self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs):
        def number(value):
            return None if value is None else int(value)

        check_capacity(number(min_size), number(max_size),
                       number(desired_capacity) if desired_capacity is not None else number(min_size))
        return original_create(self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs)

    def update_auto_scaling_group(self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs):
        group = self.autoscaling_groups.get(name)
        if group is not None:
            new_min = group.min_size if min_size is None else min_size
            new_max = group.max_size if max_size is None else max_size
            if desired_capacity is not None:
                check_capacity(new_min, new_max, desired_capacity)
            else:
                check_capacity(new_min, new_max, None)
                # AWS moves desired into the new bounds when only the bounds change.
                current = group.desired_capacity or 0
                desired_capacity = min(max(current, new_min or 0), new_max) if new_max is not None else None
                if desired_capacity == current:
                    desired_capacity = None
        return original_update(self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs)

    def terminate_instance(self, instance_id: str, should_decrement: bool):
        from moto.autoscaling.models import TerminateInstanceActivity

        group, state = _find_state(self, instance_id)
        original = group.desired_capacity
        if state.lifecycle_state == "Terminating":
            return TerminateInstanceActivity(state.instance, original)
        if should_decrement and state.lifecycle_state in CAPACITY_STATES:
            if (group.desired_capacity or 0) - 1 < (group.min_size or 0):
                raise _validation_error(
                    f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without replacement "
                    "will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false "
                    "or lower group's min size.")
            group.desired_capacity -= 1
        begin_termination(group, state)
        reconcile(group)  # without decrement: the replacement
        return TerminateInstanceActivity(state.instance, original)

    def enter_standby_instances(self, group_name, instance_ids, should_decrement):
        group = self.autoscaling_groups[group_name]
        states = {s.instance.id: s for s in group.instance_states}
        for instance_id in instance_ids:
            state = states.get(instance_id)
            if state is None or state.lifecycle_state != "InService":
                current = state.lifecycle_state if state else "not in the group"
                raise _validation_error(f"The instance {instance_id} is not in InService (it is {current}).")
        if should_decrement and (group.desired_capacity or 0) - len(instance_ids) < (group.min_size or 0):
            raise _validation_error(
                f"AutoScalingGroup {group_name} has min-size={group.min_size}, max-size={group.max_size}, and "
                f"desired-size={group.desired_capacity}. Entering standby with ShouldDecrementDesiredCapacity would "
                "result in desired-size below min-size.")
        return original_enter(self, group_name, instance_ids, should_decrement)

    def exit_standby_instances(self, group_name, instance_ids):
        group = self.autoscaling_groups[group_name]
        states = {s.instance.id: s for s in group.instance_states}
        for instance_id in instance_ids:
            state = states.get(instance_id)
            if state is None or state.lifecycle_state != "Standby":
                current = state.lifecycle_state if state else "not in the group"
                raise _validation_error(f"The instance {instance_id} is not in Standby (it is {current}).")
        if (group.desired_capacity or 0) + len(instance_ids) > (group.max_size or 0):
            raise _validation_error(
                f"AutoScalingGroup {group_name} has min-size={group.min_size}, max-size={group.max_size}, and "
                f"desired-size={group.desired_capacity}. Exiting standby would result in desired-size above max-size.")
        return original_exit(self, group_name, instance_ids)

    def resume_processes(self, group_name, scaling_processes):
        original_resume(self, group_name, scaling_processes)
        reconcile(self.autoscaling_groups[group_name])

    original_response_set_desired = response_class.set_desired_capacity

    def response_set_desired_capacity(self):
        group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
        desired = self._get_int_param("DesiredCapacity")
        if group is not None and desired is not None:
            if group.max_size is not None and desired > group.max_size:
                raise _validation_error(f"New SetDesiredCapacity value {desired} is above max value {group.max_size} "
                                        "for the AutoScalingGroup.")
            if group.min_size is not None and desired < group.min_size:
                raise _validation_error(f"New SetDesiredCapacity value {desired} is below min value {group.min_size} "
                                        "for the AutoScalingGroup.")
        return original_response_set_desired(self)

    backend_class.create_auto_scaling_group = _locked(create_auto_scaling_group)
    backend_class.update_auto_scaling_group = _locked(update_auto_scaling_group)
    backend_class.terminate_instance = _locked(terminate_instance)
    backend_class.enter_standby_instances = _locked(enter_standby_instances)
    backend_class.exit_standby_instances = _locked(exit_standby_instances)
    backend_class.set_instance_protection = _locked(original_set_protection)
    backend_class.suspend_processes = _locked(original_suspend)
    backend_class.resume_processes = _locked(resume_processes)
    backend_class.delete_auto_scaling_group = _locked(delete_auto_scaling_group)
    response_class.set_desired_capacity = response_set_desired_capacity


def _instance_launch_template(self) -> dict[str, Any] | None:
    """The launch template version this instance was launched from (moto reports the
    template's default version for every instance, which hides drift)."""
    group = self.auto_scaling_group
    template = group.ec2_launch_template
    if template is None:
        return None
    number = getattr(self, "launched_template_version", None) or template.default_version_number
    return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": str(number)}


def _keeping_mixed_policy(update):
    # moto's backend calls group.update() with keyword arguments only.
    def wrapped(self, **kwargs):
        if self.mixed_instances_policy and not (
                kwargs.get("mixed_instances_policy") or kwargs.get("launch_template") or kwargs.get("launch_config_name")):
            policy = copy.deepcopy(self.mixed_instances_policy)
            spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
            if spec.get("LaunchTemplateId"):
                spec.pop("LaunchTemplateName", None)  # moto refuses a spec naming both, as AWS does
            kwargs["mixed_instances_policy"] = policy
        return update(self, **kwargs)

    return wrapped


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState
    from moto.autoscaling.responses import AutoScalingResponse

    InstanceState.launch_template = property(_instance_launch_template)

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    FakeAutoScalingGroup.set_desired_capacity = _locked(set_desired_capacity)
    FakeAutoScalingGroup.active_instances = capacity_instances
    FakeAutoScalingGroup.update = _keeping_mixed_policy(FakeAutoScalingGroup.update)
    _patch_backend(AutoScalingBackend, AutoScalingResponse)
    _installed = True
