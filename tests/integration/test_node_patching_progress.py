"""playbooks/patch.yml's long waits speak (issue #15), on real node hosts (tests/nodehosts PatchFleet): every wait
(a slot in the cluster's disruption lock, the drain, the reboot and Ready) goes in slices of node_patching_wait_progress
seconds, each a task line saying what is awaited, where it stands and how much of its bound is spent.

- Another run holds the only slot for the whole wait: the node stops at step lock with a message naming who held it and
  node_patching_lock_wait_timeout; nothing of it was touched.
- Another run holds the slot for a few seconds, then a PodDisruptionBudget holds the drain for a few seconds, then the
  node reboots and its Node reports the new boot a few seconds later: a line per slice with the state, the run finishes (PID 1 really restarted, the Node has a new bootID),
  and a second run changes nothing."""

import json
import os
import re
import threading
import time

import kubernetes

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as lock
from tests.integration.conftest import run_playbook, slice_spent
from tests.nodehosts.apt_repo import node_packages
from tests.sandbox.kube import scenarios

PLAYBOOK = "playbooks/patch.yml"
NEW = dict((p.name, p.version) for p in node_packages("new"))
OTHER_RUN = "node_patching/someone@elsewhere/20261130T080000-1"
SLICES = {"node_patching_wait_progress": 1, "node_patching_max_unavailable": 1, "node_patching_batch": "1",
          "node_patching_reboot_timeout": 120, "node_patching_ready_timeout": 60, "node_patching_drain_timeout": 60,
          "node_patching_ignore_blocking_pdbs": True}


def patch(sandbox, fleet, host, **extra):
    extra_vars = dict(SLICES, node_patching_hosts=host, **extra)
    return run_playbook(sandbox, PLAYBOOK, extra_vars=extra_vars, inventory=fleet.inventory, env=fleet.env(), timeout=600)


def failures(run):
    return "\n".join("{0} [{1}]: {2}".format(t["task"]["name"], host, result.get("msg")) for t in run.tasks
                     for host, result in t["hosts"].items() if result.get("failed") or result.get("unreachable")) or json.dumps(run.output)[-3000:]


def lines(run, text):
    """The names of the tasks that ran (not skipped) and say `text` (after the role's name): the lines a user reads, in order."""
    return [t["task"]["name"] for t in run.tasks if ": " + text in t["task"]["name"]
            and any(not r.get("skipped") for r in t["hosts"].values())]


class OtherRun:
    """Another run holding a slot in the cluster's disruption lock (the Lease the role uses), for a node not patched here."""

    def __init__(self, fleet, node):
        self.leases = kubernetes.client.CoordinationV1Api(fleet.api)
        slots = {node: lock.new_entry(OTHER_RUN, "patch", lock.utc_now(), 600)}
        body = lock.lease_body(None, slots, OTHER_RUN, 600, lock.DEFAULT_LEASE_NAMESPACE, lock.DEFAULT_LEASE_NAME, lock.utc_now())
        self.leases.create_namespaced_lease(lock.DEFAULT_LEASE_NAMESPACE, body)

    def release(self):
        lease = self.leases.read_namespaced_lease(lock.DEFAULT_LEASE_NAME, lock.DEFAULT_LEASE_NAMESPACE)
        lease.metadata.annotations[lock.SLOTS_ANNOTATION] = lock.serialise_slots({})
        self.leases.replace_namespaced_lease(lock.DEFAULT_LEASE_NAME, lock.DEFAULT_LEASE_NAMESPACE, lease)


