"""site.yml run the way AWX runs a job: ansible-runner with a private data directory laid out
as AWX lays it, against the sandbox.

AWX copies the project (here extensions/awx, the documented project layout) to `project/`,
writes the inventory to `inventory/hosts` (an executable printing the inventory as JSON, the
cluster settings as `all` vars, as imported from the project's group_vars), the survey answers
to `env/extravars`, and the credential's environment to `env/envvars`: the Amazon Web Services
credential type injects AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, with an STS token, both
AWS_SECURITY_TOKEN and AWS_SESSION_TOKEN. One job serves every test: it is slow.
"""

import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.awx_job import ACCESS_KEY_ID_PLACE, job_credentials, job_envvars, job_secrets, places_of, private_data_dir, secret_leaks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job(sandbox, tmp_path_factory):
    ansible_runner = pytest.importorskip("ansible_runner")
    name = "awx-" + uuid.uuid4().hex[:6]

    variables = {}
    for path in sorted((ROOT / "inventories" / "sandbox" / "group_vars" / "all").glob("*.yml")):
        variables.update(yaml.safe_load(path.read_text()))
    variables.update(cluster_name=name, network_name=name, node_bootstrap_wait_progress=20)
    credentials = job_credentials(sandbox, name)
    pdd = private_data_dir(
        tmp_path_factory.mktemp("awx_job"),
        inventory={"all": {"vars": variables}, "_meta": {"hostvars": {}}},
        # A survey answers with text: "1.32", never the float 1.32.
        extravars={"cluster_version": str(variables["cluster_version"])},
        envvars=job_envvars(sandbox, credentials),
        settings={"idle_timeout": 120, "job_timeout": 1200, "pexpect_timeout": 5})

    run = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/site.yml", ident="site", quiet=True)
    events = list(run.events)
    artifacts = pdd / "artifacts" / "site"
    secrets = (credentials["AccessKeyId"],) + job_secrets(credentials)
    return {"name": name, "run": run, "events": events, "artifacts": artifacts, "variables": variables, "secrets": secrets}


def stdout_of(job):
    return "\n".join(e.get("stdout", "") for e in job["events"])


def test_job_succeeds_and_its_output_never_stalls(job):
    run = job["run"]
    failed = [(e["event_data"].get("task"), e["event_data"].get("res", {}).get("msg")) for e in job["events"] if e["event"] == "runner_on_failed"]
    assert run.status == "successful", (run.status, run.rc, failed, stdout_of(job)[-3000:])
    assert run.rc == 0


def test_every_node_is_reported_in_its_own_event(job, sandbox):
    asg = sandbox.client("autoscaling")
    groups = {g["name"]: job["name"] + "-" + g["name"] for g in job["variables"]["cluster_node_groups"]}
    for asg_name in groups.values():
        instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]["Instances"]
        assert instances, asg_name
        node_events = [e for e in job["events"] if e["event"] == "runner_item_on_ok"
                       and e["event_data"].get("task") == "Nodes of " + asg_name]
        reported = {e["event_data"]["res"]["msg"].split(" ", 1)[0]: e["event_data"]["res"]["msg"] for e in node_events}
        assert set(reported) == {i["InstanceId"] for i in instances}, (asg_name, reported)
        assert all("Ready" in msg and "not Ready" not in msg for msg in reported.values()), reported
        # and the wait said where it stood
        slices = [e for e in job["events"] if e["event"] == "runner_on_ok"
                  and e["event_data"].get("task", "").startswith("Nodes of {0}: ".format(asg_name))]
        assert slices and slices[-1]["event_data"]["res"]["timed_out"] is False


def test_the_job_ends_with_set_stats_artifacts_for_a_workflow(job, sandbox):
    [stats] = [e for e in job["events"] if e["event"] == "playbook_on_stats"]
    data = stats["event_data"]["artifact_data"]
    cluster = sandbox.client("eks").describe_cluster(name=job["name"])["cluster"]
    assert data["eks_cluster"] == {"name": job["name"], "region": sandbox.env()["AWS_REGION"], "version": cluster["version"],
                                   "endpoint": cluster["endpoint"]}
    assert isinstance(data["eks_cluster"]["version"], str)
    groups = {g["name"]: g for g in data["eks_node_groups"]}
    wanted = {g["name"]: g["desired_capacity"] for g in job["variables"]["cluster_node_groups"]}
    assert {n: g["ready_nodes"] for n, g in groups.items()} == wanted
    assert data["eks_outdated_instances"] == 0


def test_no_secret_in_any_event_or_artifact(job):
    access_key_id, secrets = job["secrets"][0], job["secrets"][1:]
    leaks = secret_leaks(job["events"], job["artifacts"], secrets)
    assert not leaks, leaks
    key_id_places = {p for event in job["events"] for p in places_of(access_key_id, event)}
    assert key_id_places and all(ACCESS_KEY_ID_PLACE.fullmatch(p) for p in key_id_places), key_id_places
