#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_node_maintenance
version_added: 0.1.0
short_description: Keep Auto Scaling and cluster-autoscaler away from self-managed EKS nodes in maintenance, and read their health
description:
  - "O(state=present) protects instances of self-managed node groups while they are patched or rebooted in place:
    scale-in protection on; for groups with ELB health checks the group's C(ReplaceUnhealthy) process suspended (a rebooting
    node fails them and the ASG would replace it); and the C(cluster-autoscaler.kubernetes.io/scale-down-disabled) annotation
    on the Node."
  - "Standby is not used for ELB health-checked groups: a Standby instance leaves the group's desired capacity (the ASG
    launches a replacement, unless desired is decremented, which a group at its min size refuses), races cluster-autoscaler,
    and drops out of the P(selfmanaged.eks.eks_nodes#inventory) inventory (InService instances), so a re-run would not find it."
  - "What the module added is recorded in the instance's C(selfmanaged.eks/maintenance) tag (JSON: by, reason, since, added)
    B(before) anything is changed. O(state=absent) removes exactly what that record names, and the tag; protections that
    were in place before (an operator's scale-in protection, an annotation someone else set) stay. A run killed half-way
    leaves the tag, so the next run finds and removes what it added."
  - "C(ReplaceUnhealthy) is group-wide: when an instance that suspended it leaves maintenance while other instances of its
    group are still in maintenance, the suspension is handed over to one of them (its record takes it over); the last one
    resumes the process."
  - "O(state=status) changes nothing: per instance its Node (Ready, schedulable, C(bootID), cordon owner), the readiness of
    its DaemonSet pods (CNI, kube-proxy) and its maintenance record; for the cluster, the Nodes that are not Ready and every
    PodDisruptionBudget's status. With O(wait=true) it waits until every instance's Node is Ready, its DaemonSet pods are
    Ready and, for instances named in O(boot_ids), the Node reports another C(bootID) (it rebooted)."
requirements:
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  cluster_name:
    description:
      - Name of the EKS cluster whose nodes these are.
    type: str
    required: true
  instances:
    description:
      - EC2 instance ids of the nodes (the P(selfmanaged.eks.eks_nodes#inventory) inventory's C(eks_node_instance_id)).
      - Their Nodes are found by C(spec.providerID).
      - An instance that is not in an Auto Scaling group of O(cluster_name) is an error before anything changes.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) puts the protections in place and records them; V(absent) removes what the record names;
        V(status) reads.
    type: str
    choices: [present, absent, status]
    default: status
  holder:
    description:
      - Who puts the node in maintenance, recorded with it (for example the run's lock holder identity).
    type: str
    default: selfmanaged.eks.eks_node_maintenance
  reason:
    description:
      - Why, recorded with it.
    type: str
    default: maintenance
  scale_in_protection:
    description:
      - With O(state=present), turn on the instance's scale-in protection.
    type: bool
    default: true
  disable_scale_down:
    description:
      - With O(state=present), add the cluster-autoscaler scale-down-disabled annotation to the Node.
    type: bool
    default: true
  wait:
    description:
      - With O(state=status), wait until every instance's Node is Ready with its DaemonSet pods Ready (and a new C(bootID)
        for the instances in O(boot_ids)); fail with each node's state after O(wait_timeout) seconds.
    type: bool
    default: false
  boot_ids:
    description:
      - With O(wait=true), C(instance id -> bootID) read before a reboot; the wait ends for that instance only once its
        Node reports another C(bootID).
    type: dict
    default: {}
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 600
  wait_delay:
    description:
      - Seconds between reads while waiting, at most. The first reads come sooner (a quarter of a second, then doubling up to
        O(wait_delay)), so a node that is back within a second is seen within a second.
    type: float
    default: 2
  lock:
    description:
      - "Take the slots of the instances' Nodes in the cluster-wide disruption lock in the same call, as
        M(selfmanaged.eks.eks_disruption_lock) would: with O(state=present) the slots are taken (all or none, waiting up
        to O(lock.wait_timeout)) before any protection is put in place, so a node that gets no slot is not touched; with
        O(state=absent) they are given back after the protections are removed. One call instead of two per node."
      - Omitted, the lock is not touched. Ignored with O(state=status).
    type: dict
    suboptions:
      holder:
        description: Identity of the run in the lock (M(selfmanaged.eks.eks_disruption_lock)'s O(selfmanaged.eks.eks_disruption_lock#module:holder)).
        type: str
        required: true
      max_unavailable:
        description: Nodes of the cluster disrupted at once across every holder. Required with O(state=present).
        type: int
      reason:
        description: Free text stored with the slots, for example V(patch).
        type: str
        default: ""
      ttl_seconds:
        description: Seconds a slot counts without being renewed.
        type: int
        default: 1800
      wait_timeout:
        description: Seconds to wait for free slots with O(state=present); V(0) fails at once when they are not free.
        type: int
        default: 0
      lease_name:
        description: Name of the Lease that holds the lock.
        type: str
        default: selfmanaged-eks-disruption
      lease_namespace:
        description: Namespace of the Lease.
        type: str
        default: kube-system
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Check mode computes the real change (the same C(changed) and C(diff)) and writes nothing.
  - A second identical run reports C(changed=false).
seealso:
  - module: selfmanaged.eks.eks_node_drain
  - name: The node_patching role
    description: Uses this module around each node's drain, patch and reboot.
    link: https://github.com/selfmanaged/eks/tree/main/roles/node_patching
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Protect a node before it is drained and rebooted
  selfmanaged.eks.eks_node_maintenance:
    cluster_name: demo
    instances: [i-0123456789abcdef0]
    state: present
    holder: node_patching/ops@ctl-1/20261130T081500-4711
    reason: patch

- name: Or both in one call - take its slot in the cluster-wide disruption lock, then protect it
  selfmanaged.eks.eks_node_maintenance:
    cluster_name: demo
    instances: [i-0123456789abcdef0]
    state: present
    holder: node_patching/ops@ctl-1/20261130T081500-4711
    reason: patch
    lock:
      holder: node_patching/ops@ctl-1/20261130T081500-4711
      max_unavailable: 1
      reason: patch
      wait_timeout: 900

- name: Read its bootID before the reboot
  selfmanaged.eks.eks_node_maintenance:
    cluster_name: demo
    instances: [i-0123456789abcdef0]
  register: before

- name: Wait until it is Ready again with a new bootID and its DaemonSet pods Ready
  selfmanaged.eks.eks_node_maintenance:
    cluster_name: demo
    instances: [i-0123456789abcdef0]
    wait: true
    boot_ids: "{{ {'i-0123456789abcdef0': before.instances[0].node.boot_id} }}"
    wait_timeout: 900

- name: Remove exactly the protections it added
  selfmanaged.eks.eks_node_maintenance:
    cluster_name: demo
    instances: [i-0123456789abcdef0]
    state: absent
"""

RETURN = r"""
instances:
  description: One entry per instance, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The EC2 instance id.
      type: str
    group:
      description: Its Auto Scaling group.
      type: str
    availability_zone:
      description: Its availability zone.
      type: str
    health_check_type:
      description: The group's health check type (C(EC2) or C(ELB)).
      type: str
    protections:
      description: Which protections are in place after the call (scale_in_protection, replace_unhealthy, scale_down_disabled).
      type: dict
    maintenance:
      description: The maintenance record after the call (by, reason, since, added), or null when it is not in maintenance.
      type: dict
    added:
      description: Protections this call put in place.
      type: list
      elements: str
    removed:
      description: Protections this call took away.
      type: list
      elements: str
    node:
      description:
        - Its Node (name, ready, schedulable, boot_id, cordoned_by) or null when it has none; with the readiness of its
          DaemonSet pods (daemonset_pods total, ready, not_ready).
        - With O(state=present) or O(state=absent), only its name and C(boot_id) as read at the start of the call (the C(boot_id)
          to give O(boot_ids) after a reboot, without another call).
      type: dict
cluster:
  description: With O(state=status), the cluster's Node count and the names of the Nodes that are not Ready.
  returned: when state is status
  type: dict
  sample: {"nodes": 6, "not_ready": ["ip-10-0-1-5.ec2.internal"]}
pdbs:
  description: With O(state=status), every PodDisruptionBudget (name C(namespace/name), disruptions_allowed, current_healthy, desired_healthy).
  returned: when state is status
  type: list
  elements: dict
lock:
  description:
    - With O(lock), what the lock call returned (M(selfmanaged.eks.eks_disruption_lock)'s return values, among them
      C(acquired), C(released), C(slots), C(holders), C(waited_seconds)).
  returned: when lock is given and the instances have Nodes
  type: dict
waited_seconds:
  description: Seconds waited with O(wait=true).
  returned: when wait is true
  type: float
wait_state:
  description:
    - With O(wait=true), where each instance's Node stood at the last read, one short line each (Ready or NotReady, its
      C(bootID) new or unchanged for the instances in O(boot_ids), its DaemonSet pods Ready), joined with C(; ).
    - Returned also when the wait times out, so a role that waits in slices can print it.
  returned: when wait is true
  type: str
  sample: "Node ip-10-0-1-5.ec2.internal NotReady, bootID unchanged"
timed_out:
  description:
    - With O(wait=true), whether the task failed because O(wait_timeout) ran out (and not for another reason), so that a
      role can wait in slices of O(wait_timeout) and call again.
    - With O(lock) and O(state=present), the lock's own C(timed_out) (with C(holders), C(in_use), C(free) and C(waited_seconds) of
      M(selfmanaged.eks.eks_disruption_lock)) when the task failed because O(lock.wait_timeout) ran out before a slot was free;
      nothing was protected then.
  returned: when wait is true, or when the lock wait timed out
  type: bool
"""

import datetime
import json
import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as dlock
from ansible_collections.selfmanaged.eks.plugins.module_utils import fleet
from ansible_collections.selfmanaged.eks.plugins.module_utils import maintenance as mt
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import all_pages
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import aws_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import describe_cluster
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import WaitTimeout
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import wait_until
from ansible_collections.selfmanaged.eks.plugins.module_utils.disruption_lock_lease import LeaseApi
from ansible_collections.selfmanaged.eks.plugins.module_utils.disruption_lock_lease import result_of
from ansible_collections.selfmanaged.eks.plugins.module_utils.disruption_lock_lease import run as run_lock
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import chunks
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_groups
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import describe_instances
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet_aws import list_nodes
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import get_json
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import kube_api_client
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import request_json

MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (10, 30)
# Seconds before the second read of a wait; the gap then doubles up to wait_delay.
FIRST_WAIT_DELAY = 0.25


class Maintenance:
    """One call: read the instances, their groups and Nodes; apply or remove protections; report."""

    def __init__(self, module, api_client):
        self.module = module
        self.params = module.params
        self.api_client = api_client
        self.ec2 = aws_client(module, "ec2")
        self.autoscaling = aws_client(module, "autoscaling")
        self.changed = False
        self.read()

    # -- reading ---------------------------------------------------------------------------

    def read(self):
        ids = list(dict.fromkeys(self.params["instances"]))
        members = {}
        for chunk in chunks(ids, 50):
            for item in all_pages(self.autoscaling.describe_auto_scaling_instances, "AutoScalingInstances", "NextToken", InstanceIds=chunk):
                members[item["InstanceId"]] = item["AutoScalingGroupName"]
        self.groups = dict((g["name"], g) for g in describe_groups(self.autoscaling, sorted(set(members.values())))) if members else {}
        cluster = self.params["cluster_name"]
        foreign = [i for i in ids if i not in members or self.groups.get(members[i], {}).get("cluster") != cluster]
        if foreign:
            self.module.fail_json(msg="instances {0} are not in an Auto Scaling group of cluster {1} (tagged {2}=owned); name instances of the "
                                  "cluster's self-managed node groups (the eks_nodes inventory's eks_node_instance_id)".format(
                                      ", ".join(foreign), cluster, fleet.cluster_tag(cluster)))
        self.group_of = members
        # Every member of the groups involved: a ReplaceUnhealthy hand-over looks at the others' records.
        all_members = [m["instance_id"] for g in self.groups.values() for m in g["instances"]]
        self.ec2_instances = describe_instances(self.ec2, sorted(set(all_members) | set(ids)))
        by_instance, by_name = fleet.node_index(list_nodes(self.api_client, timeout=REQUEST_TIMEOUT))
        self.all_nodes = by_name
        self.records = []
        for instance_id in ids:
            group = self.groups[members[instance_id]]
            member = next((m for m in group["instances"] if m["instance_id"] == instance_id), {})
            ec2 = self.ec2_instances.get(instance_id) or {"instance_id": instance_id, "tags": {}}
            node = fleet.node_of_instance(ec2, by_instance, by_name)
            self.records.append({
                "instance_id": instance_id,
                "group": group["name"],
                "availability_zone": member.get("availability_zone") or ec2.get("availability_zone"),
                "health_check_type": group.get("health_check_type") or "EC2",
                "member": member,
                "node_record": node,
                "maintenance": mt.parse_record((ec2.get("tags") or {}).get(fleet.MAINTENANCE_TAG)),
                "added": [],
                "removed": [],
            })

    def node_json(self, name):
        try:
            return get_json(self.api_client, "/api/v1/nodes/" + name, timeout=REQUEST_TIMEOUT)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def in_place(self, record, node=None):
        group = self.groups[record["group"]]
        annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
        return {
            mt.SCALE_IN: bool(record["member"].get("protected_from_scale_in")),
            mt.REPLACE_UNHEALTHY: mt.REPLACE_UNHEALTHY_PROCESS in group["suspended_processes"],
            mt.SCALE_DOWN: annotations.get(fleet.AUTOSCALER_SCALE_DOWN_DISABLED) == "true",
        }

    def others_in_maintenance(self, record):
        """Other members of the record's group with a maintenance record (those also being handled by this call count only
        while they stay in maintenance, which absent does not let them)."""
        handled = set(r["instance_id"] for r in self.records) if self.params["state"] == "absent" else set()
        others = []
        for member in self.groups[record["group"]]["instances"]:
            iid = member["instance_id"]
            if iid == record["instance_id"] or iid in handled:
                continue
            tags = (self.ec2_instances.get(iid) or {}).get("tags") or {}
            if fleet.MAINTENANCE_TAG in tags:
                others.append(iid)
        return sorted(others)

    # -- writing ---------------------------------------------------------------------------

    def write_tag(self, instance_id, value):
        self.changed = True
        if not self.module.check_mode:
            if value is None:
                self.ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": fleet.MAINTENANCE_TAG}], aws_retry=True)
            else:
                self.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": fleet.MAINTENANCE_TAG, "Value": value}], aws_retry=True)
        tags = self.ec2_instances.setdefault(instance_id, {"instance_id": instance_id, "tags": {}}).setdefault("tags", {})
        if value is None:
            tags.pop(fleet.MAINTENANCE_TAG, None)
        else:
            tags[fleet.MAINTENANCE_TAG] = value

    def set_protection(self, record, protection, on):
        self.changed = True
        group = self.groups[record["group"]]
        if protection == mt.SCALE_IN:
            if not self.module.check_mode:
                self.autoscaling.set_instance_protection(InstanceIds=[record["instance_id"]], AutoScalingGroupName=group["name"],
                                                         ProtectedFromScaleIn=on, aws_retry=True)
            record["member"]["protected_from_scale_in"] = on
        elif protection == mt.REPLACE_UNHEALTHY:
            if not self.module.check_mode:
                call = self.autoscaling.suspend_processes if on else self.autoscaling.resume_processes
                call(AutoScalingGroupName=group["name"], ScalingProcesses=[mt.REPLACE_UNHEALTHY_PROCESS], aws_retry=True)
            current = set(group["suspended_processes"])
            group["suspended_processes"] = sorted(current | {mt.REPLACE_UNHEALTHY_PROCESS} if on else current - {mt.REPLACE_UNHEALTHY_PROCESS})
        elif protection == mt.SCALE_DOWN and record["node_record"]:
            if not self.module.check_mode:
                try:
                    request_json(self.api_client, "PATCH", "/api/v1/nodes/" + record["node_record"]["name"], timeout=REQUEST_TIMEOUT,
                                 body={"metadata": {"annotations": {fleet.AUTOSCALER_SCALE_DOWN_DISABLED: "true" if on else None}}},
                                 content_type=MERGE_PATCH)
                except KubeApiError as exc:
                    if exc.status != 404:  # a Node deleted meanwhile has nothing left to annotate
                        raise
        record["in_place"][protection] = on
        (record["added"] if on else record["removed"]).append(protection)

    def present(self, record):
        node = self.node_json(record["node_record"]["name"]) if record["node_record"] else None
        in_place = record["in_place"] = self.in_place(record, node)
        wanted = mt.wanted_protections(record["health_check_type"], node is not None, self.params["scale_in_protection"],
                                       self.params["disable_scale_down"])
        plan = mt.plan_present(in_place, wanted, record["maintenance"])
        if record["maintenance"] is None or plan["added"] != record["maintenance"]["added"]:
            since = (record["maintenance"] or {}).get("since") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            value = mt.render_record(self.params["holder"], self.params["reason"], since, plan["added"])
            # The record goes first: a run killed right after it still knows what to take back.
            self.write_tag(record["instance_id"], value)
            record["maintenance"] = mt.parse_record(value)
        for protection in plan["apply"]:
            self.set_protection(record, protection, True)

    def absent(self, record):
        if record["maintenance"] is None:
            return
        node = self.node_json(record["node_record"]["name"]) if record["node_record"] else None
        in_place = record["in_place"] = self.in_place(record, node)
        others = self.others_in_maintenance(record)
        plan = mt.plan_absent(in_place, record["maintenance"], others)
        if plan["hand_over"]:
            heir = others[0]
            heir_record = mt.parse_record(self.ec2_instances[heir]["tags"][fleet.MAINTENANCE_TAG])
            self.write_tag(heir, mt.render_record(heir_record["by"], heir_record["reason"], heir_record["since"],
                                                  heir_record["added"] + [mt.REPLACE_UNHEALTHY]))
        for protection in plan["remove"]:
            self.set_protection(record, protection, False)
        self.write_tag(record["instance_id"], None)
        record["maintenance"] = None

    # -- status ----------------------------------------------------------------------------

    def node_status(self, record):
        node = record["node_record"]
        if node is None:
            return None
        raw = self.node_json(node["name"]) or {}
        annotations = (raw.get("metadata") or {}).get("annotations") or {}
        cordoned_by = annotations.get(fleet.CORDON_OWNER_ANNOTATION)
        try:
            cordoned_by = json.loads(cordoned_by) if cordoned_by else None
        except ValueError:
            cordoned_by = {"unreadable": cordoned_by}
        pods = get_json(self.api_client, "/api/v1/pods", [("fieldSelector", "spec.nodeName=" + node["name"])], timeout=REQUEST_TIMEOUT)
        current = fleet.compact_node(raw) if raw else node
        return {
            "name": node["name"],
            "ready": fleet.is_ready(current),
            "ready_reason": current.get("ready_reason", ""),
            "schedulable": fleet.is_schedulable(current),
            "boot_id": current.get("boot_id", ""),
            "cordoned_by": cordoned_by,
            "daemonset_pods": mt.daemonset_pod_status((pods or {}).get("items") or []),
        }

    def report(self, status=False):
        instances = []
        for record in self.records:
            node = record["node_record"]
            entry = {
                "instance_id": record["instance_id"],
                "group": record["group"],
                "availability_zone": record["availability_zone"],
                "health_check_type": record["health_check_type"],
                "maintenance": record["maintenance"],
                "added": record["added"],
                "removed": record["removed"],
                "protections": self.protections(record),
                "node": self.node_status(record) if status else ({"name": node["name"], "boot_id": node.get("boot_id", "")} if node else None),
            }
            instances.append(entry)
        return instances

    def protections(self, record):
        """The protections in place now: as this call left them, else as read."""
        if "in_place" not in record:
            node = self.node_json(record["node_record"]["name"]) if record["node_record"] else None
            record["in_place"] = self.in_place(record, node)
        return dict(record["in_place"])


def slots_call(module, work, lock_state):
    """With O(lock): take (acquired) or give back (released) the slots of the instances' Nodes in the disruption lock, as
    eks_disruption_lock would; the lock's result, or None without O(lock)."""
    options = module.params["lock"]
    if not options:
        return None
    missing = [r["instance_id"] for r in work.records if r["node_record"] is None]
    if missing and lock_state == "acquired":
        module.fail_json(msg="instances {0} have no Node, and the disruption lock holds slots for Nodes; leave them out or leave out the "
                         "lock option. Nothing was changed.".format(", ".join(missing)))
    nodes = [r["node_record"]["name"] for r in work.records if r["node_record"]]
    if not nodes:
        return None
    params = dict(options, state=lock_state, nodes=nodes, cluster_name=module.params["cluster_name"])
    after = (". Nothing was changed." if lock_state == "acquired" else
             ". The protections were removed; give the slots back with selfmanaged.eks.eks_disruption_lock state=released.")
    try:
        dlock.validate_request(lock_state, nodes, params["max_unavailable"], params["ttl_seconds"], params["holder"], params["wait_timeout"])
        lease, outcome, conflicts, waited = run_lock(module, LeaseApi(work.api_client, params["lease_namespace"], params["lease_name"]), params)
    except dlock.LockError as exc:
        module.fail_json(msg=str(exc) + after)
    if outcome.others:
        module.warn("not released, held by another run: {0}".format(", ".join("{0} ({1})".format(n, h) for n, h in sorted(outcome.others.items()))))
    return result_of(params, outcome, lease, conflicts, waited)


def cluster_status(api_client):
    nodes = list_nodes(api_client, timeout=REQUEST_TIMEOUT)
    pdbs = (get_json(api_client, "/apis/policy/v1/poddisruptionbudgets", timeout=REQUEST_TIMEOUT) or {}).get("items") or []
    return ({"nodes": len(nodes), "not_ready": [n["name"] for n in nodes if not fleet.is_ready(n)]},
            sorted((mt.pdb_status(p) for p in pdbs), key=lambda p: p["name"]))


def main():
    argument_spec = dict(KUBE_CONNECTION_SPEC)
    argument_spec.update(
        cluster_name=dict(type="str", required=True),
        instances=dict(type="list", elements="str", required=True),
        state=dict(type="str", default="status", choices=["present", "absent", "status"]),
        holder=dict(type="str", default="selfmanaged.eks.eks_node_maintenance"),
        reason=dict(type="str", default="maintenance"),
        scale_in_protection=dict(type="bool", default=True),
        disable_scale_down=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        boot_ids=dict(type="dict", default={}),
        wait_timeout=dict(type="int", default=600),
        wait_delay=dict(type="float", default=2),
        lock=dict(type="dict", options=dict(
            holder=dict(type="str", required=True),
            max_unavailable=dict(type="int"),
            reason=dict(type="str", default=""),
            ttl_seconds=dict(type="int", default=dlock.DEFAULT_TTL_SECONDS),
            wait_timeout=dict(type="int", default=0),
            lease_name=dict(type="str", default=dlock.DEFAULT_LEASE_NAME),
            lease_namespace=dict(type="str", default=dlock.DEFAULT_LEASE_NAMESPACE),
        )),
    )
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["cluster_name"]
    try:
        cluster = describe_cluster(aws_client(module, "eks"), name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot describe EKS cluster {0}".format(name))
    if cluster is None:
        module.fail_json(msg="EKS cluster {0!r} does not exist in region {1}; check cluster_name and region".format(name, module.region))
    api_client = kube_api_client(module, cluster)
    state = params["state"]
    result = {}
    try:
        work = Maintenance(module, api_client)
        if state == "status":
            started = time.monotonic()
            boot_ids = params["boot_ids"] or {}
            polls = []

            def fetch():
                if polls:
                    work.read()
                polls.append(work.report(status=True))
                return polls[-1]

            if params["wait"]:
                # The first reads come quickly (a node is often back within a second of its reboot), then every wait_delay.
                try:
                    entries = wait_until(fetch, lambda e: not mt.not_back_yet(e, boot_ids), lambda e: "; ".join(mt.not_back_yet(e or [], boot_ids)),
                                         params["wait_timeout"], "Ready nodes", delay=min(FIRST_WAIT_DELAY, params["wait_delay"]),
                                         max_delay=params["wait_delay"])
                except WaitTimeout:
                    # timed_out (not another failure): a role waiting in slices calls again; wait_state says where each node stands.
                    module.fail_json(msg="timed out after {0}s waiting for Ready nodes: {1}. See docs/runbooks/patching.md".format(
                        params["wait_timeout"], "; ".join(mt.not_back_yet(polls[-1], boot_ids))), instances=polls[-1], timed_out=True,
                        wait_state="; ".join(mt.wait_states(polls[-1], boot_ids)), waited_seconds=round(time.monotonic() - started, 1))
            else:
                entries = fetch()
            result["cluster"], result["pdbs"] = cluster_status(api_client)
            if params["wait"]:
                result["waited_seconds"] = round(time.monotonic() - started, 1)
                result["wait_state"] = "; ".join(mt.wait_states(entries, boot_ids))
                result["timed_out"] = False
        else:
            before = [dict(i["protections"], maintenance=i["maintenance"]) for i in work.report()]
            # The slot first and the protections after it; the protections off before the slot is given back.
            slots = slots_call(module, work, "acquired") if state == "present" else None
            for record in work.records:
                (work.present if state == "present" else work.absent)(record)
            if state == "absent":
                slots = slots_call(module, work, "released")
            entries = work.report()
            if slots is not None:
                result["lock"] = slots
                work.changed = work.changed or slots["changed"]
            if module._diff and work.changed:
                result["diff"] = {"before": dict(zip(params["instances"], before)),
                                  "after": dict((i["instance_id"], dict(i["protections"], maintenance=i["maintenance"])) for i in entries)}
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json_aws(exc, msg="instances {0}: state {1} failed".format(", ".join(params["instances"]), state))
    except KubeApiError as exc:
        module.fail_json(msg="instances {0}: the Kubernetes API answered HTTP {1} {2}; the identity running the task needs to get and patch "
                         "nodes, list pods and poddisruptionbudgets".format(", ".join(params["instances"]), exc.status, exc.reason))
    module.exit_json(changed=work.changed, instances=entries, **result)


if __name__ == "__main__":
    main()
