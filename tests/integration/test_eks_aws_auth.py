"""eks_aws_auth against the sandbox: entries written through the EKS token, read back through the Kubernetes API,
enforced by the sandbox's aws-iam-authenticator stand-in."""

import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.eks_token import EksTokenSource
from tests.kube_library import eks_api_client
from tests.sandbox.clusters import create_cluster

ACCOUNT = "123456789012"
NODE_USERNAME = "system:node:{{EC2PrivateDNSName}}"
HAND_WRITTEN = """# break-glass admins, keep first
- rolearn: arn:aws:iam::123456789012:role/break-glass   # ticket OPS-1
  username: break-glass
  groups:
    - system:masters
- groups: [devs]
  rolearn: "arn:aws:iam::123456789012:role/devs"
  username: 'dev:{{SessionName}}'
"""


def aws(sandbox, service, credentials=None):
    env = sandbox.env()
    credentials = credentials or {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"], **credentials)


def core_api(sandbox, cluster_name, credentials=None):
    from kubernetes.client import CoreV1Api

    cluster = aws(sandbox, "eks").describe_cluster(name=cluster_name)["cluster"]
    return CoreV1Api(eks_api_client(cluster, EksTokenSource(aws(sandbox, "sts", credentials), cluster_name)))


def read_aws_auth(sandbox, cluster_name):
    """(data, resourceVersion) of kube-system/aws-auth, ({}, None) when it does not exist."""
    from kubernetes.client.exceptions import ApiException

    try:
        configmap = core_api(sandbox, cluster_name).read_namespaced_config_map("aws-auth", "kube-system")
    except ApiException as exc:
        if exc.status == 404:
            return {}, None
        raise
    return configmap.data or {}, configmap.metadata.resource_version


def write_aws_auth(sandbox, cluster_name, data):
    from kubernetes.client import V1ConfigMap, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    api = core_api(sandbox, cluster_name)
    body = V1ConfigMap(metadata=V1ObjectMeta(name="aws-auth", namespace="kube-system"), data=data)
    try:
        api.create_namespaced_config_map("kube-system", body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        api.replace_namespaced_config_map("aws-auth", "kube-system", body)


def entries(data, section="mapRoles"):
    return yaml.safe_load(data.get(section) or "") or []


def role(name):
    return "arn:aws:iam::{0}:role/{1}".format(ACCOUNT, name)


def node_mapping(name="nodes"):
    return {"rolearn": role(name), "username": NODE_USERNAME, "groups": ["system:bootstrappers", "system:nodes"]}


def untemplated(value):
    """Protect {{...}} username templates from Jinja, as users do with !unsafe in their playbooks."""
    if isinstance(value, str) and "{{" in value:
        return "{% raw %}" + value + "{% endraw %}"
    if isinstance(value, list):
        return [untemplated(item) for item in value]
    if isinstance(value, dict):
        return {key: untemplated(item) for key, item in value.items()}
    return value


def call(module_runner, args, **options):
    return module_runner("eks_aws_auth", untemplated(args), **options)


def run(module_runner, cluster, **args):
    return call(module_runner, dict(cluster_name=cluster, **args))


@pytest.fixture
def cluster(sandbox, unique_name):
    return create_cluster(sandbox, unique_name("auth"))["name"]


def test_add_update_remove_and_second_run_changes_nothing(sandbox, module_runner, cluster):
    added = run(module_runner, cluster, map_roles=[node_mapping()])
    assert added.get("failed") is not True, added.get("msg")
    assert added["changed"] is True
    data, version = read_aws_auth(sandbox, cluster)
    assert entries(data) == [node_mapping()]
    assert added["map_roles"] == [node_mapping()]

    again = run(module_runner, cluster, map_roles=[node_mapping()])
    assert again["changed"] is False
    assert read_aws_auth(sandbox, cluster)[1] == version

    updated = run(module_runner, cluster, map_roles=[dict(node_mapping(), groups=["system:bootstrappers", "system:nodes", "eks:kube-proxy-windows"])])
    assert updated["changed"] is True
    assert entries(read_aws_auth(sandbox, cluster)[0])[0]["groups"][-1] == "eks:kube-proxy-windows"

    removed = run(module_runner, cluster, map_roles=[{"rolearn": role("nodes")}], state="absent")
    assert removed["changed"] is True
    assert entries(read_aws_auth(sandbox, cluster)[0]) == []


def test_entries_written_by_others_keep_their_text(sandbox, module_runner, cluster):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN, "mapUsers": "[]", "owner": "platform"})
    result = run(module_runner, cluster, map_roles=[{"rolearn": role("eks/workers/nodes"), "username": NODE_USERNAME, "groups": ["system:nodes"]}])
    assert result["changed"] is True
    path_warnings = [warning for warning in result.get("warnings", []) if "IAM path" in warning]
    assert len(path_warnings) == 1, result.get("warnings")
    # once, and without amazon.aws 10's "Passing `warnings` to `exit_json` ... is deprecated" on ansible-core 2.19
    assert not result.get("deprecations"), result.get("deprecations")
    data, _ = read_aws_auth(sandbox, cluster)
    assert data["mapRoles"].startswith(HAND_WRITTEN)
    assert entries(data)[-1] == {"rolearn": role("nodes"), "username": NODE_USERNAME, "groups": ["system:nodes"]}
    assert data["mapUsers"] == "[]" and data["owner"] == "platform"


