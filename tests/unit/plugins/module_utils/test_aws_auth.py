"""aws-auth parsing, merging, normalising and the lockout guard (examples; properties in test_aws_auth_properties.py)."""

import pytest
import yaml

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import (
    AwsAuthError,
    backup_yaml,
    caller_mapping_arn,
    desired_entries,
    lockout_problems,
    parse_section,
    plan_change,
    removes_or_changes_mappings,
    same_principal,
)

ACCOUNT = "111122223333"
NODES = "arn:aws:iam::{0}:role/nodes".format(ACCOUNT)
ADMIN = "arn:aws:iam::{0}:role/admin".format(ACCOUNT)
ALICE = "arn:aws:iam::{0}:user/alice".format(ACCOUNT)
NODE_USERNAME = "system:node:{{EC2PrivateDNSName}}"

HAND_WRITTEN = """# edited by hand, do not reformat
- rolearn: arn:aws:iam::111122223333:role/admin   # break-glass
  username: admin
  groups:
    - system:masters

- groups: [devs]
  rolearn: "arn:aws:iam::111122223333:role/devs"
  username: 'dev:{{SessionName}}'
  x-team: {name: platform}
"""


def node_entry(arn=NODES):
    return {"rolearn": arn, "username": NODE_USERNAME, "groups": ["system:bootstrappers", "system:nodes"]}


def plan(data, state="present", exclusive=False, **options):
    desired, _warnings = desired_entries(options, state)
    return plan_change(data, desired, state, exclusive)


def reread(text):
    return yaml.safe_load(text)


