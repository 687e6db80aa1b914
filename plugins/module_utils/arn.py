# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Amazon Resource Names: the one place that reads and writes them, for every AWS partition.

`arn:<partition>:<service>:<region>:<account>:<resource>`; IAM resources are
`role/<path/>name` and `user/<path/>name`, STS sessions `assumed-role/<role name>/<session>`.
Pure functions, no AWS or Ansible imports.
"""

import re
from collections import namedtuple

# Every partition EKS runs in (commercial, China, GovCloud, the ISO regions, European Sovereign Cloud).
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
DEFAULT_PARTITION = "aws"

ROLE_ARN_FORM = "arn:<partition>:iam::<12-digit account>:role/<name>"
USER_ARN_FORM = "arn:<partition>:iam::<12-digit account>:user/<name>"

_ACCOUNT = re.compile(r"^\d{12}$")
# IAM names and paths: letters, digits and +=,.@_- (paths add /).
_IAM_NAME = re.compile(r"^[\w+=,.@-]+$")
_IAM_PATH_AND_NAME = re.compile(r"^[\w+=,.@/-]*[\w+=,.@-]$")


class ArnError(ValueError):
    """A value that is not the ARN asked for; the message names it and says what to give instead."""


class Arn(namedtuple("Arn", "partition service region account resource_type resource")):
    """A parsed ARN. `resource` is what follows `resource_type/` (or the whole resource when it has no type)."""

    __slots__ = ()

    @property
    def name(self):
        """The last segment of the resource: a role's name without its path."""
        return self.resource.rsplit("/", 1)[-1]

    @property
    def path(self):
        """An IAM path: '/' for role/name, '/a/b/' for role/a/b/name."""
        segments = self.resource.split("/")[:-1]
        return "/" + "".join(segment + "/" for segment in segments)

    def __str__(self):
        resource = "{0}/{1}".format(self.resource_type, self.resource) if self.resource_type else self.resource
        return "arn:{0}:{1}:{2}:{3}:{4}".format(self.partition, self.service, self.region, self.account, resource)


def parse_arn(value):
    """An Arn from its string; raises ArnError for anything else, or a partition AWS does not have."""
    text = value.strip() if isinstance(value, str) else ""
    fields = text.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn" or not fields[2] or not fields[5]:
        raise ArnError(
            "{0!r} is not an ARN; give arn:<partition>:<service>:<region>:<account>:<resource>, such as {1}".format(
                value, "arn:aws:iam::123456789012:role/name"
            )
        )
    partition, service, region, account, resource = fields[1:]
    if partition not in PARTITIONS:
        raise ArnError(
            "ARN {0!r} names partition {1!r}, which AWS does not have; use one of {2}".format(value, partition, ", ".join(PARTITIONS))
        )
    resource_type, separator, rest = resource.partition("/")
    if not separator:
        resource_type, rest = "", resource
    return Arn(partition, service, region, account, resource_type, rest)


def arn_or_none(value):
    """parse_arn(value), or None when `value` is not an ARN of a known partition."""
    try:
        return parse_arn(value)
    except ArnError:
        return None


def partition_of(value, default=DEFAULT_PARTITION):
    """The partition of an ARN ('aws-cn' for arn:aws-cn:...), or `default` when `value` is not an ARN."""
    parsed = arn_or_none(value)
    return parsed.partition if parsed else default


def is_account_id(value):
    """True for a 12-digit AWS account id (a string: leading zeros count)."""
    return isinstance(value, str) and bool(_ACCOUNT.match(value))


def _is_iam(parsed, resource_type):
    return (
        parsed is not None
        and parsed.service == "iam"
        and parsed.region == ""
        and bool(_ACCOUNT.match(parsed.account))
        and parsed.resource_type == resource_type
        and bool(_IAM_PATH_AND_NAME.match(parsed.resource))
    )


def _is_session(parsed):
    if parsed is None or parsed.service != "sts" or parsed.region != "" or not _ACCOUNT.match(parsed.account):
        return False
    role_name, _separator, session = parsed.resource.partition("/")
    return parsed.resource_type == "assumed-role" and bool(_IAM_NAME.match(role_name)) and bool(session)


def principal_kind(value):
    """'role', 'user' or 'assumed-role' for an IAM role, IAM user or STS session ARN; None for anything else."""
    parsed = arn_or_none(value)
    for kind in ("role", "user"):
        if _is_iam(parsed, kind):
            return kind
    if _is_session(parsed):
        return "assumed-role"
    return None


def is_role_arn(value):
    return principal_kind(value) == "role"


def is_user_arn(value):
    return principal_kind(value) == "user"


def is_session_arn(value):
    return principal_kind(value) == "assumed-role"


def role_arn(partition, account, name, path="/"):
    """arn:<partition>:iam::<account>:role<path><name>."""
    return "arn:{0}:iam::{1}:role{2}{3}".format(partition, account, path or "/", name)


def role_arn_without_path(value):
    """arn:aws:iam::1:role/path/to/name -> arn:aws:iam::1:role/name; any other value unchanged.

    aws-iam-authenticator matches role ARNs without their IAM path.
    """
    if not is_role_arn(value):
        return value
    parsed = parse_arn(value)
    return role_arn(parsed.partition, parsed.account, parsed.name)


def role_arn_of_session(value):
    """The role ARN (without path) behind an STS assumed-role session ARN; raises ArnError for other values."""
    if not is_session_arn(value):
        raise ArnError(
            "{0!r} is not an STS session ARN; expected arn:<partition>:sts::<12-digit account>:assumed-role/<role name>/<session>".format(value)
        )
    parsed = parse_arn(value)
    return role_arn(parsed.partition, parsed.account, parsed.resource.split("/", 1)[0])


def principal_arn_of_caller(value):
    """The IAM principal an STS caller ARN stands for: a session's role, a role without path, a user as is."""
    if is_session_arn(value):
        return role_arn_of_session(value)
    return role_arn_without_path((value or "").strip())


def validated_role_arn(value, option):
    """`value` (stripped) when it is an IAM role ARN; otherwise ArnError naming `option`, the value and the fix."""
    text = value.strip() if isinstance(value, str) else value
    kind = principal_kind(text)
    if kind == "role":
        return text
    if kind == "assumed-role":
        hint = "; it is an STS session, give the role itself: {0!r}".format(role_arn_of_session(text))
    elif kind == "user":
        hint = "; it is an IAM user, give the ARN of an IAM role"
    else:
        hint = ""
    raise ArnError("{0} {1!r} is not an IAM role ARN ({2}){3}".format(option, value, ROLE_ARN_FORM, hint))


def parse_oidc_provider_arn(value):
    """(partition, account, issuer host/path) of an IAM OIDC provider ARN; raises ArnError for other values."""
    parsed = arn_or_none(value)
    if (
        parsed is None
        or parsed.service != "iam"
        or parsed.region != ""
        or not _ACCOUNT.match(parsed.account)
        or parsed.resource_type != "oidc-provider"
        or not parsed.resource
    ):
        raise ArnError(
            "{0!r} is not an IAM OIDC provider ARN (arn:<partition>:iam::<12-digit account>:oidc-provider/<issuer host/path>); "
            "pass the eks_oidc_provider result's arn".format(value)
        )
    return parsed.partition, parsed.account, parsed.resource


def oidc_provider_arn(partition, account, host_path):
    return "arn:{0}:iam::{1}:oidc-provider/{2}".format(partition, account, host_path)