def test_check_mode_reports_the_change_and_writes_nothing(sandbox, module_runner, cluster):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN})
    before, version = read_aws_auth(sandbox, cluster)
    result = call(module_runner, {"cluster_name": cluster, "map_roles": [node_mapping()]}, check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"]["mapRoles"][-1] == node_mapping()
    assert node_mapping() not in result["diff"]["before"]["mapRoles"]
    assert read_aws_auth(sandbox, cluster) == (before, version)


def test_missing_configmap_is_created_and_check_mode_does_not_create_it(sandbox, module_runner, cluster):
    assert read_aws_auth(sandbox, cluster) == ({}, None)
    checked = call(module_runner, {"cluster_name": cluster, "map_accounts": [ACCOUNT]}, check=True)
    assert checked["changed"] is True
    assert read_aws_auth(sandbox, cluster) == ({}, None)
    created = run(module_runner, cluster, map_accounts=[ACCOUNT])
    assert created["changed"] is True
    assert entries(read_aws_auth(sandbox, cluster)[0], "mapAccounts") == [ACCOUNT]


def test_ten_concurrent_writers_keep_all_their_entries(sandbox, module_runner, cluster):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN})
    names = ["team-{0}".format(i) for i in range(10)]

    def add(name):
        return run(module_runner, cluster, map_roles=[{"rolearn": role(name), "username": name, "groups": [name]}])

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(add, names))
    assert [r.get("msg") for r in results if r.get("failed")] == []
    assert all(r["changed"] for r in results)
    data, _ = read_aws_auth(sandbox, cluster)
    arns = [entry["rolearn"] for entry in entries(data)]
    assert sorted(arns) == sorted([role("break-glass"), role("devs")] + [role(name) for name in names])
    assert data["mapRoles"].startswith(HAND_WRITTEN)
    print("read-change-write attempts per writer:", [r["attempts"] for r in results])


def test_unparsable_section_is_refused_and_nothing_changes(sandbox, module_runner, cluster):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: arn:aws:iam::123456789012:user/alice\n  groups: [\n"})
    before = read_aws_auth(sandbox, cluster)
    result = run(module_runner, cluster, map_roles=[node_mapping()])
    assert result.get("failed") is True
    assert "mapUsers does not parse" in result["msg"] and "line" in result["msg"]
    assert read_aws_auth(sandbox, cluster) == before


def test_an_entry_the_authenticator_reads_in_part_does_not_stop_a_change_and_survives(sandbox, module_runner, cluster):
    partly = "- userarn: arn:aws:iam::123456789012:user/alice\n  username: alice\n  groups: system:masters\n- username: no-arn\n"
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN, "mapUsers": partly})
    result = run(module_runner, cluster, map_roles=[node_mapping()])
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    warnings = " ".join(result.get("warnings", []))
    assert "groups is the string 'system:masters', not a list" in warnings and "has no userarn" in warnings
    data, _ = read_aws_auth(sandbox, cluster)
    assert data["mapUsers"] == partly
    assert data["mapRoles"].startswith(HAND_WRITTEN)


def test_duplicates_are_reported_and_the_named_arn_ends_up_once(sandbox, module_runner, cluster):
    duplicated = "- rolearn: {0}\n  username: a\n- rolearn: {1}\n  username: n\n- rolearn: {0}\n  username: b\n- rolearn: {1}\n  username: n2\n".format(
        role("ci"), role("nodes")
    )
    write_aws_auth(sandbox, cluster, {"mapRoles": duplicated})
    result = run(module_runner, cluster, map_roles=[node_mapping()])
    assert result["changed"] is True
    assert any("has 2 entries for {0}".format(role("ci")) in w for w in result.get("warnings", []))
    after = entries(read_aws_auth(sandbox, cluster)[0])
    assert [e["rolearn"] for e in after] == [role("ci"), role("ci"), role("nodes")]
    assert after[-1] == node_mapping()


BAD_INPUT = [
    ({"map_roles": [{"rolearn": role("nodes")}]}, "neither username nor groups"),
    ({"map_roles": [{"rolearn": "arn:aws:iam::123456789012:user/alice", "username": "alice"}]}, "put it in map_users"),
    ({"map_users": [{"userarn": "alice", "username": "alice"}]}, "'alice' is not an IAM user ARN"),
    ({"map_roles": [node_mapping()], "state": "absent", "exclusive": True}, "exclusive: true only applies to state: present"),
    ({"map_accounts": ["12345"]}, "not a 12-digit AWS account id"),
]


