"""The control_plane role's long waits speak: EKS takes minutes to create or update a cluster,
and the role waits in slices of control_plane_wait_progress seconds, each a task line saying
what it waits for and the last state, instead of one silent task (AWX job idle timeouts).

The sandbox's EKS status delay is raised for these tests only, so that a creation takes several
slices of 2 s."""

import json

from tests.integration.conftest import slice_spent
from tests.sandbox.clusters import cluster_role, cluster_subnets, unique

TASK = "selfmanaged.eks.control_plane : EKS control plane "


def role_play(tmp_path, sandbox, name, **role_vars):
    variables = dict(control_plane_cluster_name=name, control_plane_version="1.31", control_plane_role_arn=cluster_role(sandbox),
                     control_plane_subnet_ids=cluster_subnets(sandbox, zones=2), control_plane_wait_progress=2,
                     control_plane_oidc_provider=False)
    variables.update(role_vars)
    play = [{"name": "control plane", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "selfmanaged.eks.control_plane", "vars": variables}]}]
    path = tmp_path / (name + ".yml")
    path.write_text(json.dumps(play))
    return str(path)


def slice_tasks(run, name):
    return [t for t in run.tasks if t["task"]["name"] == TASK + name or t["task"]["name"].startswith(TASK + name + ": ")]


def test_creation_prints_a_line_per_slice_with_the_state_and_is_reported_as_a_change(sandbox, playbook, tmp_path, eks_status_delay):
    eks_status_delay(7.0)
    name = unique("cp-slices")
    path = role_play(tmp_path, sandbox, name, control_plane_wait_timeout=60)
    run = playbook(path)
    assert run.returncode == 0, run.stderr[-3000:]
    slices = slice_tasks(run, name)
    # 7 s of CREATING in slices of 2 s: a first line, then lines that say where it stands. (At least two:
    # on a loaded machine each slice also pays the module's start-up, so 7 s of wall time hold fewer slices.)
    assert len(slices) >= 2, [t["task"]["name"] for t in slices]
    assert slices[0]["hosts"]["localhost"]["changed"] is True  # the slice that created the cluster
    for later in slices[1:]:
        assert later["task"]["name"].startswith(
            "{0}{1}: waiting for cluster {1} to be ACTIVE, last state CREATING; up to 2 s more (".format(TASK, name)), later["task"]["name"]
    spent_so_far = [slice_spent(t["task"]["name"]) for t in slices[1:]]
    assert spent_so_far == sorted(set(spent_so_far)) and spent_so_far[0] >= 1, spent_so_far
    assert slices[-1]["hosts"]["localhost"]["timed_out"] is False
    assert sandbox.client("eks").describe_cluster(name=name)["cluster"]["status"] == "ACTIVE"
    eks_status_delay(0.3)
    again = playbook(path)
    assert again.returncode == 0 and again.changed_count() == 0
    assert len(slice_tasks(again, name)) == 1


def test_when_the_budget_runs_out_the_role_fails_with_what_it_waited_for(sandbox, playbook, tmp_path, eks_status_delay):
    eks_status_delay(60.0)  # longer than any budget here: the wait runs out whatever the machine's load
    name = unique("cp-budget")
    run = playbook(role_play(tmp_path, sandbox, name, control_plane_wait_timeout=3))
    assert run.returncode != 0
    failure = run.result("selfmanaged.eks.control_plane : Fail when the wait ran out for control plane {0}".format(name))
    assert failure["msg"].startswith("timed out after 1s waiting for cluster {0} to be ACTIVE; last state: CREATING.".format(name))
    assert "(control_plane_wait_timeout 3 s ran out: waited 3 s for cluster {0} to be ACTIVE in slices of up to 2 s;".format(name) in failure["msg"]
    assert len(slice_tasks(run, name)) == 2
