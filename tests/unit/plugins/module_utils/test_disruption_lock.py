"""The disruption lock's slot accounting: what a run may take, what expires, what a failed node keeps,
and (properties) that no sequence of calls ever leaves more than max_unavailable live slots taken through
acquire."""

import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as lock

NOW = datetime.datetime(2026, 11, 30, 8, 15, tzinfo=datetime.timezone.utc)
TTL = 600


def later(seconds):
    return NOW + datetime.timedelta(seconds=seconds)


def everything_available(_node):
    return True


def test_no_lease_means_no_slots_and_the_annotation_round_trips():
    assert lock.slots_of_lease(None) == {}
    taken = lock.acquire({}, "run-a", ["n1", "n2"], 2, "patch", NOW, TTL)
    text = lock.serialise_slots(taken["slots"])
    assert lock.parse_slots(text) == taken["slots"]
    assert json.loads(text)["n1"] == {"holder": "run-a", "reason": "patch", "acquired": "2026-11-30T08:15:00Z",
                                      "expires": "2026-11-30T08:25:00Z", "failed": False}


@pytest.mark.parametrize("text, expected", [
    ("not json", "are not JSON"),
    ("[1, 2]", "are not a JSON object"),
    ('{"n1": {"reason": "patch"}}', "node n1 in Lease kube-system/lock has no holder"),
    ('{"n1": {"holder": "a", "acquired": "yesterday"}}', "has a time that is not"),
])
def test_a_damaged_annotation_is_an_error_naming_the_lease_and_the_fix(text, expected):
    lease = {"metadata": {"name": "lock", "namespace": "kube-system", "annotations": {lock.SLOTS_ANNOTATION: text}}}
    with pytest.raises(lock.LockError) as info:
        lock.slots_of_lease(lease)
    assert expected in str(info.value)
    assert "kubectl annotate lease" in str(info.value)


def test_nodes_fit_only_within_max_unavailable_all_or_nothing():
    slots = lock.acquire({}, "run-a", ["n1"], 2, "patch", NOW, TTL)["slots"]
    refused = lock.acquire(slots, "run-b", ["n2", "n3"], 2, "patch", NOW, TTL)
    assert refused["fits"] is False
    assert refused["slots"] == slots and refused["taken"] == []
    assert "2 node(s) (n2, n3) do not fit: 1 of max_unavailable 2 slots are in use (run-a: n1)" in \
        lock.blocked_message(refused, ["n2", "n3"], 2, slots)
    accepted = lock.acquire(slots, "run-b", ["n2"], 2, "rollout", NOW, TTL)
    assert accepted["fits"] and accepted["taken"] == ["n2"] and accepted["in_use"] == 2
    assert lock.holders_of(accepted["slots"]) == {"run-a": ["n1"], "run-b": ["n2"]}
    assert lock.free_slots(accepted["slots"], 2) == 0


def test_a_node_another_run_holds_is_never_taken_even_with_free_slots():
    slots = lock.acquire({}, "run-a", ["n1"], 5, "patch", NOW, TTL)["slots"]
    refused = lock.acquire(slots, "run-b", ["n1"], 5, "rollout", NOW, TTL)
    assert refused["fits"] is False and refused["held_by_others"] == {"n1": "run-a"}
    assert "n1 (held by run-a)" in lock.blocked_message(refused, ["n1"], 5, slots)


def test_acquiring_again_renews_without_taking_a_new_slot():
    first = lock.acquire({}, "run-a", ["n1"], 1, "patch", NOW, TTL)["slots"]
    again = lock.acquire(first, "run-a", ["n1"], 1, "patch", later(300), TTL)
    assert again["fits"] and again["taken"] == [] and again["renewed"] == ["n1"]
    assert again["slots"]["n1"]["expires"] == lock.format_time(later(300 + TTL))
    assert again["slots"]["n1"]["acquired"] == first["n1"]["acquired"]


