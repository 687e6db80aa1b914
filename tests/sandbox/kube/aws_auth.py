"""The kube-system/aws-auth ConfigMap, parsed with aws-iam-authenticator's tolerance.

The authenticator (pkg/mapper/configmap ParseMap) converts each section from YAML to JSON and
decodes it into a list of entries with Go's encoding/json, which records the first type error
and goes on: a field of the wrong type is left empty (an entry whose `groups` is one string
keeps its ARN and username, with no groups; an item that is not a mapping becomes an empty
entry). Each entry is then validated alone (mapRoles: `rolearn` or an `sso` matcher, not
both; mapUsers: `userarn`) and only invalid ones are dropped; the store saves "only the data
that was good". So:

- ARN keys are lower-cased and the last duplicate wins;
- `sso: {permissionSetName, accountID, partition?}` entries map the IAM Identity Center roles
  `AWSReservedSSO_<permissionSetName>_<suffix>` of that account;
- a section that is not YAML, or not a list, is ignored as a whole and the previous good
  mapping of that section stays in memory;
- deleting the ConfigMap drops every mapping.
"""

import logging
import re

import yaml

LOG = logging.getLogger("tests.sandbox.kube.aws_auth")


class SectionError(ValueError):
    pass


def _go_string(value):
    """A JSON string field as Go fills it: any other type is a decoding error that leaves it empty."""
    return value if isinstance(value, str) else ""


def _field(entry, name):
    """entry[name] matched case-insensitively, as encoding/json matches struct fields."""
    value = None
    for key, item in entry.items():
        if isinstance(key, str) and key.lower() == name.lower():
            value = item
    return value


def _decoded_entry(entry, arn_key):
    """The entry as the authenticator decodes it, or None when its validation drops it."""
    if not isinstance(entry, dict):
        return None
    arn = _go_string(_field(entry, arn_key))
    sso = _field(entry, "sso") if arn_key == "rolearn" else None
    sso = sso if isinstance(sso, dict) else None
    if bool(arn) == bool(sso):
        return None  # neither or both: dropped
    matcher = None
    if sso:
        matcher = {name: _go_string(_field(sso, name)) for name in ("permissionSetName", "accountID", "partition")}
        if not matcher["permissionSetName"] or not matcher["accountID"]:
            return None
        matcher["partition"] = matcher["partition"] or "aws"
    groups = _field(entry, "groups")
    groups = [_go_string(group) for group in groups] if isinstance(groups, list) else []
    return {"arn": arn, "sso": matcher, "username": _go_string(_field(entry, "username")), "groups": groups}


def _sso_key(matcher):
    return f"sso:{matcher['partition']}:{matcher['accountID']}:{matcher['permissionSetName']}".lower()


def _parse_mappings(text, arn_key):
    entries = yaml.safe_load(text) if text and text.strip() else []
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise SectionError(f"expected a list, got {type(entries).__name__}")
    mapping = {}
    for entry in entries:
        decoded = _decoded_entry(entry, arn_key)
        if decoded is None:
            LOG.warning("aws-auth entry %r is invalid: the authenticator drops it and keeps the others", entry)
            continue
        mapping[_sso_key(decoded["sso"]) if decoded["sso"] else decoded["arn"].lower()] = decoded
    return mapping


_SSO_ROLE = re.compile(r"^arn:([^:]+):iam::(\d{12}):role/AWSReservedSSO_(.+)_[0-9a-f]{16}$", re.I)


def _parse_accounts(text):
    accounts = yaml.safe_load(text) if text and text.strip() else []
    if accounts is None:
        accounts = []
    if not isinstance(accounts, list):
        raise SectionError("mapAccounts must be a list of account ids")
    return {str(a) for a in accounts}


class AwsAuthMappings:
    """In-memory mappings of one cluster's aws-auth ConfigMap."""

    def __init__(self, cluster_name=""):
        self.cluster_name = cluster_name
        self.roles = {}
        self.users = {}
        self.accounts = set()
        self.errors = {}  # section -> message of the last parse failure

    def load(self, data):
        """Apply the ConfigMap's data (None when the ConfigMap was deleted)."""
        if data is None:
            self.roles, self.users, self.accounts, self.errors = {}, {}, set(), {}
            return
        for section, parse, attr in (("mapRoles", lambda t: _parse_mappings(t, "rolearn"), "roles"),
                                     ("mapUsers", lambda t: _parse_mappings(t, "userarn"), "users"),
                                     ("mapAccounts", _parse_accounts, "accounts")):
            if section not in data:
                setattr(self, attr, set() if attr == "accounts" else {})
                self.errors.pop(section, None)
                continue
            try:
                setattr(self, attr, parse(data[section]))
                self.errors.pop(section, None)
            except (yaml.YAMLError, SectionError) as exc:
                self.errors[section] = str(exc)
                LOG.warning("cluster %s: aws-auth %s does not parse, keeping the previous mapping: %s", self.cluster_name, section, exc)

    def lookup(self, canonical_arn):
        """{"arn", "username", "groups"} for this IAM ARN (role ARN form), or None."""
        key = canonical_arn.lower()
        if ":role/" in key and key in self.roles:
            return self.roles[key]
        sso = _SSO_ROLE.match(canonical_arn)
        if sso:
            matcher = {"partition": sso.group(1), "accountID": sso.group(2), "permissionSetName": sso.group(3)}
            if _sso_key(matcher) in self.roles:
                return dict(self.roles[_sso_key(matcher)], arn=canonical_arn)
        if key in self.users:
            return self.users[key]
        if key in self.roles:
            return self.roles[key]
        account = canonical_arn.split(":")[4] if canonical_arn.count(":") >= 5 else ""
        if account in self.accounts:
            return {"arn": canonical_arn, "username": canonical_arn, "groups": []}
        return None