def test_bad_input_is_refused_before_anything_is_written(sandbox, playbook, cluster, tmp_path):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN})
    before = read_aws_auth(sandbox, cluster)
    tasks = [
        {"name": "bad {0}".format(i), "selfmanaged.eks.eks_aws_auth": untemplated(dict(args, cluster_name=cluster)), "ignore_errors": True}
        for i, (args, _expected) in enumerate(BAD_INPUT)
    ]
    path = tmp_path / "bad_input.yml"
    path.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    run = playbook(str(path))
    for i, (_args, expected) in enumerate(BAD_INPUT):
        result = run.result("bad {0}".format(i))
        assert result.get("failed") is True
        assert expected in result["msg"]
    assert read_aws_auth(sandbox, cluster) == before


def test_backup_file_holds_the_previous_configmap(sandbox, module_runner, cluster, tmp_path):
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN})
    result = run(module_runner, cluster, map_roles=[node_mapping()], backup=True, backup_dir=str(tmp_path / "backups"))
    assert result["changed"] is True
    with open(result["backup_file"]) as handle:
        backup = yaml.safe_load(handle)
    assert backup["data"] == {"mapRoles": HAND_WRITTEN}
    assert backup["metadata"] == {"name": "aws-auth", "namespace": "kube-system"}


def assumed_role_credentials(sandbox, name):
    iam = aws(sandbox, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{0}:root".format(ACCOUNT)}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    creds = aws(sandbox, "sts").assume_role(RoleArn=arn, RoleSessionName="it")["Credentials"]
    return arn, {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}


def test_lockout_guard_protects_the_callers_own_mapping(sandbox, module_runner, cluster, unique_name):
    admin_arn, admin_env = assumed_role_credentials(sandbox, unique_name("admin"))
    # The admin role gets in through aws-auth only (it did not create the cluster).
    setup = run(module_runner, cluster, map_roles=[{"rolearn": admin_arn, "username": "admin", "groups": ["system:masters"]}])
    assert setup["changed"] is True
    before = read_aws_auth(sandbox, cluster)

    exclusive = dict(cluster_name=cluster, exclusive=True, map_roles=[node_mapping()])
    refused = call(module_runner, exclusive, env=admin_env)
    assert refused.get("failed") is True
    assert "the identity this task authenticates with" in refused["msg"] and "last system:masters" in refused["msg"]
    assert read_aws_auth(sandbox, cluster) == before
    refused_check = call(module_runner, exclusive, env=admin_env, check=True)
    assert refused_check.get("failed") is True

    absent = call(module_runner, dict(cluster_name=cluster, state="absent", map_roles=[{"rolearn": admin_arn}]), env=admin_env)
    assert absent.get("failed") is True
    assert read_aws_auth(sandbox, cluster) == before

    allowed = call(module_runner, dict(exclusive, allow_lockout=True), env=admin_env)
    assert allowed.get("failed") is not True, allowed.get("msg")
    assert entries(read_aws_auth(sandbox, cluster)[0]) == [node_mapping()]
    # The sandbox authenticator now refuses the admin role: the guard was right.
    locked_out = call(module_runner, dict(cluster_name=cluster, map_accounts=[ACCOUNT]), env=admin_env)
    assert locked_out.get("failed") is True
    assert "401" in locked_out["msg"] or "Unauthorized" in locked_out["msg"]


def test_own_mapping_may_go_when_an_access_entry_lets_the_caller_in(sandbox, module_runner, unique_name):
    cluster = create_cluster(sandbox, unique_name("auth-api"), mode="API_AND_CONFIG_MAP")["name"]
    admin_arn, admin_env = assumed_role_credentials(sandbox, unique_name("admin"))
    write_aws_auth(sandbox, cluster, {"mapRoles": HAND_WRITTEN + "- rolearn: {0}\n  username: admin\n  groups: [system:masters]\n".format(admin_arn)})
    eks = aws(sandbox, "eks")
    eks.create_access_entry(clusterName=cluster, principalArn=admin_arn)
    eks.associate_access_policy(
        clusterName=cluster, principalArn=admin_arn, policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy", accessScope={"type": "cluster"}
    )
    result = call(module_runner, dict(cluster_name=cluster, state="absent", map_roles=[{"rolearn": admin_arn}]), env=admin_env)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert read_aws_auth(sandbox, cluster)[0]["mapRoles"] == HAND_WRITTEN
    # Still in, through the access entry.
    still_in = call(module_runner, dict(cluster_name=cluster, map_accounts=[ACCOUNT]), env=admin_env)
    assert still_in.get("failed") is not True, still_in.get("msg")
