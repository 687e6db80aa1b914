#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_disruption_lock
version_added: 0.1.0
short_description: Take, renew, release, take over or mark failed slots in a cluster-wide disruption lock (a Kubernetes Lease)
description:
  - "Runs that take nodes out of service (OS patching, node replacement) share one limit per cluster: together they
    never disrupt more than O(max_unavailable) nodes. Each run holds one slot per node it disrupts, under its
    O(holder) identity, in one C(coordination.k8s.io/v1) Lease of the cluster (created on first use)."
  - "The slots are JSON in the Lease's C(selfmanaged.eks/disruption-slots) annotation:
    C({node: {holder, reason, acquired, expires, failed}}); C(spec.holderIdentity) and C(spec.renewTime) name the last
    writer, so C(kubectl get lease -n kube-system selfmanaged-eks-disruption) shows who touched the lock last."
  - "Every write is a PUT carrying the C(resourceVersion) read (compare-and-swap): when another run wrote in between,
    the API answers 409 Conflict and the module reads the Lease again and decides again. Two runs can therefore never
    both take the last slot."
  - "An entry not renewed within O(ttl_seconds) expires, so a killed run cannot block the cluster forever. Taking
    slots again for nodes the holder already holds renews them: that is how a long run keeps its slots."
  - "A failed entry (O(state=failed)) has no expiry: a node that failed after its drain keeps counting against the
    limit until its Node is Ready and schedulable again (or is deleted); any later call of any run then drops it."
  - "A run that resumes or aborts the work of a killed run takes that run's slots over (O(state=taken_over)) instead of
    waiting up to O(ttl_seconds) for them to expire: C(selfmanaged.eks.node_rollout) records its holder in the node
    group's C(selfmanaged.eks/rollout-holder) tag, and the run that resumes or aborts the roll takes the recorded
    holder's slots on the group's nodes."
requirements:
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  holder:
    description:
      - Identity of the run, the same for every call of one run, for example
        V(node_patching/ops@ctl-1/20261130T081500-4711).
      - Required for O(state=acquired), O(state=released), O(state=failed) and O(state=taken_over); a O(state=query) may omit it.
    type: str
  state:
    description:
      - V(acquired) takes one slot per node of O(nodes) for O(holder), all or none, waiting up to O(wait_timeout)
        seconds for enough free slots; nodes the holder already holds are renewed (a failed one becomes a live entry
        again, which is how a resumed run takes its failed node back).
      - V(released) gives back O(nodes), or every slot of O(holder) when O(nodes) is omitted. Nodes held by another
        holder are left alone (a warning names them). Released nodes need not exist any more.
      - V(failed) keeps O(nodes) counted with no expiry (see the description).
      - V(taken_over) makes the live slots of O(previous_holder) on O(nodes) (and on Nodes that no longer exist) the
        slots of O(holder), renewed; it never waits and needs no O(max_unavailable) (the slots are counted already).
        Failed entries stay failed, with their holder, until their Node is back; slots of any other holder are never
        touched. O(holder) then renews or releases them as its own.
      - V(query) reads the lock and writes nothing.
    type: str
    choices: [acquired, released, failed, taken_over, query]
    default: acquired
  previous_holder:
    description:
      - With O(state=taken_over), the identity of the run (killed, or replaced by this one) whose slots O(holder) takes over.
    type: str
    version_added: 0.1.0
  nodes:
    description:
      - Kubernetes Node names (private DNS names on EKS). Required for V(acquired) and V(failed), where each must be a
        Node of the cluster (checked before anything is written). With V(taken_over), the nodes whose slots are taken
        over; omitted, only those of Nodes that no longer exist.
    type: list
    elements: str
  max_unavailable:
    description:
      - How many nodes of the cluster may be disrupted at once, counting every holder's slots. Required for
        V(acquired); at least 1, and at least the number of O(nodes).
      - With V(query), used only to report RV(free).
    type: int
  ttl_seconds:
    description:
      - Seconds an entry counts without being renewed. A run must renew (acquire again) within this time.
    type: int
    default: 1800
  wait_timeout:
    description:
      - With V(acquired), seconds to wait for enough free slots. V(0) fails at once when they are not free.
      - On timeout the task fails with RV(timed_out=true) and who holds the slots, so a role can wait in slices.
    type: int
    default: 0
  reason:
    description:
      - Free text stored with the entries, for example V(patch) or V(rollout).
    type: str
    default: ""
  lease_name:
    description:
      - Name of the Lease that holds the lock. Every run that must share the limit uses the same Lease.
    type: str
    default: selfmanaged-eks-disruption
  lease_namespace:
    description:
      - Namespace of the Lease.
    type: str
    default: kube-system
extends_documentation_fragment:
  - selfmanaged.eks.cluster_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - "C(changed) reports slots taken, released, taken over, marked failed or expired entries dropped. A renewal (acquiring nodes the
    holder already holds) writes the new expiry but reports C(changed=false), so a second identical task is not a change."
  - Check mode reads the Lease and the Nodes, reports what the call would do, and writes nothing; it never waits. It fails
    like a real run when the slots are not free and O(wait_timeout=0).
  - The identity running the task needs get, create and update on C(leases) in O(lease_namespace), and get on C(nodes).
  - Secrets are never returned; the cluster token is not logged.
seealso:
  - module: selfmanaged.eks.eks_node_drain
  - name: The disruption lock (runbook)
    description: Who holds the lock and how to clear a stale entry, in the collection's C(docs/runbooks/disruption-lock.md).
    link: https://github.com/selfmanaged/eks/tree/main/docs/runbooks/disruption-lock.md
