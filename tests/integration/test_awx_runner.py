"""site.yml run the way AWX runs a job: ansible-runner with a private data directory laid out
as AWX lays it, against the sandbox.

AWX copies the project (here extensions/awx, the documented project layout) to `project/`,
writes the inventory to `inventory/hosts` (an executable printing the inventory as JSON, the
cluster settings as `all` vars, as imported from the project's group_vars), the survey answers
to `env/extravars`, and the credential's environment to `env/envvars`: the Amazon Web Services
credential type injects AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, with an STS token, both
AWS_SECURITY_TOKEN and AWS_SESSION_TOKEN. One job serves every test: it is slow.
"""

import json
import re
import shutil
import stat
import sys
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "extensions" / "awx"

TOKEN_PREFIX = "k8s-aws-v1."


def job_credentials(sandbox, name):
    """Short-term credentials of an assumed role: what an AWX credential with an STS token holds."""
    iam = sandbox.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "arn:aws:iam::{0}:root".format(sandbox.settings.account_id)}}]}
    role = iam.create_role(RoleName=name + "-job", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    return sandbox.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="awx-job")["Credentials"]


def inventory_script(variables):
    return "#!{0}\nimport json, sys\nprint(json.dumps({1!r}))\n".format(
        sys.executable, {"all": {"vars": variables}, "_meta": {"hostvars": {}}}
    )


@pytest.fixture(scope="module")
def job(sandbox, tmp_path_factory):
    ansible_runner = pytest.importorskip("ansible_runner")
    name = "awx-" + uuid.uuid4().hex[:6]
    pdd = tmp_path_factory.mktemp("awx_job")
    shutil.copytree(PROJECT, pdd / "project")

    variables = {}
    for path in sorted((ROOT / "inventories" / "sandbox" / "group_vars" / "all").glob("*.yml")):
        variables.update(yaml.safe_load(path.read_text()))
    variables.update(cluster_name=name, network_name=name, node_bootstrap_wait_progress=20)
    (pdd / "inventory").mkdir()
    hosts = pdd / "inventory" / "hosts"
    hosts.write_text(inventory_script(variables))
    hosts.chmod(hosts.stat().st_mode | stat.S_IXUSR)

    env = pdd / "env"
    env.mkdir()
    # A survey answers with text: "1.32", never the float 1.32.
    (env / "extravars").write_text(json.dumps({"cluster_version": str(variables["cluster_version"])}))
    sandbox_env = sandbox.env()
    credentials = job_credentials(sandbox, name)
    envvars = {
        # the AWS credential, as AWX injects it
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SECURITY_TOKEN": credentials["SessionToken"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        # the sandbox instead of AWS, and the collections a project sync would have installed
        "AWS_ENDPOINT_URL": sandbox_env["AWS_ENDPOINT_URL"],
        "AWS_REGION": sandbox_env["AWS_REGION"],
        "AWS_DEFAULT_REGION": sandbox_env["AWS_DEFAULT_REGION"],
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    (env / "envvars").write_text(json.dumps(envvars))
    # AWX's job settings; idle_timeout ends a job whose output stalls that long.
    (env / "settings").write_text(json.dumps({"idle_timeout": 120, "job_timeout": 1200, "pexpect_timeout": 5}))

    run = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/site.yml", ident="site", quiet=True)
    events = list(run.events)
    artifacts = pdd / "artifacts" / "site"
    secrets = (credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"], TOKEN_PREFIX)
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


def places_of(value, text_or_object, path=""):
    """Where `value` occurs in a JSON object: dotted paths to the strings that contain it."""
    if isinstance(text_or_object, dict):
        return [p for k, v in text_or_object.items() for p in places_of(value, v, path + "." + str(k))]
    if isinstance(text_or_object, list):
        return [p for i, v in enumerate(text_or_object) for p in places_of(value, v, "{0}[{1}]".format(path, i))]
    return [path] if isinstance(text_or_object, str) and value in text_or_object else []


def test_no_secret_in_any_event_or_artifact(job):
    access_key_id, secrets = job["secrets"][0], job["secrets"][1:]
    leaks, key_id_places = [], set()
    for event in job["events"]:
        leaks += [(event["event"], event.get("event_data", {}).get("task"), s) for s in secrets if places_of(s, event)]
        key_id_places.update(places_of(access_key_id, event))
    for path in job["artifacts"].rglob("*"):
        # `command` is runner's record of the process environment (the credential included), as in
        # AWX, where it is never shown; `env` is the input above.
        if path.is_file() and path.name != "command":
            text = path.read_text(errors="replace")
            leaks += [(str(path.relative_to(job["artifacts"])), None, s) for s in secrets if s in text]
    assert not leaks, leaks
    # The access key id is an identifier, not a secret: amazon.aws declares its `access_key` option
    # not secret (no_log=False), so module invocations echo it. Nowhere else.
    assert key_id_places and all(re.fullmatch(r"\.event_data\.res(\.results\[\d+\])?\.invocation\.module_args\.access_key", p)
                                 for p in key_id_places), key_id_places
