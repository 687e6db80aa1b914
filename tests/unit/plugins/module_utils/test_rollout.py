"""Rollout planning: sizes from counts and percentages, bad input refused with the fix, batches that keep Ready capacity
at or above desired - max_unavailable, zone-aware choice of old nodes, and the state record kept in an ASG tag."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import rollout as ro


def group(desired=4, min_size=1, max_size=6, name="g"):
    return {"name": name, "desired_capacity": desired, "min_size": min_size, "max_size": max_size}


def inst(iid, zone="a", outdated=True, state="InService", ready=True, schedulable=True, protected=False, launch="2026-01-01"):
    return {"instance_id": iid, "availability_zone": zone, "outdated": outdated, "lifecycle_state": state, "protected_from_scale_in": protected,
            "launch_time": launch, "node": {"ready": ready, "schedulable": schedulable}}


@pytest.mark.parametrize("value,total,up,expected", [(2, 10, True, 2), ("3", 10, False, 3), ("25%", 10, True, 3), ("25%", 10, False, 2),
                                                     ("20%", 10, True, 2), ("0%", 7, True, 0), ("100%", 3, False, 3)])
def test_amounts_are_counts_or_percentages_rounded_like_kubernetes(value, total, up, expected):
    assert ro.parse_amount(value, total, "opt", round_up=up) == expected


@pytest.mark.parametrize("value", ["abc", "-1", "-5%", "1.5"])
def test_bad_amounts_name_the_option_and_the_value(value):
    with pytest.raises(ro.RolloutError) as err:
        ro.parse_amount(value, 10, "node_rollout_max_surge", True)
    assert "node_rollout_max_surge" in str(err.value) and value.lstrip("-") in str(err.value)


def test_zero_surge_and_zero_unavailable_is_refused():
    with pytest.raises(ro.RolloutError) as err:
        ro.rollout_sizes(group(), 0, "0%")
    assert str(err.value).startswith("node group g: node_rollout_max_surge 0 and node_rollout_max_unavailable 0% are both 0")


def test_a_surge_above_max_size_needs_raise_max():
    with pytest.raises(ro.RolloutError) as err:
        ro.rollout_sizes(group(desired=4, max_size=4), 1, 0)
    assert "takes desired capacity to 5, above max_size 4; set node_rollout_raise_max: true" in str(err.value)
    sizes = ro.rollout_sizes(group(desired=4, max_size=4), 1, 0, raise_max=True)
    assert sizes["max_size_needed"] == 5 and sizes["max_size"] == 4


def test_unavailability_is_capped_at_min_size():
    sizes = ro.rollout_sizes(group(desired=4, min_size=3), 1, 2)
    assert sizes["unavailable"] == 1
    with pytest.raises(ro.RolloutError) as err:
        ro.rollout_sizes(group(desired=3, min_size=3), 0, 1)
    assert "equals min_size 3" in str(err.value)


def test_a_resumed_rollout_counts_from_the_original_sizes():
    sizes = ro.rollout_sizes(group(desired=5, max_size=6), 1, 0, original={"desired": 4, "max_size": 4}, raise_max=True)
    assert sizes["desired"] == 4 and sizes["max_size"] == 4


@pytest.mark.parametrize("desired,surge,unavailable,outdated", [(4, 1, 0, 4), (4, 0, 1, 4), (10, 2, 2, 10), (3, 2, 1, 2), (5, "20%", "20%", 5)])
def test_batches_never_take_ready_capacity_below_desired_minus_unavailable(desired, surge, unavailable, outdated):
    """Simulate the role: surge, all Ready, drain, terminate with decrement; then back to desired."""
    sizes = ro.rollout_sizes(group(desired=desired, min_size=0, max_size=desired + 5), surge, unavailable)
    current, old, lowest, peak = desired, outdated, desired, desired
    for _ in range(ro.batch_count(sizes, outdated)):
        current = ro.surge_target(sizes, old, current)
        peak = max(peak, current)
        k = ro.drain_count(sizes, current, old)
        assert k == ro.batch_size(sizes, old)
        lowest = min(lowest, current - k)
        current, old = current - k, old - k
    assert old == 0
    assert lowest >= desired - sizes["unavailable"]
    assert peak <= desired + sizes["surge"]
    assert current <= desired


@pytest.mark.parametrize("desired,surge,unavailable,outdated", [(10, 2, 2, 10), (3, 1, 1, 3), (4, 2, 0, 3), (5, "20%", "20%", 5)])
def test_a_last_batch_within_the_surge_leaves_the_group_at_its_desired_capacity(desired, surge, unavailable, outdated):
    """No replacement is left for after the roll (another launch and join) when the surge could launch it with its batch."""
    sizes = ro.rollout_sizes(group(desired=desired, min_size=0, max_size=desired + 5), surge, unavailable)
    current, old, launched = desired, outdated, 0
    while old:
        target = ro.surge_target(sizes, old, current)
        launched += target - current
        k = ro.drain_count(sizes, target, old)
        current, old = target - k, old - k
    assert current == desired
    assert launched == outdated


def test_drain_count_never_goes_below_the_floor():
    sizes = ro.rollout_sizes(group(desired=4), 1, 1)
    assert ro.drain_count(sizes, ready=4, remaining=3) == 1   # a surge node that is not Ready yet: only U may go
    assert ro.drain_count(sizes, ready=2, remaining=3) == 0


def test_groups_rolled_together_share_the_lock_limit_in_order():
    assert ro.shared_counts([2, 2, 2], 0) == [2, 2, 2]  # no limit: each group's own batch
    assert ro.shared_counts([2, 2, 2], 3) == [2, 1, 0]  # the last group waits for a later batch
    assert ro.shared_counts([0, 2, 1], 2) == [0, 2, 0]
    assert sum(ro.shared_counts([4, 4], 5)) == 5


def test_outdated_standby_pending_and_protected_instances():
    instances = [inst("i-1"), inst("i-2", state="Standby"), inst("i-3", protected=True), inst("i-4", outdated=False), inst("i-5", state="Pending")]
    replace, skipped = ro.outdated_instances(instances, "skip")
    assert [i["instance_id"] for i in replace] == ["i-1"]
    assert [s["instance_id"] for s in skipped] == ["i-2", "i-3", "i-5"]
    assert "Standby" in skipped[0]["reason"] and "node_rollout_protected" in skipped[1]["reason"]
    replace, _ = ro.outdated_instances(instances, "replace")
    assert [i["instance_id"] for i in replace] == ["i-1", "i-3"]
    assert ro.waiting_for_protection(instances) == ["i-3"]
    with pytest.raises(ro.RolloutError):
        ro.outdated_instances(instances, "sometimes")


def test_old_nodes_come_from_the_zones_where_new_capacity_came_up():
    old = [inst("i-a1", "a"), inst("i-a2", "a"), inst("i-b1", "b"), inst("i-b2", "b"), inst("i-c1", "c"), inst("i-c2", "c")]
    new = [inst("i-new-b", "b", outdated=False)]
    chosen = ro.choose_old(old, old + new, 1)
    assert [i["availability_zone"] for i in chosen] == ["b"]
    new2 = new + [inst("i-new-c", "c", outdated=False)]
    assert sorted(i["availability_zone"] for i in ro.choose_old(old, old + new2, 2)) == ["b", "c"]


def test_an_interrupted_runs_cordoned_node_goes_first():
    old = [inst("i-1", "a", launch="2026-01-01"), inst("i-2", "a", schedulable=False, launch="2026-02-01")]
    assert [i["instance_id"] for i in ro.choose_old(old, old, 1)] == ["i-2"]


def test_surplus_new_instances_are_unjoined_then_newest():
    instances = [inst("i-old"), inst("i-n1", outdated=False, launch="2026-01-02"), inst("i-n2", outdated=False, ready=False, launch="2026-01-01"),
                 inst("i-n3", outdated=False, launch="2026-01-03")]
    assert [i["instance_id"] for i in ro.surplus_new(instances, desired=6, original_desired=4)] == ["i-n2", "i-n3"]
    assert ro.surplus_new(instances, desired=4, original_desired=4) == []
    assert [i["instance_id"] for i in ro.unjoined_new(instances)] == ["i-n2"]


def test_launch_and_terminate_cannot_be_suspended_and_only_new_suspensions_are_recorded():
    assert ro.processes_to_suspend(["AZRebalance", "ScheduledActions"], ["AZRebalance"]) == ["ScheduledActions"]
    with pytest.raises(ro.RolloutError) as err:
        ro.processes_to_suspend(["Launch", "AZRebalance"], [])
    assert "names Launch" in str(err.value)
    assert ro.blocking_suspensions(["Terminate", "AZRebalance"]) == ["Terminate"]


def test_the_state_record_round_trips_through_a_tag_value():
    record = ro.state_record(group(desired=4, max_size=6), ["AZRebalance"], "2026-11-30T05:00:00Z")
    value = ro.state_tag_value(record)
    assert len(value) <= 256
    assert ro.parse_state_tag(value, "g") == record
    with pytest.raises(ro.RolloutError) as err:
        ro.parse_state_tag("nonsense", "g")
    assert "node group g: its rollout state tag holds 'nonsense'" in str(err.value)


def test_max_size_goes_back_unless_desired_is_still_above_it():
    assert ro.restore_max_size(4, 4) == 4
    assert ro.restore_max_size(4, 5) == 5


def test_the_cluster_autoscaler_replicas_are_recorded_once_and_survive_the_tag():
    deployment = ro.autoscaler_deployment("kube-system", "cluster-autoscaler")
    first = ro.autoscaler_record(None, deployment, 2)
    assert first == {"deployment": "kube-system/cluster-autoscaler", "replicas": 2}
    record = ro.state_record(group(desired=4, max_size=6), list(ro.DEFAULT_SUSPENDED_PROCESSES), "2026-11-30T05:00:00Z", first)
    value = ro.state_tag_value(record)
    assert len(value) <= 256
    parsed = ro.parse_state_tag(value, "g")
    assert parsed == record
    # A resumed run finds the Deployment at the 0 the killed run left: the original count stays the recorded one.
    assert ro.autoscaler_record(parsed, deployment, 0) == first
    # A record without it (scale_down asked only now) records the count now.
    assert ro.autoscaler_record(ro.parse_state_tag(ro.state_tag_value(ro.state_record(group(), [], "t")), "g"), deployment, 3)["replicas"] == 3


def test_a_state_record_too_long_for_a_tag_names_the_fix():
    autoscaler = {"deployment": "n" * 63 + "/" + "d" * 120, "replicas": 1}
    with pytest.raises(ro.RolloutError) as err:
        ro.state_tag_value(ro.state_record(group(), ["AZRebalance"], "t", autoscaler))
    assert "above the 256 an ASG tag holds; use shorter node_rollout_cluster_autoscaler_namespace" in str(err.value)


def test_the_roll_belongs_to_the_recorded_holder():
    assert ro.ownership(None, "roll/b") == "untracked"  # a roll begun without a holder: no check
    assert ro.ownership("roll/a", None) == "untracked"  # a caller without a holder: no check
    assert ro.ownership("roll/a", "roll/a") == "own"
    assert ro.ownership("roll/a", "roll/b") == "other"
    message = ro.taken_over_message("demo-general", "roll/b", "roll/a")
    assert message.startswith("node group demo-general: its rollout now belongs to run roll/b") and "(roll/a)" in message


def test_the_holder_tag_holds_what_an_asg_tag_can():
    assert ro.holder_tag_value(" node_rollout/ops/20261130T081500-4711 ") == "node_rollout/ops/20261130T081500-4711"
    with pytest.raises(ro.RolloutError, match="is 257 characters, above the 256 an ASG tag holds; set a shorter node_rollout_disruption_holder"):
        ro.holder_tag_value("x" * 257)
    with pytest.raises(ro.RolloutError, match="holder is empty"):
        ro.holder_tag_value("")


def test_a_default_holder_does_not_fit_in_the_state_tag_beside_a_full_record():
    # why the holder has a tag of its own (fleet.ROLLOUT_HOLDER_TAG)
    record = ro.state_record({"desired_capacity": 100, "max_size": 200}, list(ro.DEFAULT_SUSPENDED_PROCESSES), "2026-11-30T05:00:00Z",
                             ro.autoscaler_record(None, ro.autoscaler_deployment("kube-system", "cluster-autoscaler"), 1))
    with pytest.raises(ro.RolloutError, match="above the 256"):
        ro.state_tag_value(dict(record, holder="node_rollout/ansible-operator/20261130T150104-12345"))
