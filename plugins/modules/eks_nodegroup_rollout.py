#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_nodegroup_rollout
version_added: 0.1.0
short_description: One step of replacing the outdated instances of a self-managed EKS node group, surge first
description:
  - The Auto Scaling side of the C(selfmanaged.eks.node_rollout) role, one step per call, so that the role reads like the
    runbook; waiting for Nodes is M(selfmanaged.eks.eks_nodegroup_info)'s job and draining M(selfmanaged.eks.eks_node_drain)'s.
  - "Each batch: desired capacity is raised for the batch's new instances (O(max_surge), within max size, which is raised
    only with O(raise_max=true)); once every instance has a Ready Node, old instances are chosen from the zones with the
    most instances (where the new capacity came up), drained by the role, and terminated with
    C(TerminateInstanceInAutoScalingGroup) decrementing desired capacity. Ready capacity never drops below the original
    desired capacity minus O(max_unavailable)."
  - "What a rollout changes is recorded in the group's C(selfmanaged.eks/rollout) tag (original desired capacity and max
    size, the processes it suspended, when it began), so that a run killed half-way is resumed (O(step=begin) keeps the
    record) or undone (O(step=abort)) by the next run, never left suspended silently."
  - "Steps: V(plan) (read only: validates the input and reports what is outdated, skipped and how many batches), V(begin)
    (record the state, suspend O(suspend_processes), annotate the group's Nodes with
    C(cluster-autoscaler.kubernetes.io/scale-down-disabled)), V(surge), V(select) (the old instances this batch may
    drain), V(terminate) (O(instances), with decrement), V(scale_back) (terminate the current instances whose Node is not
    Ready, with decrement: a surge that did not join), V(settle) (desired capacity back to the original), V(finish)
    (resume the suspended processes, restore max size, remove the annotations and the tag) and V(abort) (remove the
    surge above the original desired capacity, then finish)."
requirements:
  - kubernetes >= 29.0.0, to read the Nodes of the instances
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  cluster_name:
    description:
      - Name of the EKS cluster whose node group this is.
    type: str
    required: true
  name:
    description:
      - Name of the node group (Auto Scaling group) of the cluster.
    type: str
    required: true
  step:
    description:
      - What to do; see the description.
    type: str
    required: true
    choices: [plan, begin, surge, select, terminate, scale_back, settle, finish, abort]
  max_surge:
    description:
      - Instances above the original desired capacity while a batch runs, a count (V(1)) or a percentage (V(25%), rounded up).
    type: str
    default: "1"
  max_unavailable:
    description:
      - Ready nodes below the original desired capacity while a batch runs, a count or a percentage (rounded down), capped
        so that desired capacity never goes below min size.
      - O(max_surge) and O(max_unavailable) may not both be 0.
    type: str
    default: "0"
  raise_max:
    description:
      - Raise max size when the surge needs it (restored by V(finish)). Without it such a surge is refused.
    type: bool
    default: false
  protected:
    description:
      - Outdated instances protected from scale-in. V(skip) leaves them (reported), V(replace) replaces them like the
        others, V(wait) replaces them too; the role waits until their protection is removed before it starts.
    type: str
    choices: [skip, wait, replace]
    default: skip
  suspend_processes:
    description:
      - Auto Scaling processes suspended while the rollout runs (those not suspended already; only those are resumed).
        C(Launch) and C(Terminate) are refused, the roll needs them.
    type: list
    elements: str
    default: [AZRebalance, AlarmNotification, ScheduledActions]
  instances:
    description:
      - Instance ids for O(step=terminate).
    type: list
    elements: str
    default: []
  node_role_arn:
    description:
      - ARN of the node IAM role, for the join diagnosis (as in M(selfmanaged.eks.eks_nodegroup_info)).
    type: str
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Supports check mode (each step computes its change and reports it without writing) and diff mode (the group's desired
    capacity, max size, suspended processes and state tag before and after).
  - Outdated instances in Standby, or not InService, are skipped and reported; they do not count towards desired capacity.
