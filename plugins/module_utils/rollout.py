# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Replacing a node group's outdated instances, surge first: the arithmetic, the choices, the state record.

Pure functions over the group reports of eks_nodegroup_info (fleet.instance_record + "node"); no AWS,
no Kubernetes, no Ansible. The eks_nodegroup_rollout module reads, asks here and acts.

One batch, for a group whose desired capacity was D when the rollout began, with surge S, max
unavailable U and R outdated instances left to replace:
- k = min(S + U, R) old instances go in this batch;
- desired is raised to D + max(0, k - U) (never above D + S), and every instance must have a Ready Node;
- k old nodes are drained and terminated with desired decremented, which leaves D - min(k, U) Ready;
- after the last batch desired goes back to D.
So Ready capacity never drops below D - U, and no more than S instances above D ever run.

Old instances are taken from the zones that have the most instances at that moment (where the new capacity came
up, since the group balances its launches over its zones), so per-zone capacity stays balanced.
"""

import json
import math

# Processes suspended for the duration: AZRebalance terminates instances to rebalance zones (it would kill a
# node mid-roll), scaling policies (AlarmNotification) and ScheduledActions would change desired capacity under us.
DEFAULT_SUSPENDED_PROCESSES = ("AZRebalance", "AlarmNotification", "ScheduledActions")
# Launch and Terminate are needed by the roll itself (surge, terminate); suspending them would stall it.
REQUIRED_PROCESSES = ("Launch", "Terminate")
PROTECTED_CHOICES = ("skip", "wait", "replace")
# How cluster-autoscaler is kept from scaling the group down mid-roll: its scale-down-disabled annotation on the
# group's Nodes, its Deployment scaled to 0 and back (it then cannot scale anything, nor race the surge), or not at all.
AUTOSCALER_CHOICES = ("annotate", "scale_down", "none")
STATE_VERSION = 1


class RolloutError(ValueError):
    """Bad input or a group that cannot be rolled as asked; the message names the value and the fix."""


def parse_amount(value, total, option, round_up):
    """An absolute count from `value`: an int, "3" or "25%" of `total` (rounded up or down, as Kubernetes does
    for maxSurge and maxUnavailable)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if percent < 0:
                raise ValueError(text)
            amount = total * percent / 100.0
            return int(math.ceil(amount - 1e-9) if round_up else math.floor(amount + 1e-9))
        count = int(text)
    except ValueError:
        raise RolloutError("{0} {1!r} is neither a count (2) nor a percentage (25%); give one of those".format(option, value))
    if count < 0:
        raise RolloutError("{0} {1} is negative; give 0 or more".format(option, count))
    return count


def rollout_sizes(group, max_surge, max_unavailable, raise_max=False, original=None):
    """{"desired", "surge", "unavailable", "max_size", "max_size_needed"} for one group, or RolloutError.

    `group` has desired_capacity, min_size, max_size; `original` the state record of a rollout in progress
    (its desired and max count, not the ones the interrupted run left).
    """
    name = group["name"]
    desired = original["desired"] if original else group["desired_capacity"]
    max_size = original["max_size"] if original else group["max_size"]
    surge = parse_amount(max_surge, desired, "node_rollout_max_surge", round_up=True)
    unavailable = parse_amount(max_unavailable, desired, "node_rollout_max_unavailable", round_up=False)
    if surge == 0 and unavailable == 0:
        raise RolloutError("node group {0}: node_rollout_max_surge {1} and node_rollout_max_unavailable {2} are both 0 for desired capacity {3}, "
                           "so no instance could ever be replaced; allow a surge (1 or 25%) or some unavailability".format(
                               name, max_surge, max_unavailable, desired))
    # Terminating with decrement is refused below the group's min size: unavailability is capped there.
    unavailable = min(unavailable, max(0, desired - group["min_size"]))
    if surge == 0 and unavailable == 0:
        raise RolloutError("node group {0}: node_rollout_max_surge is 0 and desired capacity {1} equals min_size {2}, so no instance can be "
                           "terminated without a replacement first; allow a surge (1 or 25%) or lower min_size".format(name, desired, group["min_size"]))
    needed = desired + surge
    if needed > max_size and not raise_max:
        raise RolloutError("node group {0}: a surge of {1} takes desired capacity to {2}, above max_size {3}; set node_rollout_raise_max: true "
                           "(max_size goes back to {3} afterwards), raise max_size, or lower node_rollout_max_surge".format(name, surge, needed, max_size))
    return {"desired": desired, "surge": surge, "unavailable": unavailable, "max_size": max_size, "max_size_needed": max(needed, max_size)}


def skip_reason(instance, protected):
    """Why an outdated instance is left alone this run (None when it is to be replaced)."""
    state = instance.get("lifecycle_state") or ""
    if state.startswith("Standby"):
        return "in Standby (it does not count towards desired capacity); exit Standby or terminate it, then run again"
    if state not in ("InService",):
        return "lifecycle state {0}, not InService".format(state or "unknown")
    if instance.get("protected_from_scale_in") and protected == "skip":
        return "protected from scale-in (node_rollout_protected: skip); set node_rollout_protected: replace or wait, or remove the protection"
    return None


