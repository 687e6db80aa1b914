"""Property tests: whatever aws-auth already holds, a call changes only the entries it names.

Existing sections are generated in many layouts (block lists at different indentations, flow
or block groups, quoting styles, comments, blank lines, unknown keys, same-ARN duplicates
differing in case or IAM path, whole-section flow/JSON style). For every call:
- entries the call does not name read back identical and in the same order;
- in a block-style section their original text survives byte for byte, in order;
- with state=present the named entry is there exactly once, as asked;
- with state=absent no entry with the named ARN is left;
- applying the same call again changes nothing.
"""

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws_auth import (
    desired_entries,
    entry_key,
    parse_section,
    plan_change,
)

ROLE_NAMES = ["nodes", "Nodes", "admin", "devs", "ci", "team/devs", "a/b/ci"]
GROUPS = ["system:masters", "system:bootstrappers", "system:nodes", "devs", "view-only", "eks:kube-proxy-windows"]
USERNAMES = ["admin", "system:node:{{EC2PrivateDNSName}}", "{{SessionName}}", "dev:{{SessionNameRaw}}", "ci-bot", "{{AccountID}}:x"]

role_arns = st.sampled_from(ROLE_NAMES).map(lambda name: "arn:aws:iam::111122223333:role/" + name)
existing_entries = st.fixed_dictionaries(
    {"rolearn": role_arns},
    optional={
        "username": st.sampled_from(USERNAMES),
        "groups": st.lists(st.sampled_from(GROUPS), max_size=3),
        "x-note": st.sampled_from(["keep me", "note-1", "yes: no"]),
        "sso": st.fixed_dictionaries({"permissionSetName": st.sampled_from(["Admin", "Dev"])}),
    },
)


def scalar(value, style):
    if style == "double" or value.startswith("{") or ": " in value:
        return json.dumps(value)
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    return value


@st.composite
def block_section(draw):
    """(text, entries): a hand-written looking block list."""
    entries = draw(st.lists(existing_entries, max_size=6))
    indent = draw(st.sampled_from([0, 2, 4]))
    lines = []
    if draw(st.booleans()):
        lines.append("# maintained by several teams")
    for entry in entries:
        pad = " " * indent
        keys = list(entry)
        if draw(st.booleans()):
            keys.reverse()
        first = True
        for key in keys:
            prefix = pad + ("- " if first else "  ")
            first = False
            value = entry[key]
            if key == "groups":
                if draw(st.booleans()) or not value:
                    lines.append(prefix + "groups: [" + ", ".join(scalar(g, "plain") for g in value) + "]")
                else:
                    lines.append(prefix + "groups:")
                    sub = pad + "  " + ("  " if draw(st.booleans()) else "")
                    lines.extend(sub + "- " + scalar(g, draw(st.sampled_from(["plain", "single", "double"]))) for g in value)
            elif key == "sso":
                lines.append(prefix + "sso:")
                lines.append(pad + "    permissionSetName: " + value["permissionSetName"])
            else:
                text = scalar(value, draw(st.sampled_from(["plain", "single", "double"])))
                comment = "  # note" if draw(st.integers(0, 4)) == 0 else ""
                lines.append(prefix + key + ": " + text + comment)
        if draw(st.integers(0, 3)) == 0:
            lines.append("")
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) or not lines else "")
    return text, entries


@st.composite
def any_section(draw):
    if draw(st.integers(0, 4)) == 0:
        entries = draw(st.lists(existing_entries, max_size=5))
        return json.dumps(entries), entries
    return draw(block_section())


calls = st.fixed_dictionaries(
    {
        "rolearn": role_arns,
        "username": st.sampled_from(USERNAMES),
        "groups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True),
    }
)


def unnamed(entries, key):
    return [entry for entry in entries if entry_key("mapRoles", entry) != key]


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(section=any_section(), call=calls, state=st.sampled_from(["present", "absent"]))
def test_only_the_named_entry_changes(section, call, state):
    text, entries = section
    assert yaml.safe_load(text) in (entries, None if not entries else entries)
    desired, _warnings = desired_entries({"map_roles": [call]}, state)
    wanted = desired["mapRoles"][0]
    key = entry_key("mapRoles", wanted)

    result = plan_change({"mapRoles": text, "mapUsers": "[]"}, desired, state)
    after = yaml.safe_load(result.data["mapRoles"]) or []

    # Entries not named: same content (unknown keys included), same order.
    assert unnamed(after, key) == unnamed(entries, key)
    # The named entry: exactly once as asked, or gone.
    mine = [entry for entry in after if entry_key("mapRoles", entry) == key]
    if state == "present":
        assert len(mine) == 1
        # The authenticator matches ARNs case-insensitively: an entry that differs from the call only in the
        # ARN's case already maps the role, and keeping its spelling is no change.
        assert {k: mine[0][k] for k in ("username", "groups")} == {k: wanted[k] for k in ("username", "groups")}
        assert mine[0]["rolearn"].lower() == wanted["rolearn"].lower()
    else:
        assert mine == []
    # Other sections are not rewritten.
    assert result.data["mapUsers"] == "[]"
    # Idempotent.
    again = plan_change(result.data, desired, state)
    assert not again.changed
    assert again.data == result.data


