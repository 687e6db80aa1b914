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
  - "With O(holder), the run's identity in the cluster-wide disruption lock is recorded beside it, in the
    C(selfmanaged.eks/rollout-holder) tag (a tag of its own: the record and a holder together can pass the 256
    characters of a tag value). The run that resumes (V(begin)) or undoes (V(abort)) a roll recorded under another
    holder becomes its owner and returns that holder as RV(previous_holder), whose disruption slots on the group's nodes
    it then takes over (O(selfmanaged.eks.eks_disruption_lock#module:state=taken_over)) instead of waiting for them to
    expire.
    A run that is still alive after another took its roll over refuses its next V(surge), V(select) or V(terminate) with a
    message naming the new owner, and its V(settle) and V(finish) leave the group to that owner."
  - "Steps: V(plan) (read only: validates the input and reports what is outdated, skipped and how many batches), V(begin)
    (record the state, suspend O(suspend_processes), keep cluster-autoscaler away as O(cluster_autoscaler) says),
    V(surge), V(select) (the old instances this batch may drain), V(terminate) (O(instances), with decrement),
    V(scale_back) (terminate the current instances whose Node is not Ready, with decrement: a surge that did not join),
    V(settle) (desired capacity back to the original), V(finish) (resume the suspended processes, restore max size and
    cluster-autoscaler's replicas, remove the annotations and the tag) and V(abort) (remove the surge above the original
    desired capacity, then finish)."
requirements:
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
      - One of O(name) and O(names) is required.
    type: str
  names:
    description:
      - Several node groups of the cluster, each taking the step in one call (the groups of a roll move together, so their
        waits overlap). The result then holds RV(groups), one entry per group with the keys a single O(name) returns,
        and the top-level RV(old_instances), RV(terminated) and RV(remaining) of all of them.
      - With O(step=plan), a failure names the problem of every group that has one; any other step stops at the first.
    type: list
    elements: str
    version_added: 0.1.0
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
  cluster_autoscaler:
    description:
      - How cluster-autoscaler is kept from scaling the group down while it rolls.
      - V(annotate) puts C(cluster-autoscaler.kubernetes.io/scale-down-disabled) on the group's Nodes (new ones at each
        V(select)); V(finish) removes the annotations it added.
      - V(scale_down) scales the Deployment O(cluster_autoscaler_namespace)/O(cluster_autoscaler_deployment) to 0 at V(begin)
        and records its replicas in the state tag; V(finish) and V(abort) scale it back to the recorded count, also in a
        later run after a killed one. A missing Deployment is refused by V(plan) and V(begin), before anything changes.
      - V(none) leaves cluster-autoscaler alone (a cluster without it).
      - Whatever this option says, V(finish) and V(abort) undo what the state tag and the annotations record.
    type: str
    choices: [annotate, scale_down, none]
    default: annotate
  cluster_autoscaler_namespace:
    description:
      - Namespace of the cluster-autoscaler Deployment, for O(cluster_autoscaler=scale_down).
    type: str
    default: kube-system
  cluster_autoscaler_deployment:
    description:
      - Name of the cluster-autoscaler Deployment, for O(cluster_autoscaler=scale_down).
    type: str
    default: cluster-autoscaler
  holder:
    description:
      - The run's identity in the cluster-wide disruption lock (the role's C(node_rollout_disruption_holder_id)), at most
        256 characters. Recorded by V(begin); see the description for what it changes. Omitted, nothing is recorded or
        checked.
    type: str
    version_added: 0.1.0
  instances:
    description:
      - Instance ids for O(step=terminate); with O(names), each group terminates the ones that are its own.
    type: list
    elements: str
    default: []
  surge_next:
    description:
      - With O(step=terminate), raise desired capacity for the next batch right after the terminations (what O(step=surge)
        does), so that one call ends a batch and starts the next one's launches.
      - With O(step=begin), raise it for the first batch once the rollout is recorded, so that one call starts the roll and
        its first launches.
    type: bool
    default: false
    version_added: 0.1.0
  max_disrupted:
    description:
      - With O(step=select), the most old instances all the named groups together may take down in this batch (the
        cluster-wide disruption lock's limit); groups are served in the order named. V(0) means no limit beyond each
        group's O(max_unavailable) and O(max_surge).
    type: int
    default: 0
    version_added: 0.1.0
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

- name: Record the rollout and scale cluster-autoscaler to 0 until step finish
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    name: demo-general
    step: begin
    cluster_autoscaler: scale_down

- name: Terminate two drained old instances, decrementing desired capacity
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    name: demo-general
    step: terminate
    instances: [i-0abc, i-0def]

- name: End a batch of two groups rolled together and start the next one
  selfmanaged.eks.eks_nodegroup_rollout:
    cluster_name: demo
    names: [demo-general, demo-batch]
    step: terminate
    instances: [i-0abc, i-0def, i-0123]
    surge_next: true
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
  sample: {"v": 1, "desired": 3, "max_size": 4, "suspended": ["AZRebalance"], "started": "2026-11-30T05:00:00Z",
           "autoscaler": {"deployment": "kube-system/cluster-autoscaler", "replicas": 1}}
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
cluster_autoscaler:
  description:
    - The cluster-autoscaler Deployment this step scaled (to 0 at V(begin), back at V(finish) or V(abort)) and its replicas
      after the step; None when the step did not touch it.
  returned: always
  type: dict
  sample: {"deployment": "kube-system/cluster-autoscaler", "replicas": 0}
resumed_processes:
  description: Processes V(finish) or V(abort) resumed.
  returned: always
  type: list
  elements: str
  sample: ["AZRebalance"]
holder:
  description: The run that owns the group's rollout after the step (its C(selfmanaged.eks/rollout-holder) tag); None when none is recorded.
  returned: always
  type: str
  sample: node_rollout/ops/20261130T081500-4711
previous_holder:
  description:
    - With V(begin) or V(abort), the holder recorded before this call when it was another run's (a killed run whose roll this
      one resumes or undoes); its disruption slots on the group's nodes are the caller's to take over. None otherwise.
    - With V(settle) or V(finish), the owner the group was left to, when another run took the roll over from the caller.
  returned: always
  type: str
  sample: node_rollout/ops/20261130T081500-4711
