"""eks_cluster's update loop with an EKS stand-in: failed updates are reported with EKS's errors,
and wait=false still waits for every update but the last (EKS runs one update at a time)."""

import copy

import pytest

from ansible_collections.selfmanaged.eks.plugins.modules import eks_cluster


class Failed(Exception):
    pass


class FakeEks:
    """DescribeCluster/UpdateClusterVersion/DescribeUpdate with scripted update outcomes."""

    def __init__(self, version="1.30", outcomes=None):
        self.cluster = {
            "name": "prod",
            "arn": "arn:aws:eks:us-east-1:123456789012:cluster/prod",
            "version": version,
            "status": "ACTIVE",
            "roleArn": "arn:aws:iam::123456789012:role/r",
            "resourcesVpcConfig": {"subnetIds": ["subnet-a", "subnet-b"], "endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
            "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
            "tags": {},
        }
        self.outcomes = list(outcomes or [])
        self.updates = {}
        self.calls = []

    def describe_cluster(self, name, aws_retry=False):
        self.calls.append("DescribeCluster")
        return {"cluster": copy.deepcopy(self.cluster)}

    def update_cluster_version(self, name, version, aws_retry=False):
        self.calls.append("UpdateClusterVersion")
        update_id = "u-{0}".format(len(self.updates) + 1)
        outcome = self.outcomes.pop(0) if self.outcomes else ("Successful", [])
        self.updates[update_id] = {"id": update_id, "type": "VersionUpdate", "status": outcome[0], "errors": outcome[1], "version": version}
        if outcome[0] == "Successful":
            self.cluster["version"] = version
        return {"update": {"id": update_id, "type": "VersionUpdate", "status": "InProgress"}}

    def describe_update(self, name, updateId, aws_retry=False):
        self.calls.append("DescribeUpdate")
        return {"update": dict(self.updates[updateId])}


class FakeModule:
    def __init__(self, eks, **params):
        self.eks = eks
        self.check_mode = False
        self.params = dict(name="prod", wait=True, wait_timeout=5, check_node_skew=False, tags=None, purge_tags=True)
        self.params.update(params)
        self.failure = None

    def client(self, service, retry_decorator=None):
        assert service == "eks"
        return self.eks

    def fail_json(self, **kwargs):
        self.failure = kwargs
        raise Failed(kwargs["msg"])

    def fail_json_aws(self, exc, msg=None, **kwargs):
        self.fail_json(msg="{0}: {1}".format(msg, exc), **kwargs)


def desired(version):
    return {"version": version}


def test_a_failed_step_reports_eks_errors_and_what_already_succeeded():
    error = {"errorCode": "InsufficientFreeAddresses", "errorMessage": "subnet is full", "resourceIds": ["subnet-a"]}
    eks = FakeEks(outcomes=[("Successful", []), ("Failed", [error])])
    module = FakeModule(eks)
    manager = eks_cluster.ClusterManager(module)
    with pytest.raises(Failed) as err:
        manager.update(eks.cluster.copy(), desired("1.32"))
    assert "update u-2 (VersionUpdate) ended Failed: InsufficientFreeAddresses: subnet is full (subnet-a)" in str(err.value)
    assert [(u["type"], u.get("version"), u["status"]) for u in module.failure["updates"]] == [
        ("VersionUpdate", "1.31", "Successful"),
        ("VersionUpdate", "1.32", "InProgress"),
    ]
    assert eks.cluster["version"] == "1.31"


def test_wait_false_still_waits_between_steps_but_not_after_the_last():
    eks = FakeEks()
    module = FakeModule(eks, wait=False)
    result = eks_cluster.ClusterManager(module).update(copy.deepcopy(eks.cluster), desired("1.32"))
    assert [(u["version"], u["status"]) for u in result["updates"]] == [("1.31", "Successful"), ("1.32", "InProgress")]
    # One DescribeUpdate for the first step; none for the last one.
    assert eks.calls.count("UpdateClusterVersion") == 2
    assert eks.calls.count("DescribeUpdate") == 1


def test_check_mode_plans_without_writing():
    eks = FakeEks()
    module = FakeModule(eks)
    module.check_mode = True
    result = eks_cluster.ClusterManager(module).update(copy.deepcopy(eks.cluster), desired("1.32"))
    assert result["changed"] is True
    assert result["updates"] == [{"type": "VersionUpdate", "version": "1.31"}, {"type": "VersionUpdate", "version": "1.32"}]
    assert "UpdateClusterVersion" not in eks.calls
    assert result["diff"]["before"]["version"] == "1.30" and result["diff"]["after"]["version"] == "1.32"
