"""eks_node_maintenance against the sandbox: the protections a node in maintenance gets (scale-in protection, the group's
ReplaceUnhealthy for ELB health checks, cluster-autoscaler's annotation), recorded so that only they are taken back, also
across instances of one group; check mode and a second run change nothing; status waits for a new bootID."""

import json

import kubernetes
import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import AUTOSCALER_SCALE_DOWN_DISABLED
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import MAINTENANCE_TAG
from tests.sandbox.clusters import cluster_with_nodes
from tests.sandbox.kube.scenarios import kube_client


class Fleet:
    def __init__(self, sandbox):
        self.cluster = cluster_with_nodes(sandbox, 3)
        self.name = self.cluster["name"]
        self.autoscaling = sandbox.client("autoscaling")
        self.ec2 = sandbox.client("ec2")
        self.core = kubernetes.client.CoreV1Api(kube_client(sandbox, self.cluster))
        groups = self.autoscaling.describe_auto_scaling_groups(Filters=[{"Name": "tag-key", "Values": ["kubernetes.io/cluster/" + self.name]}])
        self.group = groups["AutoScalingGroups"][0]["AutoScalingGroupName"]
        self.instances = sorted(i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"])

    def asg(self):
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])["AutoScalingGroups"][0]

    def protected(self, instance_id):
        return next(i["ProtectedFromScaleIn"] for i in self.asg()["Instances"] if i["InstanceId"] == instance_id)

    def suspended(self):
        return [p["ProcessName"] for p in self.asg()["SuspendedProcesses"]]

    def tag(self, instance_id):
        tags = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0].get("Tags") or []
        value = next((t["Value"] for t in tags if t["Key"] == MAINTENANCE_TAG), None)
        return json.loads(value) if value else None

    def annotation(self, instance_id):
        node = next(n for n in self.core.list_node().items if n.spec.provider_id.endswith("/" + instance_id))
        return (node.metadata.annotations or {}).get(AUTOSCALER_SCALE_DOWN_DISABLED)


@pytest.fixture(scope="module")
def fleet(sandbox):
    return Fleet(sandbox)


def maintenance(module_runner, fleet, check=False, diff=False, **args):
    return module_runner("eks_node_maintenance", dict(cluster_name=fleet.name, **args), check=check, diff=diff)


def test_present_protects_records_and_absent_takes_back_only_what_it_added(module_runner, fleet):
    first, second = fleet.instances[:2]
    fleet.autoscaling.set_instance_protection(InstanceIds=[second], AutoScalingGroupName=fleet.group, ProtectedFromScaleIn=True)

    preview = maintenance(module_runner, fleet, check=True, diff=True, instances=[first, second], state="present", holder="run-1", reason="patch")
    assert preview.get("failed") is not True, preview.get("msg")
    assert preview["changed"] is True and preview["diff"]["after"][first]["scale_in_protection"] is True
    assert not fleet.protected(first) and fleet.tag(first) is None and fleet.annotation(first) is None

    done = maintenance(module_runner, fleet, instances=[first, second], state="present", holder="run-1", reason="patch")
    assert done["changed"] is True
    assert [i["added"] for i in done["instances"]] == [["scale_in_protection", "scale_down_disabled"], ["scale_down_disabled"]]
    # The bootID a later wait for the reboot compares with, without a status call of its own.
    status = maintenance(module_runner, fleet, instances=[first, second])
    assert [i["node"]["boot_id"] for i in done["instances"]] == [i["node"]["boot_id"] for i in status["instances"]]
    assert all(i["node"]["boot_id"] for i in done["instances"])
    assert fleet.protected(first) and fleet.annotation(first) == "true"
    assert fleet.tag(first)["added"] == ["scale_down_disabled", "scale_in_protection"] and fleet.tag(first)["by"] == "run-1"
    assert fleet.tag(second)["added"] == ["scale_down_disabled"]  # the operator's protection is not ours

    again = maintenance(module_runner, fleet, instances=[first, second], state="present", holder="run-1", reason="patch")
    assert again["changed"] is False

    undone = maintenance(module_runner, fleet, instances=[first, second], state="absent")
    assert undone["changed"] is True
    assert not fleet.protected(first) and fleet.annotation(first) is None and fleet.tag(first) is None
    assert fleet.protected(second) is True and fleet.annotation(second) is None and fleet.tag(second) is None
    assert maintenance(module_runner, fleet, instances=[first, second], state="absent")["changed"] is False
    fleet.autoscaling.set_instance_protection(InstanceIds=[second], AutoScalingGroupName=fleet.group, ProtectedFromScaleIn=False)


