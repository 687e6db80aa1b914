"""Trust policy rendering and policy document checks."""

import json

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import iam_policy as p

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/5C4A1B2C3D4E5F6A7B8C9D0E1F2A3B4C"
HOST_PATH = "oidc.eks.us-east-1.amazonaws.com/id/5C4A1B2C3D4E5F6A7B8C9D0E1F2A3B4C"
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/" + HOST_PATH


@pytest.mark.parametrize("issuer", [ISSUER, ISSUER + "/", HOST_PATH, "  " + ISSUER])
def test_issuer_host_path_strips_scheme_and_slash(issuer):
    assert p.issuer_host_path(issuer) == HOST_PATH


@pytest.mark.parametrize("issuer", ["", "http://oidc.example.com/id/x", "https://"])
def test_bad_issuers_are_refused(issuer):
    with pytest.raises(p.PolicyError):
        p.issuer_host_path(issuer)


def test_provider_arn_from_issuer():
    assert p.oidc_provider_arn("123456789012", ISSUER) == PROVIDER
    assert p.oidc_provider_arn("123456789012", ISSUER, partition="aws-cn").startswith("arn:aws-cn:iam::")


def test_irsa_trust_policy_has_both_aud_and_sub():
    doc = p.irsa_trust_policy(PROVIDER, ISSUER, "kube-system", "ebs-csi-controller-sa")
    assert doc["Version"] == "2012-10-17"
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            HOST_PATH + ":aud": "sts.amazonaws.com",
            HOST_PATH + ":sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        }
    }
    assert p.policy_document_problems(doc, trust=True) == []


def test_irsa_refuses_a_provider_of_another_issuer():
    other = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/OTHER"
    with pytest.raises(p.PolicyError, match="does not belong to issuer"):
        p.irsa_trust_policy(other, ISSUER, "kube-system", "aws-node")


@pytest.mark.parametrize("provider", ["", "arn:aws:iam::123456789012:role/x", "oidc.eks.us-east-1.amazonaws.com/id/X"])
def test_irsa_refuses_something_that_is_not_a_provider_arn(provider):
    with pytest.raises(p.PolicyError, match="is not an IAM OIDC provider ARN"):
        p.irsa_trust_policy(provider, ISSUER, "kube-system", "aws-node")


@pytest.mark.parametrize("namespace,sa", [("Kube-System", "aws-node"), ("kube-system", ""), ("kube_system", "x"), ("ns", "has space")])
def test_irsa_refuses_invalid_kubernetes_names(namespace, sa):
    with pytest.raises(p.PolicyError) as err:
        p.irsa_trust_policy(PROVIDER, ISSUER, namespace, sa)
    assert "is not a Kubernetes" in str(err.value)


def test_service_trust_policies():
    doc = p.service_trust_policy("eks.amazonaws.com")
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    assert p.policy_document_problems(doc, trust=True) == []


@pytest.mark.parametrize(
    "doc,fragment",
    [
        ({"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "Version is '2008-10-17'"),
        ({"Version": "2012-10-17", "Statement": []}, "Statement is missing"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}, "Effect is 'Maybe'"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, "has no Action"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}, "has no Resource"),
    ],
)
def test_permission_policy_problems(doc, fragment):
    problems = p.policy_document_problems(doc)
    assert any(fragment in problem for problem in problems), problems


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::123456789012:root", "*"]}])
def test_wildcard_principals_are_refused(principal):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    with pytest.raises(p.PolicyError, match="allows any principal"):
        p.validated_policy(doc, trust=True, name="trust policy")


def test_trust_policy_without_principal_is_refused():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    assert any("has no Principal" in problem for problem in p.policy_document_problems(doc, trust=True))


# Findings of parliament that do not apply to trust policies: they carry no Resource, and
# parliament only knows Cognito/Google/Facebook-style federation, not EKS OIDC providers.
TRUST_POLICY_NOT_APPLICABLE = {"UNKNOWN_FEDERATION_SOURCE"}


def parliament_findings(doc, trust):
    parliament = pytest.importorskip("parliament")
    findings = parliament.analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings
    result = []
    for finding in findings:
        if trust and (finding.issue in TRUST_POLICY_NOT_APPLICABLE or "neither Resource nor NotResource" in str(finding.detail)):
            continue
        result.append((finding.issue, finding.detail))
    return result


@pytest.mark.parametrize(
    "doc",
    [
        p.service_trust_policy("eks.amazonaws.com"),
        p.service_trust_policy("ec2.amazonaws.com"),
        p.irsa_trust_policy(PROVIDER, ISSUER, "kube-system", "aws-node"),
    ],
    ids=["cluster", "node", "irsa"],
)
def test_rendered_trust_policies_pass_the_parliament_linter(doc):
    assert parliament_findings(doc, trust=True) == []


def test_the_linter_check_catches_a_bad_document():
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjec", "Resource": "*"}]}
    assert parliament_findings(bad, trust=False)


ADMIN = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"},
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
]}


@pytest.mark.parametrize("action, resource", [("*", "*"), (["ec2:*", "*"], ["*"]), ("*:*", "*")])
def test_administrator_access_is_refused_naming_the_statement(action, resource):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    with pytest.raises(p.PolicyError) as error:
        p.validated_policy(doc, name="inline policy everything")
    assert "inline policy everything" in str(error.value)
    assert "Statement[0] allows Action '*' on Resource '*'" in str(error.value)
    assert "allow_admin" in str(error.value)


def test_administrator_access_names_the_right_statement_and_is_accepted_with_allow_admin():
    problems = p.policy_document_problems(ADMIN)
    assert len(problems) == 1 and problems[0].startswith("Statement[1] ")
    assert p.validated_policy(ADMIN, allow_admin=True) is ADMIN


@pytest.mark.parametrize("statement", [
    {"Effect": "Deny", "Action": "*", "Resource": "*"},
    {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::logs/*"},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
])
def test_narrower_or_deny_statements_are_not_administrator_access(statement):
    assert p.policy_document_problems({"Version": "2012-10-17", "Statement": [statement]}) == []


def test_the_filter_refuses_administrator_access_unless_allowed():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.selfmanaged.eks.plugins.filter.iam_policy import FilterModule

    validated = FilterModule().filters()["validated_iam_policy"]
    with pytest.raises(AnsibleFilterError, match=r"Statement\[1\] allows Action '\*' on Resource '\*'"):
        validated(ADMIN, "inline policy admin")
    assert validated(ADMIN, "inline policy admin", allow_admin=True) is ADMIN
