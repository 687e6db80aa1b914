"""The add-on waits speak: EKS takes minutes to create or update an add-on, and core_addons
(and csi_drivers, through core_addons' `tasks_from: addon`) waits in slices of
core_addons_wait_progress seconds, each a task line saying what it waits for and the add-on's
last state, instead of one silent eks_addon task (AWX job idle timeouts).

The sandbox's EKS status delay is raised for these tests only, so that a creation takes several
slices of 2 s."""

import json

from tests.integration.conftest import slice_spent
from tests.sandbox.clusters import create_cluster, unique

TASK = "selfmanaged.eks.core_addons : Add-on "


def role_play(tmp_path, cluster_name, **role_vars):
    # vpc-cni without its IRSA role and kube-proxy only: two add-ons, no OIDC provider needed.
    variables = dict(core_addons_cluster_name=cluster_name, core_addons_vpc_cni_irsa=False, core_addons_pod_identity_agent=False,
                     core_addons_coredns=False, core_addons_wait_progress=2)
    variables.update(role_vars)
    play = [{"name": "core add-ons", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "selfmanaged.eks.core_addons", "vars": variables}]}]
    path = tmp_path / "core_addons.yml"
    path.write_text(json.dumps(play))
    return str(path)


def slice_tasks(run, addon):
    return [t for t in run.tasks if t["task"]["name"] == TASK + addon or t["task"]["name"].startswith(TASK + addon + ": ")]


def test_each_addon_prints_a_line_per_slice_with_its_state_and_a_second_run_changes_nothing(sandbox, playbook, tmp_path, eks_status_delay):
    cluster = create_cluster(sandbox, unique("addon-slices"))  # created ACTIVE at once, before the slow add-ons
    path = role_play(tmp_path, cluster["name"], core_addons_wait_timeout=60)
    eks_status_delay(7.0)
    run = playbook(path)
    assert run.returncode == 0, run.stderr[-3000:]
    for addon in ("vpc-cni", "kube-proxy"):
        slices = slice_tasks(run, addon)
        # 7 s of CREATING in slices of 2 s: the slice that created it, then lines saying where it stands. (At least
        # two: on a loaded machine each slice also pays the module's start-up, so 7 s of wall time hold fewer slices.)
        assert len(slices) >= 2, [t["task"]["name"] for t in slices]
        assert slices[0]["hosts"]["localhost"]["changed"] is True
        for later in slices[1:]:
            assert later["task"]["name"].startswith(
                "{0}{1}: waiting for add-on {1} on cluster {2} to become ACTIVE, last state CREATING at v".format(TASK, addon, cluster["name"])
            ), later["task"]["name"]
            assert "; up to 2 s more (" in later["task"]["name"]
        spent_so_far = [slice_spent(t["task"]["name"]) for t in slices[1:]]
        assert spent_so_far == sorted(set(spent_so_far)) and spent_so_far[0] >= 1, spent_so_far
        assert slices[-1]["hosts"]["localhost"]["timed_out"] is False
        status = sandbox.client("eks").describe_addon(clusterName=cluster["name"], addonName=addon)["addon"]["status"]
        assert status == "ACTIVE"
    report = run.result("selfmanaged.eks.core_addons : Publish the add-on in core_addons_installed")
    assert report["ansible_facts"]["core_addons_installed"]["kube-proxy"]["status"] == "ACTIVE"

    again = playbook(path)
    assert again.returncode == 0 and again.changed_count() == 0
    assert [len(slice_tasks(again, addon)) for addon in ("vpc-cni", "kube-proxy")] == [1, 1]


def test_when_the_budget_runs_out_the_role_fails_with_what_it_waited_for(sandbox, playbook, tmp_path, eks_status_delay):
    cluster = create_cluster(sandbox, unique("addon-budget"))
    eks_status_delay(60.0)  # for the add-ons, longer than any budget here: the wait runs out whatever the machine's load
    run = playbook(role_play(tmp_path, cluster["name"], core_addons_wait_timeout=3))
    assert run.returncode != 0
    failure = run.result("selfmanaged.eks.core_addons : Fail when the wait ran out for add-on vpc-cni")
    assert failure["msg"].startswith(
        "timed out after 1s waiting for add-on vpc-cni on cluster {0} to become ACTIVE; last state: CREATING at v".format(cluster["name"]))
    assert "(core_addons_wait_timeout 3 s ran out: waited 3 s for add-on vpc-cni on cluster {0} to become ACTIVE in slices of up to 2 s;".format(
        cluster["name"]) in failure["msg"]
    assert len(slice_tasks(run, "vpc-cni")) == 2