def test_an_entry_not_renewed_within_the_ttl_stops_counting():
    slots = lock.acquire({}, "killed-run", ["n1", "n2"], 2, "patch", NOW, TTL)["slots"]
    kept, dropped = lock.live_slots(slots, later(TTL - 1), everything_available)
    assert kept == slots and dropped == []
    kept, dropped = lock.live_slots(slots, later(TTL), everything_available)
    assert kept == {}
    assert [(d["node"], d["holder"], d["why"]) for d in dropped] == [("n1", "killed-run", "expired"), ("n2", "killed-run", "expired")]
    assert lock.acquire(kept, "run-b", ["n3", "n4"], 2, "patch", later(TTL), TTL)["fits"]


def test_a_failed_node_counts_without_expiry_until_its_node_is_back_or_gone():
    slots = lock.acquire({}, "run-a", ["n1"], 1, "patch", NOW, TTL)["slots"]
    slots, marked, others = lock.mark_failed(slots, "run-a", ["n1"], None, later(10), TTL)
    assert marked == ["n1"] and others == {}
    assert slots["n1"]["failed"] is True and slots["n1"]["expires"] is None and slots["n1"]["reason"] == "patch"
    state = {"n1": False}
    kept, dropped = lock.live_slots(slots, later(10 * TTL), state.get)
    assert kept == slots and dropped == []
    assert lock.acquire(kept, "run-b", ["n2"], 1, "patch", later(10 * TTL), TTL)["fits"] is False
    state["n1"] = True  # Ready and schedulable again
    kept, dropped = lock.live_slots(slots, later(10 * TTL), state.get)
    assert kept == {} and dropped[0]["why"] == lock.DROP_NODE_BACK
    kept, dropped = lock.live_slots(slots, later(10), lambda node: None)  # the Node was deleted
    assert kept == {} and dropped[0]["why"] == lock.DROP_NODE_GONE


def test_a_resumed_run_takes_its_failed_node_again_with_an_expiry():
    slots = lock.acquire({}, "run-a", ["n1"], 1, "patch", NOW, TTL)["slots"]
    slots, _, _ = lock.mark_failed(slots, "run-a", ["n1"], None, NOW, TTL)
    again = lock.acquire(slots, "run-a", ["n1"], 1, "patch", later(60), TTL)
    assert again["fits"] and again["renewed"] == ["n1"]
    assert again["slots"]["n1"]["failed"] is False and again["slots"]["n1"]["expires"] == lock.format_time(later(60 + TTL))


def test_mark_failed_counts_a_node_whose_slot_expired_and_leaves_others_alone():
    slots = lock.acquire({}, "run-b", ["n2"], 1, "patch", NOW, TTL)["slots"]
    after, marked, others = lock.mark_failed(slots, "run-a", ["n1", "n2"], "patch", NOW, TTL)
    assert marked == ["n1"] and others == {"n2": "run-b"}
    assert len(after) == 2  # beyond max_unavailable 1: the failed node is out of service whatever the limit
    assert after["n2"] == slots["n2"]


def test_release_gives_back_named_nodes_or_all_of_the_holder():
    slots = lock.acquire({}, "run-a", ["n1", "n2"], 3, "patch", NOW, TTL)["slots"]
    slots = lock.acquire(slots, "run-b", ["n3"], 3, "patch", NOW, TTL)["slots"]
    after, released, others = lock.release(slots, "run-a", ["n1", "n3", "n9"])
    assert released == ["n1"] and others == {"n3": "run-b"} and sorted(after) == ["n2", "n3"]
    after, released, others = lock.release(slots, "run-a")
    assert released == ["n1", "n2"] and others == {} and sorted(after) == ["n3"]
    assert lock.release(after, "run-a") == (after, [], {})


@pytest.mark.parametrize("args, expected", [
    (("acquired", ["n1"], 0, 60, "run"), "max_unavailable 0 allows no disruption at all; set it to 1 or more"),
    (("acquired", ["n1"], None, 60, "run"), "state acquired needs max_unavailable"),
    (("acquired", ["n1", "n2", "n3"], 2, 60, "run"), "3 nodes (n1, n2, n3) can never fit in max_unavailable 2"),
    (("acquired", [], 2, 60, "run"), "state acquired needs nodes"),
    (("failed", [], None, 60, "run"), "state failed needs nodes"),
    (("released", None, None, 0, "run"), "ttl_seconds 0 is below 1"),
    (("released", None, None, 60, " "), "state released needs a holder"),
    (("acquired", ["n1"], 1, 60, None), "state acquired needs a holder"),
])
def test_requests_that_can_never_succeed_are_refused_with_the_fix(args, expected):
    with pytest.raises(lock.LockError) as info:
        lock.validate_request(*args)
    assert expected in str(info.value)