def outdated_instances(instances, protected="skip"):
    """(to replace, skipped) of a group's outdated instances; skipped as [{"instance_id", "reason"}]."""
    if protected not in PROTECTED_CHOICES:
        raise RolloutError("node_rollout_protected {0!r} is not one of {1}".format(protected, ", ".join(PROTECTED_CHOICES)))
    replace, skipped = [], []
    for inst in instances:
        if not inst.get("outdated"):
            continue
        reason = skip_reason(inst, protected)
        if reason:
            skipped.append({"instance_id": inst["instance_id"], "reason": reason})
        else:
            replace.append(inst)
    return replace, skipped


def waiting_for_protection(instances):
    """Outdated InService instances still protected from scale-in (what node_rollout_protected: wait waits for)."""
    return sorted(inst["instance_id"] for inst in instances
                  if inst.get("outdated") and inst.get("protected_from_scale_in") and inst.get("lifecycle_state") == "InService")


def batch_size(sizes, remaining):
    """How many old instances the next batch replaces."""
    return min(sizes["surge"] + sizes["unavailable"], remaining)


def batch_count(sizes, remaining):
    """Batches needed for `remaining` old instances."""
    per_batch = sizes["surge"] + sizes["unavailable"]
    return int(math.ceil(remaining / float(per_batch))) if remaining else 0


def surge_target(sizes, remaining, current_desired):
    """Desired capacity for the next batch: room for its new instances while the old ones still serve.

    Surge first: the batch's replacements launch together, up to the surge, before its old instances go.
    A last batch of k <= surge old instances launches all k, so that terminating them (with decrement)
    leaves the group at its original desired capacity; using unavailability there instead would leave
    it k short, to be launched and joined again after the roll (one more launch + join of wall time).
    Never lowered below the current desired (a resumed run keeps what the interrupted one launched)
    and never above desired + surge.
    """
    k = batch_size(sizes, remaining)
    target = sizes["desired"] + min(sizes["surge"], k)
    return max(target, min(current_desired, sizes["desired"] + sizes["surge"])) if k else current_desired


def drain_count(sizes, ready, remaining):
    """Old instances the batch may take down with `ready` Ready nodes now: Ready never below desired - unavailable."""
    floor = sizes["desired"] - sizes["unavailable"]
    return max(0, min(remaining, ready - floor, sizes["surge"] + sizes["unavailable"]))


def shared_counts(wanted, budget):
    """Old instances each group of a batch takes down when the groups together may take at most `budget` (the cluster-wide
    disruption lock's limit; 0 or None: no limit): `wanted` (each group's drain_count) served in order, so a group left
    short this batch is served in a later one."""
    if not budget:
        return list(wanted)
    counts = []
    for count in wanted:
        counts.append(min(count, budget))
        budget -= counts[-1]
    return counts


def choose_old(candidates, all_instances, count):
    """`count` of `candidates` (old instances) to drain, zone-aware: each pick from the zone with the most
    instances left, so the zones where new capacity came up give their old nodes first.

    Among a zone's candidates: already cordoned first (an interrupted run's), then the oldest launch.
    """
    per_zone = {}
    for inst in all_instances:
        if (inst.get("lifecycle_state") or "").startswith(("Pending", "InService")):
            per_zone[inst.get("availability_zone")] = per_zone.get(inst.get("availability_zone"), 0) + 1
    pool = sorted(candidates, key=lambda i: ((i.get("node") or {}).get("schedulable", True), i.get("launch_time") or "", i["instance_id"]))
    chosen = []
    while pool and len(chosen) < count:
        zones = set(i.get("availability_zone") for i in pool)
        zone = max(sorted(zones, key=str), key=lambda z: per_zone.get(z, 0))
        pick = next(i for i in pool if i.get("availability_zone") == zone)
        pool.remove(pick)
        per_zone[zone] = per_zone.get(zone, 0) - 1
        chosen.append(pick)
    return chosen


def unjoined_new(instances):
    """Current (not outdated) instances without a Ready Node: the surge that did not come up, newest first."""
    found = [i for i in instances if not i.get("outdated") and not (i.get("node") or {}).get("ready")
             and (i.get("lifecycle_state") or "").startswith(("Pending", "InService"))]
    return sorted(found, key=lambda i: (i.get("launch_time") or "", i["instance_id"]), reverse=True)


def surplus_new(instances, desired, original_desired):
    """Current instances to terminate (with decrement) to bring desired back to the original: unjoined first, newest first."""
    excess = desired - original_desired
    if excess <= 0:
        return []
    unjoined = unjoined_new(instances)
    joined = sorted((i for i in instances if not i.get("outdated") and i not in unjoined and i.get("lifecycle_state") == "InService"),
                    key=lambda i: (i.get("launch_time") or "", i["instance_id"]), reverse=True)
    return (unjoined + joined)[:excess]


