"""EKS-style authentication and authorization of the sandbox API servers, with real clients:
tokens minted by botocore, the `kubernetes` client over verified TLS."""

import datetime
import json

import botocore.auth
import botocore.exceptions
import kubernetes
import pytest
import yaml

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


def _status(call):
    try:
        call()
    except kubernetes.client.ApiException as exc:
        return exc.status, json.loads(exc.body or "{}")
    return 200, {}


def _iam_user_credentials(sandbox, name=None):
    iam = sandbox.client("iam")
    name = name or scenarios.unique("person")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox, mode="API_AND_CONFIG_MAP")


@pytest.fixture(scope="module")
def admin(sandbox, cluster):
    return kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))


def test_creator_is_admin_and_tls_is_verified_against_the_cluster_ca(admin):
    names = [ns.metadata.name for ns in admin.list_namespace().items]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)


def test_token_for_another_cluster_is_refused(sandbox, cluster):
    other = create_cluster(sandbox, mode="API_AND_CONFIG_MAP")
    client = scenarios.kube_client(sandbox, dict(other, endpoint=cluster["endpoint"],
                                                 certificateAuthority=cluster["certificateAuthority"]))
    code, body = _status(lambda: kubernetes.client.CoreV1Api(client).list_namespace())
    assert code == 401
    assert body["reason"] == "Unauthorized"


def test_expired_token_is_refused(sandbox, cluster, monkeypatch):
    sixteen_minutes_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=16)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: sixteen_minutes_ago)
    client = scenarios.kube_client(sandbox, cluster)
    monkeypatch.undo()
    code, _ = _status(lambda: kubernetes.client.CoreV1Api(client).list_namespace())
    assert code == 401


def test_fourteen_minute_old_token_is_still_accepted(sandbox, cluster, monkeypatch):
    """Like aws-iam-authenticator: 15 minutes from signing, whatever X-Amz-Expires (60 s) says."""
    fourteen_minutes_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=14)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: fourteen_minutes_ago)
    client = scenarios.kube_client(sandbox, cluster)
    monkeypatch.undo()
    code, _ = _status(lambda: kubernetes.client.CoreV1Api(client).list_namespace())
    assert code == 200


def test_malformed_and_missing_tokens_are_refused(sandbox, cluster):
    client = scenarios.kube_client(sandbox, cluster)
    for value in ("Bearer k8s-aws-v1.bm90IGEgdXJs", "Bearer something-else", None):
        client.configuration.api_key = {"authorization": value} if value else {}
        code, _ = _status(lambda: kubernetes.client.CoreV1Api(client).list_namespace())
        assert code == 401, value


def test_unmapped_identity_gets_401_then_an_access_entry_with_view_policy_allows_reading_only(sandbox, cluster):
    arn, credentials = _iam_user_credentials(sandbox)
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, credentials))
    assert _status(core.list_namespace)[0] == 401

    eks = sandbox.client("eks")
    eks.create_access_entry(clusterName=cluster["name"], principalArn=arn, type="STANDARD")
    eks.associate_access_policy(clusterName=cluster["name"], principalArn=arn,
                                policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                                accessScope={"type": "namespace", "namespaces": ["default"]})
    assert _status(lambda: core.list_namespaced_config_map("default"))[0] == 200
    code, body = _status(lambda: core.list_namespaced_config_map("kube-system"))
    assert code == 403
    assert body["reason"] == "Forbidden" and "kube-system" in body["message"]
    code, _ = _status(lambda: core.create_namespaced_config_map("default", {"metadata": {"name": "nope"}}))
    assert code == 403
    assert _status(lambda: core.read_namespaced_secret("x", "default"))[0] == 403


def test_aws_auth_maps_users_and_groups_through_rbac(sandbox, cluster, admin):
    arn, credentials = _iam_user_credentials(sandbox)
    scenarios.map_node_role(admin, "arn:aws:iam::123456789012:role/some-node-role",
                            extra_users=yaml.safe_dump([{"userarn": arn, "username": "reader", "groups": ["readers"]}]))
    rbac = kubernetes.client.RbacAuthorizationV1Api(admin.api_client)
    rbac.create_cluster_role_binding({"metadata": {"name": "readers-view"},
                                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                                      "subjects": [{"kind": "Group", "name": "readers", "apiGroup": "rbac.authorization.k8s.io"}]})
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, credentials))
    assert _status(lambda: core.list_namespaced_pod("kube-system"))[0] == 200
    assert _status(lambda: core.delete_namespaced_config_map("aws-auth", "kube-system"))[0] == 403


