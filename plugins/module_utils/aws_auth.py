# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Entry-level editing of the kube-system/aws-auth ConfigMap, as aws-iam-authenticator reads it.

`data.mapRoles`, `data.mapUsers` and `data.mapAccounts` are each one YAML string holding a
list. The authenticator (pkg/mapper/configmap) converts each section from YAML to JSON and
decodes it into a list of entries with Go's encoding/json, which goes on past a type error:
a field of the wrong type is left empty (an entry whose `groups` is one string keeps its ARN
and username but has no groups). Each entry is then validated on its own (a mapRoles entry
needs `rolearn` or an `sso` matcher, a mapUsers entry `userarn`) and only the invalid ones are
dropped. Role and user entries are keyed by lower-cased ARN (the last duplicate wins). A
section that is not YAML, or not a list, gives no entries at all. This module:

- reads each section the same way (`read_entry` says what the authenticator makes of an
  entry and why) and refuses (naming the section and the error) when a section is not a
  YAML list, so nothing is ever written on top of data it did not understand;
- keeps entries the authenticator skips or reads only in part, byte-for-byte, and warns
  about them (naming an entry's ARN in a call rewrites it whole);
- changes only the entries a call names: every other entry keeps its meaning, its position
  and its original YAML text (block-style sections are edited by splicing the text of the
  changed entries; any other layout is re-rendered with every entry's content unchanged);
- says what would lock people out before it happens (`lockout_problems`).

No Ansible imports: the module `eks_aws_auth` drives it, unit tests exercise it directly.
"""

import copy
import random
import re
import time

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import ROLE_ARN_FORM
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import USER_ARN_FORM
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import arn_or_none
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import is_account_id
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import principal_kind

# The ARN rules live in arn.py; these are aws-auth's names for two of them.
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import principal_arn_of_caller as caller_mapping_arn
from ansible_collections.selfmanaged.eks.plugins.module_utils.arn import role_arn_without_path as strip_role_path

# Where the ConfigMap lives, and its Kubernetes API paths (the collection and one object).
NAMESPACE = "kube-system"
NAME = "aws-auth"
CONFIGMAPS_PATH = "/api/v1/namespaces/{0}/configmaps".format(NAMESPACE)
AWS_AUTH_PATH = "{0}/{1}".format(CONFIGMAPS_PATH, NAME)
SECTIONS = ("mapRoles", "mapUsers", "mapAccounts")
ARN_KEYS = {"mapRoles": "rolearn", "mapUsers": "userarn"}
OPTION_OF_SECTION = {"mapRoles": "map_roles", "mapUsers": "map_users", "mapAccounts": "map_accounts"}
MASTERS_GROUP = "system:masters"
NODE_USERNAME = "system:node:{{EC2PrivateDNSName}}"
USERNAME_TEMPLATES = ("{{AccountID}}", "{{SessionName}}", "{{SessionNameRaw}}", "{{EC2PrivateDNSName}}", "{{AccessKeyID}}")

# IAM Identity Center (SSO) roles: AWSReservedSSO_<permission set name>_<16 hex digits>.
_SSO_ROLE_NAME = re.compile(r"^AWSReservedSSO_(.+)_[0-9a-f]{16}$")
_RUNBOOK = "see docs/runbooks/recovering-aws-auth.md"


class AwsAuthError(ValueError):
    """Bad input or aws-auth data that cannot be edited safely; the message says what to do."""


class AwsAuthLockout(AwsAuthError):
    """The change would remove access the caller (or every administrator) depends on."""


# ---------------------------------------------------------------------------------------
# ARNs and the input of a call


def entry_field(entry, name):
    """entry[name] matched case-insensitively, the last match winning, as Go's encoding/json reads aws-auth."""
    value = None
    for key, item in entry.items():
        if isinstance(key, str) and key.lower() == name:
            value = item
    return value


def _sso_key(partition, account_id, permission_set_name):
    return "sso:{0}:{1}:{2}".format(partition or "aws", account_id, permission_set_name).lower()


def sso_key_of_role(arn):
    """The key of the `sso` mapRoles entry that matches this IAM Identity Center role ARN, else None."""
    parsed = arn_or_none(strip_role_path(arn or ""))
    if parsed is None or principal_kind(arn) != "role":
        return None
    name = _SSO_ROLE_NAME.match(parsed.name)
    return _sso_key(parsed.partition, parsed.account, name.group(1)) if name else None


def entry_key(section, value):
    """How the authenticator tells entries apart: lower-cased ARN (role path stripped), the
    `sso` matcher of a mapRoles entry, or the account id."""
    if section == "mapAccounts":
        return str(value)
    sso = entry_field(value, "sso") if section == "mapRoles" and isinstance(value, dict) else None
    if isinstance(sso, dict) and not entry_field(value, "rolearn"):
        return _sso_key(entry_field(sso, "partition"), entry_field(sso, "accountid"), entry_field(sso, "permissionsetname"))
    arn = entry_field(value, ARN_KEYS[section]) if isinstance(value, dict) else None
    arn = str(arn) if arn is not None else ""
    if section == "mapRoles":
        arn = strip_role_path(arn)
    return arn.lower()


def _check_text(option, index, field, value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise AwsAuthError("{0}[{1}].{2} must be a string, got {3!r}".format(option, index, field, value))
    if "\n" in value or "\r" in value:
        raise AwsAuthError("{0}[{1}].{2} {3!r} contains a line break; use a single-line value".format(option, index, field, value))
    return value


def _validated_groups(option, index, groups):
    if groups is None:
        return []
    if isinstance(groups, str):
        raise AwsAuthError("{0}[{1}].groups must be a list of group names, got the string {2!r}; write groups: [{2}]".format(option, index, groups))
    result = []
    for group in groups:
        group = _check_text(option, index, "groups", group)
        if not group:
            raise AwsAuthError("{0}[{1}].groups contains an empty group name".format(option, index))
        result.append(group)
    return result


def _validated_arn(section, option, index, arn, warnings):
    field = ARN_KEYS[section]
    arn = _check_text(option, index, field, arn)
    if not arn:
        raise AwsAuthError("{0}[{1}] has no {2}; give the IAM {3} ARN".format(option, index, field, "role" if section == "mapRoles" else "user"))
    arn = arn.strip()
    kind = principal_kind(arn)
    if section == "mapRoles":
        if kind == "assumed-role":
            raise AwsAuthError(
                "{0}[{1}].rolearn {2!r} is an STS assumed-role session ARN; map the role itself: {3!r}".format(
                    option, index, arn, caller_mapping_arn(arn)
                )
            )
        if kind == "user":
            raise AwsAuthError("{0}[{1}].rolearn {2!r} is an IAM user ARN; put it in map_users as userarn".format(option, index, arn))
        if kind != "role":
            raise AwsAuthError(
                "{0}[{1}].rolearn {2!r} is not an IAM role ARN (expected {3})".format(option, index, arn, ROLE_ARN_FORM)
            )
        normalised = strip_role_path(arn)
        if normalised != arn:
            warnings.append(
                "{0}[{1}].rolearn {2!r} has an IAM path, which aws-iam-authenticator does not match; using {3!r}".format(
                    option, index, arn, normalised
                )
            )
        return normalised
    if kind == "assumed-role":
        raise AwsAuthError(
            "{0}[{1}].userarn {2!r} is an STS assumed-role session ARN; map the role in map_roles: {3!r}".format(
                option, index, arn, caller_mapping_arn(arn)
            )
        )
    if kind == "role":
        raise AwsAuthError("{0}[{1}].userarn {2!r} is an IAM role ARN; put it in map_roles as rolearn".format(option, index, arn))
    if kind != "user":
        raise AwsAuthError("{0}[{1}].userarn {2!r} is not an IAM user ARN (expected {3})".format(option, index, arn, USER_ARN_FORM))
    return arn


def desired_entries(params, state):
    """Validate the call's map_roles / map_users / map_accounts.

    Returns (desired, warnings): desired maps each section the call names to its list of
    entries (dicts in aws-auth field names, or account id strings). Raises AwsAuthError
    naming the bad value before anything is read or written.
    """
    desired = {}
    warnings = []
    for section in SECTIONS:
        option = OPTION_OF_SECTION[section]
        given = params.get(option)
        if given is None:
            continue
        entries = []
        seen = {}
        for index, item in enumerate(given):
            if section == "mapAccounts":
                account = str(item).strip() if isinstance(item, (str, int)) and not isinstance(item, bool) else None
                if not account or not is_account_id(account):
                    raise AwsAuthError("map_accounts[{0}] {1!r} is not a 12-digit AWS account id; quote it so leading zeros survive".format(index, item))
                entry = account
            else:
                if not isinstance(item, dict):
                    raise AwsAuthError("{0}[{1}] must be a mapping with {2}, username and groups, got {3!r}".format(option, index, ARN_KEYS[section], item))
                arn = _validated_arn(section, option, index, item.get(ARN_KEYS[section]), warnings)
                entry = {ARN_KEYS[section]: arn}
                if state == "present":
                    username = _check_text(option, index, "username", item.get("username"))
                    groups = _validated_groups(option, index, item.get("groups"))
                    if not username and not groups:
                        raise AwsAuthError(
                            "{0}[{1}] ({2}) has neither username nor groups, which maps the ARN to nothing; "
                            "give a username (for nodes {3!r}) and/or groups".format(option, index, arn, NODE_USERNAME)
                        )
                    if username:
                        entry["username"] = username
                    if groups:
                        entry["groups"] = groups
            key = entry_key(section, entry)
            if key in seen:
                raise AwsAuthError("{0}[{1}] names {2!r} again (already {0}[{3}]); give each ARN once".format(option, index, key, seen[key]))
            seen[key] = index
            entries.append(entry)
        desired[section] = entries
    return desired, warnings


# ---------------------------------------------------------------------------------------
# Parsing a section


def _go_string(value):
    """A JSON string field as Go's encoding/json fills it: anything but a string is a type error that leaves it empty."""
    return value if isinstance(value, str) else ""


def _describe(value):
    return "the {0} {1!r}".format("string" if isinstance(value, str) else type(value).__name__, value)


def read_entry(section, raw):
    """(view, problems): the entry as aws-iam-authenticator holds it, or view None when it skips the entry.

    view: {rolearn|userarn, username?, groups?}, {sso, username?, groups?} (mapRoles) or the
    account id (mapAccounts). problems: what the authenticator drops or skips, one sentence each.
    """
    if section == "mapAccounts":
        if isinstance(raw, (str, int)) and not isinstance(raw, bool) and str(raw):
            return str(raw), []
        return None, ["{0} is not an account id, so the authenticator skips it".format(_describe(raw))]
    if not isinstance(raw, dict):
        return None, ["{0} is not a mapping, so the authenticator skips it".format(_describe(raw))]
    field = ARN_KEYS[section]
    problems = []
    arn = entry_field(raw, field)
    if arn is not None and not isinstance(arn, str):
        problems.append("{0} is {1}, not a string".format(field, _describe(arn)))
    arn = _go_string(arn)
    view = {}
    sso = entry_field(raw, "sso") if section == "mapRoles" else None
    if sso is not None and not isinstance(sso, dict):
        problems.append("sso is {0}, not a mapping".format(_describe(sso)))
        sso = None
    if sso is not None and arn:
        return None, problems + ["it has both rolearn and sso, so the authenticator skips it"]
    if sso is not None:
        matcher = dict((name, _go_string(entry_field(sso, name.lower()))) for name in ("permissionSetName", "accountID", "partition"))
        missing = [name for name in ("permissionSetName", "accountID") if not matcher[name]]
        if missing:
            return None, problems + ["its sso matcher has no {0}, so the authenticator skips it".format(" or ".join(missing))]
        view["sso"] = dict((name, value) for name, value in matcher.items() if value)
    elif not arn:
        needs = "rolearn (or an sso matcher)" if section == "mapRoles" else "userarn"
        return None, problems + ["it has no {0}, so the authenticator skips it".format(needs)]
    else:
        view[field] = arn
    username = entry_field(raw, "username")
    if username is not None and not isinstance(username, str):
        problems.append("username is {0}, not a string, so the authenticator maps it with no username".format(_describe(username)))
    if _go_string(username):
        view["username"] = username
    groups = entry_field(raw, "groups")
    if groups is not None and not isinstance(groups, list):
        problems.append("groups is {0}, not a list, so the authenticator maps it with no groups".format(_describe(groups)))
    elif groups:
        if not all(isinstance(group, str) for group in groups):
            problems.append("groups has items that are not strings, which the authenticator reads as empty names")
        view["groups"] = [_go_string(group) for group in groups]
    return view, problems


def _has_arn(section, raw):
    return section != "mapAccounts" and isinstance(raw, dict) and isinstance(entry_field(raw, ARN_KEYS[section]), str) \
        and bool(entry_field(raw, ARN_KEYS[section]))


def _entry_view(section, raw):
    """The fields the authenticator uses (see read_entry), or None when it skips the entry."""
    return read_entry(section, raw)[0]


def _check_raw_entries(section, raw_entries):
    """The section's list of entries; ValueError when it is not a list (the authenticator then has none of it)."""
    if raw_entries is None:
        return []
    if not isinstance(raw_entries, list):
        raise ValueError("expected a YAML list, got a {0}".format(type(raw_entries).__name__))
    return raw_entries


class ParsedSection:
    """One section of aws-auth: its text, its entries and, when it is a plain block list, where each entry's text is."""

    def __init__(self, name, text, raw_entries, segments):
        self.name = name
        self.text = text
        self.raw_entries = raw_entries  # python values as PyYAML reads them
        self.segments = segments  # [(start, end, dash_column)] per entry, or None when not spliceable

    @property
    def entries(self):
        """The entries the authenticator holds, in order (entries it skips are left out)."""
        return [view for view in (_entry_view(self.name, raw) for raw in self.raw_entries) if view is not None]

    @property
    def keys(self):
        """Each raw entry's key (a call naming it rewrites it, even one the authenticator skips),
        or None for an entry without an ARN that the authenticator skips (no call can name it)."""
        return [entry_key(self.name, raw) if _entry_view(self.name, raw) is not None or _has_arn(self.name, raw) else None
                for raw in self.raw_entries]


def _content_end(node):
    """Index just after the last character that belongs to the node's own content."""
    if isinstance(node, yaml.ScalarNode):
        return node.end_mark.index
    ends = [node.end_mark.index] if node.flow_style else []
    children = node.value if isinstance(node, yaml.SequenceNode) else [part for pair in node.value for part in pair]
    ends.extend(_content_end(child) for child in children)
    return max(ends) if ends else node.start_mark.index


def _block_segments(text, node):
    """[(start, end, dash_column)] of each top-level list entry's lines, or None when the layout does not allow splicing."""
    if not isinstance(node, yaml.SequenceNode) or node.flow_style or not node.value:
        return None
    column = node.start_mark.column
    dashes = []
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
            return None  # anchors/aliases tie entries together: re-render instead of splicing
        if isinstance(token, yaml.BlockEntryToken) and token.start_mark.column == column and token.start_mark.index >= node.start_mark.index:
            dashes.append(token.start_mark.index)
    if len(dashes) != len(node.value):
        return None
    segments = []
    previous_end = 0
    for dash, item in zip(dashes, node.value):
        start = text.rfind("\n", 0, dash) + 1
        if text[start:dash].strip() or start < previous_end:
            return None
        content_end = max(_content_end(item), dash + 1)
        if text[content_end - 1] == "\n":
            end = content_end
        else:
            newline = text.find("\n", content_end)
            end = len(text) if newline < 0 else newline + 1
        segments.append((start, end, dash - start))
        previous_end = end
    return segments


def _describe_parse_error(exc):
    """A one-line account of a YAML or structure error: what, and where."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        where = ""
        if exc.problem_mark is not None:
            where = " at line {0}, column {1}".format(exc.problem_mark.line + 1, exc.problem_mark.column + 1)
        context = "{0} ".format(exc.context) if exc.context else ""
        return "{0}{1}{2}".format(context, exc.problem, where)
    return " ".join(str(exc).split())


def parse_section(name, text):
    """A ParsedSection for `data[name]`, or AwsAuthError naming the section and the parse error."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise AwsAuthError("aws-auth {0} is not a string ({1!r}); {2}".format(name, text, _RUNBOOK))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
        raw_entries = yaml.safe_load(text) if node is not None else None
        raw_entries = _check_raw_entries(name, raw_entries)
    except (yaml.YAMLError, ValueError) as exc:
        detail = _describe_parse_error(exc)
        raise AwsAuthError(
            "aws-auth {0} does not parse as a YAML list, so aws-iam-authenticator maps none of its entries: {1}. Nothing was "
            "changed; fix or restore {0} first ({2})".format(name, detail, _RUNBOOK)
        )
    segments = None
    if node is not None:
        try:
            segments = _block_segments(text, node)
        except yaml.YAMLError:
            segments = None
    return ParsedSection(name, text, list(raw_entries), segments)


def parse_sections(data):
    """{section: ParsedSection} for all three sections of a ConfigMap's data (None: no ConfigMap)."""
    data = data or {}
    return dict((name, parse_section(name, data.get(name))) for name in SECTIONS)


# ---------------------------------------------------------------------------------------
# Rendering


def _dump_entries(values, column=0):
    if not values:
        return ""
    text = yaml.safe_dump(values, default_flow_style=False, sort_keys=False, allow_unicode=True, width=100000)
    if column:
        text = "".join(" " * column + line if line.strip() else line for line in text.splitlines(True))
    return text


def render_section(parsed, operations, appended):
    """The section's new text.

    `operations[i]` is ("keep",), ("replace", value) or ("drop",) for existing entry i;
    `appended` lists new values. Kept entries keep their text when the section is a block
    list; otherwise the whole list is dumped again from the parsed values.
    """
    expected = []
    for raw, operation in zip(parsed.raw_entries, operations):
        if operation[0] == "keep":
            expected.append(raw)
        elif operation[0] == "replace":
            expected.append(operation[1])
    expected.extend(appended)

    text = None
    if parsed.segments is not None:
        pieces = []
        cursor = 0
        for (start, end, column), operation in zip(parsed.segments, operations):
            pieces.append(parsed.text[cursor:start])
            if operation[0] == "keep":
                pieces.append(parsed.text[start:end])
            elif operation[0] == "replace":
                rendered = _dump_entries([operation[1]], column)
                if not parsed.text[start:end].endswith("\n"):
                    rendered = rendered.rstrip("\n")
                pieces.append(rendered)
            cursor = end
        if appended:
            addition = _dump_entries(appended, parsed.segments[0][2])
            so_far = "".join(pieces)
            if so_far and not so_far.endswith("\n"):
                addition = "\n" + addition
            pieces.append(addition)
        pieces.append(parsed.text[cursor:])
        text = "".join(pieces)
        if not _same_entries(text, expected):
            text = None
    elif not parsed.raw_entries and not appended:
        text = parsed.text
    if text is None:
        text = _dump_entries(expected) if expected else ""
        if not _same_entries(text, expected):  # pragma: no cover - a PyYAML round trip always holds
            raise AwsAuthError("internal error: aws-auth {0} would not read back as intended; nothing was changed".format(parsed.name))
    return text


def _same_entries(text, expected):
    """True when `text` reads back as exactly the `expected` list of entries."""
    try:
        loaded = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return False
    return (loaded if loaded is not None else []) == list(expected)


# ---------------------------------------------------------------------------------------
# Planning a change


def _view_equal(section, current_raw, wanted):
    return _entry_view(section, current_raw) == _merged(section, current_raw, wanted, compare=True)


def _merged(section, current_raw, wanted, compare=False):
    """The entry `wanted` asks for, keeping keys of the current entry the module does not manage."""
    if section == "mapAccounts":
        return wanted
    merged = dict(wanted)
    if compare:
        # The ARN's spelling (case) does not matter to the authenticator; a stripped path does.
        current_arn = str(entry_field(current_raw, ARN_KEYS[section]))
        if current_arn.lower() == wanted[ARN_KEYS[section]].lower():
            merged[ARN_KEYS[section]] = current_arn
        return _entry_view(section, merged)
    # An sso matcher next to a rolearn makes the authenticator skip the entry: the call's rolearn replaces it.
    managed = (ARN_KEYS[section], "username", "groups", "sso")
    result = dict((k, v) for k, v in current_raw.items() if not (isinstance(k, str) and k.lower() in managed))
    ordered = {ARN_KEYS[section]: merged[ARN_KEYS[section]]}
    for field in ("username", "groups"):
        if field in merged:
            ordered[field] = merged[field]
    ordered.update(result)
    return ordered


class AwsAuthPlan:
    """What a call does to aws-auth: the new data, the entries before/after, removals, warnings."""

    def __init__(self):
        self.data = {}
        self.changed = False
        self.before = {}
        self.after = {}
        self.warnings = []
        self.touched_sections = []


def plan_change(data, desired, state, exclusive=False):
    """Apply `desired` (from desired_entries) to ConfigMap `data` (None when the ConfigMap is missing).

    state present: each named entry ends up exactly once (same-ARN duplicates collapse into
    the last one's position; an existing entry equal in meaning is left alone); with
    exclusive, entries of the named sections that are not named are removed.
    state absent: every entry with a named ARN (or account id) is removed.
    Entries not named are never touched. Raises AwsAuthError when a section does not parse.
    """
    parsed = parse_sections(data)
    plan = AwsAuthPlan()
    new_data = dict(data or {})
    for section in SECTIONS:
        current = parsed[section]
        plan.before[section] = current.entries
        keys = current.keys
        wanted = desired.get(section)
        operations = [("keep",)] * len(keys)
        appended = []
        named = set()
        if wanted is not None:
            wanted_by_key = dict((entry_key(section, entry), entry) for entry in wanted)
            named = set(wanted_by_key)
            for key, entry in wanted_by_key.items():
                positions = [i for i, k in enumerate(keys) if k == key]
                if state == "absent":
                    for i in positions:
                        operations[i] = ("drop",)
                    continue
                if not positions:
                    appended.append(entry)
                    continue
                last = positions[-1]
                for i in positions[:-1]:
                    operations[i] = ("drop",)
                if len(positions) > 1:
                    plan.warnings.append(
                        "aws-auth {0} had {1} entries for {2}; kept one (aws-iam-authenticator used the last)".format(section, len(positions), key)
                    )
                raw = current.raw_entries[last]
                if not _view_equal(section, raw, entry):
                    operations[last] = ("replace", _merged(section, raw, entry))
            if exclusive and state == "present":
                for i, key in enumerate(keys):
                    if key not in named:
                        operations[i] = ("drop",)
        _warn_about_unnamed(section, current, named, plan.warnings)
        if any(op[0] != "keep" for op in operations) or appended:
            text = render_section(current, operations, appended)
            new_data[section] = text
            plan.touched_sections.append(section)
            plan.after[section] = parse_section(section, text).entries
        else:
            plan.after[section] = plan.before[section]
    plan.changed = bool(plan.touched_sections) and any((data or {}).get(s) != new_data.get(s) for s in plan.touched_sections)
    plan.data = new_data
    return plan


def _warn_about_unnamed(section, current, named, warnings):
    for position, (raw, key) in enumerate(zip(current.raw_entries, current.keys), 1):
        if key is not None and key in named:
            continue  # the call rewrites this entry whole
        problems = read_entry(section, raw)[1]
        if problems:
            where = "({0})".format(key) if key else "{0!r}".format(raw)
            fix = " name it in {0} to rewrite it".format(OPTION_OF_SECTION[section]) if key and section != "mapAccounts" else " fix it by hand"
            warnings.append(
                "aws-auth {0} item {1} {2}: {3}. It is kept as written;{4} ({5})".format(section, position, where, "; ".join(problems), fix, _RUNBOOK)
            )
    if section == "mapAccounts":
        return
    counts = {}
    for key in current.keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    for key, count in counts.items():
        if count > 1 and key not in named:
            warnings.append(
                "aws-auth {0} has {1} entries for {2}; aws-iam-authenticator uses the last one. Name it in {3} to keep a single entry".format(
                    section, count, key, OPTION_OF_SECTION[section]
                )
            )
    if section == "mapRoles":
        for raw in current.raw_entries:
            if not _has_arn(section, raw):
                continue
            arn = entry_field(raw, "rolearn")
            if entry_key(section, raw) not in named and strip_role_path(arn) != arn:
                warnings.append(
                    "aws-auth mapRoles entry {0!r} has an IAM path, so aws-iam-authenticator never matches it; "
                    "name it in map_roles to rewrite it as {1!r}".format(arn, strip_role_path(arn))
                )


# ---------------------------------------------------------------------------------------
# Lockout guard


def effective_mappings(entries_by_section):
    """{lower-cased ARN key: entry view} as the authenticator holds them (the last duplicate wins)."""
    result = {}
    for section in ("mapRoles", "mapUsers"):
        for entry in entries_by_section.get(section) or []:
            result[entry_key(section, entry)] = entry
    return result


def _caller_keys(caller_arn, mappings):
    """The keys of `mappings` that would map the caller: its ARN's, else its IAM Identity Center matcher's."""
    key = strip_role_path(caller_arn).lower()
    if key in mappings:
        return [key]
    sso = sso_key_of_role(caller_arn)
    return [sso] if sso in mappings else []


def _masters(mappings):
    return sorted(key for key, entry in mappings.items() if MASTERS_GROUP in (entry.get("groups") or []))


def lockout_problems(before, after, caller_arn, caller_uses_access_entry=False):
    """Why going from `before` to `after` (entries per section) would lock people out; [] when it would not.

    - the caller's own mapping (caller_arn: the ARN an entry must name, see caller_mapping_arn)
      disappears or loses system:masters, unless the caller authenticates through an access
      entry (which wins over aws-auth in API_AND_CONFIG_MAP mode);
    - the last system:masters mapping disappears.
    """
    problems = []
    old = effective_mappings(before)
    new = effective_mappings(after)
    if caller_arn and not caller_uses_access_entry:
        key = (_caller_keys(caller_arn, old) or [None])[0]
        if key in old and key not in new:
            problems.append("it removes the mapping of {0}, the identity this task authenticates with".format(caller_arn))
        elif key in old and MASTERS_GROUP in (old[key].get("groups") or []) and MASTERS_GROUP not in (new[key].get("groups") or []):
            problems.append("it takes system:masters away from {0}, the identity this task authenticates with".format(caller_arn))
    if _masters(old) and not _masters(new):
        problems.append("it removes the last system:masters mapping ({0})".format(", ".join(_masters(old))))
    return problems


def same_principal(arn_a, arn_b):
    """Whether two IAM ARNs name the same principal for EKS (case-insensitive, role path ignored)."""
    return strip_role_path(arn_a or "").lower() == strip_role_path(arn_b or "").lower()


def removes_or_changes_mappings(plan):
    """True when the plan drops or rewrites a role/user mapping (the cases the lockout guard checks)."""
    for section in ("mapRoles", "mapUsers"):
        old = effective_mappings({section: plan.before.get(section)})
        new = effective_mappings({section: plan.after.get(section)})
        for key, entry in old.items():
            if key not in new or new[key].get("groups") != entry.get("groups"):
                return True
    return False


class TooManyConflicts(Exception):
    """Every attempt to write conflicted with another writer."""

    def __init__(self, attempts):
        super().__init__("{0} attempts all conflicted".format(attempts))
        self.attempts = attempts


def conflict_delay(attempt):
    """Seconds to wait before attempt `attempt + 1`: growing, jittered so racing writers spread out."""
    return random.uniform(0.05, 0.25) * attempt


def write_with_retries(read, change, write, is_conflict, max_attempts=10, sleep=time.sleep, delay=conflict_delay):
    """Optimistic concurrency: read, change, write with the read version; on a conflict, start over.

    - read() returns the current object (or None);
    - change(current, attempt) returns what to write, or None when nothing needs writing;
    - write(current, new) writes it conditionally on `current`'s version and returns the stored
      object, raising an exception for which is_conflict(exc) is true when someone else wrote first.
    Returns (current, stored or None, attempts). Raises TooManyConflicts after max_attempts conflicts.
    """
    attempt = 0
    while True:
        attempt += 1
        current = read()
        new = change(current, attempt)
        if new is None:
            return current, None, attempt
        try:
            return current, write(current, new), attempt
        except Exception as exc:  # pylint: disable=broad-except
            if not is_conflict(exc):
                raise
            if attempt >= max_attempts:
                raise TooManyConflicts(attempt)
            sleep(delay(attempt))


def backup_document(configmap):
    """The ConfigMap (a dict as the API returns it) without server-managed metadata, ready for kubectl apply."""
    metadata = configmap.get("metadata") or {}
    kept = dict((k, copy.deepcopy(metadata[k])) for k in ("name", "namespace", "labels", "annotations") if metadata.get(k))
    document = {"apiVersion": configmap.get("apiVersion", "v1"), "kind": configmap.get("kind", "ConfigMap"), "metadata": kept}
    for field in ("data", "binaryData"):
        if configmap.get(field):
            document[field] = copy.deepcopy(configmap[field])
    return document


class _BlockStyleDumper(yaml.SafeDumper if yaml else object):
    """Multi-line strings (the sections) as | blocks so a backup reads like the ConfigMap."""


def _str_representer(dumper, value):
    # PyYAML falls back to a quoted style by itself when a block cannot represent the value.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


if yaml is not None:
    _BlockStyleDumper.add_representer(str, _str_representer)


def backup_yaml(configmap):
    """The backup document as YAML text."""
    return yaml.dump(backup_document(configmap), Dumper=_BlockStyleDumper, default_flow_style=False, sort_keys=False, width=100000)
