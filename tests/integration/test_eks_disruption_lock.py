"""eks_disruption_lock against the sandbox: the slots live in a real Lease of the cluster, written with
resourceVersion compare-and-swap. What a user notices: who holds what, a run that waits for another, a killed
run's slots taken over, a failed node counting until it is back, and never more than max_unavailable nodes held
by runs started together."""

import json
import os
import tempfile
import threading
import time
import uuid

import kubernetes
import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.disruption_lock import SLOTS_ANNOTATION
from tests.integration.conftest import run_playbook
from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube import scenarios


@pytest.fixture(scope="module")
def cluster(sandbox):
    cluster = cluster_with_nodes(sandbox, 6)
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    cluster["core"] = core
    cluster["leases"] = kubernetes.client.CoordinationV1Api(scenarios.kube_client(sandbox, cluster))
    cluster["nodes"] = sorted(scenarios.ready_node_names(core))
    return cluster


@pytest.fixture
def lease_name():
    return "lock-" + uuid.uuid4().hex[:8]


def lock_task(name, cluster, lease_name, **args):
    """A play task of the module under test; failures are registered, not fatal."""
    return {"name": name, "selfmanaged.eks.eks_disruption_lock": dict(cluster_name=cluster["name"], lease_name=lease_name, **args),
            "register": "result", "ignore_errors": True}


