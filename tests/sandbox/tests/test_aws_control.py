"""Call counter, fault injection and the /_sandbox/ HTTP control interface, seen by boto3."""

import json
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def _http(sandbox, method, path, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(sandbox.endpoint_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"{}")


@pytest.fixture(autouse=True)
def _no_faults(sandbox):
    sandbox.clear_faults()
    yield
    sandbox.clear_faults()


def test_health_and_environment(sandbox):
    status, body = _http(sandbox, "GET", "/_sandbox/health")
    assert status == 200 and body["status"] == "ok" and body["region"] == "us-east-1"
    env = sandbox.env()
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint_url.rstrip("/")
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_counter_counts_operations_per_service_and_resets(sandbox):
    sandbox.reset_api_calls()
    ec2, asg = sandbox.client("ec2"), sandbox.client("autoscaling")
    ec2.describe_instances()
    ec2.describe_instances()
    asg.describe_auto_scaling_groups()
    sandbox.client("eks").list_clusters()
    calls = sandbox.api_calls()
    assert calls["ec2"] == {"DescribeInstances": 2}
    assert calls["autoscaling"] == {"DescribeAutoScalingGroups": 1}
    assert calls["eks"] == {"ListClusters": 1}
    status, over_http = _http(sandbox, "GET", "/_sandbox/calls")
    assert status == 200 and over_http == calls
    _http(sandbox, "DELETE", "/_sandbox/calls")
    assert sandbox.api_calls() == {}


@pytest.mark.parametrize(
    "service,call,code,status",
    [
        ("eks", lambda c: c.list_clusters(), "ThrottlingException", 429),
        ("ec2", lambda c: c.describe_instances(), "RequestLimitExceeded", 503),
        ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "Throttling", 400),
        ("iam", lambda c: c.list_roles(), "Throttling", 400),
        ("ssm", lambda c: c.describe_parameters(), "ThrottlingException", 400),
    ],
)
def test_injected_throttling_is_what_botocore_sees(sandbox, service, call, code, status):
    sandbox.inject_faults(service, rate=1.0)
    client = sandbox.client(service, config=Config(retries={"mode": "standard", "max_attempts": 1}))
    with pytest.raises(ClientError) as raised:
        call(client)
    error = raised.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_botocore_retries_injected_faults_and_every_attempt_is_counted(sandbox, mode):
    sandbox.reset_api_calls()
    sandbox.inject_faults("eks", every=2)  # every second request fails: attempt 2 fails, attempt 3 passes
    client = sandbox.client("eks", config=Config(retries={"mode": mode, "max_attempts": 5}))
    client.list_clusters()  # request 1: passes
    response = client.list_clusters()  # request 2 throttled, request 3 passes
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert sandbox.api_calls()["eks"]["ListClusters"] == 3
    assert sandbox.faults()[0]["injected"] == 1


def test_seeded_rate_is_reproducible(sandbox):
    outcomes = []
    for _ in range(2):
        sandbox.inject_faults("ec2", rate=0.5, seed=7)
        client = sandbox.client("ec2", config=Config(retries={"mode": "standard", "max_attempts": 1}))
        run = []
        for _ in range(12):
            try:
                client.describe_vpcs()
                run.append("ok")
            except ClientError as error:
                run.append(error.response["Error"]["Code"])
        outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert "ok" in outcomes[0] and "RequestLimitExceeded" in outcomes[0]


def test_faults_over_http_with_operation_filter_and_codes(sandbox):
    status, body = _http(sandbox, "POST", "/_sandbox/faults",
                         {"service": "autoscaling", "rate": 1.0, "codes": ["RequestThrottled"],
                          "operations": ["DescribeAutoScalingGroups"]})
    assert status == 200 and body["faults"][0]["service"] == "autoscaling"
    client = sandbox.client("autoscaling", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    client.describe_launch_configurations()  # other operations pass
    with pytest.raises(ClientError) as raised:
        client.describe_auto_scaling_groups()
    assert raised.value.response["Error"]["Code"] == "RequestThrottled"
    _http(sandbox, "DELETE", "/_sandbox/faults")
    client.describe_auto_scaling_groups()


def test_bad_fault_spec_is_refused_with_the_reason(sandbox):
    request = urllib.request.Request(sandbox.endpoint_url + "/_sandbox/faults", data=json.dumps({"service": "eks", "rate": 3}).encode(),
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    assert "rate 3" in json.loads(raised.value.read())["error"]


def test_counter_names_operations_of_every_protocol(sandbox):
    sandbox.reset_api_calls()
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="counter-bucket")
    s3.put_object(Bucket="counter-bucket", Key="a", Body=b"x")
    s3.copy_object(Bucket="counter-bucket", Key="b", CopySource="counter-bucket/a")
    s3.list_objects_v2(Bucket="counter-bucket")
    sandbox.client("ssm").describe_parameters()
    sandbox.client("sts").get_caller_identity()
    sandbox.client("eks").describe_addon_versions(kubernetesVersion="1.33")
    calls = sandbox.api_calls()
    assert calls["s3"] == {"CreateBucket": 1, "PutObject": 1, "CopyObject": 1, "ListObjectsV2": 1}
    assert calls["ssm"] == {"DescribeParameters": 1}
    assert calls["sts"] == {"GetCallerIdentity": 1}
    assert calls["eks"] == {"DescribeAddonVersions": 1}
