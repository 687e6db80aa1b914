"""ASG instance refresh: ``StartInstanceRefresh``, ``DescribeInstanceRefreshes``,
``CancelInstanceRefresh``, which moto does not implement (its server answers "not yet
implemented").

What AWS does, and what is emulated here (Rolling strategy only):
- The instances to replace are the group's Pending/InService instances when the refresh
  starts, minus those already on the group's launch template version with ``SkipMatching``;
  scale-in protected and Standby instances are left alone (the AWS defaults
  ``ScaleInProtectedInstances``/``StandbyInstances`` = ``Ignore``).
- In each step, old instances are terminated while the healthy capacity (InService, healthy,
  past ``InstanceWarmup``) stays at or above ``MinHealthyPercentage`` (default 90) of desired;
  with ``MaxHealthyPercentage`` above 100 (default 100) the group first launches up to that
  share above desired. At least one instance is replaced at a time. Old instances are
  terminated WITHOUT draining, as AWS does (draining needs a lifecycle hook): the kubelet
  stand-in deletes their Nodes and pods.
- Suspending ``Launch`` or ``InstanceRefresh`` pauses the refresh.
- ``InstanceWarmup`` defaults to 0 in the sandbox (AWS falls back to the group's default
  instance warm-up or health check grace period). Not modelled: checkpoints, auto rollback,
  ``DesiredConfiguration``, ``ReplaceRootVolume`` strategy, ``RollbackInstanceRefresh``.

Refreshes progress in ``autoscaling.settle()`` (``step``), like the instances' transitions.
"""

from __future__ import annotations

import datetime
import math
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.sandbox.aws import autoscaling

OPERATIONS = ("StartInstanceRefresh", "DescribeInstanceRefreshes", "CancelInstanceRefresh")
ACTIVE = ("Pending", "InProgress", "Cancelling")
_XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


@dataclass
class Refresh:
    refresh_id: str
    group_name: str
    min_healthy: int
    max_healthy: int
    skip_matching: bool
    warmup: float
    to_replace: set = field(default_factory=set)
    status: str = "Pending"
    status_reason: str = ""
    start_time: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    end_time: datetime.datetime | None = None
    percentage_complete: int = 0
    instances_to_update: int = 0
    remaining: int = 0  # old instances still in service

    def finish(self, status: str, reason: str = "") -> None:
        self.status, self.status_reason = status, reason
        self.end_time = datetime.datetime.now(datetime.timezone.utc)


class RefreshError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def handles(operation: str) -> bool:
    return operation in OPERATIONS


def _refreshes(group) -> list[Refresh]:
    if not hasattr(group, "sandbox_refreshes"):
        group.sandbox_refreshes = []
    return group.sandbox_refreshes


def active_refresh(group) -> Refresh | None:
    return next((r for r in _refreshes(group) if r.status in ACTIVE), None)


def _is_healthy(state, now: float, warmup: float) -> bool:
    if state.lifecycle_state != "InService" or state.health_status != "Healthy":
        return False
    began = getattr(state, "in_service_at", None) or getattr(state, "launched_at", None)
    return began is None or now >= began + warmup


def step(group, now: float) -> None:
    """One step of the group's active refresh (called under ``autoscaling.LOCK``)."""
    refresh = active_refresh(group)
    if refresh is None:
        return
    if refresh.status == "Cancelling":
        group.sandbox_surge = 0
        refresh.finish("Cancelled", "Cancelled by user request.")
        return
    if autoscaling.is_suspended(group, autoscaling.INSTANCE_REFRESH) or autoscaling.is_suspended(group, autoscaling.LAUNCH):
        return
    refresh.status = "InProgress"
    capacity = autoscaling.capacity_instances(group)
    old = [s for s in capacity if s.instance.id in refresh.to_replace]
    healthy = [s for s in capacity if _is_healthy(s, now, refresh.warmup)]
    desired = group.desired_capacity or 0
    refresh.remaining = len(old)
    done = refresh.instances_to_update - len(old)
    if refresh.instances_to_update:
        refresh.percentage_complete = int(100 * done / refresh.instances_to_update)
    if not old:
        group.sandbox_surge = 0
        if len(healthy) >= desired:
            refresh.percentage_complete = 100
            refresh.finish("Successful")
        return
    surge_room = max(0, math.floor(desired * refresh.max_healthy / 100) - desired)
    if refresh.max_healthy > 100:
        surge_room = max(1, surge_room)
    min_healthy = math.ceil(desired * refresh.min_healthy / 100)
    count = len(healthy) - min_healthy
    in_flight = len(capacity) - len(healthy)
    if count <= 0 and in_flight == 0 and surge_room == 0:
        count = 1  # AWS replaces at least one instance at a time
    count = max(0, min(count, len(old)))
    order = [s for s in autoscaling.termination_order(group) if s.instance.id in refresh.to_replace]
    for state in order[:count]:
        autoscaling.begin_termination(group, state)
    # Launch above desired only for old instances that are still in service.
    group.sandbox_surge = min(surge_room, len(old) - count)