def test_a_query_needs_no_holder():
    assert lock.validate_request("query", None, None, 60, None) is None


def test_lease_body_keeps_the_read_resource_version_and_records_the_writer():
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "namespace": "kube-system", "resourceVersion": "42", "annotations": {"other": "kept"}},
             "spec": {"holderIdentity": "run-a", "leaseDurationSeconds": 60, "leaseTransitions": 1}}
    body = lock.lease_body(lease, {}, "run-b", 900, "kube-system", "l", NOW)
    assert body["metadata"]["resourceVersion"] == "42"
    assert body["metadata"]["annotations"] == {"other": "kept", lock.SLOTS_ANNOTATION: "{}"}
    assert body["spec"]["holderIdentity"] == "run-b" and body["spec"]["leaseDurationSeconds"] == 900
    assert body["spec"]["leaseTransitions"] == 2 and body["spec"]["renewTime"] == "2026-11-30T08:15:00.000000Z"
    assert lease["metadata"]["annotations"] == {"other": "kept"}  # the read copy is untouched
    created = lock.lease_body(None, {}, "run-a", 900, "kube-system", "l", NOW)
    assert created["metadata"] == {"name": "l", "namespace": "kube-system", "annotations": {lock.SLOTS_ANNOTATION: "{}"}}


# ---------------------------------------------------------------------------------------
# Properties: any interleaving of runs acquiring, renewing, releasing, failing and expiring

