"""EKS-style authentication and authorization of the sandbox API servers, with real clients:
tokens minted by botocore, the `kubernetes` client over verified TLS."""

import datetime
import json

import botocore.auth
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
