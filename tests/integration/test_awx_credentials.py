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


def test_kubernetes_steps_of_the_roles_use_the_credentials_of_module_defaults(sandbox, playbook, tmp_path, unique_name):
    """The environment holds an identity the cluster does not know; module_defaults hold the cluster
    creator's keys. The kube_api connection the roles use signs its token with module_defaults' keys."""
    import json

    from tests.sandbox.clusters import create_cluster
    from tests.sandbox.server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

    cluster = create_cluster(sandbox, unique_name("mdcreds"))
    iam = sandbox.client("iam")
    user = unique_name("env-stranger")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    play = [{
        "name": "Kubernetes steps with credentials from module_defaults only", "hosts": "localhost", "connection": "local",
        "gather_facts": False,
        "module_defaults": {"group/selfmanaged.eks.eks": {"access_key": FAKE_ACCESS_KEY, "secret_key": FAKE_SECRET_KEY}},
        "tasks": [{
            "name": "Kubernetes API", "module_defaults": {"group/kubernetes.core.k8s": {
                "host": "{{ kube_api_host }}", "api_key": "{{ kube_api_key }}", "ca_cert": "{{ kube_api_ca_file }}"}},
            "block": [
                {"name": "Connect", "ansible.builtin.include_role": {"name": "selfmanaged.eks.kube_api", "tasks_from": "connect", "public": True},
                 "vars": {"kube_api_cluster_name": cluster["name"], "kube_api_endpoint": cluster["endpoint"],
                          "kube_api_certificate_authority_data": cluster["certificateAuthority"]["data"]}},
                {"name": "Renew (nothing to do: the token is fresh)",
                 "ansible.builtin.include_role": {"name": "selfmanaged.eks.kube_api", "tasks_from": "renew"}},
                {"name": "List the namespaces", "kubernetes.core.k8s_info": {"kind": "Namespace"}, "register": "namespaces"},
            ],
            "always": [{"name": "Disconnect", "ansible.builtin.include_role": {"name": "selfmanaged.eks.kube_api", "tasks_from": "disconnect"}}],
        }],
    }]
    path = tmp_path / "module_defaults.yml"
    path.write_text(json.dumps(play))
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    run = playbook(str(path), env=env)
    assert run.returncode == 0, run.stderr[-3000:] + json.dumps(run.tasks)[-3000:]
    names = [item["metadata"]["name"] for item in run.result("List the namespaces")["resources"]]
    assert "kube-system" in names
    signed = [t for t in run.tasks if t["task"]["name"].startswith("selfmanaged.eks.kube_api : Sign an EKS token for cluster ")]
    assert [t["hosts"]["localhost"].get("skipped", False) for t in signed] == [False, True]  # signed once, still fresh at renew
    assert "k8s-aws-v1." not in json.dumps(run.output)