def test_elb_health_checked_groups_keep_replace_unhealthy_suspended_until_the_last_node_is_done(module_runner, fleet):
    first, second = fleet.instances[:2]
    fleet.autoscaling.update_auto_scaling_group(AutoScalingGroupName=fleet.group, HealthCheckType="ELB", HealthCheckGracePeriod=60)
    try:
        for instance in (first, second):
            result = maintenance(module_runner, fleet, instances=[instance], state="present", holder="run-" + instance)
            assert result.get("failed") is not True, result.get("msg")
        assert "ReplaceUnhealthy" in fleet.suspended()
        assert "replace_unhealthy" in fleet.tag(first)["added"] and "replace_unhealthy" not in fleet.tag(second)["added"]

        maintenance(module_runner, fleet, instances=[first], state="absent")
        assert "ReplaceUnhealthy" in fleet.suspended(), "the second node is still rebooting"
        assert "replace_unhealthy" in fleet.tag(second)["added"]

        maintenance(module_runner, fleet, instances=[second], state="absent")
        assert "ReplaceUnhealthy" not in fleet.suspended()
    finally:
        fleet.autoscaling.update_auto_scaling_group(AutoScalingGroupName=fleet.group, HealthCheckType="EC2")


def test_status_reports_nodes_and_a_wait_for_a_reboot_that_did_not_happen_times_out_saying_so(module_runner, fleet):
    status = maintenance(module_runner, fleet, instances=fleet.instances)
    assert status.get("failed") is not True, status.get("msg")
    assert status["changed"] is False and status["cluster"] == {"nodes": 3, "not_ready": []}
    node = status["instances"][0]["node"]
    assert node["ready"] and node["schedulable"] and node["boot_id"]

    waited = maintenance(module_runner, fleet, instances=fleet.instances[:1], wait=True, wait_timeout=2, wait_delay=0.5,
                         boot_ids={fleet.instances[0]: node["boot_id"]})
    assert waited["failed"] is True
    assert "timed out after 2s waiting for Ready nodes" in waited["msg"] and "bootID still " + node["boot_id"] in waited["msg"]

    ready = maintenance(module_runner, fleet, instances=fleet.instances, wait=True, wait_timeout=10)
    assert ready.get("failed") is not True and ready["waited_seconds"] < 10


def test_an_instance_of_another_cluster_is_refused_before_anything_changes(module_runner, fleet):
    result = maintenance(module_runner, fleet, instances=[fleet.instances[0], "i-0000000000000dead"], state="present")
    assert result["failed"] is True
    assert result["msg"].startswith("instances i-0000000000000dead are not in an Auto Scaling group of cluster " + fleet.name)
    assert fleet.tag(fleet.instances[0]) is None


def test_with_lock_present_takes_the_slot_before_protecting_and_absent_gives_it_back(module_runner, fleet):
    first, second = fleet.instances[:2]
    node_of = dict((n.spec.provider_id.rsplit("/", 1)[1], n.metadata.name) for n in fleet.core.list_node().items)
    lock = {"holder": "run-lock", "max_unavailable": 1, "reason": "patch"}
    other = module_runner("eks_disruption_lock", dict(cluster_name=fleet.name, holder="run-other", nodes=[node_of[second]],
                                                      max_unavailable=1, state="acquired"))
    assert other.get("failed") is not True, other.get("msg")
    try:
        refused = maintenance(module_runner, fleet, instances=[first], state="present", holder="run-lock", lock=lock)
        assert refused["failed"] is True and "run-other" in refused["msg"] and "Nothing was changed" in refused["msg"]
        assert not fleet.protected(first) and fleet.tag(first) is None, "no slot, no protection"
    finally:
        module_runner("eks_disruption_lock", dict(cluster_name=fleet.name, holder="run-other", state="released"))

    done = maintenance(module_runner, fleet, instances=[first], state="present", holder="run-lock", lock=lock)
    assert done.get("failed") is not True, done.get("msg")
    assert done["changed"] is True and done["lock"]["acquired"] == [node_of[first]]
    assert fleet.protected(first) and fleet.tag(first)["by"] == "run-lock"
    held = module_runner("eks_disruption_lock", dict(cluster_name=fleet.name, holder="run-lock", state="query"))
    assert held["holders"] == {"run-lock": [node_of[first]]}

    undone = maintenance(module_runner, fleet, instances=[first], state="absent", lock={"holder": "run-lock"})
    assert undone["changed"] is True and undone["lock"]["released"] == [node_of[first]]
    assert not fleet.protected(first) and fleet.tag(first) is None
    assert module_runner("eks_disruption_lock", dict(cluster_name=fleet.name, holder="run-lock", state="query"))["holders"] == {}
    again = maintenance(module_runner, fleet, instances=[first], state="absent", lock={"holder": "run-lock"})
    assert again["changed"] is False