def test_broken_map_users_section_keeps_map_roles_and_the_previous_users(sandbox, admin):
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    admin = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    user_arn, credentials = _iam_user_credentials(sandbox)
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(admin, role, extra_users=yaml.safe_dump(
        [{"userarn": user_arn, "username": "ops", "groups": ["system:masters"]}]))
    person = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, credentials))
    assert _status(person.list_node)[0] == 200

    # A hand edit breaks mapUsers (bad indentation): the authenticator ignores that section only.
    admin.patch_namespaced_config_map("aws-auth", "kube-system", {"data": {"mapUsers": "- userarn: x\n  groups:\n - oops: ["}})
    assert _status(person.list_node)[0] == 200  # previous good mapUsers kept in memory
    group = scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster))
    instance_id = wait_for(lambda: scenarios.group_instances(sandbox, group))[0]
    wait_for(lambda: any(n.spec.provider_id.endswith(instance_id) for n in admin.list_node().items),
             message="node joins through mapRoles despite the broken mapUsers")

    # Deleting the ConfigMap drops every mapping.
    admin.delete_namespaced_config_map("aws-auth", "kube-system")
    assert _status(person.list_node)[0] == 401


def test_one_bad_entry_costs_only_itself_and_a_string_groups_entry_only_its_groups(sandbox):
    """aws-iam-authenticator validates entries one by one: an entry without userarn is dropped,
    one whose groups is a single string keeps its username but gets no groups, the rest work."""
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    admin = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    good_arn, good = _iam_user_credentials(sandbox)
    string_arn, string_groups = _iam_user_credentials(sandbox)
    role, _profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(admin, role, extra_users=(
        f"- userarn: {good_arn}\n  username: good\n  groups: [system:masters]\n"
        "- username: nobody\n  groups: [system:masters]\n"
        f"- userarn: {string_arn}\n  username: one-string\n  groups: system:masters\n"))

    good_client = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, good))
    string_client = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, string_groups))
    assert _status(good_client.list_node)[0] == 200
    assert _status(string_client.list_node)[0] == 403  # authenticated as one-string, in no group


def test_an_sso_entry_maps_the_identity_center_role_of_its_permission_set(sandbox):
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    admin = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    iam, sts = sandbox.client("iam"), sandbox.client("sts")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName="AWSReservedSSO_Platform_0123456789abcdef", Path="/aws-reserved/sso.amazonaws.com/",
                           AssumeRolePolicyDocument=trust)["Role"]
    account = role["Arn"].split(":")[4]
    node_role, _profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(admin, node_role)
    admin.patch_namespaced_config_map("aws-auth", "kube-system", {"data": {"mapRoles": (
        admin.read_namespaced_config_map("aws-auth", "kube-system").data["mapRoles"]
        + f"- sso:\n    permissionSetName: Platform\n    accountID: \"{account}\"\n  username: platform\n  groups: [system:masters]\n")}})
    session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="alice")["Credentials"]
    credentials = {"aws_access_key_id": session["AccessKeyId"], "aws_secret_access_key": session["SecretAccessKey"],
                   "aws_session_token": session["SessionToken"]}
    client = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster, credentials))
    assert _status(client.list_node)[0] == 200


def test_sts_throttling_does_not_reach_the_clusters_token_check_which_is_still_counted(sandbox, cluster):
    """In EKS the authenticator's GetCallerIdentity is AWS's own traffic: a user whose STS calls
    are throttled still gets answers from the Kubernetes API, and the check is counted under sts."""
    client = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    sandbox.reset_api_calls()
    sandbox.inject_faults("sts", rate=1.0)
    try:
        status = _status(lambda: client.list_namespace())[0]
        token_checks = sandbox.api_calls().get("sts", {}).get("GetCallerIdentity", 0)
        with pytest.raises(botocore.exceptions.ClientError, match="Throttling"):
            sandbox.client("sts").get_caller_identity()
    finally:
        sandbox.clear_faults("sts")
    assert status == 200
    assert token_checks == 1
