"""patch.yml run the way AWX runs the "EKS patch" job template: ansible-runner on a private data directory laid out as
AWX lays it (tests/integration/awx_job.py), the AWS credential injected as AWX injects it (an STS token as both
AWS_SECURITY_TOKEN and AWS_SESSION_TOKEN), the inventory AWX imported from the project's eks_nodes source, and the
survey's answers as AWX sends them (strings), against real node hosts (tests/nodehosts). One job serves every test."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.awx_job import ACCESS_KEY_ID_PLACE, job_credentials, job_envvars, job_role_arn, job_secrets, places_of
from tests.integration.awx_job import private_data_dir, secret_leaks
from tests.nodehosts.apt_repo import node_packages

NEW = dict((p.name, p.version) for p in node_packages("new"))
# The survey's answers as AWX sends them: text and choices are strings ("false", not false).
SURVEY = {"node_patching_hosts": "all", "node_patching_batch": "1", "node_patching_max_unavailable": 1,
          "node_patching_reboot": "auto", "node_patching_security_only": "false", "node_patching_al2023_releasever": ""}
# The job template's extra vars for node hosts that are containers (PID 1's start time is their boot time).
# Waits in slices of 1 s (the default is 50): each slice is a line of the job's output.
TEMPLATE_VARS = {"node_patching_reboot_timeout": 120, "node_patching_ready_timeout": 60, "node_patching_drain_timeout": 60,
                 "node_patching_lock_wait_timeout": 30, "node_patching_wait_progress": 1}
# A node's steps, in the order a user reads them in the job's output.
STEPS = ("Drain ", "Upgrade the chosen packages with apt-get on ", "Reboot ", "Wait for the Node Ready", "Uncordon ")


def grant_cluster_admin(fleet, role_arn):
    """What an administrator does for AWX's credential: map its role to system:masters in aws-auth."""
    current = fleet.core.read_namespaced_config_map("aws-auth", "kube-system").data or {}
    roles = current.get("mapRoles", "") + "- rolearn: {0}\n  username: awx-job\n  groups:\n    - system:masters\n".format(role_arn)
    fleet.core.patch_namespaced_config_map("aws-auth", "kube-system", {"data": {"mapRoles": roles}})


def imported_inventory(fleet, envvars):
    """What an AWX inventory sync of the project's eks_nodes source imports: ansible-inventory --list with the credential."""
    env = dict(os.environ, **envvars)
    env.update(fleet.env())
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", fleet.inventory, "--list"],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def job(sandbox, tmp_path_factory, node_image, node_reports_dir):
    ansible_runner = pytest.importorskip("ansible_runner")
    from tests.nodehosts.apt_repo import AptRepository
    from tests.nodehosts.fleet import PatchFleet
    from tests.nodehosts.hosts import NodeHosts

    work = tmp_path_factory.mktemp("awx_patch")
    repo = AptRepository(work / "apt")
    hosts = NodeHosts(node_reports_dir, repo.directory, image=node_image)
    try:
        fleet = PatchFleet(sandbox, hosts, repo, nodes=2, groups=1, directory=work)
        name = "awx-patch-" + uuid.uuid4().hex[:6]
        credentials = job_credentials(sandbox, name)
        grant_cluster_admin(fleet, job_role_arn(sandbox, name))
        envvars = job_envvars(sandbox, credentials, fleet.env())
        inventory = imported_inventory(fleet, envvars)
        boots = fleet.boot_ids()
        pdd = private_data_dir(work / "pdd", inventory=inventory,
                               extravars=dict(SURVEY, node_patching_boot_time_command=fleet.boot_time_command, **TEMPLATE_VARS),
                               envvars=envvars, settings={"idle_timeout": 120, "job_timeout": 600, "pexpect_timeout": 5})
        # boots whose Nodes report 8 s after the host restarted: each reboot's wait takes several 1 s slices (a slice is a module call
        # of a second or more on a busy controller), whatever the machine's speed
        slow_boots = [hosts.slow_next_boot(instance, 8) for instance in fleet.instance_ids()]
        run = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/patch.yml", ident="patch", quiet=True)
        for thread in slow_boots:
            thread.join(timeout=60)
        yield {"run": run, "events": list(run.events), "artifacts": pdd / "artifacts" / "patch", "fleet": fleet, "boots": boots,
               "hosts": sorted(inventory["_meta"]["hostvars"]), "credentials": credentials,
               "installed": {i: fleet.installed(i) for i in fleet.instance_ids()}, "nodes_after": fleet.nodes()}
    finally:
        hosts.remove_all()