groups:
  description: With O(names), one entry per group, in the order named, with the keys a single O(name) returns.
  returned: with O(names)
  type: list
  elements: dict
  sample: [{"group": {"name": "demo-general"}, "desired_capacity": 4, "terminated": [], "old_instances": []}]
"""

import datetime
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils import rollout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import error_code
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_report import FleetReport
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import request_json

MERGE_PATCH = "application/merge-patch+json"
# Node annotations written side by side (the Kubernetes client keeps at least 10 connections)
PATCH_WORKERS = 8


class GroupRollout:
    """One call: the group as it is now, and the step's change (written unless in check mode)."""

    def __init__(self, module, reader, name, report):
        self.module = module
        self.params = module.params
        self.reader = reader
        self.name = name
        self.autoscaling = aws_client(module, "autoscaling")
        self.changed = False
        self.terminated = []
        self.resumed = []
        self.autoscaler = None
        self.old = []
        self.previous_holder = None
        self.read(report)
        self.before = self.settings()

    def read(self, report=None):
        """The group from `report` (one entry of FleetReport.snapshot()), else read again."""
        if report is None:
            [report] = [r for r in self.reader.snapshot() if r["name"] == self.name]
        self.group = report
        value = self.group["tags"].get(fleet.ROLLOUT_STATE_TAG)
        self.state = rollout.parse_state_tag(value, self.group["name"]) if value is not None else None
        self.owner = self.group["tags"].get(fleet.ROLLOUT_HOLDER_TAG)
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
                "suspended_processes": self.group["suspended_processes"], "rollout_state": self.group["tags"].get(fleet.ROLLOUT_STATE_TAG),
                "rollout_holder": self.group["tags"].get(fleet.ROLLOUT_HOLDER_TAG)}

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

    def write_state(self, record=None, holder=None):
        """Write the state record and/or the holder tag, in one call (a run killed after it finds both or neither)."""
        values = {}
        if record is not None:
            values[fleet.ROLLOUT_STATE_TAG] = rollout.state_tag_value(record)
        if holder is not None:
            values[fleet.ROLLOUT_HOLDER_TAG] = rollout.holder_tag_value(holder)
        self.changed = True
        if not self.module.check_mode:
            self.autoscaling.create_or_update_tags(Tags=[{"ResourceId": self.group["name"], "ResourceType": "auto-scaling-group", "Key": key,
                                                          "Value": value, "PropagateAtLaunch": False} for key, value in sorted(values.items())],
                                                   aws_retry=True)
        self.group["tags"].update(values)
        if record is not None:
            self.state = record
        if holder is not None:
            self.owner = values[fleet.ROLLOUT_HOLDER_TAG]

    def delete_state(self):
        keys = [key for key in (fleet.ROLLOUT_STATE_TAG, fleet.ROLLOUT_HOLDER_TAG) if key in self.group["tags"]]
        if not keys:
            return
        self.changed = True
        if not self.module.check_mode:
            self.autoscaling.delete_tags(Tags=[{"ResourceId": self.group["name"], "ResourceType": "auto-scaling-group", "Key": key} for key in keys],
                                         aws_retry=True)
        for key in keys:
            del self.group["tags"][key]
        self.state = None
        self.owner = None

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
        """Keep cluster-autoscaler from removing the group's Nodes (disable), or take back the annotations we added.

        The annotations are those of the Node list this module read; the PATCHes go out side by side.
        """
        patches = []
        for inst in self.group["instances"]:
            record = self.reader.nodes.get(inst["instance_id"])
            if not record:
                continue
            annotations = record.get("scale_down_annotations") or {}
            if disable and fleet.AUTOSCALER_SCALE_DOWN_DISABLED not in annotations:
                patches.append((record["name"], {fleet.AUTOSCALER_SCALE_DOWN_DISABLED: "true", fleet.ROLLOUT_SCALE_DOWN_MARK: "true"}))
            elif not disable and fleet.ROLLOUT_SCALE_DOWN_MARK in annotations:
                patches.append((record["name"], {fleet.AUTOSCALER_SCALE_DOWN_DISABLED: None, fleet.ROLLOUT_SCALE_DOWN_MARK: None}))
        if not patches:
            return
        self.changed = True
        if self.module.check_mode:
            return

        def patch_node(name_and_patch):
            name, patch = name_and_patch
            try:
                request_json(self.reader.api_client, "PATCH", "/api/v1/nodes/" + name, body={"metadata": {"annotations": patch}},
                             content_type=MERGE_PATCH)
            except KubeApiError as exc:
                if exc.status != 404:  # a Node deleted meanwhile (its instance terminating) has nothing left to annotate
                    raise

        with ThreadPoolExecutor(max_workers=min(PATCH_WORKERS, len(patches))) as pool:
            list(pool.map(patch_node, patches))

    def autoscaler_path(self, deployment):
        namespace, name = deployment.split("/", 1)
        return "/apis/apps/v1/namespaces/{0}/deployments/{1}".format(namespace, name)

    def autoscaler_replicas(self, deployment):
        """The Deployment's spec.replicas, None when it does not exist."""
        try:
            found = request_json(self.reader.api_client, "GET", self.autoscaler_path(deployment))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return (found.get("spec") or {}).get("replicas", 1)

    def wanted_autoscaler(self):
        """The Deployment O(cluster_autoscaler=scale_down) scales and its replicas now; RolloutError when it is missing."""
        deployment = rollout.autoscaler_deployment(self.params["cluster_autoscaler_namespace"], self.params["cluster_autoscaler_deployment"])
        replicas = self.autoscaler_replicas(deployment)
        if replicas is None:
            raise rollout.RolloutError(rollout.missing_autoscaler_message(self.params["cluster_name"], deployment))
        return deployment, replicas

    def scale_autoscaler(self, deployment, replicas, current):
        self.autoscaler = {"deployment": deployment, "replicas": replicas}
        if replicas == current:
            return
        self.changed = True
        if not self.module.check_mode:
            request_json(self.reader.api_client, "PATCH", self.autoscaler_path(deployment) + "/scale", body={"spec": {"replicas": replicas}},
                         content_type=MERGE_PATCH)

    # -- steps ---------------------------------------------------------------------------------

    def step_plan(self):
        if self.params["cluster_autoscaler"] == "scale_down":
            self.wanted_autoscaler()

    def step_begin(self):
        autoscaler = None
        if self.params["cluster_autoscaler"] == "scale_down":
            deployment, replicas = self.wanted_autoscaler()
            autoscaler = rollout.autoscaler_record(self.state, deployment, replicas)
        holder = self.params["holder"]
        if self.state is None:
            to_suspend = rollout.processes_to_suspend(self.params["suspend_processes"], self.group["suspended_processes"])
            started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            # The record goes first: a run killed right after it still finds what to resume.
            self.write_state(rollout.state_record(self.group, to_suspend, started, autoscaler), holder)
            self.set_processes(to_suspend, suspend=True)
        else:
            # Resuming: this run becomes the roll's owner; a killed run's slots are the caller's to take over.
            if rollout.ownership(self.owner, holder) == "other":
                self.previous_holder = self.owner
            record = dict(self.state, autoscaler=autoscaler) if autoscaler and self.state.get("autoscaler") != autoscaler else None
            new_holder = holder if holder and self.owner != holder else None
            if record is not None or new_holder is not None:
                self.write_state(record, new_holder)
        if autoscaler:
            self.scale_autoscaler(autoscaler["deployment"], 0, replicas)
        if self.params["cluster_autoscaler"] == "annotate":
            self.annotate_nodes(disable=True)
        if self.params["surge_next"]:
            self.step_surge()

    def step_surge(self):
        self.require_state()
        self.require_ownership()
        if self.params["step"] == "terminate":
            # the replace list still holds what this call terminated: count only what is left
            self.replace = [i for i in self.replace if (i.get("lifecycle_state") or "") == "InService"]
        target = rollout.surge_target(self.sizes, len(self.replace), self.group["desired_capacity"])
        if target > self.group["max_size"] and not self.params["raise_max"]:
            self.module.fail_json(msg="node group {0}: desired capacity {1} for this batch is above max_size {2}; set raise_max (node_rollout_raise_max: "
                                  "true) or lower max_surge".format(self.group["name"], target, self.group["max_size"]))
        self.update_group(desired=target, max_size=max(self.group["max_size"], target))

    def drain_count(self):
        """Old instances this group's batch may take down now (its Ready floor and batch size)."""
        self.require_state()
        self.require_ownership()
        return rollout.drain_count(self.sizes, self.group["counts"]["ready"], len(self.replace))

    def step_select(self, count=None):
        self.old = rollout.choose_old(self.replace, self.group["instances"], self.drain_count() if count is None else count)
        if self.params["cluster_autoscaler"] == "annotate":
            self.annotate_nodes(disable=True)  # the batch's new Nodes too

    def own(self, instance_ids):
        """Those of `instance_ids` that are instances of this group."""
        known = set(i["instance_id"] for i in self.group["instances"])
        return [i for i in instance_ids if i in known]

    def step_terminate(self, instances=None):
        self.require_ownership()
        if instances is None:
            instances = self.params["instances"]
            unknown = sorted(set(instances) - set(self.own(instances)))
            if unknown:
                self.module.fail_json(msg="instances {0} are not in node group {1}; name instances of the group (step select returns them)".format(
                    ", ".join(unknown), self.group["name"]))
        floor = self.sizes["desired"] - self.sizes["unavailable"]
        ready_after = sum(1 for i in self.group["instances"] if (i.get("node") or {}).get("ready") and i["instance_id"] not in instances)
        if instances and ready_after < floor:
            self.module.fail_json(msg="node group {0}: terminating {1} leaves {2} Ready nodes, below desired {3} - max_unavailable {4}; wait for the "
                                  "batch's new nodes first".format(self.group["name"], ", ".join(instances), ready_after,
                                                                   self.sizes["desired"], self.sizes["unavailable"]))
        self.terminate(instances)
        if self.params["surge_next"]:
            self.step_surge()

    def step_scale_back(self):
        self.terminate([i["instance_id"] for i in rollout.unjoined_new(self.group["instances"])])

    def step_settle(self):
        if self.left_to_owner():
            return
        original = self.state["desired"] if self.state else self.sizes["desired"]
        self.terminate([i["instance_id"] for i in rollout.surplus_new(self.group["instances"], self.group["desired_capacity"], original)])
        self.update_group(desired=max(original, self.group["desired_capacity"]))

    def step_finish(self):
        if self.left_to_owner():
            return
        if self.state is not None:
            resumable = [p for p in self.state["suspended"] if p in self.group["suspended_processes"]]
            self.set_processes(resumable, suspend=False)
            self.resumed = resumable
            self.update_group(max_size=rollout.restore_max_size(self.state["max_size"], self.group["desired_capacity"]))
            recorded = self.state.get("autoscaler")
            if recorded:
                current = self.autoscaler_replicas(recorded["deployment"])
                if current is not None:  # deleted meanwhile: nothing to scale back
                    self.scale_autoscaler(recorded["deployment"], recorded["replicas"], current)
        self.annotate_nodes(disable=False)
        self.delete_state()

    def step_abort(self):
        if rollout.ownership(self.owner, self.params["holder"]) == "other":
            self.previous_holder = self.owner  # undoing the roll, this run takes the killed run's slots over too
        if self.state is not None:
            self.step_settle()
        self.step_finish()

    def require_ownership(self):
        if rollout.ownership(self.owner, self.params["holder"]) == "other":
            self.module.fail_json(msg=rollout.taken_over_message(self.group["name"], self.owner, self.params["holder"]))

    def left_to_owner(self):
        """Whether another run took this roll over: then its owner restores the group, not this run."""
        if rollout.ownership(self.owner, self.params["holder"]) != "other" or self.params["step"] == "abort":
            return False
        self.previous_holder = self.owner
        return True

    def require_state(self):
        if self.state is None:
            self.module.fail_json(msg="node group {0} has no rollout in progress (no {1} tag); run step begin first".format(
                self.group["name"], fleet.ROLLOUT_STATE_TAG))

    def result(self):
        remaining = [i["instance_id"] for i in self.replace if (i.get("lifecycle_state") or "") == "InService"]
        old = self.old
        after = self.settings()
        result = dict(
            changed=self.changed, group=self.group, state=self.state, sizes=self.sizes, remaining=remaining, skipped=self.skipped,
            batches=rollout.batch_count(self.sizes, len(remaining)) if self.sizes["surge"] + self.sizes["unavailable"] else 0,
            waiting_for_protection=rollout.waiting_for_protection(self.group["instances"]),
            desired_capacity=self.group["desired_capacity"], terminated=self.terminated, resumed_processes=self.resumed,
            cluster_autoscaler=self.autoscaler, holder=self.owner, previous_holder=self.previous_holder,
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
        name=dict(type="str"),
        names=dict(type="list", elements="str"),
        step=dict(type="str", required=True, choices=["plan", "begin", "surge", "select", "terminate", "scale_back", "settle", "finish", "abort"]),
        max_surge=dict(type="str", default="1"),
        max_unavailable=dict(type="str", default="0"),
        raise_max=dict(type="bool", default=False),
        protected=dict(type="str", default="skip", choices=list(rollout.PROTECTED_CHOICES)),
        suspend_processes=dict(type="list", elements="str", default=list(rollout.DEFAULT_SUSPENDED_PROCESSES)),
        cluster_autoscaler=dict(type="str", default="annotate", choices=list(rollout.AUTOSCALER_CHOICES)),
        cluster_autoscaler_namespace=dict(type="str", default="kube-system"),
        cluster_autoscaler_deployment=dict(type="str", default="cluster-autoscaler"),
        instances=dict(type="list", elements="str", default=[]),
        surge_next=dict(type="bool", default=False),
        max_disrupted=dict(type="int", default=0),
        node_role_arn=dict(type="str"),
        holder=dict(type="str"),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True, required_one_of=[("name", "names")],
                          mutually_exclusive=[("name", "names")])
    several = module.params["names"] is not None
    if several and not module.params["names"]:
        module.fail_json(msg="names is empty; name the node groups to take the step, or use name for one")
    if module.params["max_disrupted"] < 0:
        module.fail_json(msg="max_disrupted {0} is negative; give 0 (no limit) or the most old instances to take down at once".format(
            module.params["max_disrupted"]))
    # FleetReport reads the groups named here, in one read for all of them
    names = list(module.params["names"]) if several else [module.params["name"]]
    module.params["names"] = names
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
        snapshot = dict((r["name"], r) for r in reader.snapshot())
        # A plan of several groups names every group's problem at once; any other step stops at the first.
        works, problems = [], []
        for group in names:
            try:
                work = GroupRollout(module, reader, group, snapshot[group])
            except rollout.RolloutError as exc:
                if step != "plan":
                    raise
                problems.append(str(exc))
                continue
            blocked = rollout.blocking_suspensions(work.group["suspended_processes"])
            if blocked and step in ("plan", "begin", "surge", "select"):
                problems.append("node group {0} has {1} suspended, so new instances cannot launch or old ones terminate; resume {1} "
                                "(aws autoscaling resume-processes) and run again".format(work.group["name"], ", ".join(blocked)))
                if step != "plan":
                    break
            works.append(work)
        if problems:
            module.fail_json(msg="; ".join(problems))
        for work in works:
            if step in ("surge", "select", "terminate"):
                work.require_ownership()  # before any group of the call changes
        take_steps(module, works, step)
        if step in ("terminate", "scale_back", "settle", "abort") and any(w.terminated for w in works) and not module.check_mode:
            after = dict((r["name"], r) for r in reader.snapshot())  # the groups after the terminations, for the result
            for work in works:
                work.read(after[work.name])
    except rollout.RolloutError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="node group {0}: step {1} failed".format(", ".join(names), step))
    except KubeApiError as exc:
        module.fail_json(msg="node group {0}: step {1}: Kubernetes API answered HTTP {2} {3}; the identity running the task needs to read and "
                         "patch nodes (and, with cluster_autoscaler scale_down, read and scale its Deployment)".format(
                             ", ".join(names), step, exc.status, exc.reason))
    if not several:
        module.exit_json(**works[0].result())
    results = [work.result() for work in works]
    combined = dict(changed=any(r["changed"] for r in results), groups=results,
                    old_instances=[i for r in results for i in r["old_instances"]],
                    terminated=[i for r in results for i in r["terminated"]],
                    remaining=[i for r in results for i in r["remaining"]])
    if module._diff:
        # one diff per group, headed with its name (Ansible shows a list of diffs one after another)
        combined["diff"] = [dict(r.pop("diff"), before_header=r["group"]["name"], after_header=r["group"]["name"]) for r in results]
    module.exit_json(**combined)


def take_steps(module, works, step):
    """The step for each group in turn; select shares max_disrupted among them, terminate hands each group its own instances."""
    if step == "select":
        for work, count in zip(works, rollout.shared_counts([work.drain_count() for work in works], module.params["max_disrupted"])):
            work.step_select(count)
        return
    if step == "terminate" and len(works) > 1:
        instances = module.params["instances"]
        unknown = sorted(set(instances) - set(i for work in works for i in work.own(instances)))
        if unknown:
            module.fail_json(msg="instances {0} are not in node groups {1}; name instances of these groups (step select returns them)".format(
                ", ".join(unknown), ", ".join(w.name for w in works)))
        for work in works:
            work.step_terminate(work.own(instances))
        return
    for work in works:
        getattr(work, "step_" + step)()


if __name__ == "__main__":
    main()
