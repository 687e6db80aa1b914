"""playbooks/patch.yml under load, on real node hosts (tests/nodehosts PatchFleet): a Deployment with a pod on every
node behind a PodDisruptionBudget (maxUnavailable 1) while a watcher samples the cluster every 50 ms.

- One run, batch 1, max_unavailable 1: never more than one node unschedulable, no PDB violation, and the health gate
  holds between batches (the next node is cordoned only after the previous one is Ready and schedulable again).
- Then, with the next release published, two runs started together on the same cluster (two operators, a node
  each): the cluster's disruption lock keeps them to max_unavailable together, and both finish."""

import json
from concurrent.futures import ThreadPoolExecutor

from tests.integration.conftest import run_playbook
from tests.nodehosts.apt_repo import node_packages
from tests.nodehosts.fleet import FleetWatcher

PLAYBOOK = "playbooks/patch.yml"
LIMITS = {"node_patching_batch": "1", "node_patching_max_unavailable": 1}
FAST = {"node_patching_reboot_timeout": 120, "node_patching_ready_timeout": 60, "node_patching_drain_timeout": 60,
        "node_patching_lock_wait_timeout": 240}
NEW = dict((p.name, p.version) for p in node_packages("new"))
NEWER = dict((p.name, p.version) for p in node_packages("newer"))


def patch(sandbox, fleet, hosts, extra=None):
    extra_vars = dict(FAST, node_patching_hosts=":".join(hosts), node_patching_boot_time_command=fleet.boot_time_command, **LIMITS)
    extra_vars.update(extra or {})
    return run_playbook(sandbox, PLAYBOOK, extra_vars=extra_vars, inventory=fleet.inventory, env=fleet.env(), timeout=600)


def failures(run):
    return [(t["task"]["name"], host, result.get("msg")) for t in run.tasks for host, result in t["hosts"].items()
            if result.get("failed") or result.get("unreachable")] or json.dumps(run.output)[-3000:]


def first(events, what):
    return next(t for t, event in events if event == what)


def last(events, what):
    return [t for t, event in events if event == what][-1]


def test_a_run_under_load_keeps_one_node_out_and_every_budget_met_and_two_runs_together_share_the_limit(
        sandbox, patch_fleet, node_reports_dir):
    fleet = patch_fleet(nodes=2, groups=2)
    instance_of = {node.metadata.name: instance for instance, node in fleet.nodes().items()}
    names = sorted(instance_of)

    with FleetWatcher(fleet.store(), reports_dir=node_reports_dir, instance_of=instance_of) as watcher:
        run = patch(sandbox, fleet, names)
    assert run.returncode == 0, failures(run)
    assert watcher.max_unschedulable == 1, (watcher.max_unschedulable, watcher.max_unschedulable_nodes)
    assert watcher.pdb_violations == []
    # The health gate between the two batches: the second node is cordoned only once the first is back.
    earlier, later = sorted(names, key=lambda n: first(watcher.events[n], "cordoned"))
    assert any(event.startswith("host up") for _, event in watcher.events[earlier]), watcher.events[earlier]
    assert first(watcher.events[later], "cordoned") > max(last(watcher.events[earlier], "uncordoned"),
                                                          last(watcher.events[earlier], "ready"))
    gates = [t for t in run.tasks if "Wait until the batch's nodes are Ready and schedulable" in t["task"]["name"]]
    assert len(gates) == 2 and all(not r.get("failed") for t in gates for r in t["hosts"].values())
    for name in names:
        assert fleet.installed(instance_of[name]) == NEW

    # The next release; two operators start a run each, at the same moment, on the same cluster.
    fleet.repo.publish(*node_packages("newer"))
    with FleetWatcher(fleet.store(), reports_dir=node_reports_dir, instance_of=instance_of) as watcher:
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda host: patch(sandbox, fleet, [host]), names))
    assert [r.returncode for r in runs] == [0, 0], [failures(r) for r in runs]
    assert watcher.max_unschedulable == 1, (watcher.max_unschedulable, watcher.max_unschedulable_nodes)
    assert watcher.pdb_violations == []
    for name in names:
        assert fleet.installed(instance_of[name]) == NEWER
        assert any(event.startswith("host up") for _, event in watcher.events[name]), watcher.events[name]
    # one of them waited in the lock for the other's slot
    waits = [result for r, host in zip(runs, names) for t in r.tasks if "Take a slot in the cluster's disruption lock" in t["task"]["name"]
             for h, result in t["hosts"].items() if h == host]
    assert len(waits) == 2, waits
    assert max((w.get("lock") or w)["waited_seconds"] for w in waits) > 0, waits
    assert not any(fleet.nodes()[instance_of[n]].spec.unschedulable for n in names)