author:
  - selfmanaged.eks contributors (@selfmanaged-eks)
"""

EXAMPLES = r"""
- name: Take slots for a batch before draining it (wait up to 50 s for other runs)
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    holder: "node_patching/{{ lookup('env', 'USER') }}/{{ run_id }}"
    nodes: [ip-10-0-1-23.ec2.internal, ip-10-0-2-17.ec2.internal]
    max_unavailable: 2
    reason: patch
    wait_timeout: 50

- name: A node did not come back after its reboot; keep it counted until it is Ready and schedulable again
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    holder: "{{ run_holder }}"
    nodes: [ip-10-0-1-23.ec2.internal]
    state: failed

- name: Give back every slot of this run
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    holder: "{{ run_holder }}"
    state: released

- name: Resume the roll of a killed run, taking its slots on the group's nodes instead of waiting for them to expire
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    holder: "{{ run_holder }}"
    previous_holder: node_rollout/ops/20261130T081500-4711
    nodes: [ip-10-0-1-23.ec2.internal, ip-10-0-2-17.ec2.internal]
    state: taken_over

- name: Who holds the lock
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    state: query
  register: lock
"""

RETURN = r"""
slots:
  description: The live entries after the call (in check mode, as they would be), node -> entry.
  returned: always
  type: dict
  sample: {"ip-10-0-1-23.ec2.internal": {"holder": "node_patching/ops@ctl-1/20261130T081500", "reason": "patch",
           "acquired": "2026-11-30T08:15:00Z", "expires": "2026-11-30T08:45:00Z", "failed": false}}
holders:
  description: Holder -> the nodes it holds, after the call.
  returned: always
  type: dict
  sample: {"node_patching/ops@ctl-1/20261130T081500": ["ip-10-0-1-23.ec2.internal"]}
in_use:
  description: Slots in use after the call.
  returned: always
  type: int
free:
  description: Slots left under O(max_unavailable) after the call; null without O(max_unavailable).
  returned: always
  type: int
acquired:
  description: Nodes newly taken by this call.
  returned: always
  type: list
  elements: str
renewed:
  description: Nodes the holder already held whose expiry was renewed.
  returned: always
  type: list
  elements: str
released:
  description: Nodes given back by this call.
  returned: always
  type: list
  elements: str
marked_failed:
  description: Nodes newly marked failed by this call.
  returned: always
  type: list
  elements: str
taken_over:
  description: Nodes whose slots this call took over from O(previous_holder).
  returned: always
  type: list
  elements: str
  version_added: 0.1.0
dropped:
  description: Entries dropped by this call - expired ones and failed ones whose Node is back or gone (node, holder, reason, why).
  returned: always
  type: list
  elements: dict
  sample: [{"node": "ip-10-0-1-23.ec2.internal", "holder": "node_patching/x", "reason": "patch", "why": "expired"}]
conflicts:
  description: Writes refused with 409 Conflict because another run wrote first, each followed by a re-read and a new decision.
  returned: always
  type: int
waited_seconds:
  description: Seconds spent waiting for free slots.
  returned: always
  type: float
timed_out:
  description: Whether the call failed because O(wait_timeout) ran out before the slots were free.
  returned: always
  type: bool
lease:
  description: The Lease (namespace, name, resource_version after the call; null resource_version when it does not exist).
  returned: always
  type: dict
diff:
  description: The slots before and after the call.
  returned: with --diff, when something changes
  type: dict
"""

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as lock
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.disruption_lock_lease import LeaseApi, api_message, result_of, run
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC, KubeApiError, TransportError, kube_api_client


def main():
    argument_spec = dict(
        holder=dict(type="str"),
        state=dict(type="str", default="acquired", choices=["acquired", "released", "failed", "taken_over", "query"]),
        previous_holder=dict(type="str"),
        nodes=dict(type="list", elements="str"),
        max_unavailable=dict(type="int"),
        ttl_seconds=dict(type="int", default=lock.DEFAULT_TTL_SECONDS),
        wait_timeout=dict(type="int", default=0),
        reason=dict(type="str", default=""),
        lease_name=dict(type="str", default=lock.DEFAULT_LEASE_NAME),
        lease_namespace=dict(type="str", default=lock.DEFAULT_LEASE_NAMESPACE),
    )
    argument_spec.update(KUBE_CONNECTION_SPEC)
    module = EksAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        lock.validate_request(params["state"], params["nodes"], params["max_unavailable"], params["ttl_seconds"], params["holder"],
                              params["wait_timeout"], params["previous_holder"])
    except lock.LockError as exc:
        module.fail_json(msg=str(exc) + ". Nothing was changed.")

    api = LeaseApi(kube_api_client(module), params["lease_namespace"], params["lease_name"])
    try:
        lease, outcome, conflicts, waited = run(module, api)
    except lock.LockError as exc:
        module.fail_json(msg=str(exc) + ". Nothing was changed.")
    except KubeApiError as exc:
        module.fail_json(msg=api_message(exc, "cannot read or write Lease {0}/{1} or read nodes".format(
            params["lease_namespace"], params["lease_name"])))
    except TransportError as exc:
        module.fail_json(msg="cannot reach the Kubernetes API ({0}); check the cluster endpoint and network".format(exc))

    if outcome.others:
        module.warn("not released or marked failed, held by another run: {0}".format(
            ", ".join("{0} ({1})".format(n, h) for n, h in sorted(outcome.others.items()))))
    result = result_of(params, outcome, lease, conflicts, waited)
    if module._diff and outcome.before != outcome.after:
        result["diff"] = dict(before=dict(slots=outcome.before), after=dict(slots=outcome.after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
