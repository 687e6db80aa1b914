"""Access entry validation (EKS's rules, up front) and desired-vs-current diffs."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils.access_entry import (
    AccessEntryError,
    authentication_mode_problem,
    desired_access_entry,
    entry_updates,
    expand_policy_arn,
    immutable_problem,
    policy_changes,
    predicted_state,
    readable_state,
)

ROLE = "arn:aws:iam::111122223333:role/admins"
NODE_ROLE = "arn:aws:iam::111122223333:role/nodes"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def params(**overrides):
    base = dict(principal_arn=ROLE, type="STANDARD", username=None, kubernetes_groups=None, access_policies=None, tags=None)
    base.update(overrides)
    return base


class TestValidation:
    def test_short_policy_names_expand_and_scopes_normalise(self):
        desired = desired_access_entry(
            params(
                access_policies=[
                    {"policy_arn": "AmazonEKSClusterAdminPolicy", "access_scope": None},
                    {"policy_arn": EDIT_POLICY, "access_scope": {"type": "namespace", "namespaces": ["b", "a", "b", "dev-*"]}},
                ]
            )
        )
        assert desired["accessPolicies"] == [
            {"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster"}},
            {"policyArn": EDIT_POLICY, "accessScope": {"type": "namespace", "namespaces": ["a", "b", "dev-*"]}},
        ]

    def test_partition_follows_the_principal(self):
        desired = desired_access_entry(params(principal_arn="arn:aws-cn:iam::111122223333:role/x", access_policies=[{"policy_arn": "AmazonEKSViewPolicy"}]))
        assert desired["accessPolicies"][0]["policyArn"] == "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"

    def test_node_entry_takes_only_the_role(self):
        desired = desired_access_entry(params(principal_arn=NODE_ROLE, type="EC2_LINUX"))
        assert desired["type"] == "EC2_LINUX"
        assert desired["username"] is None and desired["kubernetesGroups"] is None and desired["accessPolicies"] is None

    @pytest.mark.parametrize(
        "overrides, expected",
        [
            ({"type": "EC2_LINUX", "principal_arn": NODE_ROLE, "kubernetes_groups": ["nodes"]}, "EC2_LINUX entries take no kubernetes_groups"),
            ({"type": "EC2_WINDOWS", "principal_arn": NODE_ROLE, "username": "n"}, "EC2_WINDOWS entries take no username"),
            ({"type": "EC2_LINUX", "principal_arn": NODE_ROLE, "access_policies": [{"policy_arn": "AmazonEKSViewPolicy"}]}, "take no access_policies"),
            ({"type": "EC2_LINUX", "principal_arn": "arn:aws:iam::111122223333:user/bob"}, "EC2_LINUX entries take the node's IAM role ARN"),
            ({"type": "MANAGED"}, "type 'MANAGED' is not one of"),
            ({"username": "system:admin"}, "username 'system:admin' starts with 'system:'"),
            ({"username": "EKS:me"}, "starts with 'eks:'"),
            ({"username": "iam:x"}, "starts with 'iam:'"),
            ({"username": "amazon:x"}, "starts with 'amazon:'"),
            ({"username": "aws:x"}, "starts with 'aws:'"),
            ({"username": " "}, "username is empty"),
            ({"kubernetes_groups": ["system:masters"]}, "kubernetes group 'system:masters' starts with 'system:'"),
            ({"principal_arn": "arn:aws:sts::111122223333:assumed-role/admins/me"}, "'arn:aws:iam::111122223333:role/admins'"),
            ({"principal_arn": "admins"}, "is not an IAM role or user ARN"),
            ({"principal_arn": "arn:aws:iam::111122223333:group/ops"}, "is not an IAM role or user ARN"),
            ({"access_policies": [{"policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess"}]}, "is neither a policy name"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": []}}]}, "needs at least one namespace"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "cluster", "namespaces": ["a"]}}]}, "takes no namespaces"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": ["Payments"]}}]}, "'Payments' is not a valid"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": ["*"]}}]}, "'*' is not a valid"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "global"}}]}, "is not cluster or namespace"),
            ({"access_policies": [{"policy_arn": "AmazonEKSEditPolicy"}, {"policy_arn": EDIT_POLICY}]}, "is already listed as access_policies[0]"),
        ],
    )
    def test_bad_input_is_refused_naming_the_value(self, overrides, expected):
        with pytest.raises(AccessEntryError) as error:
            desired_access_entry(params(**overrides))
        assert expected in str(error.value)

    @given(st.sampled_from(["system:", "eks:", "aws:", "amazon:", "iam:"]), st.text(alphabet="abcxyz-:{}", max_size=10))
    def test_every_reserved_prefix_is_refused_for_usernames(self, prefix, rest):
        with pytest.raises(AccessEntryError):
            desired_access_entry(params(username=prefix + rest))

    def test_expand_policy_arn_keeps_full_arns(self):
        assert expand_policy_arn(ADMIN_POLICY) == ADMIN_POLICY


class TestAuthenticationMode:
    def test_config_map_cluster_is_refused_with_the_way_out(self):
        message = authentication_mode_problem("demo", {"accessConfig": {"authenticationMode": "CONFIG_MAP"}})
        assert "CONFIG_MAP" in message and "authentication_mode: API_AND_CONFIG_MAP" in message

    @pytest.mark.parametrize("mode", ["API", "API_AND_CONFIG_MAP"])
    def test_api_modes_are_fine(self, mode):
        assert authentication_mode_problem("demo", {"accessConfig": {"authenticationMode": mode}}) is None

    def test_missing_cluster(self):
        assert "does not exist" in authentication_mode_problem("demo", None)

    def test_cluster_older_than_access_entries_is_config_map(self):
        assert "uses authentication mode CONFIG_MAP" in authentication_mode_problem("demo", {"name": "demo"})


class TestDiffs:
    def test_type_is_immutable(self):
        desired = desired_access_entry(params(principal_arn=NODE_ROLE))
        problem = immutable_problem({"principalArn": NODE_ROLE, "type": "EC2_LINUX"}, desired)
        assert "type EC2_LINUX" in problem and "state: absent" in problem

    def test_unmanaged_fields_are_left_alone(self):
        desired = desired_access_entry(params())
        assert entry_updates({"username": "chosen-by-eks", "kubernetesGroups": ["x"]}, desired) == {}

    def test_group_order_does_not_matter_but_content_does(self):
        desired = desired_access_entry(params(kubernetes_groups=["b", "a"], username="me"))
        assert entry_updates({"username": "me", "kubernetesGroups": ["a", "b"]}, desired) == {}
        assert entry_updates({"username": "you", "kubernetesGroups": ["a"]}, desired) == {"kubernetesGroups": ["a", "b"], "username": "me"}

    def test_policy_changes_with_and_without_purge(self):
        current = [
            {"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}},
            {"policyArn": EDIT_POLICY, "accessScope": {"type": "namespace", "namespaces": ["b", "a"]}},
        ]
        desired = desired_access_entry(
            params(access_policies=[{"policy_arn": "AmazonEKSEditPolicy", "access_scope": {"type": "namespace", "namespaces": ["a", "b"]}}])
        )["accessPolicies"]
        assert policy_changes(current, desired, purge=True) == ([], [ADMIN_POLICY])
        assert policy_changes(current, desired, purge=False) == ([], [])
        rescoped = [{"policyArn": EDIT_POLICY, "accessScope": {"type": "namespace", "namespaces": ["c"]}}]
        assert policy_changes(current, rescoped, purge=False) == (rescoped, [])
        assert policy_changes(current, None, purge=True) == ([], [])

    def test_predicted_state_matches_what_readable_state_shows_after_the_change(self):
        entry = {"principalArn": ROLE, "type": "STANDARD", "username": "u", "kubernetesGroups": ["g"]}
        current_policies = [{"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster"}}]
        desired = desired_access_entry(params(kubernetes_groups=[], access_policies=[{"policy_arn": "AmazonEKSViewPolicy"}]))
        predicted = predicted_state(entry, current_policies, {"a": "1"}, desired, True, {"a": "1"})
        assert predicted == {
            "principal_arn": ROLE,
            "type": "STANDARD",
            "username": "u",
            "kubernetes_groups": [],
            "access_policies": [{"policy_arn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", "access_scope": {"type": "cluster"}}],
            "tags": {"a": "1"},
        }
        unchanged = desired_access_entry(params())
        assert predicted_state(entry, current_policies, {}, unchanged, True, {}) == readable_state(entry, current_policies, {})
