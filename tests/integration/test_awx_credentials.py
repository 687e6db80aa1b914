"""AWX's Amazon Web Services credential on older AWX versions injects the STS token as
AWS_SECURITY_TOKEN only; amazon.aws 10 reads AWS_SESSION_TOKEN only. Our modules take the
older name too, and keep the token out of their results."""

from tests.integration.conftest import run_module


def short_term_credentials(sandbox, unique_name):
    import json

    iam = sandbox.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "arn:aws:iam::{0}:root".format(sandbox.settings.account_id)}}]}
    role = iam.create_role(RoleName=unique_name("awx-cred"), AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    return sandbox.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="awx")["Credentials"]


def test_a_module_uses_the_token_from_aws_security_token_and_never_prints_it(sandbox, unique_name):
    credentials = short_term_credentials(sandbox, unique_name)
    env = {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
           "AWS_SECURITY_TOKEN": credentials["SessionToken"], "AWS_SESSION_TOKEN": ""}
    result = run_module(sandbox, "eks_cluster_info", {"name": unique_name("none")}, env=env)
    assert not result.get("failed"), result
    assert result["clusters"] == []
    # the module passed a token to boto3 (masked in the invocation), and the token appears nowhere
    assert result["invocation"]["module_args"]["session_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert credentials["SessionToken"] not in repr(result)


def test_an_identity_the_cluster_does_not_know_is_reported_as_an_authentication_problem(sandbox, unique_name):
    from tests.sandbox.clusters import create_cluster

    cluster = create_cluster(sandbox, unique_name("c401"))
    iam = sandbox.client("iam")
    user = unique_name("stranger")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    result = run_module(sandbox, "eks_nodegroup_info", {"cluster_name": cluster["name"]}, env=env)
    assert result.get("failed") is True
    assert result["msg"].startswith("cannot list the Nodes of cluster {0}: HTTP 401 Unauthorized: an authentication problem".format(cluster["name"]))