seealso:
  - module: selfmanaged.eks.eks_nodegroup_info
  - module: selfmanaged.eks.eks_node_drain
  - module: amazon.aws.autoscaling_group
    description: >-
      Its instance refresh replaces instances without draining their nodes or waiting for new ones to be Ready;
      this module surges first and drains within PodDisruptionBudgets.
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: What a rollout of the general group would do
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    name: demo-general
    step: plan
    max_surge: 25%
  register: plan

- name: Raise desired capacity for the next batch
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    name: demo-general
    step: surge
    max_surge: 25%

- name: Terminate two drained old instances, decrementing desired capacity
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    name: demo-general
    step: terminate
    instances: [i-0abc, i-0def]
"""

RETURN = r"""
group:
  description: The group after the step, as M(selfmanaged.eks.eks_nodegroup_info) reports it.
  returned: always
  type: dict
  sample: {"name": "demo-general", "desired_capacity": 3, "max_size": 4, "instances": []}
state:
  description: The rollout state record of the group's tag (None when no rollout is in progress).
  returned: always
  type: dict
  sample: {"v": 1, "desired": 3, "max_size": 4, "suspended": ["AZRebalance"], "started": "2026-11-30T05:00:00Z"}
sizes:
  description: Original desired capacity and max size, surge and max unavailable as counts, and the max size the surge needs.
  returned: always
  type: dict
  sample: {"desired": 3, "max_size": 4, "surge": 1, "unavailable": 0, "max_size_needed": 4}
remaining:
  description: Instance ids of the outdated instances still to replace.
  returned: always
  type: list
  elements: str
  sample: ["i-0abc"]
skipped:
  description: Outdated instances left alone, with the reason and what to do.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0abc", "reason": "in Standby (it does not count towards desired capacity); exit Standby or terminate it, then run again"}]
batches:
  description: Batches still needed for RV(remaining).
  returned: always
  type: int
  sample: 2
waiting_for_protection:
  description: Outdated InService instances still protected from scale-in.
  returned: always
  type: list
  elements: str
  sample: []
desired_capacity:
  description: Desired capacity after the step.
  returned: always
  type: int
  sample: 4
old_instances:
  description: With O(step=select), the old instances this batch drains and terminates, with their Node names and zones.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0abc", "node_name": "ip-10-0-1-10.ec2.internal", "availability_zone": "us-east-1a"}]
terminated:
  description: Instance ids terminated by the step (with decrement).
  returned: always
  type: list
  elements: str
  sample: ["i-0abc"]
resumed_processes:
  description: Processes V(finish) or V(abort) resumed.
  returned: always
  type: list
  elements: str
  sample: ["AZRebalance"]
