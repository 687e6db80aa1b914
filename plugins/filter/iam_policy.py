# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""IAM policy documents for roles: trust policies rendered and checked in one place."""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfmanaged.eks.plugins.module_utils import iam_policy


def _filter(function):
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except iam_policy.PolicyError as exc:
            raise AnsibleFilterError(str(exc))

    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


def irsa_trust_policy(provider_arn, issuer, namespace, service_account):
    return iam_policy.irsa_trust_policy(provider_arn, issuer, namespace, service_account)


def service_trust_policy(service):
    return iam_policy.service_trust_policy(*(service if isinstance(service, list) else [service]))


def validated_iam_policy(document, name="policy", trust=False, allow_admin=False):
    return iam_policy.validated_policy(document, trust=trust, name=name, allow_admin=allow_admin)


class FilterModule:
    def filters(self):
        return {
            "irsa_trust_policy": _filter(irsa_trust_policy),
            "service_trust_policy": _filter(service_trust_policy),
            "validated_iam_policy": _filter(validated_iam_policy),
        }