def test_each_long_wait_prints_a_line_per_slice_with_its_state_and_one_that_runs_out_says_what_bounds_it(sandbox, patch_fleet):
    fleet = patch_fleet(nodes=2, groups=1)
    target, other = fleet.instance_ids()
    host, other_node = fleet.node_name(target), fleet.node_name(other)
    policy = kubernetes.client.PolicyV1Api(fleet.api)
    boot_before = fleet.boot_ids()[target]
    pid1_before = fleet.hosts.pid1_start(target)
    holder = OtherRun(fleet, other_node)

    # The slot stays held: the wait runs out, saying who held it and what bounds the wait; nothing of the node was touched.
    stopped = patch(sandbox, fleet, host, node_patching_lock_wait_timeout=4)
    text = failures(stopped)
    assert stopped.returncode != 0
    assert "failed at step lock" in text and "within node_patching_lock_wait_timeout 4 s" in text, text[-3000:]
    assert "last state: slots held by other runs: {0}: {1} (1 of 1 in use)".format(OTHER_RUN, other_node) in text, text[-3000:]
    waits = lines(stopped, "Disruption lock slot for {0} (node {0}): slots held by other runs: {1}: {2} (1 of 1 in use)".format(
        host, OTHER_RUN, other_node))
    assert len(waits) >= 2 and [slice_spent(w) for w in waits] == sorted(set(slice_spent(w) for w in waits)), waits
    node = fleet.nodes()[target]
    assert not node.spec.unschedulable and fleet.installed(target) != NEW

    # Held for a few seconds, then a budget that allows no disruption holds the drain for a few seconds, then the reboot.
    policy.patch_namespaced_pod_disruption_budget("web", "web", {"spec": {"maxUnavailable": 0}})

    def lease_reads():
        return sandbox.kube_api_calls(fleet.name).get("GET leases", 0)

    def let_go():
        # once the run has read the Lease a few more times (it reads it each second while it waits for a slot), not on a clock
        reads = lease_reads()
        scenarios.wait_for(lambda: lease_reads() >= reads + 5, timeout=180, interval=0.2, message="the run waiting for a slot")
        holder.release()
        scenarios.wait_for(lambda: fleet.nodes()[target].spec.unschedulable, timeout=120, interval=0.2, message="the drain's cordon")
        # long enough for two more drain slices even when each slice's module start takes seconds (a loaded machine)
        time.sleep(15)
        policy.patch_namespaced_pod_disruption_budget("web", "web", {"spec": {"maxUnavailable": 1}})

    releaser = threading.Thread(target=let_go, daemon=True)
    releaser.start()
    # and a boot whose Node reports 20 s after PID 1 restarted: two more slices of 1 s even at 5-7 s of wall time each (a slice
    # also pays its module's start, seconds when the machine is loaded; measured in CI)
    slow_boot = fleet.hosts.slow_next_boot(target, 20)
    run = patch(sandbox, fleet, host, node_patching_lock_wait_timeout=60)
    releaser.join(timeout=60)
    slow_boot.join(timeout=60)
    assert run.returncode == 0, failures(run)

    slot_lines = lines(run, "Disruption lock slot for {0} (node {0}): slots held by other runs: {1}".format(host, OTHER_RUN))
    assert slot_lines and all(line.endswith("of 60 s spent)") for line in slot_lines), slot_lines
    drain_lines = lines(run, "Drain of {0} (node {0}): drain running, ".format(host))
    assert len(drain_lines) >= 2 and "s spent, node_patching_drain_timeout)" in drain_lines[-1], drain_lines
    assert [slice_spent(d) for d in drain_lines] == sorted(set(slice_spent(d) for d in drain_lines)), drain_lines
    node_lines = lines(run, "Wait for the Node of {0}: Node {0} ".format(host))
    # the Node's state as the Kubernetes API shows it (back within the first slice of the reboot's bound, or not), and the bound
    states = [re.search(r"Node \S+ (Ready|NotReady), (new bootID|bootID unchanged)[^;]*; waiting up to 1 s more \(\d+ of 180 s spent, "
                        r"node_patching_(reboot|ready)_timeout\)$", line) for line in node_lines]
    assert len(node_lines) >= 2 and all(states) and "bootID unchanged" in node_lines[0], node_lines

    # The drain's async job file was removed once its result was read (and after the failed drains of the first run too).
    jobs = [r["results_file"] for t in run.tasks if " : Start draining " in t["task"]["name"] for r in t["hosts"].values() if r.get("results_file")]
    assert jobs and not [j for j in jobs if os.path.exists(j)], jobs

    # The reboot really happened (PID 1 restarted), the Node came back with a new bootID, the packages are the new ones.
    assert fleet.hosts.pid1_start(target) not in ("", pid1_before)
    node = fleet.nodes()[target]
    assert node.status.node_info.boot_id != boot_before and not node.spec.unschedulable
    assert fleet.installed(target) == NEW

    again = patch(sandbox, fleet, host, node_patching_lock_wait_timeout=60)
    assert again.returncode == 0, failures(again)
    assert all(stats["changed"] == 0 for stats in again.stats.values()), again.stats
