# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""IAM policy documents for EKS: service trust policies, IRSA trust policies, and a check
that a document is one IAM would accept without opening a role to everyone.

Pure functions, no AWS or Ansible imports (used by modules and by the filter plugin in
plugins/filter/iam_policy.py that the `iam` role calls).
"""

import re

from ansible_collections.selfmanaged.eks.plugins.module_utils import arn

POLICY_VERSION = "2012-10-17"

# The audience EKS-issued service account tokens carry for AWS STS.
STS_AUDIENCE = "sts.amazonaws.com"

EKS_SERVICE_PRINCIPAL = "eks.amazonaws.com"
EC2_SERVICE_PRINCIPAL = "ec2.amazonaws.com"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class PolicyError(ValueError):
    """A policy input or document that IAM would reject or that would grant too much."""


def issuer_host_path(issuer):
    """An OIDC issuer URL without scheme and trailing slash, as IAM names providers and condition keys.

    'https://oidc.eks.us-east-1.amazonaws.com/id/ABC/' -> 'oidc.eks.us-east-1.amazonaws.com/id/ABC'
    """
    if not issuer or not str(issuer).strip():
        raise PolicyError("the OIDC issuer is empty; pass the cluster's identity.oidc.issuer (control_plane_cluster.oidc_issuer)")
    value = str(issuer).strip()
    if value.startswith("http://"):
        raise PolicyError("OIDC issuer {0!r} uses http; IAM OIDC providers need an https:// issuer".format(issuer))
    if value.startswith("https://"):
        value = value[len("https://"):]
    value = value.rstrip("/")
    if not value or "/" == value[0] or " " in value:
        raise PolicyError("OIDC issuer {0!r} is not a URL such as https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE".format(issuer))
    return value


def oidc_provider_arn(account_id, issuer, partition="aws"):
    """The ARN IAM gives the OIDC provider of `issuer`."""
    return arn.oidc_provider_arn(partition, account_id, issuer_host_path(issuer))


def service_trust_policy(*services):
    """Trust policy letting AWS services (e.g. eks.amazonaws.com) assume the role."""
    if not services:
        raise PolicyError("service_trust_policy needs at least one service principal")
    principal = services[0] if len(services) == 1 else sorted(services)
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}],
    }


def validate_service_account(namespace, service_account):
    if not namespace or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise PolicyError(
            "namespace {0!r} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63 characters)".format(namespace)
        )
    if not service_account or len(service_account) > 253 or not _DNS_SUBDOMAIN.match(service_account):
        raise PolicyError(
            "service account {0!r} is not a Kubernetes name (lower-case letters, digits, '-' and '.', at most 253 characters)".format(service_account)
        )


def irsa_trust_policy(provider_arn, issuer, namespace, service_account):
    """Trust policy for IAM roles for service accounts: only `namespace/service_account` of the
    cluster whose OIDC provider is `provider_arn` may assume the role.

    Both conditions are required: without `sub` any service account of the cluster could
    assume the role; without `aud` tokens minted for other audiences would be accepted.
    """
    validate_service_account(namespace, service_account)
    host_path = issuer_host_path(issuer)
    try:
        provider_host_path = arn.parse_oidc_provider_arn(provider_arn)[2]
    except arn.ArnError as exc:
        raise PolicyError(str(exc))
    if provider_host_path != host_path:
        raise PolicyError(
            "OIDC provider {0} does not belong to issuer {1}; pass the provider ARN made for this cluster's issuer".format(provider_arn, issuer)
        )
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        host_path + ":aud": STS_AUDIENCE,
                        host_path + ":sub": "system:serviceaccount:{0}:{1}".format(namespace, service_account),
                    }
                },
            }
        ],
    }


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _wildcard_principal(principal):
    if principal == "*":
        return True
    if isinstance(principal, dict):
        for value in principal.values():
            if any(item == "*" for item in _as_list(value)):
                return True
    return False


def _grants_everything(statement):
    """Whether an Allow statement gives every action on every resource (administrator access)."""
    actions = [str(action) for action in _as_list(statement.get("Action") or [])]
    resources = [str(resource) for resource in _as_list(statement.get("Resource") or [])]
    return statement.get("Effect") == "Allow" and any(a in ("*", "*:*") for a in actions) and "*" in resources


def policy_document_problems(document, trust=False, allow_admin=False):
    """Why IAM would reject `document` or why it is unsafe; empty list when it is fine.

    Checks: Version 2012-10-17, a non-empty Statement list, Effect Allow/Deny, an Action or
    NotAction, Resource for permission policies, a Principal for trust policies, no
    wildcard principal anywhere, and no statement allowing Action "*" on Resource "*"
    (administrator access) unless `allow_admin` says that is intended.
    """
    problems = []
    if not isinstance(document, dict):
        return ["the policy document must be a mapping, got {0}".format(type(document).__name__)]
    if document.get("Version") != POLICY_VERSION:
        problems.append("Version is {0!r}; IAM policies must say Version {1!r}".format(document.get("Version"), POLICY_VERSION))
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not statements or not isinstance(statements, list):
        problems.append("Statement is missing or empty")
        return problems
    for index, statement in enumerate(statements):
        where = "Statement[{0}]".format(index)
        if not isinstance(statement, dict):
            problems.append("{0} is not a mapping".format(where))
            continue
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append("{0} Effect is {1!r}; use Allow or Deny".format(where, statement.get("Effect")))
        if not statement.get("Action") and not statement.get("NotAction"):
            problems.append("{0} has no Action".format(where))
        if "NotPrincipal" in statement:
            problems.append("{0} uses NotPrincipal; name the principals that are allowed instead".format(where))
        principal = statement.get("Principal")
        if trust:
            if not principal:
                problems.append("{0} has no Principal; a trust policy must say who may assume the role".format(where))
        elif principal is not None:
            problems.append("{0} has a Principal; identity policies attached to a role must not".format(where))
        if not trust and not statement.get("Resource") and not statement.get("NotResource"):
            problems.append("{0} has no Resource".format(where))
        if principal is not None and _wildcard_principal(principal):
            problems.append("{0} allows any principal ('*'); name the service, account or OIDC provider instead".format(where))
        if not trust and not allow_admin and _grants_everything(statement):
            problems.append(
                "{0} allows Action '*' on Resource '*' (administrator access); name the actions and resources the role needs,"
                " or pass allow_admin=true if full access is intended".format(where)
            )
    return problems


def validated_policy(document, trust=False, name="policy", allow_admin=False):
    """`document` unchanged when policy_document_problems() finds nothing, else PolicyError."""
    problems = policy_document_problems(document, trust=trust, allow_admin=allow_admin)
    if problems:
        raise PolicyError("{0} is not a valid IAM policy document: {1}".format(name, "; ".join(problems)))
    return document


_THUMBPRINT = re.compile(r"^[0-9a-f]{40}$")


def normalised_thumbprints(thumbprints):
    """Lower-case SHA-1 thumbprints (40 hex digits, ':' separators allowed), or PolicyError naming the bad one."""
    result = []
    for value in thumbprints:
        thumbprint = str(value).replace(":", "").strip().lower()
        if not _THUMBPRINT.match(thumbprint):
            raise PolicyError(
                "thumbprint {0!r} is not a SHA-1 fingerprint (40 hex digits); omit thumbprints to let IAM use the issuer's certificate".format(value)
            )
        result.append(thumbprint)
    if len(result) > 5:
        raise PolicyError("IAM accepts at most 5 thumbprints, got {0}".format(len(result)))
    return sorted(set(result))