def _params(body: bytes) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _group(region: str, name: str | None):
    from moto.autoscaling.models import autoscaling_backends

    from tests.sandbox.aws.eks_common import account_id

    group = autoscaling_backends[account_id()][region].autoscaling_groups.get(name or "")
    if group is None:
        raise RefreshError("ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def _number(params: dict, key: str, default: float) -> float:
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise RefreshError("ValidationError", f"{key} must be a number, got {value!r}") from None


def start(region: str, params: dict) -> str:
    group = _group(region, params.get("AutoScalingGroupName"))
    strategy = params.get("Strategy") or "Rolling"
    if strategy != "Rolling":
        raise RefreshError("ValidationError", f"Strategy {strategy} is not supported by the sandbox; use Rolling")
    min_healthy = int(_number(params, "Preferences.MinHealthyPercentage", 90))
    max_healthy = int(_number(params, "Preferences.MaxHealthyPercentage", 100))
    if not 0 <= min_healthy <= 100:
        raise RefreshError("ValidationError", f"MinHealthyPercentage {min_healthy} must be between 0 and 100")
    if not 100 <= max_healthy <= 200:
        raise RefreshError("ValidationError", f"MaxHealthyPercentage {max_healthy} must be between 100 and 200")
    if max_healthy - min_healthy > 100:
        raise RefreshError("ValidationError", "The difference between MaxHealthyPercentage and MinHealthyPercentage "
                                              f"({max_healthy} - {min_healthy}) cannot be greater than 100")
    if min_healthy == 100 and max_healthy == 100:
        raise RefreshError("ValidationError", "MinHealthyPercentage 100 needs a MaxHealthyPercentage above 100, "
                                              "or no instance could ever be replaced")
    skip_matching = (params.get("Preferences.SkipMatching") or "false").lower() == "true"
    with autoscaling.LOCK:
        if active_refresh(group) is not None:
            raise RefreshError("InstanceRefreshInProgress",
                               "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
        version = autoscaling.template_version(group)
        to_replace = {s.instance.id for s in autoscaling.capacity_instances(group)
                      if not s.protected_from_scale_in and not (skip_matching and autoscaling.is_current(group, s, version))}
        refresh = Refresh(str(uuid.uuid4()), group.name, min_healthy, max_healthy, skip_matching,
                          _number(params, "Preferences.InstanceWarmup", 0), to_replace=to_replace,
                          instances_to_update=len(to_replace), remaining=len(to_replace))
        _refreshes(group).insert(0, refresh)
    return refresh.refresh_id


def cancel(region: str, params: dict) -> str:
    group = _group(region, params.get("AutoScalingGroupName"))
    with autoscaling.LOCK:
        refresh = active_refresh(group)
        if refresh is None or refresh.status == "Cancelling":
            raise RefreshError("ActiveInstanceRefreshNotFound",
                               f"No in progress or pending Instance Refresh found for Auto Scaling group {group.name}")
        refresh.status = "Cancelling"
    return refresh.refresh_id


def _time(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _refresh_xml(refresh: Refresh) -> str:
    parts = [f"<InstanceRefreshId>{refresh.refresh_id}</InstanceRefreshId>",
             f"<AutoScalingGroupName>{escape(refresh.group_name)}</AutoScalingGroupName>",
             f"<Status>{refresh.status}</Status>", "<Strategy>Rolling</Strategy>",
             f"<StartTime>{_time(refresh.start_time)}</StartTime>",
             f"<PercentageComplete>{refresh.percentage_complete}</PercentageComplete>",
             f"<InstancesToUpdate>{refresh.remaining}</InstancesToUpdate>",
             "<Preferences>"
             f"<MinHealthyPercentage>{refresh.min_healthy}</MinHealthyPercentage>"
             f"<MaxHealthyPercentage>{refresh.max_healthy}</MaxHealthyPercentage>"
             f"<SkipMatching>{str(refresh.skip_matching).lower()}</SkipMatching>"
             f"<InstanceWarmup>{int(refresh.warmup)}</InstanceWarmup>"
             "<ScaleInProtectedInstances>Ignore</ScaleInProtectedInstances><StandbyInstances>Ignore</StandbyInstances>"
             "</Preferences>"]
    if refresh.status_reason:
        parts.append(f"<StatusReason>{escape(refresh.status_reason)}</StatusReason>")
    if refresh.end_time is not None:
        parts.append(f"<EndTime>{_time(refresh.end_time)}</EndTime>")
    return "<member>" + "".join(parts) + "</member>"


def describe(region: str, params: dict) -> list[Refresh]:
    group = _group(region, params.get("AutoScalingGroupName"))
    wanted = {value for key, value in params.items() if key.startswith("InstanceRefreshIds.member.")}
    with autoscaling.LOCK:
        return [r for r in _refreshes(group) if not wanted or r.refresh_id in wanted]


def _answer(operation: str, result: str) -> tuple[int, list, bytes]:
    body = (f'<{operation}Response xmlns="{_XMLNS}"><{operation}Result>{result}</{operation}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{operation}Response>")
    return 200, [("Content-Type", "text/xml")], body.encode()


def handle(operation: str, region: str, body: bytes) -> tuple[int, list, bytes]:
    """Answer one of ``OPERATIONS`` in the query protocol's XML."""
    params = _params(body)
    try:
        if operation == "StartInstanceRefresh":
            return _answer(operation, f"<InstanceRefreshId>{start(region, params)}</InstanceRefreshId>")
        if operation == "CancelInstanceRefresh":
            return _answer(operation, f"<InstanceRefreshId>{cancel(region, params)}</InstanceRefreshId>")
        refreshes = "".join(_refresh_xml(r) for r in describe(region, params))
        return _answer(operation, f"<InstanceRefreshes>{refreshes}</InstanceRefreshes>")
    except RefreshError as error:
        payload = (f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type><Code>{error.code}</Code>'
                   f"<Message>{escape(error.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        return 400, [("Content-Type", "text/xml")], payload.encode()