NODES = ["n{0}".format(i) for i in range(8)]
HOLDERS = ["run-a", "run-b", "run-c"]
steps = st.lists(st.tuples(
    st.sampled_from(["acquire", "release", "release_all", "fail", "wait", "node_back"]),
    st.sampled_from(HOLDERS),
    st.lists(st.sampled_from(NODES), min_size=1, max_size=3, unique=True),
    st.integers(min_value=0, max_value=TTL * 2),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(max_unavailable=st.integers(min_value=1, max_value=4), script=steps)
def test_acquire_never_leaves_more_than_max_unavailable_slots(max_unavailable, script):
    slots, now, unavailable = {}, NOW, set()
    for action, holder, nodes, seconds in script:
        slots, _ = lock.live_slots(slots, now, lambda node: node not in unavailable)
        before = dict(slots)
        if action == "acquire" and len(nodes) <= max_unavailable:
            decision = lock.acquire(slots, holder, nodes, max_unavailable, "patch", now, TTL)
            if decision["fits"]:
                assert len(decision["slots"]) <= max_unavailable
                # all or nothing, and nobody else's slot changes hands
                assert set(nodes) <= set(decision["slots"])
                assert all(decision["slots"][n]["holder"] == holder for n in nodes)
                assert all(decision["slots"][n] == e for n, e in before.items() if e["holder"] != holder)
                assert len(decision["slots"]) - len(before) == len(decision["taken"])
            else:
                assert decision["slots"] == before
                assert decision["held_by_others"] or len(before) + len([n for n in nodes if n not in before]) > max_unavailable
            slots = decision["slots"]
        elif action == "release":
            slots, released, others = lock.release(slots, holder, nodes)
            assert all(before[n]["holder"] == holder for n in released) and not set(released) & set(slots)
            assert all(slots[n] == before[n] for n in others)
        elif action == "release_all":
            slots, _, _ = lock.release(slots, holder)
            assert holder not in lock.holders_of(slots)
        elif action == "fail":
            mine = [n for n in nodes if n in slots and slots[n]["holder"] == holder]
            slots, marked, _ = lock.mark_failed(slots, holder, mine, None, now, TTL)
            unavailable.update(mine)
            assert len(slots) == len(before)  # failing what one holds never takes more slots
        elif action == "wait":
            now += datetime.timedelta(seconds=seconds)
        elif action == "node_back":
            unavailable.difference_update(nodes)
        # failed entries never expire while their Node is out of service
        for node, entry in before.items():
            if entry["failed"] and node in unavailable and action not in ("release", "release_all"):
                assert node in slots
        assert lock.parse_slots(lock.serialise_slots(slots)) == slots
        live, _ = lock.live_slots(slots, now, lambda node: node not in unavailable)
        assert len(live) <= max_unavailable


def test_a_waiting_run_reads_who_holds_the_slots_and_how_many_of_the_limit_are_in_use():
    slots = {}
    for node, holder in (("ip-2", "node_patching/b"), ("ip-1", "node_patching/b"), ("ip-3", "node_rollout/c")):
        slots[node] = lock.new_entry(holder, "patch", NOW, TTL)
    assert lock.waiting_state(lock.holders_of(slots), len(slots), 3) == (
        "slots held by other runs: node_patching/b: ip-1, ip-2; node_rollout/c: ip-3 (3 of 3 in use)")
    assert lock.waiting_state({}, 0, 1) == "slots held by other runs: nobody (0 of 1 in use)"


def test_a_resuming_run_takes_over_the_killed_runs_live_slots_on_its_nodes_only():
    slots = lock.acquire({}, "roll/killed", ["old-1", "old-2"], 4, "rollout", NOW, TTL)["slots"]
    slots = lock.acquire(slots, "patch/live", ["patched"], 4, "patch", NOW, TTL)["slots"]
    after, taken = lock.take_over(slots, "roll/killed", "roll/resumed", ["old-1", "patched", "not-held"], later(60), TTL)
    assert taken == ["old-1"]
    # renewed under the new holder, acquired kept; the other run's slot and the node not named are untouched
    assert after["old-1"] == {"holder": "roll/resumed", "reason": "rollout", "acquired": "2026-11-30T08:15:00Z",
                              "expires": "2026-11-30T08:26:00Z", "failed": False}
    assert after["patched"] == slots["patched"] and after["old-2"] == slots["old-2"]
    # the resumed run now renews and releases them as its own, and the next batch fits beside them
    assert lock.acquire(after, "roll/resumed", ["old-1"], 3, "rollout", later(61), TTL)["renewed"] == ["old-1"]
    released, names, _ = lock.release(after, "roll/resumed")
    assert names == ["old-1"] and "old-1" not in released


def test_a_failed_slot_is_not_taken_over_and_stays_failed():
    slots, marked, _ = lock.mark_failed({}, "roll/killed", ["broken"], "rollout", NOW, TTL)
    assert marked == ["broken"]
    after, taken = lock.take_over(slots, "roll/killed", "roll/resumed", ["broken"], later(60), TTL)
    assert taken == [] and after == slots
    kept, dropped = lock.live_slots(after, later(10 * TTL), lambda node: False)
    assert kept == slots and dropped == []  # counts until its Node is back, as before


def test_taking_over_from_oneself_or_nobody_changes_nothing():
    slots = lock.acquire({}, "roll/a", ["n1"], 1, "rollout", NOW, TTL)["slots"]
    assert lock.take_over(slots, "roll/a", "roll/a", ["n1"], later(5), TTL) == (slots, [])
    assert lock.take_over(slots, None, "roll/a", ["n1"], later(5), TTL) == (slots, [])


@pytest.mark.parametrize("state, previous, expected", [
    ("taken_over", None, "state taken_over needs previous_holder"),
    ("acquired", "roll/killed", "previous_holder 'roll/killed' is only used with state taken_over"),
])
def test_a_take_over_names_the_previous_holder(state, previous, expected):
    with pytest.raises(lock.LockError, match=expected):
        lock.validate_request(state, ["n1"], 1, TTL, "roll/resumed", 0, previous)
    lock.validate_request("taken_over", ["n1"], None, TTL, "roll/resumed", 0, "roll/killed")  # no limit needed