def processes_to_suspend(wanted, already_suspended):
    """The processes this run suspends (and later resumes): wanted ones not suspended yet; RolloutError for Launch/Terminate."""
    blocked = sorted(set(wanted) & set(REQUIRED_PROCESSES))
    if blocked:
        raise RolloutError("node_rollout_suspend_processes names {0}, which the roll itself needs (new instances launch, old ones "
                           "terminate); leave them out".format(", ".join(blocked)))
    return sorted(set(wanted) - set(already_suspended))


def blocking_suspensions(already_suspended):
    """Processes suspended before the roll that would stall it."""
    return sorted(set(already_suspended) & set(REQUIRED_PROCESSES))


def state_record(group, suspended, started, autoscaler=None):
    """What a rollout changed, for the ASG tag: original desired and max, processes it suspended, when it began,
    and (autoscaler_record) the cluster-autoscaler Deployment it scaled to 0 with its original replicas."""
    record = {"v": STATE_VERSION, "desired": group["desired_capacity"], "max_size": group["max_size"], "suspended": sorted(suspended), "started": started}
    if autoscaler:
        record["autoscaler"] = autoscaler
    return record


def autoscaler_deployment(namespace, name):
    """The "namespace/name" of the cluster-autoscaler Deployment, as recorded and reported."""
    return "{0}/{1}".format(namespace, name)


def autoscaler_record(state, deployment, current_replicas):
    """The autoscaler entry a rollout records before scaling the Deployment to 0: the one already recorded (a resumed
    run finds the Deployment at the 0 the killed run left, the original count is in the record), else the count now."""
    recorded = (state or {}).get("autoscaler")
    if recorded and recorded["deployment"] == deployment:
        return recorded
    return {"deployment": deployment, "replicas": int(current_replicas)}


def missing_autoscaler_message(cluster_name, deployment):
    """The refusal for node_rollout_cluster_autoscaler: scale_down when the Deployment is not there."""
    return ("node_rollout_cluster_autoscaler is scale_down but cluster {0} has no Deployment {1}; set node_rollout_cluster_autoscaler_namespace "
            "and node_rollout_cluster_autoscaler_deployment to where cluster-autoscaler runs, or node_rollout_cluster_autoscaler: none when "
            "the cluster runs none".format(cluster_name, deployment))


def state_tag_value(record):
    """The tag value (at most 256 characters, as Auto Scaling allows)."""
    value = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if len(value) > 256:
        raise RolloutError("rollout state record {0} is {1} characters, above the 256 an ASG tag holds; use shorter "
                           "node_rollout_cluster_autoscaler_namespace/_deployment names or fewer node_rollout_suspend_processes".format(value, len(value)))
    return value


def holder_tag_value(holder):
    """The value of the holder tag for `holder`, or RolloutError when an ASG tag cannot hold it."""
    value = str(holder or "").strip()
    if not value:
        raise RolloutError("holder is empty; pass the run's identity in the disruption lock (node_rollout_disruption_holder, or "
                           "leave it empty for node_rollout/<user>/<UTC time>-<random>)")
    if len(value) > 256:
        raise RolloutError("holder {0!r} is {1} characters, above the 256 an ASG tag holds; set a shorter "
                           "node_rollout_disruption_holder".format(value, len(value)))
    return value


def ownership(recorded, holder):
    """Who the roll of a group belongs to for a run calling as `holder` (None: the caller gave none):

    - "untracked": no holder recorded (a roll begun without one) or the caller gave none: no ownership check;
    - "own": the caller is the recorded holder;
    - "other": another run is recorded; `begin` and `abort` take the roll (and its disruption slots) over from it, every
      other step of the caller refuses or, undoing, leaves the group to its owner.
    """
    if not recorded or not holder:
        return "untracked"
    return "own" if recorded == holder else "other"


def taken_over_message(group_name, owner, holder):
    """The refusal of a run whose roll of `group_name` another run took over (it resumed or aborted the roll meanwhile)."""
    return ("node group {0}: its rollout now belongs to run {1}, which resumed or aborted it after this run ({2}) started; "
            "this run stops and leaves the group to that run (its processes, sizes and disruption slots are that run's to "
            "restore)".format(group_name, owner, holder))


def parse_state_tag(value, group_name):
    """The state record of a tag value; RolloutError naming the group and the fix when it cannot be read."""
    try:
        record = json.loads(value)
        if not isinstance(record, dict):
            raise ValueError(value)
        parsed = {"v": int(record.get("v", STATE_VERSION)), "desired": int(record["desired"]), "max_size": int(record["max_size"]),
                  "suspended": [str(p) for p in record.get("suspended") or []], "started": record.get("started")}
        if record.get("autoscaler"):
            parsed["autoscaler"] = {"deployment": str(record["autoscaler"]["deployment"]), "replicas": int(record["autoscaler"]["replicas"])}
        return parsed
    except (ValueError, KeyError, TypeError):
        raise RolloutError("node group {0}: its rollout state tag holds {1!r}, which is not a record of node_rollout; restore the group's desired "
                           "capacity, max size and suspended processes by hand, then delete the tag".format(group_name, value))


def restore_max_size(original_max, current_desired):
    """max_size after the roll: the original, unless desired is still above it (a failed batch), then desired."""
    return max(original_max, current_desired)
