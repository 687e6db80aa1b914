# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""AWS access shared by every selfmanaged.eks module: one retry policy, one waiter."""

import os
import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Every AWS call of the collection goes through this decorator (clients made by
# aws_client() take `aws_retry=True`). Throttling and transient server errors are retried
# with jittered exponential backoff; they are never mistaken for success.
AWS_RETRY = AWSRetry.jittered_backoff(
    retries=10,
    delay=1,
    max_delay=20,
    catch_extra_error_codes=["ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "Throttling"],
)


def legacy_session_token(access_key, session_token, environ):
    """The STS session token to add to credentials amazon.aws read from the environment, or None.

    amazon.aws 10 reads the token from AWS_SESSION_TOKEN only, and hands the key pair to boto3
    itself, so boto3's own reading of AWS_SECURITY_TOKEN never happens. AWX's Amazon Web
    Services credential (older versions) and other tools inject the token as
    AWS_SECURITY_TOKEN: without it, short-term keys fail with "security token invalid". The
    older name counts only when no token was given and the key pair is the environment's own
    (a key given as a task option is not paired with a token from the environment).
    """
    if session_token or not access_key:
        return None
    if access_key not in (environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_ACCESS_KEY")):
        return None
    return environ.get("AWS_SECURITY_TOKEN") or None


class EksAWSModule(AnsibleAWSModule):
    """amazon.aws's AnsibleAWSModule, for every selfmanaged.eks module.

    amazon.aws 10.x hands the module's warnings to exit_json/fail_json again on ansible-core
    2.19, which already reports what module.warn() recorded; the result is each warning
    followed by "[DEPRECATION WARNING]: Passing `warnings` to `exit_json` or `fail_json` is
    deprecated". Warnings here go through module.warn() only, and are shown once.

    Credentials from the environment with the STS token in AWS_SECURITY_TOKEN work as with
    AWS_SESSION_TOKEN (legacy_session_token()).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        token = legacy_session_token(self.params.get("access_key"), self.params.get("session_token"), os.environ)
        if token:
            self._module.no_log_values.add(token)
            self.params["session_token"] = token

    def _should_inject_warnings(self):
        return False


THROTTLING_CODES = frozenset(
    ["Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ServiceUnavailable", "InternalFailure"]
)


class WaitTimeout(Exception):
    """A waiter ran out of time; the message says what it waited for and the last state.

    `what` and `state` hold the two on their own, for callers that wait in slices and report progress.
    """

    def __init__(self, message, what=None, state=None):
        super().__init__(message)
        self.what = what
        self.state = state


class WaitFailed(Exception):
    """A waiter saw a state from which the resource will not reach the wanted one."""


def aws_client(module, service):
    """A boto3 client for `service` whose calls retry with AWS_RETRY when given aws_retry=True: one per module run and
    service, shared by the parts of the run that call it (botocore builds each new client's class from the service
    model, ~10-40 ms a client; its clients are thread-safe)."""
    clients = module.__dict__.setdefault("_selfmanaged_eks_aws_clients", {})
    if service not in clients:
        clients[service] = module.client(service, retry_decorator=AWS_RETRY)
    return clients[service]


def error_code(exc):
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def is_throttling(exc):
    """True when the exception is throttling or a transient server error worth retrying."""
    return error_code(exc) in THROTTLING_CODES


NOT_FOUND_CODES = frozenset(["ResourceNotFoundException", "NoSuchEntity"])


def describe_or_none(operation, result_key, **params):
    """`operation(**params)[result_key]` (retried), or None when the resource does not exist."""
    try:
        return operation(aws_retry=True, **params)[result_key]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


def pages(operation, token_key="nextToken", **params):
    """Each response of a paged AWS call, every call retried (aws_retry=True).

    `token_key` names the continuation field, the same in the request and the response:
    `nextToken` (EKS), `NextToken` (EC2, Auto Scaling), `Marker` (IAM).
    """
    while True:
        page = operation(aws_retry=True, **params)
        yield page
        if not page.get(token_key):
            return
        params[token_key] = page[token_key]


def all_pages(operation, result_key, token_key="nextToken", **params):
    """Every item under `result_key` of every page of a paged AWS call (see pages())."""
    items = []
    for page in pages(operation, token_key, **params):
        items.extend(page.get(result_key) or [])
    return items


def all_pages_or_empty(operation, result_key, **params):
    """Every item of a `nextToken`-paged EKS list (retried); [] when the named thing is unknown."""
    try:
        return all_pages(operation, result_key, **params)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            return []
        raise


def describe_cluster(eks, name):
    """The DescribeCluster `cluster` dict, or None when the cluster does not exist."""
    return describe_or_none(eks.describe_cluster, "cluster", name=name)


def wait_until(fetch, is_done, describe, timeout, what, is_failed=None, delay=2.0, max_delay=None, sleep=time.sleep, clock=time.monotonic):
    """Poll `fetch()` until `is_done(value)`; return the last value.

    Polls are `delay` seconds apart; with `max_delay`, the gap starts at `delay` and doubles
    up to `max_delay` (quick changes are seen at once, long ones polled sparingly).

    - `describe(value)` renders the state for messages (`value` may be None when the
      resource was not found).
    - `is_failed(value)` returns a reason string when the resource will never get there.
    - Throttling raised by `fetch` is retried until the deadline, never taken as success.
    Raises WaitTimeout (with the last state) or WaitFailed.
    """
    deadline = clock() + timeout
    last = None
    last_error = None
    while True:
        try:
            last = fetch()
            last_error = None
        except botocore.exceptions.ClientError as exc:
            if not is_throttling(exc):
                raise
            last_error = error_code(exc)
        else:
            if is_done(last):
                return last
            if is_failed is not None:
                reason = is_failed(last)
                if reason:
                    raise WaitFailed("{0} failed: {1} (state: {2})".format(what, reason, describe(last)))
        if clock() >= deadline:
            state = describe(last)
            if last_error:
                state = "{0}; the last poll was throttled ({1})".format(state, last_error)
            raise WaitTimeout(
                "timed out after {0}s waiting for {1}; last state: {2}. Raise wait_timeout or check the resource in the AWS console.".format(
                    int(timeout), what, state
                ),
                what=what,
                state=state,
            )
        sleep(min(delay, max(0.0, deadline - clock())))
        if max_delay is not None:
            delay = min(delay * 2, max_delay)