@PROPERTY_SETTINGS
@given(section=block_section(), call=calls, state=st.sampled_from(["present", "absent"]))
def test_block_sections_keep_the_text_of_entries_not_named(section, call, state):
    text, _entries = section
    desired, _warnings = desired_entries({"map_roles": [call]}, state)
    key = entry_key("mapRoles", desired["mapRoles"][0])
    parsed = parse_section("mapRoles", text)
    untouched = [
        text[start:end] for (start, end, _column), item_key in zip(parsed.segments or [], parsed.keys) if item_key != key
    ]

    new_text = plan_change({"mapRoles": text}, desired, state).data.get("mapRoles", text)

    position = 0
    for piece in untouched:
        found = new_text.find(piece.rstrip("\n"), position)
        assert found >= 0, "entry text {0!r} lost or reordered in\n{1}".format(piece, new_text)
        position = found + len(piece.rstrip("\n"))


@PROPERTY_SETTINGS
@given(section=any_section(), calls_=st.lists(calls, min_size=1, max_size=4, unique_by=lambda c: c["rolearn"].lower().split("/")[-1]))
def test_exclusive_leaves_exactly_the_named_entries(section, calls_):
    text, _entries = section
    desired, _warnings = desired_entries({"map_roles": calls_}, "present")
    result = plan_change({"mapRoles": text}, desired, "present", exclusive=True)
    after = yaml.safe_load(result.data.get("mapRoles", text)) or []
    assert sorted(entry_key("mapRoles", e) for e in after) == sorted(entry_key("mapRoles", e) for e in desired["mapRoles"])


@PROPERTY_SETTINGS
@given(
    section=any_section(),
    accounts=st.lists(st.sampled_from(["111122223333", "000011112222", "444455556666"]), unique=True, max_size=3),
    users=st.lists(st.sampled_from(["alice", "bob", "ci/deployer"]), unique=True, max_size=3),
    state=st.sampled_from(["present", "absent"]),
)
def test_sections_not_named_stay_byte_identical(section, accounts, users, state):
    text, _entries = section
    options = {"map_accounts": accounts, "map_users": [{"userarn": "arn:aws:iam::111122223333:user/" + u, "groups": ["devs"]} for u in users]}
    desired, _warnings = desired_entries(options, state)
    data = {"mapRoles": text, "mapAccounts": "- '000011112222'\n"}
    result = plan_change(data, desired, state)
    assert result.data["mapRoles"] == text
    after_accounts = yaml.safe_load(result.data["mapAccounts"]) or []
    if state == "present":
        assert sorted(after_accounts) == sorted(set(accounts) | {"000011112222"})
        assert [e["userarn"].split("/", 1)[1] for e in yaml.safe_load(result.data.get("mapUsers", "[]")) or []] == users
    else:
        assert after_accounts == [a for a in ["000011112222"] if a not in accounts]


# Entries aws-iam-authenticator skips or reads only in part (True), and an IAM Identity Center
# matcher it accepts without a rolearn (False). None of them may stop a call or be lost by one.
odd_entries = st.sampled_from([
    ({"username": "no-arn", "groups": ["devs"]}, True),
    ({"rolearn": "arn:aws:iam::111122223333:role/admin", "username": "admin", "groups": "system:masters"}, True),
    ({"rolearn": "arn:aws:iam::111122223333:role/ci", "username": 42, "groups": ["devs"]}, True),
    ({"rolearn": 1234, "username": "n"}, True),
    ("just a string", True),
    ({"sso": {"permissionSetName": "Admin"}, "username": "half-sso"}, True),
    ({"sso": {"permissionSetName": "Admin", "accountID": "111122223333"}, "username": "sso-admin", "groups": ["system:masters"]}, False),
])


@PROPERTY_SETTINGS
@given(good=st.lists(existing_entries, max_size=3), odd=st.lists(odd_entries, min_size=1, max_size=3), order=st.randoms(use_true_random=False),
       flow=st.booleans(), call=calls, state=st.sampled_from(["present", "absent"]))
def test_entries_the_authenticator_skips_or_reads_in_part_survive_calls_not_naming_them(good, odd, order, flow, call, state):
    entries = good + [entry for entry, _damaged in odd]
    order.shuffle(entries)
    text = json.dumps(entries) if flow else yaml.safe_dump(entries, sort_keys=False)
    desired, _warnings = desired_entries({"map_roles": [call]}, state)
    key = entry_key("mapRoles", desired["mapRoles"][0])

    result = plan_change({"mapRoles": text}, desired, state)
    after = yaml.safe_load(result.data["mapRoles"]) or []

    assert unnamed(after, key) == unnamed(entries, key)
    # (a generated entry with both rolearn and sso is one the authenticator skips, too)
    damaged = [entry for entry, is_damaged in odd if is_damaged] + [entry for entry in good if "sso" in entry]
    damaged = [entry for entry in damaged if entry_key("mapRoles", entry) != key]
    assert len([w for w in result.warnings if "It is kept as written" in w]) == len(damaged)
    again = plan_change(result.data, desired, state)
    assert not again.changed and again.data == result.data
