"""ARNs read the same way everywhere, in every AWS partition, with errors that name the value and the fix."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import arn
from ansible_collections.selfmanaged.eks.plugins.module_utils.access_entry import AccessEntryError
from ansible_collections.selfmanaged.eks.plugins.module_utils.access_entry import desired_access_entry
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import AwsAuthError
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import desired_entries
from ansible_collections.selfmanaged.eks.plugins.module_utils.iam_policy import irsa_trust_policy

PARTITIONS = ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"]
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"


def test_every_partition_is_known():
    assert list(arn.PARTITIONS) == PARTITIONS


@pytest.mark.parametrize("partition", PARTITIONS)
def test_role_arn_fields_in_every_partition(partition):
    parsed = arn.parse_arn("arn:{0}:iam::111122223333:role/teams/platform/admins".format(partition))
    assert (parsed.partition, parsed.service, parsed.region, parsed.account) == (partition, "iam", "", "111122223333")
    assert (parsed.resource_type, parsed.name, parsed.path) == ("role", "admins", "/teams/platform/")
    assert str(parsed) == "arn:{0}:iam::111122223333:role/teams/platform/admins".format(partition)


@pytest.mark.parametrize("partition", PARTITIONS)
def test_principal_kinds_in_every_partition(partition):
    assert arn.principal_kind("arn:{0}:iam::111122223333:role/admins".format(partition)) == "role"
    assert arn.principal_kind("arn:{0}:iam::111122223333:user/alice".format(partition)) == "user"
    assert arn.principal_kind("arn:{0}:sts::111122223333:assumed-role/admins/alice@example.com".format(partition)) == "assumed-role"


@pytest.mark.parametrize("partition", PARTITIONS)
def test_session_and_path_become_the_role_the_authenticator_matches(partition):
    role = "arn:{0}:iam::111122223333:role/admins".format(partition)
    assert arn.role_arn_without_path("arn:{0}:iam::111122223333:role/a/b/admins".format(partition)) == role
    assert arn.role_arn_of_session("arn:{0}:sts::111122223333:assumed-role/admins/s-1".format(partition)) == role
    assert arn.principal_arn_of_caller("arn:{0}:sts::111122223333:assumed-role/admins/s-1".format(partition)) == role
    user = "arn:{0}:iam::111122223333:user/alice".format(partition)
    assert arn.principal_arn_of_caller(user) == user


@pytest.mark.parametrize("partition", PARTITIONS)
def test_partition_of_every_partition(partition):
    assert arn.partition_of("arn:{0}:sts::111122223333:assumed-role/r/s".format(partition)) == partition


def test_partition_of_a_non_arn_is_the_default():
    assert arn.partition_of("") == "aws"
    assert arn.partition_of(None, default="aws-cn") == "aws-cn"


@pytest.mark.parametrize("partition", PARTITIONS)
def test_oidc_provider_arn_round_trip(partition):
    value = arn.oidc_provider_arn(partition, "111122223333", "oidc.eks.us-east-1.amazonaws.com/id/ABC")
    assert arn.parse_oidc_provider_arn(value) == (partition, "111122223333", "oidc.eks.us-east-1.amazonaws.com/id/ABC")
    assert irsa_trust_policy(value, ISSUER, "kube-system", "aws-node")["Statement"][0]["Principal"] == {"Federated": value}


@pytest.mark.parametrize("partition", PARTITIONS)
def test_every_caller_accepts_every_partition(partition):
    role = "arn:{0}:iam::111122223333:role/admins".format(partition)
    user = "arn:{0}:iam::111122223333:user/alice".format(partition)
    assert desired_access_entry({"principal_arn": role, "access_policies": [{"policy_arn": "AmazonEKSViewPolicy"}]})["accessPolicies"][0][
        "policyArn"
    ] == "arn:{0}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy".format(partition)
    assert desired_access_entry({"principal_arn": user})["principalArn"] == user
    desired, _ = desired_entries({"map_roles": [{"rolearn": role, "groups": ["g"]}], "map_users": [{"userarn": user, "groups": ["g"]}]}, "present")
    assert desired["mapRoles"][0]["rolearn"] == role
    assert arn.validated_role_arn(role, "service_account_role_arn") == role


@pytest.mark.parametrize(
    "value",
    ["arn:aws-xyz:iam::111122223333:role/admins", "arn:aws-iso-z:iam::111122223333:role/admins", "arn:AWS:iam::111122223333:role/admins"],
)
def test_unknown_partition_is_refused_with_the_list(value):
    with pytest.raises(arn.ArnError) as err:
        arn.parse_arn(value)
    assert repr(value) in str(err.value)
    assert "which AWS does not have; use one of aws, aws-cn, aws-us-gov" in str(err.value)
    assert arn.principal_kind(value) is None


@pytest.mark.parametrize("value", ["", "admins", "arn:aws:iam::111122223333", "role/admins", None])
def test_not_an_arn_names_the_value_and_the_form(value):
    with pytest.raises(arn.ArnError) as err:
        arn.parse_arn(value)
    assert "{0!r} is not an ARN; give arn:<partition>:<service>:<region>:<account>:<resource>".format(value) in str(err.value)


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::11112222333:role/admins",  # 11 digits
        "arn:aws:iam:us-east-1:111122223333:role/admins",  # IAM has no region
        "arn:aws:iam::111122223333:role/",
        "arn:aws:iam::111122223333:role/bad name",
        "arn:aws:s3:::bucket",
        "arn:aws:sts::111122223333:assumed-role/admins",  # no session
    ],
)
def test_not_a_principal(value):
    assert arn.principal_kind(value) is None


def test_validated_role_arn_errors_say_the_option_and_the_fix():
    with pytest.raises(arn.ArnError) as err:
        arn.validated_role_arn("arn:aws-cn:sts::111122223333:assumed-role/admins/me", "pod_identity_associations[0].role_arn")
    assert str(err.value) == (
        "pod_identity_associations[0].role_arn 'arn:aws-cn:sts::111122223333:assumed-role/admins/me' is not an IAM role ARN "
        "(arn:<partition>:iam::<12-digit account>:role/<name>); it is an STS session, give the role itself: "
        "'arn:aws-cn:iam::111122223333:role/admins'"
    )
    with pytest.raises(arn.ArnError, match="it is an IAM user, give the ARN of an IAM role"):
        arn.validated_role_arn("arn:aws:iam::111122223333:user/alice", "service_account_role_arn")
    with pytest.raises(arn.ArnError, match=r"^service_account_role_arn 'admins' is not an IAM role ARN \(arn:<partition>"):
        arn.validated_role_arn("admins", "service_account_role_arn")


def test_oidc_provider_error_names_the_value():
    with pytest.raises(arn.ArnError, match=r"'arn:aws:iam::111122223333:role/x' is not an IAM OIDC provider ARN"):
        arn.parse_oidc_provider_arn("arn:aws:iam::111122223333:role/x")


def test_callers_refuse_a_made_up_partition_the_same_way():
    value = "arn:aws-moon:iam::111122223333:role/admins"
    with pytest.raises(AccessEntryError, match="is not an IAM role or user ARN"):
        desired_access_entry({"principal_arn": value})
    with pytest.raises(AwsAuthError, match="is not an IAM role ARN"):
        desired_entries({"map_roles": [{"rolearn": value, "groups": ["g"]}]}, "present")
    with pytest.raises(arn.ArnError):
        arn.validated_role_arn(value, "service_account_role_arn")


@pytest.mark.parametrize("value, expected", [("012345678901", True), ("12345678901", False), ("1234567890123", False), (123456789012, False), ("", False)])
def test_account_ids_are_twelve_digit_strings(value, expected):
    assert arn.is_account_id(value) is expected
