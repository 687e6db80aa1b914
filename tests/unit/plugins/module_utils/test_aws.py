"""The shared waiter: throttling is retried, never success; timeouts say the last state. One client per service and run."""

import botocore.exceptions
import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitFailed, WaitTimeout, aws_client, error_code, is_throttling, legacy_session_token, wait_until


def client_error(code):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, "DescribeCluster")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_returns_when_done():
    states = iter(["CREATING", "CREATING", "ACTIVE"])
    clock = FakeClock()
    result = wait_until(lambda: next(states), lambda s: s == "ACTIVE", str, 60, "cluster prod", sleep=clock.sleep, clock=clock)
    assert result == "ACTIVE"


def test_throttling_is_retried_not_taken_as_success():
    calls = []

    def fetch():
        calls.append(1)
        if len(calls) < 3:
            raise client_error("ThrottlingException")
        return "ACTIVE"

    clock = FakeClock()
    assert wait_until(fetch, lambda s: s == "ACTIVE", str, 60, "cluster prod", sleep=clock.sleep, clock=clock) == "ACTIVE"
    assert len(calls) == 3


def test_other_errors_propagate():
    def fetch():
        raise client_error("AccessDeniedException")

    with pytest.raises(botocore.exceptions.ClientError):
        wait_until(fetch, bool, str, 60, "cluster prod")


def test_max_delay_backs_off_from_delay_and_the_timeout_counts_the_whole_wait():
    clock = FakeClock()
    gaps = []

    def sleep(seconds):
        gaps.append(seconds)
        clock.sleep(seconds)

    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: "UPDATING", lambda s: s == "ACTIVE", str, 30, "add-on", delay=0.5, max_delay=5, sleep=sleep, clock=clock)
    assert gaps[:6] == [0.5, 1, 2, 4, 5, 5]
    assert sum(gaps) == 30  # the last gap is cut to the deadline
    assert "timed out after 30s" in str(info.value)


def test_timeout_names_what_and_last_state():
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: "UPDATING", lambda s: s == "ACTIVE", lambda s: "status " + s, 10, "cluster prod", delay=3, sleep=clock.sleep, clock=clock)
    message = str(info.value)
    assert "timed out after 10s waiting for cluster prod" in message
    assert "last state: status UPDATING" in message
    assert "wait_timeout" in message
    # and on their own, for a role that waits in slices and prints where things stand
    assert (info.value.what, info.value.state) == ("cluster prod", "status UPDATING")


def test_timeout_while_throttled_says_so():
    clock = FakeClock()
    results = iter(["UPDATING"])

    def fetch():
        try:
            return next(results)
        except StopIteration:
            raise client_error("Throttling")

    with pytest.raises(WaitTimeout, match=r"status UPDATING; the last poll was throttled \(Throttling\)"):
        wait_until(fetch, lambda s: False, lambda s: "status " + str(s), 5, "update", sleep=clock.sleep, clock=clock)


def test_failure_state_stops_waiting():
    with pytest.raises(WaitFailed, match="update 42 failed: Failed"):
        wait_until(lambda: "Failed", lambda s: s == "Successful", str, 60, "update 42", is_failed=lambda s: s if s == "Failed" else None)


def test_error_code_helpers():
    assert error_code(client_error("TooManyRequestsException")) == "TooManyRequestsException"
    assert is_throttling(client_error("RequestLimitExceeded"))
    assert not is_throttling(client_error("ResourceNotFoundException"))
    assert error_code(ValueError("x")) == ""


def test_describe_or_none_returns_the_item_or_none_when_missing():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_or_none

    def describe(aws_retry, name):
        assert aws_retry is True
        if name == "gone":
            raise client_error("ResourceNotFoundException")
        if name == "denied":
            raise client_error("AccessDeniedException")
        return {"cluster": {"name": name}}

    assert describe_or_none(describe, "cluster", name="prod") == {"name": "prod"}
    assert describe_or_none(describe, "cluster", name="gone") is None
    with pytest.raises(botocore.exceptions.ClientError):
        describe_or_none(describe, "cluster", name="denied")


def test_all_pages_or_empty_follows_next_token():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages_or_empty

    pages = {None: {"addons": [1, 2], "nextToken": "b"}, "b": {"addons": [3]}}

    def list_things(aws_retry, addonName, nextToken=None):
        if addonName == "unknown":
            raise client_error("ResourceNotFoundException")
        return pages[nextToken]

    assert all_pages_or_empty(list_things, "addons", addonName="vpc-cni") == [1, 2, 3]
    assert all_pages_or_empty(list_things, "addons", addonName="unknown") == []


@pytest.mark.parametrize("token_key", ["nextToken", "NextToken", "Marker"])
def test_all_pages_follows_each_services_token_and_retries_every_call(token_key):
    from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages

    answers = {None: {"Items": [1, 2], token_key: "p2"}, "p2": {"Items": [3], token_key: "p3"}, "p3": {"Items": []}}
    calls = []

    def list_things(aws_retry=False, **params):
        calls.append((aws_retry, params.get(token_key)))
        return answers[params.get(token_key)]

    assert all_pages(list_things, "Items", token_key, Filter="x") == [1, 2, 3]
    assert calls == [(True, None), (True, "p2"), (True, "p3")]


def test_all_pages_stops_without_a_token_and_passes_errors_on():
    from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages

    def denied(aws_retry=False, **params):
        raise client_error("AccessDeniedException")

    assert all_pages(lambda aws_retry=False: {"clusters": ["a"]}, "clusters") == ["a"]
    with pytest.raises(botocore.exceptions.ClientError):
        all_pages(denied, "clusters")


# ---- AWS_SECURITY_TOKEN (AWX's older AWS credential) ------------------------------------

AWX_ENV = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SECURITY_TOKEN": "FwoGZXIvYXdzEXAMPLE"}


def test_security_token_completes_the_environments_key_pair():
    assert legacy_session_token("ASIAEXAMPLE", None, AWX_ENV) == "FwoGZXIvYXdzEXAMPLE"
    assert legacy_session_token("ASIAEXAMPLE", None, {"AWS_ACCESS_KEY": "ASIAEXAMPLE", "AWS_SECURITY_TOKEN": "t"}) == "t"


def test_a_session_token_wins_and_other_keys_are_left_alone():
    assert legacy_session_token("ASIAEXAMPLE", "from-AWS_SESSION_TOKEN", AWX_ENV) is None
    # a key given as a task option is not paired with the environment's token
    assert legacy_session_token("AKIAOTHERKEY", None, AWX_ENV) is None
    # no key pair at all: boto3 finds credentials itself (profile, instance role), and reads AWS_SECURITY_TOKEN too
    assert legacy_session_token(None, None, AWX_ENV) is None
    assert legacy_session_token("ASIAEXAMPLE", None, dict(AWX_ENV, AWS_SECURITY_TOKEN="")) is None


def test_aws_client_makes_one_client_per_service_and_module_run():

    class Module:
        def __init__(self):
            self.made = []

        def client(self, service, retry_decorator=None):
            assert retry_decorator is not None
            self.made.append(service)
            return object()

    module, other = Module(), Module()
    assert aws_client(module, "eks") is aws_client(module, "eks")
    assert aws_client(module, "ec2") is not aws_client(module, "eks")
    assert aws_client(other, "eks") is not aws_client(module, "eks")
    assert (module.made, other.made) == (["eks", "ec2"], ["eks"])
