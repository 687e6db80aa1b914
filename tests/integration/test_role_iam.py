"""The iam role against the sandbox: cluster and node roles, instance profile, IRSA roles with both conditions."""

import json
from urllib.parse import unquote

import pytest
import yaml

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/IAMROLEIT0000000000000000000000A"
HOST_PATH = ISSUER[len("https://"):]
S3_READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::example-bucket/*"}],
}


def document(value):
    """A policy document as IAM returns it (dict, or URL-encoded JSON from some APIs)."""
    return value if isinstance(value, dict) else json.loads(unquote(value))


def play(cluster, irsa_namespace="kube-system", cni_policy=True):
    tasks = [
        {"name": "IAM roles", "ansible.builtin.include_role": {"name": "selfmanaged.eks.iam"}},
        {"name": "OIDC provider", "selfmanaged.eks.eks_oidc_provider": {"issuer": ISSUER}, "register": "oidc"},
        {
            "name": "IRSA role",
            "ansible.builtin.include_role": {"name": "selfmanaged.eks.iam", "tasks_from": "irsa_role"},
            "vars": {
                "iam_irsa_role_name": cluster + "-ebs-csi",
                "iam_irsa_namespace": irsa_namespace,
                "iam_irsa_service_account": "ebs-csi-controller-sa",
                "iam_irsa_oidc_provider_arn": "{{ oidc.arn }}",
                "iam_irsa_oidc_issuer": ISSUER,
                "iam_irsa_managed_policy_arns": ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
                "iam_irsa_inline_policies": {"s3-read": S3_READ},
            },
        },
        {"name": "Show facts", "ansible.builtin.debug": {"msg": {"roles": "{{ iam_roles }}", "irsa": "{{ iam_irsa_role_arn }}"}}},
    ]
    return [
        {
            "name": "iam role",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"iam_cluster_name": cluster, "iam_tags": {"cluster": cluster}, "iam_node_cni_policy": cni_policy},
            "tasks": tasks,
        }
    ]


def write(tmp_path, content):
    path = tmp_path / "iam.yml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


def attached(iam, role):
    return sorted(p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])


def test_roles_profile_and_irsa_trust(sandbox, playbook, tmp_path, unique_name):
    cluster = unique_name("iam")
    path = write(tmp_path, play(cluster))
    # Check mode on a fresh account predicts the ARNs later roles need, and creates nothing.
    planned = playbook(path, check=True)
    assert planned.returncode == 0, planned.stderr[-3000:]
    predicted = planned.result("Show facts")["msg"]
    with pytest.raises(sandbox.client("iam").exceptions.NoSuchEntityException):
        sandbox.client("iam").get_role(RoleName=cluster + "-eks-cluster")

    first = playbook(path)
    assert first.returncode == 0, first.stderr[-3000:]
    facts = first.result("Show facts")["msg"]
    roles = facts["roles"]
    assert roles["cluster_role_arn"] == "arn:aws:iam::123456789012:role/{0}-eks-cluster".format(cluster)
    assert roles["node_role_name"] == cluster + "-eks-node"
    assert roles["node_instance_profile_name"] == cluster + "-eks-node"
    assert facts["irsa"] == "arn:aws:iam::123456789012:role/{0}-ebs-csi".format(cluster)
    assert predicted == facts

    iam = sandbox.client("iam")
    cluster_role = iam.get_role(RoleName=cluster + "-eks-cluster")["Role"]
    trust = document(cluster_role["AssumeRolePolicyDocument"])
    assert trust["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}
    assert attached(iam, cluster + "-eks-cluster") == ["AmazonEKSClusterPolicy"]

    node_trust = document(iam.get_role(RoleName=cluster + "-eks-node")["Role"]["AssumeRolePolicyDocument"])
    assert node_trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert attached(iam, cluster + "-eks-node") == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonSSMManagedInstanceCore",
    ]
    profile = iam.get_instance_profile(InstanceProfileName=cluster + "-eks-node")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [cluster + "-eks-node"]

    # The IRSA trust, read back from IAM: only kube-system/ebs-csi-controller-sa, audience STS.
    irsa = iam.get_role(RoleName=cluster + "-ebs-csi")["Role"]
    (statement,) = document(irsa["AssumeRolePolicyDocument"])["Statement"]
    assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/" + HOST_PATH}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        HOST_PATH + ":aud": "sts.amazonaws.com",
        HOST_PATH + ":sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    }
    assert attached(iam, cluster + "-ebs-csi") == ["AmazonEBSCSIDriverPolicy"]
    inline = iam.get_role_policy(RoleName=cluster + "-ebs-csi", PolicyName="s3-read")
    assert document(inline["PolicyDocument"]) == S3_READ

    # Second run: nothing changes.
    second = playbook(path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.changed_count() == 0, [t["task"]["name"] for t in second.tasks if t["hosts"]["localhost"].get("changed")]

    # The VPC CNI gets its own role: the node role loses AmazonEKS_CNI_Policy.
    third = playbook(write(tmp_path, play(cluster, cni_policy=False)))
    assert third.returncode == 0, third.stderr[-3000:]
    assert "AmazonEKS_CNI_Policy" not in attached(iam, cluster + "-eks-node")


def test_irsa_with_bad_namespace_creates_nothing(sandbox, playbook, tmp_path, unique_name):
    cluster = unique_name("iam")
    run = playbook(write(tmp_path, play(cluster, irsa_namespace="Kube_System")))
    assert run.returncode != 0
    failed = [t for t in run.tasks if t["hosts"]["localhost"].get("failed")]
    assert failed, "the play should have failed"
    assert "namespace 'Kube_System' is not a Kubernetes namespace name" in failed[-1]["hosts"]["localhost"]["msg"]
    iam = sandbox.client("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=cluster + "-ebs-csi")