class TestAddingEntries:
    def test_node_role_added_to_a_missing_configmap_reads_back_with_its_template(self):
        result = plan(None, map_roles=[node_entry()])
        assert result.changed
        assert reread(result.data["mapRoles"]) == [node_entry()]
        assert set(result.data) == {"mapRoles"}

    def test_template_alone_is_quoted_so_yaml_does_not_read_a_mapping(self):
        result = plan(None, map_roles=[{"rolearn": ADMIN, "username": "{{SessionName}}", "groups": ["admins"]}])
        assert "'{{SessionName}}'" in result.data["mapRoles"]
        assert reread(result.data["mapRoles"])[0]["username"] == "{{SessionName}}"

    def test_existing_entries_keep_their_text_comments_and_order(self):
        result = plan({"mapRoles": HAND_WRITTEN}, map_roles=[node_entry()])
        text = result.data["mapRoles"]
        assert text.startswith(HAND_WRITTEN)
        assert [e["rolearn"] for e in reread(text)] == [ADMIN, "arn:aws:iam::111122223333:role/devs", NODES]

    def test_appended_entry_uses_the_sections_indentation(self):
        indented = "  - rolearn: {0}\n    username: admin\n    groups: [system:masters]\n".format(ADMIN)
        result = plan({"mapRoles": indented}, map_roles=[node_entry()])
        assert result.data["mapRoles"].startswith(indented + "  - rolearn: " + NODES)
        assert len(reread(result.data["mapRoles"])) == 2

    def test_section_without_final_newline(self):
        text = "- rolearn: {0}\n  groups: [system:masters]".format(ADMIN)
        result = plan({"mapRoles": text}, map_roles=[node_entry()])
        assert [e["rolearn"] for e in reread(result.data["mapRoles"])] == [ADMIN, NODES]

    def test_other_keys_and_sections_are_untouched(self):
        data = {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: {0}\n  username: alice\n".format(ALICE), "custom": "x"}
        result = plan(data, map_accounts=[ACCOUNT])
        assert result.data["mapRoles"] == HAND_WRITTEN
        assert result.data["mapUsers"] == data["mapUsers"]
        assert result.data["custom"] == "x"
        assert reread(result.data["mapAccounts"]) == [ACCOUNT]

    def test_flow_style_section_is_rewritten_with_the_same_entries(self):
        text = '[{"rolearn": "%s", "username": "admin", "groups": ["system:masters"], "x-extra": 1}]' % ADMIN
        result = plan({"mapRoles": text}, map_roles=[node_entry()])
        assert reread(result.data["mapRoles"]) == [
            {"rolearn": ADMIN, "username": "admin", "groups": ["system:masters"], "x-extra": 1},
            node_entry(),
        ]


class TestUpdatingEntries:
    def test_identical_entry_is_no_change(self):
        first = plan({"mapRoles": HAND_WRITTEN}, map_roles=[node_entry()])
        second = plan(first.data, map_roles=[node_entry()])
        assert not second.changed
        assert second.data == first.data

    def test_arn_compare_ignores_case_like_the_authenticator(self):
        text = "- rolearn: arn:aws:iam::111122223333:role/NODES\n  username: {0}\n  groups: [system:bootstrappers, system:nodes]\n".format(
            "'" + NODE_USERNAME + "'"
        )
        result = plan({"mapRoles": text}, map_roles=[node_entry()])
        assert not result.changed

    def test_changed_entry_is_replaced_in_place_keeping_unmanaged_keys(self):
        devs = "arn:aws:iam::111122223333:role/devs"
        result = plan({"mapRoles": HAND_WRITTEN}, map_roles=[{"rolearn": devs, "username": "dev", "groups": ["devs", "viewers"]}])
        entries = reread(result.data["mapRoles"])
        assert entries[0]["rolearn"] == ADMIN
        assert entries[1] == {"rolearn": devs, "username": "dev", "groups": ["devs", "viewers"], "x-team": {"name": "platform"}}
        assert result.data["mapRoles"].startswith(HAND_WRITTEN.split("- groups: [devs]")[0])

    def test_duplicates_of_the_named_arn_collapse_into_one_with_a_warning(self):
        text = (
            "- rolearn: {0}\n  username: old\n  groups: [a]\n"
            "- rolearn: {1}\n  groups: [system:masters]\n"
            "- rolearn: {0}\n  username: older\n  groups: [b]\n"
        ).format(NODES, ADMIN)
        result = plan({"mapRoles": text}, map_roles=[node_entry()])
        entries = reread(result.data["mapRoles"])
        assert [e["rolearn"] for e in entries] == [ADMIN, NODES]
        assert entries[1] == node_entry()
        assert any("had 2 entries" in w for w in result.warnings)

    def test_duplicates_not_named_are_reported_and_kept(self):
        text = "- rolearn: {0}\n  username: a\n- rolearn: {0}\n  username: b\n".format(ADMIN)
        result = plan({"mapRoles": text}, map_roles=[node_entry()])
        assert result.data["mapRoles"].startswith(text)
        assert any("has 2 entries for {0}".format(ADMIN) in w and "uses the last" in w for w in result.warnings)

    def test_role_arn_path_is_stripped_with_a_warning_and_matches_the_existing_entry(self):
        desired, warnings = desired_entries({"map_roles": [node_entry("arn:aws:iam::111122223333:role/eks/workers/nodes")]}, "present")
        assert desired["mapRoles"][0]["rolearn"] == NODES
        assert "IAM path" in warnings[0]
        with_path = "- rolearn: arn:aws:iam::111122223333:role/teams/nodes\n  username: x\n"
        result = plan_change({"mapRoles": with_path}, desired, "present")
        assert reread(result.data["mapRoles"]) == [node_entry()]


class TestRemovingEntries:
    def test_absent_removes_every_entry_with_the_arn_and_nothing_else(self):
        text = HAND_WRITTEN + "- rolearn: {0}\n  username: n\n- rolearn: {0}\n  username: n2\n".format(NODES)
        result = plan({"mapRoles": text}, state="absent", map_roles=[{"rolearn": NODES}])
        assert result.data["mapRoles"] == HAND_WRITTEN

    def test_absent_of_a_missing_entry_is_no_change(self):
        result = plan({"mapRoles": HAND_WRITTEN}, state="absent", map_roles=[{"rolearn": NODES}])
        assert not result.changed

    def test_exclusive_keeps_only_the_named_entries_of_the_named_sections(self):
        data = {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: {0}\n  username: alice\n".format(ALICE)}
        result = plan(data, exclusive=True, map_roles=[node_entry(), {"rolearn": ADMIN, "username": "admin", "groups": ["system:masters"]}])
        assert [e["rolearn"] for e in reread(result.data["mapRoles"])] == [ADMIN, NODES]
        assert result.data["mapUsers"] == data["mapUsers"]

    def test_accounts(self):
        added = plan({"mapAccounts": "- '000011112222'\n"}, map_accounts=[ACCOUNT])
        assert reread(added.data["mapAccounts"]) == ["000011112222", ACCOUNT]
        removed = plan(added.data, state="absent", map_accounts=["000011112222"])
        assert reread(removed.data["mapAccounts"]) == [ACCOUNT]


class TestRefusals:
    @pytest.mark.parametrize(
        "section, text, expected",
        [
            ("mapUsers", "- userarn: [\n", "mapUsers does not parse"),
            ("mapUsers", "userarn: arn:aws:iam::1:user/a\n", "expected a YAML list"),
            ("mapRoles", "- rolearn: {0}\n\tusername: x\n".format(ADMIN), "mapRoles does not parse"),
        ],
    )
    def test_unparsable_existing_section_is_refused_naming_it(self, section, text, expected):
        with pytest.raises(AwsAuthError) as error:
            plan({section: text}, map_roles=[node_entry()])
        assert expected in str(error.value)
        assert section in str(error.value)
        assert "Nothing was changed" in str(error.value)

    @pytest.mark.parametrize(
        "options, expected",
        [
            ({"map_roles": [{"rolearn": NODES}]}, "neither username nor groups"),
            ({"map_roles": [{"rolearn": ALICE, "username": "a"}]}, "is an IAM user ARN; put it in map_users"),
            ({"map_users": [{"userarn": NODES, "username": "a"}]}, "is an IAM role ARN; put it in map_roles"),
            ({"map_roles": [{"rolearn": "arn:aws:sts::111122223333:assumed-role/admin/me", "username": "a"}]}, "arn:aws:iam::111122223333:role/admin"),
            ({"map_roles": [{"rolearn": "admin", "username": "a"}]}, "'admin' is not an IAM role ARN"),
            ({"map_roles": [{"rolearn": "arn:aws:iam::1234:role/x", "username": "a"}]}, "not an IAM role ARN"),
            ({"map_users": [{"userarn": "arn:aws:s3:::bucket", "username": "a"}]}, "not an IAM user ARN"),
            ({"map_accounts": ["12345"]}, "not a 12-digit AWS account id"),
            ({"map_roles": [node_entry(), node_entry("arn:aws:iam::111122223333:role/x/nodes")]}, "again"),
            ({"map_roles": [{"rolearn": NODES, "username": "a\nb"}]}, "line break"),
            ({"map_roles": [{"rolearn": NODES, "groups": "system:masters"}]}, "groups must be a list"),
        ],
    )
    def test_bad_input_names_the_value(self, options, expected):
        with pytest.raises(AwsAuthError) as error:
            desired_entries(options, "present")
        assert expected in str(error.value)

    def test_absent_needs_only_the_arn(self):
        desired, _ = desired_entries({"map_roles": [{"rolearn": NODES}]}, "absent")
        assert desired == {"mapRoles": [{"rolearn": NODES}]}


class TestLockoutGuard:
    def test_assumed_role_caller_maps_to_its_role(self):
        assert caller_mapping_arn("arn:aws:sts::111122223333:assumed-role/admin/session@x") == ADMIN
        assert caller_mapping_arn(ALICE) == ALICE

    def test_exclusive_without_the_callers_mapping_is_a_lockout(self):
        result = plan({"mapRoles": HAND_WRITTEN}, exclusive=True, map_roles=[node_entry()])
        assert removes_or_changes_mappings(result)
        problems = lockout_problems(result.before, result.after, ADMIN)
        assert any("the identity this task authenticates with" in p for p in problems)
        assert any("last system:masters" in p for p in problems)

    def test_removing_one_of_two_masters_not_the_callers_is_fine(self):
        data = {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: {0}\n  username: alice\n  groups: [system:masters]\n".format(ALICE)}
        result = plan(data, state="absent", map_users=[{"userarn": ALICE}])
        assert lockout_problems(result.before, result.after, ADMIN) == []

    def test_taking_masters_from_the_caller_is_a_lockout(self):
        data = {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: {0}\n  groups: [system:masters]\n".format(ALICE)}
        result = plan(data, map_roles=[{"rolearn": ADMIN, "username": "admin", "groups": ["viewers"]}])
        problems = lockout_problems(result.before, result.after, ADMIN)
        assert problems == ["it takes system:masters away from {0}, the identity this task authenticates with".format(ADMIN)]

    def test_adding_entries_needs_no_guard(self):
        result = plan({"mapRoles": HAND_WRITTEN}, map_roles=[node_entry()])
        assert not removes_or_changes_mappings(result)


def test_parse_section_reports_entries_as_the_authenticator_reads_them():
    section = parse_section("mapRoles", HAND_WRITTEN)
    assert section.entries[1] == {"rolearn": "arn:aws:iam::111122223333:role/devs", "username": "dev:{{SessionName}}", "groups": ["devs"]}


def test_backup_is_an_applyable_configmap_with_the_same_data():
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system", "resourceVersion": "42", "uid": "u", "managedFields": [{}]},
        "data": {"mapRoles": HAND_WRITTEN, "mapAccounts": "[]"},
    }
    document = yaml.safe_load(backup_yaml(configmap))
    assert document["data"] == configmap["data"]
    assert document["metadata"] == {"name": "aws-auth", "namespace": "kube-system"}
    assert "mapRoles: |" in backup_yaml(configmap)


def test_anchors_and_merge_keys_keep_their_meaning_when_rewritten():
    text = (
        "- &admin\n  rolearn: {0}\n  username: admin\n  groups: &masters [system:masters]\n"
        "- <<: *admin\n  rolearn: arn:aws:iam::111122223333:role/admin2\n"
        "- rolearn: arn:aws:iam::111122223333:role/ops\n  groups: *masters\n"
    ).format(ADMIN)
    result = plan({"mapRoles": text}, map_roles=[node_entry()])
    assert reread(result.data["mapRoles"]) == reread(text) + [node_entry()]
    removed = plan({"mapRoles": text}, state="absent", map_roles=[{"rolearn": ADMIN}])
    assert reread(removed.data["mapRoles"]) == reread(text)[1:]


def test_windows_line_endings_survive_for_untouched_entries():
    text = "- rolearn: {0}\r\n  username: admin\r\n  groups: [system:masters]\r\n".format(ADMIN)
    result = plan({"mapRoles": text}, map_roles=[node_entry()])
    assert result.data["mapRoles"].startswith(text)
    assert reread(result.data["mapRoles"]) == reread(text) + [node_entry()]


def test_multiple_yaml_documents_are_refused():
    with pytest.raises(AwsAuthError) as error:
        plan({"mapRoles": "- rolearn: {0}\n  username: a\n---\n- rolearn: {0}\n  username: b\n".format(ADMIN)}, map_roles=[node_entry()])
    assert "mapRoles does not parse" in str(error.value)


def test_callers_own_mapping_may_go_when_an_access_entry_lets_it_in():
    data = {"mapRoles": HAND_WRITTEN, "mapUsers": "- userarn: {0}\n  groups: [system:masters]\n".format(ALICE)}
    result = plan(data, state="absent", map_roles=[{"rolearn": ADMIN}])
    assert lockout_problems(result.before, result.after, ADMIN) != []
    assert lockout_problems(result.before, result.after, ADMIN, caller_uses_access_entry=True) == []
    everything = plan(data, state="absent", map_roles=[{"rolearn": ADMIN}], map_users=[{"userarn": ALICE}])
    assert any("last system:masters" in p for p in lockout_problems(everything.before, everything.after, ADMIN, caller_uses_access_entry=True))


def test_same_principal_ignores_case_and_role_path():
    assert same_principal("arn:aws:iam::111122223333:role/teams/Admin", ADMIN.upper().replace("ARN:AWS:IAM", "arn:aws:iam"))
    assert not same_principal(ADMIN, "arn:aws:iam::111122223333:role/admin2")


def test_field_names_match_case_insensitively_like_the_authenticator():
    text = "- RoleArn: {0}\n  UserName: admin\n  Groups: [system:masters]\n  note: x\n".format(NODES)
    assert parse_section("mapRoles", text).entries == [{"rolearn": NODES, "username": "admin", "groups": ["system:masters"]}]
    result = plan({"mapRoles": text}, map_roles=[node_entry()])
    assert reread(result.data["mapRoles"]) == [dict(node_entry(), note="x")]
    assert not plan({"mapRoles": text}, map_roles=[{"rolearn": NODES, "username": "admin", "groups": ["system:masters"]}]).changed


def test_explicit_tags_do_not_stop_splicing():
    text = "- rolearn: !!str {0}\n  username: !!str admin   # tagged\n".format(ADMIN)
    result = plan({"mapRoles": text}, map_roles=[node_entry()])
    assert result.data["mapRoles"].startswith(text)


class TestAuthenticatorTolerance:
    """aws-iam-authenticator decodes each section with Go's encoding/json, which goes on past a
    type error, then validates each entry alone and drops only the invalid ones."""

    MIXED = (
        "- rolearn: {0}\n  username: admin\n  groups: [system:masters]\n"
        "- rolearn: arn:aws:iam::{1}:role/devs\n  username: dev\n  groups: system:masters\n"
        "- username: lost\n  groups: [devs]\n"
        "- sso:\n    permissionSetName: Admin\n    accountID: \"{1}\"\n  username: sso-admin\n  groups: [system:masters]\n"
    ).format(ADMIN, ACCOUNT)

    def test_one_bad_entry_no_longer_stops_a_change_and_every_entry_survives_byte_for_byte(self):
        result = plan({"mapRoles": self.MIXED}, map_roles=[node_entry()])
        assert result.changed
        assert result.data["mapRoles"].startswith(self.MIXED)
        assert reread(result.data["mapRoles"]) == reread(self.MIXED) + [node_entry()]

    def test_entries_are_reported_as_the_authenticator_holds_them(self):
        entries = parse_section("mapRoles", self.MIXED).entries
        assert entries == [
            {"rolearn": ADMIN, "username": "admin", "groups": ["system:masters"]},
            {"rolearn": "arn:aws:iam::111122223333:role/devs", "username": "dev"},  # groups lost, entry kept
            {"sso": {"permissionSetName": "Admin", "accountID": ACCOUNT}, "username": "sso-admin", "groups": ["system:masters"]},
        ]

    def test_warnings_name_each_entry_the_authenticator_skips_or_reads_in_part(self):
        warnings = plan({"mapRoles": self.MIXED}, map_roles=[node_entry()]).warnings
        groups = [w for w in warnings if "role/devs" in w]
        assert len(groups) == 1 and "groups is the string 'system:masters', not a list" in groups[0] and "map_roles" in groups[0]
        skipped = [w for w in warnings if "'lost'" in w]
        assert len(skipped) == 1 and "has no rolearn (or an sso matcher), so the authenticator skips it" in skipped[0]
        assert not [w for w in warnings if "sso-admin" in w]

    def test_naming_a_partly_read_entry_rewrites_it_whole(self):
        devs = "arn:aws:iam::111122223333:role/devs"
        result = plan({"mapRoles": self.MIXED}, map_roles=[{"rolearn": devs, "username": "dev", "groups": ["devs"]}])
        assert reread(result.data["mapRoles"])[1] == {"rolearn": devs, "username": "dev", "groups": ["devs"]}
        assert not [w for w in result.warnings if "role/devs" in w]
        assert {"rolearn": devs, "username": "dev", "groups": ["devs"]} in result.after["mapRoles"]

    def test_an_sso_entry_counts_for_the_lockout_guard(self):
        before = parse_section("mapRoles", self.MIXED).entries
        without_admin = [e for e in before if e.get("rolearn") != ADMIN]
        assert lockout_problems({"mapRoles": before}, {"mapRoles": without_admin}, ADMIN) != []
        sso_caller = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123456789abcdef"
        only_admin = [e for e in before if "sso" not in e]
        assert any("the identity this task authenticates with" in p
                   for p in lockout_problems({"mapRoles": before}, {"mapRoles": only_admin}, caller_mapping_arn(sso_caller)))

    def test_exclusive_removes_skipped_entries_too(self):
        result = plan({"mapRoles": self.MIXED}, exclusive=True, map_roles=[{"rolearn": ADMIN, "username": "admin", "groups": ["system:masters"]}])
        assert reread(result.data["mapRoles"]) == [{"rolearn": ADMIN, "username": "admin", "groups": ["system:masters"]}]

    @pytest.mark.parametrize("text", ["rolearn: {0}\n".format(ADMIN), "- rolearn: [\n", "just text\n"])
    def test_a_section_that_is_not_a_yaml_list_is_still_refused_as_a_whole(self, text):
        with pytest.raises(AwsAuthError, match="mapRoles does not parse as a YAML list, so aws-iam-authenticator maps none of its entries"):
            plan({"mapRoles": text}, map_roles=[node_entry()])

    def test_accounts_that_are_not_ids_are_kept_and_the_others_still_count(self):
        result = plan({"mapAccounts": "- {a: b}\n- '000011112222'\n"}, map_accounts=[ACCOUNT])
        assert reread(result.data["mapAccounts"]) == [{"a": "b"}, "000011112222", ACCOUNT]
        assert result.after["mapAccounts"] == ["000011112222", ACCOUNT]
        assert any("mapAccounts item 1" in w and "fix it by hand" in w for w in result.warnings)
