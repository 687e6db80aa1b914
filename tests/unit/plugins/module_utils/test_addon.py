"""The add-on change eks_addon makes: checks before any call, and what an update sends and shows."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import addon as a

ROLE = "arn:aws:iam::111122223333:role/vpc-cni"
OTHER_ROLE = "arn:aws-us-gov:iam::111122223333:role/ebs"

CURRENT = {
    "addonName": "vpc-cni",
    "addonVersion": "v1.19.0-eksbuild.1",
    "status": "ACTIVE",
    "configurationValues": '{"env": {"WARM_IP_TARGET": "2"}}',
    "serviceAccountRoleArn": ROLE,
    "tags": {"team": "platform", "aws:cloudformation:stack-name": "base"},
}


def params(**overrides):
    base = dict(
        configuration_values=None,
        service_account_role_arn=None,
        pod_identity_associations=None,
        resolve_conflicts_on_create=None,
        tags=None,
        purge_tags=True,
    )
    base.update(overrides)
    return base


class TestChecks:
    @pytest.mark.parametrize("value, expected", [(None, None), ("overwrite", "OVERWRITE"), ("NONE", "NONE")])
    def test_create_conflicts(self, value, expected):
        assert a.validated_create_conflicts(value) == expected

    def test_preserve_on_create_says_where_it_belongs(self):
        with pytest.raises(a.AddonError, match="put PRESERVE in resolve_conflicts_on_update"):
            a.validated_create_conflicts("preserve")
        with pytest.raises(a.AddonError, match="'MERGE' is not valid; use NONE or OVERWRITE"):
            a.validated_create_conflicts("MERGE")

    def test_role_arns_of_every_partition_pass(self):
        a.check_role_arns(OTHER_ROLE, [{"service_account": "sa", "role_arn": "arn:aws-eusc:iam::111122223333:role/x"}])

    def test_bad_role_arn_names_the_option(self):
        with pytest.raises(a.AddonError, match=r"^pod_identity_associations\[1\].role_arn 'arn:aws:iam::111122223333:user/bob' is not an IAM role ARN"):
            a.check_role_arns(None, [{"service_account": "a", "role_arn": ROLE}, {"service_account": "b", "role_arn": "arn:aws:iam::111122223333:user/bob"}])
        with pytest.raises(a.AddonError, match="^service_account_role_arn 'arn:awsfoo:iam::111122223333:role/x' is not an IAM role ARN"):
            a.check_role_arns("arn:awsfoo:iam::111122223333:role/x", None)


class TestNodes:
    def test_node_dependent_addon_degraded_without_available_nodes_waits_for_them(self):
        degraded = dict(CURRENT, addonName="coredns", status="DEGRADED")
        assert a.degraded_for_want_of_nodes("coredns", degraded, 0)
        assert a.degraded_for_want_of_nodes("coredns", degraded, None)  # API unreachable: trust the add-on
        assert not a.degraded_for_want_of_nodes("coredns", degraded, 2)

    def test_other_addons_or_states_do_not(self):
        assert not a.degraded_for_want_of_nodes("vpc-cni", dict(CURRENT, status="DEGRADED"), 0)
        assert not a.degraded_for_want_of_nodes("coredns", dict(CURRENT, status="ACTIVE"), 0)
        assert not a.degraded_for_want_of_nodes("coredns", None, 0)

    def test_failure_reason_quotes_the_health_issues(self):
        failed = dict(CURRENT, status="CREATE_FAILED", health={"issues": [{"code": "AccessDenied", "message": "no", "resourceIds": ["r1"]}]})
        assert a.failure_reason(failed) == "status CREATE_FAILED, health issues: AccessDenied: no (r1)"
        assert a.failure_reason(None) == "the add-on disappeared"
        assert a.failure_reason(CURRENT) is None


class TestChanges:
    def test_same_request_in_another_spelling_changes_nothing(self):
        changes = a.planned_changes(
            CURRENT, None, CURRENT["addonVersion"], params(configuration_values={"env": {"WARM_IP_TARGET": "2"}}, service_account_role_arn=ROLE, tags={"team": "platform"})
        )
        assert a.update_fields(changes) == {}
        assert (changes["tags_to_set"], changes["tags_to_remove"]) == ({}, [])
        assert changes["before"] == changes["after"]

    def test_configuration_role_and_associations_go_into_the_update(self):
        associations = [{"service_account": "b", "role_arn": OTHER_ROLE}, {"service_account": "a", "role_arn": ROLE}]
        changes = a.planned_changes(
            CURRENT, [], CURRENT["addonVersion"], params(configuration_values={}, service_account_role_arn="", pod_identity_associations=associations)
        )
        assert a.update_fields(changes) == {
            "configurationValues": "{}",
            "serviceAccountRoleArn": "",
            "podIdentityAssociations": [{"serviceAccount": "a", "roleArn": ROLE}, {"serviceAccount": "b", "roleArn": OTHER_ROLE}],
        }
        assert changes["before"]["pod_identity_associations"] == []
        assert changes["after"]["service_account_role_arn"] is None

    def test_tags_follow_purge_and_keep_aws_tags(self):
        changes = a.planned_changes(CURRENT, None, CURRENT["addonVersion"], params(tags={"env": "prod"}))
        assert (changes["tags_to_set"], changes["tags_to_remove"]) == ({"env": "prod"}, ["team"])
        assert changes["after"]["tags"] == {"env": "prod", "aws:cloudformation:stack-name": "base"}
        kept = a.planned_changes(CURRENT, None, CURRENT["addonVersion"], params(tags={"env": "prod"}, purge_tags=False))
        assert kept["tags_to_remove"] == []

    def test_unmanaged_associations_stay_out_of_the_diff(self):
        changes = a.planned_changes(CURRENT, None, "v1.20.0-eksbuild.1", params())
        assert "pod_identity_associations" not in changes["before"]
        assert changes["after"]["addon_version"] == "v1.20.0-eksbuild.1"

    def test_create_request_sends_only_what_is_given(self):
        assert a.create_request("prod", "vpc-cni", "v1", params(), None) == {"clusterName": "prod", "addonName": "vpc-cni", "addonVersion": "v1"}
        request = a.create_request(
            "prod", "vpc-cni", "v1", params(configuration_values={"a": 1}, resolve_conflicts_on_create="OVERWRITE", tags={"t": "1"}),
            [{"service_account": "sa", "role_arn": ROLE}],
        )
        assert request["resolveConflicts"] == "OVERWRITE" and request["tags"] == {"t": "1"}
        assert request["podIdentityAssociations"] == [{"serviceAccount": "sa", "roleArn": ROLE}]
        assert request["configurationValues"]
