"""Jobs run the way AWX runs them: ansible-runner on a private data directory laid out as AWX lays it.

AWX copies the project (here extensions/awx, the documented project layout) to `project/`, writes the
inventory it imported to `inventory/hosts` (an executable printing it as JSON), the survey answers and
the template's extra vars to `env/extravars`, the credential's environment to `env/envvars` and its job
settings to `env/settings`. The Amazon Web Services credential type injects AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and, with an STS token, both AWS_SECURITY_TOKEN and AWS_SESSION_TOKEN.
"""

import json
import re
import shutil
import stat
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "extensions" / "awx"

# What every EKS token starts with; none may show in a job's events or artifacts.
TOKEN_PREFIX = "k8s-aws-v1."


def job_credentials(sandbox, name):
    """Short-term credentials of an assumed role: what an AWX credential with an STS token holds."""
    iam = sandbox.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "arn:aws:iam::{0}:root".format(sandbox.settings.account_id)}}]}
    role = iam.create_role(RoleName=name + "-job", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    return sandbox.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="awx-job")["Credentials"]


def job_role_arn(sandbox, name):
    """The ARN of the role job_credentials(sandbox, name) assumed (to map in aws-auth or give an access entry)."""
    return sandbox.client("iam").get_role(RoleName=name + "-job")["Role"]["Arn"]


def job_envvars(sandbox, credentials, extra=None):
    """env/envvars: the AWS credential as AWX injects it, the sandbox instead of AWS, and the collections a project sync installs."""
    sandbox_env = sandbox.env()
    envvars = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SECURITY_TOKEN": credentials["SessionToken"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_ENDPOINT_URL": sandbox_env["AWS_ENDPOINT_URL"],
        "AWS_REGION": sandbox_env["AWS_REGION"],
        "AWS_DEFAULT_REGION": sandbox_env["AWS_DEFAULT_REGION"],
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    envvars.update(extra or {})
    return envvars


def job_secrets(credentials):
    return (credentials["SecretAccessKey"], credentials["SessionToken"], TOKEN_PREFIX)


def inventory_script(inventory):
    """inventory/hosts: an executable printing the inventory ({"all": ..., "_meta": {"hostvars": ...}}) as JSON."""
    return "#!{0}\nimport json\nprint(json.dumps({1!r}))\n".format(sys.executable, inventory)


def private_data_dir(pdd, inventory, extravars, envvars, settings):
    """Lay out `pdd` as AWX does for a job; returns it."""
    pdd = Path(pdd)
    shutil.copytree(PROJECT, pdd / "project")
    (pdd / "inventory").mkdir()
    hosts = pdd / "inventory" / "hosts"
    hosts.write_text(inventory_script(inventory))
    hosts.chmod(hosts.stat().st_mode | stat.S_IXUSR)
    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text(json.dumps(extravars))
    (pdd / "env" / "envvars").write_text(json.dumps(envvars))
    # AWX's job settings; idle_timeout ends a job whose output stalls that long.
    (pdd / "env" / "settings").write_text(json.dumps(settings))
    return pdd


def places_of(value, text_or_object, path=""):
    """Where `value` occurs in a JSON object: dotted paths to the strings that contain it."""
    if isinstance(text_or_object, dict):
        return [p for k, v in text_or_object.items() for p in places_of(value, v, path + "." + str(k))]
    if isinstance(text_or_object, list):
        return [p for i, v in enumerate(text_or_object) for p in places_of(value, v, "{0}[{1}]".format(path, i))]
    return [path] if isinstance(text_or_object, str) and value in text_or_object else []


def secret_leaks(events, artifacts, secrets):
    """(event or artifact file, task, secret) for every secret found in a job's events or artifact files."""
    leaks = []
    for event in events:
        leaks += [(event["event"], event.get("event_data", {}).get("task"), s) for s in secrets if places_of(s, event)]
    for path in Path(artifacts).rglob("*"):
        # `command` is runner's record of the process environment (the credential included), as in
        # AWX, where it is never shown; `env` is the job's input.
        if path.is_file() and path.name != "command":
            text = path.read_text(errors="replace")
            leaks += [(str(path.relative_to(artifacts)), None, s) for s in secrets if s in text]
    return leaks


# The access key id is an identifier, not a secret: amazon.aws declares its `access_key` option not secret
# (no_log=False), so module invocations echo it. Nowhere else.
ACCESS_KEY_ID_PLACE = re.compile(r"\.event_data\.res(\.results\[\d+\])?\.invocation\.module_args\.access_key")