"""

import datetime

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

try:
    from kubernetes.client.exceptions import ApiException
except ImportError:
    ApiException = None  # kube_api_client() reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils import rollout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_report import FleetReport
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import request_json

MERGE_PATCH = "application/merge-patch+json"


class GroupRollout:
    """One call: the group as it is now, and the step's change (written unless in check mode)."""

    def __init__(self, module, reader):
        self.module = module
        self.params = module.params
        self.reader = reader
        self.autoscaling = aws_client(module, "autoscaling")
        self.changed = False
        self.terminated = []
        self.resumed = []
        self.read()
        self.before = self.settings()

    def read(self):
        [self.group] = self.reader.snapshot()
        value = self.group["tags"].get(fleet.ROLLOUT_STATE_TAG)
        self.state = rollout.parse_state_tag(value, self.group["name"]) if value is not None else None
        try:
            self.sizes = rollout.rollout_sizes(self.group, self.params["max_surge"], self.params["max_unavailable"], self.params["raise_max"], self.state)
        except rollout.RolloutError:
            if self.params["step"] in ("plan", "begin", "surge", "select", "terminate"):
                raise
            # Undoing never depends on the sizes being valid: restore with what the record (or the group) says.
            original = self.state or {"desired": self.group["desired_capacity"], "max_size": self.group["max_size"]}
            self.sizes = {"desired": original["desired"], "max_size": original["max_size"], "surge": 0, "unavailable": 0,
                          "max_size_needed": original["max_size"]}
        self.replace, self.skipped = rollout.outdated_instances(self.group["instances"], self.params["protected"])
        if self.params["protected"] == "wait":
            waiting = set(rollout.waiting_for_protection(self.group["instances"]))
            self.replace = [i for i in self.replace if i["instance_id"] not in waiting]

    def settings(self):
        return {"desired_capacity": self.group["desired_capacity"], "max_size": self.group["max_size"],
                "suspended_processes": self.group["suspended_processes"], "rollout_state": self.group["tags"].get(fleet.ROLLOUT_STATE_TAG)}

    # -- writes (each skipped in check mode, the record updated as the API would) -----------------

    def update_group(self, desired=None, max_size=None):
        changes = {}
        if max_size is not None and max_size != self.group["max_size"]:
            changes["MaxSize"] = max_size
        if desired is not None and desired != self.group["desired_capacity"]:
            changes["DesiredCapacity"] = desired
        if not changes:
            return
        self.changed = True
        if not self.module.check_mode:
            self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=self.group["name"], aws_retry=True, **changes)
        self.group["max_size"] = changes.get("MaxSize", self.group["max_size"])
        self.group["desired_capacity"] = changes.get("DesiredCapacity", self.group["desired_capacity"])

    def terminate(self, instance_ids):
        members = dict((i["instance_id"], i) for i in self.group["instances"])
        for instance_id in instance_ids:
            member = members.get(instance_id)
            if member is None or not (member.get("lifecycle_state") or "").startswith(("Pending", "InService")):
                continue  # gone or going already (a resumed run)
            self.changed = True
            if not self.module.check_mode:
                try:
                    self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=True, aws_retry=True)
                except botocore.exceptions.ClientError as exc:
                    if error_code(exc) == "ValidationError" and "not found" in str(exc).lower():
                        continue
                    raise
            member["lifecycle_state"] = "Terminating"
            self.group["desired_capacity"] -= 1
            self.terminated.append(instance_id)

    def write_state(self, record):
        self.changed = True
        value = rollout.state_tag_value(record)
        if not self.module.check_mode:
            self.autoscaling.create_or_update_tags(Tags=[{"ResourceId": self.group["name"], "ResourceType": "auto-scaling-group",
                                                          "Key": fleet.ROLLOUT_STATE_TAG, "Value": value, "PropagateAtLaunch": False}], aws_retry=True)
        self.group["tags"][fleet.ROLLOUT_STATE_TAG] = value
        self.state = record

    def delete_state(self):
        if fleet.ROLLOUT_STATE_TAG not in self.group["tags"]:
            return
        self.changed = True
        if not self.module.check_mode:
            self.autoscaling.delete_tags(Tags=[{"ResourceId": self.group["name"], "ResourceType": "auto-scaling-group", "Key": fleet.ROLLOUT_STATE_TAG}],
                                         aws_retry=True)
        del self.group["tags"][fleet.ROLLOUT_STATE_TAG]
        self.state = None

    def set_processes(self, processes, suspend):
        if not processes:
            return
        self.changed = True
        if not self.module.check_mode:
            call = self.autoscaling.suspend_processes if suspend else self.autoscaling.resume_processes
            call(AutoScalingGroupName=self.group["name"], ScalingProcesses=list(processes), aws_retry=True)
        current = set(self.group["suspended_processes"])
        self.group["suspended_processes"] = sorted(current | set(processes) if suspend else current - set(processes))

    def annotate_nodes(self, disable):
        """Keep cluster-autoscaler from removing the group's Nodes (disable), or take back the annotations we added."""
        for inst in self.group["instances"]:
            record = self.reader.nodes.get(inst["instance_id"])
            if not record:
                continue
            path = "/api/v1/nodes/" + record["name"]
            try:
                # Node records carry no annotations: read the Node itself.
                annotations = (request_json(self.reader.api_client, "GET", path).get("metadata") or {}).get("annotations") or {}
            except ApiException as exc:
                if exc.status == 404:
                    continue  # deleted meanwhile (its instance is terminating)
                raise
            if disable and fleet.AUTOSCALER_SCALE_DOWN_DISABLED not in annotations:
                patch = {fleet.AUTOSCALER_SCALE_DOWN_DISABLED: "true", fleet.ROLLOUT_SCALE_DOWN_MARK: "true"}
            elif not disable and fleet.ROLLOUT_SCALE_DOWN_MARK in annotations:
                patch = {fleet.AUTOSCALER_SCALE_DOWN_DISABLED: None, fleet.ROLLOUT_SCALE_DOWN_MARK: None}
            else:
                continue
            self.changed = True
            if not self.module.check_mode:
                try:
                    request_json(self.reader.api_client, "PATCH", path, body={"metadata": {"annotations": patch}}, content_type=MERGE_PATCH)
                except ApiException as exc:
                    if exc.status != 404:  # a Node deleted meanwhile has nothing left to annotate
                        raise

    # -- steps ---------------------------------------------------------------------------------

    def step_plan(self):
        pass

    def step_begin(self):
        if self.state is None:
            to_suspend = rollout.processes_to_suspend(self.params["suspend_processes"], self.group["suspended_processes"])
            started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            # The record goes first: a run killed right after it still finds what to resume.
            self.write_state(rollout.state_record(self.group, to_suspend, started))
            self.set_processes(to_suspend, suspend=True)
        self.annotate_nodes(disable=True)

    def step_surge(self):
        self.require_state()
        target = rollout.surge_target(self.sizes, len(self.replace), self.group["desired_capacity"])
        if target > self.group["max_size"] and not self.params["raise_max"]:
            self.module.fail_json(msg="node group {0}: desired capacity {1} for this batch is above max_size {2}; set raise_max (node_rollout_raise_max: "
                                  "true) or lower max_surge".format(self.group["name"], target, self.group["max_size"]))
        self.update_group(desired=target, max_size=max(self.group["max_size"], target))

    def step_select(self):
        self.require_state()
        ready = self.group["counts"]["ready"]
        count = rollout.drain_count(self.sizes, ready, len(self.replace))
        self.old = rollout.choose_old(self.replace, self.group["instances"], count)
        self.annotate_nodes(disable=True)  # the batch's new Nodes too

    def step_terminate(self):
        known = set(i["instance_id"] for i in self.group["instances"])
        unknown = sorted(set(self.params["instances"]) - known)
        if unknown:
            self.module.fail_json(msg="instances {0} are not in node group {1}; name instances of the group (step select returns them)".format(
                ", ".join(unknown), self.group["name"]))
        floor = self.sizes["desired"] - self.sizes["unavailable"]
        ready_after = sum(1 for i in self.group["instances"] if (i.get("node") or {}).get("ready") and i["instance_id"] not in self.params["instances"])
        if ready_after < floor:
            self.module.fail_json(msg="node group {0}: terminating {1} leaves {2} Ready nodes, below desired {3} - max_unavailable {4}; wait for the "
                                  "batch's new nodes first".format(self.group["name"], ", ".join(self.params["instances"]), ready_after,
                                                                   self.sizes["desired"], self.sizes["unavailable"]))
        self.terminate(self.params["instances"])

    def step_scale_back(self):
        self.terminate([i["instance_id"] for i in rollout.unjoined_new(self.group["instances"])])

    def step_settle(self):
        original = self.state["desired"] if self.state else self.sizes["desired"]
        self.terminate([i["instance_id"] for i in rollout.surplus_new(self.group["instances"], self.group["desired_capacity"], original)])
        self.update_group(desired=max(original, self.group["desired_capacity"]))

    def step_finish(self):
        if self.state is not None:
            resumable = [p for p in self.state["suspended"] if p in self.group["suspended_processes"]]
            self.set_processes(resumable, suspend=False)
            self.resumed = resumable
            self.update_group(max_size=rollout.restore_max_size(self.state["max_size"], self.group["desired_capacity"]))
        self.annotate_nodes(disable=False)
        self.delete_state()

    def step_abort(self):
        if self.state is not None:
            self.step_settle()
        self.step_finish()

    def require_state(self):
        if self.state is None:
            self.module.fail_json(msg="node group {0} has no rollout in progress (no {1} tag); run step begin first".format(
                self.group["name"], fleet.ROLLOUT_STATE_TAG))

    def result(self):
        remaining = [i["instance_id"] for i in self.replace if (i.get("lifecycle_state") or "") == "InService"]
        old = getattr(self, "old", [])
        after = self.settings()
        result = dict(
            changed=self.changed, group=self.group, state=self.state, sizes=self.sizes, remaining=remaining, skipped=self.skipped,
            batches=rollout.batch_count(self.sizes, len(remaining)) if self.sizes["surge"] + self.sizes["unavailable"] else 0,
            waiting_for_protection=rollout.waiting_for_protection(self.group["instances"]),
            desired_capacity=self.group["desired_capacity"], terminated=self.terminated, resumed_processes=self.resumed,
            old_instances=[{"instance_id": i["instance_id"], "node_name": (i.get("node") or {}).get("node_name"),
                            "availability_zone": i.get("availability_zone")} for i in old],
        )
        if self.module._diff:
            result["diff"] = {"before": self.before, "after": after}
        return result