def run_tasks(sandbox, tasks, check=False, diff=False):
    play = [{"name": "lock", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(play, handle)
    try:
        return run_playbook(sandbox, handle.name, check=check, diff=diff, timeout=300)
    finally:
        os.unlink(handle.name)


def stored_slots(cluster, lease_name):
    """The slots as stored in the Lease, read with the Kubernetes client (None: no Lease)."""
    try:
        lease = cluster["leases"].read_namespaced_lease(lease_name, "kube-system")
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return json.loads((lease.metadata.annotations or {}).get(SLOTS_ANNOTATION) or "{}")


def test_acquire_renew_wait_query_and_release(sandbox, cluster, lease_name):
    n1, n2, n3 = cluster["nodes"][:3]
    run = run_tasks(sandbox, [
        lock_task("a takes two", cluster, lease_name, holder="run-a", nodes=[n1, n2], max_unavailable=2, reason="patch"),
        lock_task("a renews", cluster, lease_name, holder="run-a", nodes=[n2, n1], max_unavailable=2, reason="patch"),
        lock_task("b cannot take a third", cluster, lease_name, holder="run-b", nodes=[n3], max_unavailable=2),
        lock_task("b waits 2 s", cluster, lease_name, holder="run-b", nodes=[n3], max_unavailable=2, wait_timeout=2),
        lock_task("b cannot take a's node", cluster, lease_name, holder="run-b", nodes=[n1], max_unavailable=5),
        lock_task("b asks", cluster, lease_name, holder="run-b", state="query", max_unavailable=2),
        lock_task("a releases everything", cluster, lease_name, holder="run-a", state="released"),
        lock_task("b takes its node", cluster, lease_name, holder="run-b", nodes=[n3], max_unavailable=2, reason="rollout"),
    ])
    taken = run.result("a takes two")
    assert taken["changed"] is True and taken["acquired"] == sorted([n1, n2]) and (taken["in_use"], taken["free"]) == (2, 0)
    renewed = run.result("a renews")
    assert renewed["changed"] is False and renewed["renewed"] == sorted([n1, n2]) and renewed["acquired"] == []

    refused = run.result("b cannot take a third")
    assert refused["failed"] is True and refused["timed_out"] is False
    assert "2 of max_unavailable 2 slots are in use (run-a: {0})".format(", ".join(sorted([n1, n2]))) in refused["msg"]
    assert "Nothing was changed" in refused["msg"]
    waited = run.result("b waits 2 s")
    assert waited["failed"] is True and waited["timed_out"] is True and waited["waited_seconds"] >= 1
    other = run.result("b cannot take a's node")
    assert other["failed"] is True and "{0} (held by run-a)".format(n1) in other["msg"]

    query = run.result("b asks")
    assert query["changed"] is False and query["holders"] == {"run-a": sorted([n1, n2])} and query["free"] == 0
    released = run.result("a releases everything")
    assert released["changed"] is True and released["released"] == sorted([n1, n2]) and released["in_use"] == 0
    assert run.result("b takes its node")["acquired"] == [n3]

    slots = stored_slots(cluster, lease_name)
    assert list(slots) == [n3]
    assert (slots[n3]["holder"], slots[n3]["reason"], slots[n3]["failed"]) == ("run-b", "rollout", False)
    lease = cluster["leases"].read_namespaced_lease(lease_name, "kube-system")
    assert lease.spec.holder_identity == "run-b" and lease.spec.lease_duration_seconds == 1800


def test_bad_input_is_refused_before_anything_is_written(sandbox, cluster, lease_name):
    run = run_tasks(sandbox, [
        lock_task("zero", cluster, lease_name, holder="run-a", nodes=[cluster["nodes"][0]], max_unavailable=0),
        lock_task("unknown node", cluster, lease_name, holder="run-a", nodes=[cluster["nodes"][0], "ip-10-9-9-9.ec2.internal"],
                  max_unavailable=2),
        lock_task("too many", cluster, lease_name, holder="run-a", nodes=cluster["nodes"][:3], max_unavailable=2),
    ])
    assert "max_unavailable 0 allows no disruption at all; set it to 1 or more" in run.result("zero")["msg"]
    unknown = run.result("unknown node")["msg"]
    assert "node ip-10-9-9-9.ec2.internal is not a Node of cluster {0}".format(cluster["name"]) in unknown
    assert cluster["nodes"][0] not in unknown
    assert "can never fit in max_unavailable 2" in run.result("too many")["msg"]
    assert stored_slots(cluster, lease_name) is None


def test_check_mode_reports_the_slots_it_would_take_and_writes_nothing(sandbox, cluster, lease_name):
    n1 = cluster["nodes"][0]
    run = run_tasks(sandbox, [lock_task("would take", cluster, lease_name, holder="run-a", nodes=[n1], max_unavailable=1)],
                    check=True, diff=True)
    result = run.result("would take")
    assert result["changed"] is True and result["acquired"] == [n1] and result["holders"] == {"run-a": [n1]}
    assert result["diff"]["after"]["slots"][n1]["holder"] == "run-a" and result["diff"]["before"]["slots"] == {}
    assert stored_slots(cluster, lease_name) is None


def test_a_killed_runs_expired_slots_are_taken_over(sandbox, cluster, lease_name):
    n1, n2 = cluster["nodes"][:2]
    run = run_tasks(sandbox, [
        lock_task("killed run takes both", cluster, lease_name, holder="killed", nodes=[n1, n2], max_unavailable=2, ttl_seconds=2),
        {"name": "the run is killed and never renews", "ansible.builtin.wait_for": {"timeout": 3}},
        lock_task("next run", cluster, lease_name, holder="run-b", nodes=[n1], max_unavailable=2),
    ])
    result = run.result("next run")
    assert result.get("failed") is not True, result.get("msg")
    assert result["acquired"] == [n1] and result["holders"] == {"run-b": [n1]}
    assert sorted((d["node"], d["holder"], d["why"]) for d in result["dropped"]) == [(n1, "killed", "expired"), (n2, "killed", "expired")]
    assert list(stored_slots(cluster, lease_name)) == [n1]


def test_a_resuming_run_takes_over_the_killed_runs_live_slots_at_once_and_nobody_elses(sandbox, cluster, lease_name):
    n1, n2, n3, n4 = cluster["nodes"][:4]
    core = cluster["core"]
    core.patch_node(n3, {"spec": {"unschedulable": True}})  # the killed run's node that failed after its drain
    try:
        run = run_tasks(sandbox, [
            lock_task("killed run takes two", cluster, lease_name, holder="roll/killed", nodes=[n1, n3], max_unavailable=4, reason="rollout"),
            lock_task("one failed", cluster, lease_name, holder="roll/killed", nodes=[n3], state="failed"),
            lock_task("a patch run takes one", cluster, lease_name, holder="patch/live", nodes=[n2], max_unavailable=4, reason="patch"),
            lock_task("no previous holder", cluster, lease_name, holder="roll/resumed", nodes=[n1], state="taken_over"),
            lock_task("resumed run takes over", cluster, lease_name, holder="roll/resumed", previous_holder="roll/killed",
                      nodes=[n1, n2, n3, n4], state="taken_over"),
            lock_task("again", cluster, lease_name, holder="roll/resumed", previous_holder="roll/killed", nodes=[n1], state="taken_over"),
            lock_task("resumed run renews", cluster, lease_name, holder="roll/resumed", nodes=[n1], max_unavailable=4),
        ])
        assert "state taken_over needs previous_holder" in run.result("no previous holder")["msg"]
        taken = run.result("resumed run takes over")
        assert taken.get("failed") is not True, taken.get("msg")
        assert taken["changed"] is True and taken["taken_over"] == [n1] and taken["waited_seconds"] < 5
        assert run.result("again")["changed"] is False and run.result("again")["taken_over"] == []
        assert run.result("resumed run renews")["renewed"] == [n1]
        slots = stored_slots(cluster, lease_name)
        assert (slots[n1]["holder"], slots[n1]["reason"]) == ("roll/resumed", "rollout")
        assert slots[n2]["holder"] == "patch/live"  # another run's slot is never touched
        assert (slots[n3]["holder"], slots[n3]["failed"]) == ("roll/killed", True)  # failed stays failed until its Node is back
        assert n4 not in slots
    finally:
        core.patch_node(n3, {"spec": {"unschedulable": False}})


def test_a_failed_node_counts_until_it_is_ready_and_schedulable_again(sandbox, cluster, lease_name):
    n1, n2 = cluster["nodes"][:2]
    core = cluster["core"]
    core.patch_node(n1, {"spec": {"unschedulable": True}})  # what the drain left: the node failed after it
    try:
        run = run_tasks(sandbox, [
            lock_task("a takes n1", cluster, lease_name, holder="run-a", nodes=[n1], max_unavailable=1, ttl_seconds=1, reason="patch"),
            lock_task("n1 failed after its drain", cluster, lease_name, holder="run-a", nodes=[n1], state="failed"),
            {"name": "longer than the ttl", "ansible.builtin.wait_for": {"timeout": 2}},
            lock_task("b finds no slot", cluster, lease_name, holder="run-b", nodes=[n2], max_unavailable=1),
        ])
        marked = run.result("n1 failed after its drain")
        assert marked["changed"] is True and marked["marked_failed"] == [n1] and marked["slots"][n1]["expires"] is None
        blocked = run.result("b finds no slot")
        assert blocked["failed"] is True and "run-a: {0}".format(n1) in blocked["msg"]
        assert stored_slots(cluster, lease_name)[n1]["failed"] is True
    finally:
        core.patch_node(n1, {"spec": {"unschedulable": False}})  # the operator fixed it
    run = run_tasks(sandbox, [lock_task("b now", cluster, lease_name, holder="run-b", nodes=[n2], max_unavailable=1)])
    result = run.result("b now")
    assert result.get("failed") is not True, result.get("msg")
    assert [(d["node"], d["why"]) for d in result["dropped"]] == [(n1, "node_back")]
    assert list(stored_slots(cluster, lease_name)) == [n2]


def test_a_write_that_loses_a_race_is_retried_on_the_new_version(sandbox, cluster, lease_name):
    n1, n2 = cluster["nodes"][:2]
    run_tasks(sandbox, [lock_task("create the lease", cluster, lease_name, holder="run-x", nodes=[n1], max_unavailable=2)])
    # another client writes the Lease just before every second PUT, so that PUT carries a stale resourceVersion
    sandbox.inject_kube_faults(cluster["name"], codes=["concurrent-write"], operations=["PUT leases"], every=2)
    try:
        run = run_tasks(sandbox, [
            lock_task("x renews", cluster, lease_name, holder="run-x", nodes=[n1], max_unavailable=2),
            lock_task("y takes n2", cluster, lease_name, holder="run-y", nodes=[n2], max_unavailable=2, reason="patch"),
        ])
    finally:
        sandbox.clear_kube_faults(cluster["name"])
    assert run.result("x renews")["conflicts"] == 0
    result = run.result("y takes n2")
    assert result.get("failed") is not True, result.get("msg")
    assert result["conflicts"] == 1 and result["acquired"] == [n2]
    assert result["holders"] == {"run-x": [n1], "run-y": [n2]}  # the re-read kept run-x's slot
    lease = cluster["leases"].read_namespaced_lease(lease_name, "kube-system")
    assert lease.metadata.annotations["sandbox.selfmanaged.eks/concurrent-writes"] == "1"  # and the other writer's change
    assert sorted(stored_slots(cluster, lease_name)) == sorted([n1, n2])


def test_two_runs_started_together_never_hold_more_than_max_unavailable(sandbox, cluster, lease_name):
    nodes = cluster["nodes"]
    batches = {"run-a": [nodes[0:2], nodes[2:3]], "run-b": [nodes[3:5], nodes[5:6]]}
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            slots = stored_slots(cluster, lease_name)
            if slots is not None:
                seen.append(len(slots))
            time.sleep(0.05)

    def roll(holder, outcome):
        tasks = []
        for index, batch in enumerate(batches[holder]):
            tasks += [lock_task("take {0}".format(index), cluster, lease_name, holder=holder, nodes=batch, max_unavailable=2,
                                wait_timeout=60, reason="patch"),
                      {"name": "disrupt {0}".format(index), "ansible.builtin.wait_for": {"timeout": 1}},
                      lock_task("give back {0}".format(index), cluster, lease_name, holder=holder, nodes=batch, state="released")]
        outcome[holder] = run_tasks(sandbox, tasks)

    outcome = {}
    watcher = threading.Thread(target=watch)
    watcher.start()
    runs = [threading.Thread(target=roll, args=(holder, outcome)) for holder in batches]
    try:
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(timeout=240)
    finally:
        stop.set()
        watcher.join()
    waited = 0.0
    for holder, run in outcome.items():
        for index in range(2):
            took = run.result("take {0}".format(index))
            assert took.get("failed") is not True, took.get("msg")
            assert took["acquired"] == sorted(batches[holder][index]) and took["in_use"] <= 2
            assert run.result("give back {0}".format(index))["released"] == sorted(batches[holder][index])
            waited += took["waited_seconds"]
    assert sorted(outcome) == ["run-a", "run-b"]
    assert seen and max(seen) <= 2
    assert max(seen) == 2  # the lock was used to its limit ...
    assert waited >= 1  # ... and one run waited for the other's two-node batch
    assert stored_slots(cluster, lease_name) == {}