def stdout_of(job):
    return "\n".join(e.get("stdout", "") for e in job["events"])


def test_the_job_patches_every_node_and_succeeds(job):
    run = job["run"]
    failed = [(e["event_data"].get("task"), e["event_data"].get("res", {}).get("msg")) for e in job["events"] if e["event"] == "runner_on_failed"]
    assert run.status == "successful" and run.rc == 0, (run.status, run.rc, failed, stdout_of(job)[-3000:])
    for instance, installed in job["installed"].items():
        assert installed == NEW, (instance, installed)
        node = job["nodes_after"][instance]
        assert not node.spec.unschedulable and node.status.node_info.boot_id != job["boots"][instance]


def test_each_node_reports_its_steps_in_its_own_events_in_order(job):
    for host in job["hosts"]:
        tasks = [e["event_data"]["task"] for e in job["events"]
                 if e["event"] in ("runner_on_ok", "runner_on_skipped") and e["event_data"].get("host") == host]
        seen = [next((i for i, task in enumerate(tasks) if task.startswith(step) and host in task), None) for step in STEPS]
        assert None not in seen and seen == sorted(seen), (host, list(zip(STEPS, seen)), tasks)
    # and the summary table is the job's last words, a row per node
    table = [e for e in job["events"] if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Summary"][-1]
    rows = table["event_data"]["res"]["msg"]
    assert rows[0].split()[:2] == ["host", "node"] and sorted(r.split()[0] for r in rows[1:]) == job["hosts"], rows


def test_each_nodes_long_waits_speak_in_its_own_events_a_line_per_slice(job):
    """Issue #15: every wait of a node is a task line saying what is awaited, its bound and how much of it is spent; a wait
    longer than a slice goes on with a line per slice saying where the Node stands (AWX idle timeouts)."""
    for host in job["hosts"]:
        tasks = [e["event_data"]["task"] for e in job["events"] if e["event"] == "runner_on_ok" and e["event_data"].get("host") == host]
        firsts = ["Take a slot in the cluster's disruption lock and protect from scale-in, replacement and cluster-autoscaler "
                  "{0} (waiting up to 1 s, 0 of 30 s spent)".format(host),
                  "Drain of {0} (node {0}): started; waiting up to 1 s (0 of 60 s spent, node_patching_drain_timeout)".format(host),
                  "Wait for the Node Ready (a new bootID after a reboot) and its DaemonSet pods Ready, {0} (waiting up to 1 s, 0 of 180 s "
                  "spent)".format(host)]
        assert all(first in tasks for first in firsts), (host, [f for f in firsts if f not in tasks], tasks)
        # the reboot's wait goes on a slice at a time, each line with where the Node stands and the bound it is in
        # (at least one more: each slice also pays a module start, seconds on a loaded machine, so an 8 s boot may fit in two
        # slices; test_node_patching_progress.py counts slices with rising time spent)
        later = [t for t in tasks if t.startswith("Wait for the Node of {0}: Node {0} ".format(host))]
        assert later and "bootID unchanged" in later[0], later
        # each names the bound it is in: the reboot's until the Node reports a new bootID, then the Ready wait's
        for line in later:
            bound = "node_patching_reboot_timeout)" if "bootID unchanged" in line else "node_patching_ready_timeout)"
            assert " s spent, " + bound in line, line


def test_the_job_ends_with_the_node_patching_summary_artifact(job):
    [stats] = [e for e in job["events"] if e["event"] == "playbook_on_stats"]
    summary = stats["event_data"]["artifact_data"]["node_patching_summary"]
    assert summary["cluster"] == job["fleet"].name and summary["check_mode"] is False
    assert sorted(summary["patched"]) == sorted(summary["rebooted"]) == job["hosts"] and summary["failed"] == []
    assert {row["host"]: (row["result"], row["packages"], row["rebooted"]) for row in summary["rows"]} == {
        host: ("patched", len(NEW), True) for host in job["hosts"]}


def test_no_secret_in_any_event_or_artifact(job):
    leaks = secret_leaks(job["events"], job["artifacts"], job_secrets(job["credentials"]))
    assert not leaks, leaks
    key_id_places = {p for event in job["events"] for p in places_of(job["credentials"]["AccessKeyId"], event)}
    assert all(ACCESS_KEY_ID_PLACE.fullmatch(p) for p in key_id_places), key_id_places