def main():
    argument_spec = dict(KUBE_CONNECTION_SPEC)
    argument_spec.update(
        cluster_name=dict(type="str", required=True),
        name=dict(type="str", required=True),
        step=dict(type="str", required=True, choices=["plan", "begin", "surge", "select", "terminate", "scale_back", "settle", "finish", "abort"]),
        max_surge=dict(type="str", default="1"),
        max_unavailable=dict(type="str", default="0"),
        raise_max=dict(type="bool", default=False),
        protected=dict(type="str", default="skip", choices=list(rollout.PROTECTED_CHOICES)),
        suspend_processes=dict(type="list", elements="str", default=list(rollout.DEFAULT_SUSPENDED_PROCESSES)),
        instances=dict(type="list", elements="str", default=[]),
        node_role_arn=dict(type="str"),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    module.params["names"] = [module.params["name"]]  # FleetReport reads the groups named here
    name = module.params["cluster_name"]
    try:
        cluster = describe_cluster(aws_client(module, "eks"), name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(name))
    if cluster is None:
        module.fail_json(msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(name, module.region))
    reader = FleetReport(module, cluster, kube_api_client(module, cluster))
    step = module.params["step"]
    try:
        if step != "plan":
            rollout.processes_to_suspend(module.params["suspend_processes"], [])
        work = GroupRollout(module, reader)
        blocked = rollout.blocking_suspensions(work.group["suspended_processes"])
        if blocked and step in ("plan", "begin", "surge", "select"):
            module.fail_json(msg="node group {0} has {1} suspended, so new instances cannot launch or old ones terminate; resume {1} "
                             "(aws autoscaling resume-processes) and run again".format(work.group["name"], ", ".join(blocked)))
        getattr(work, "step_" + step)()
        if step in ("terminate", "scale_back", "settle", "abort") and work.terminated and not module.check_mode:
            work.read()  # the group after the terminations, for the result
    except rollout.RolloutError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="node group {0}: step {1} failed".format(module.params["name"], step))
    except ApiException as exc:
        module.fail_json(msg="node group {0}: step {1}: Kubernetes API answered HTTP {2} {3}; the identity running the task needs to read and "
                         "patch nodes".format(module.params["name"], step, exc.status, exc.reason))
    module.exit_json(**work.result())


if __name__ == "__main__":
    main()
