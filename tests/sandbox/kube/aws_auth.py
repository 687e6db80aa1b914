"""The kube-system/aws-auth ConfigMap, parsed with aws-iam-authenticator's tolerance.

- ARN keys are lower-cased and the last duplicate wins;
- a section (mapRoles, mapUsers, mapAccounts) that does not parse is ignored as a whole and
  the previous good mapping of that section stays in memory;
- deleting the ConfigMap drops every mapping.
"""

import logging

import yaml

LOG = logging.getLogger("tests.sandbox.kube.aws_auth")


class SectionError(ValueError):
    pass


def _parse_mappings(text, arn_key):
    entries = yaml.safe_load(text) if text and text.strip() else []
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise SectionError(f"expected a list, got {type(entries).__name__}")
    mapping = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise SectionError(f"entry {entry!r} is not a mapping")
        arn = entry.get(arn_key)
        if not isinstance(arn, str) or not arn:
            raise SectionError(f"entry without {arn_key}: {entry!r}")
        groups = entry.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise SectionError(f"groups of {arn} must be a list of strings")
        username = entry.get("username")
        if username is not None and not isinstance(username, str):
            raise SectionError(f"username of {arn} must be a string")
        mapping[arn.lower()] = {"arn": arn, "username": username or "", "groups": list(groups)}
    return mapping


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
        if key in self.users:
            return self.users[key]
        if key in self.roles:
            return self.roles[key]
        account = canonical_arn.split(":")[4] if canonical_arn.count(":") >= 5 else ""
        if account in self.accounts:
            return {"arn": canonical_arn, "username": canonical_arn, "groups": []}
        return None
