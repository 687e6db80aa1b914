#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_disruption_lock
version_added: 0.1.0
short_description: Take, renew, release or mark failed slots in a cluster-wide disruption lock (a Kubernetes Lease)
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
requirements:
  - kubernetes >= 29.0.0, for the Kubernetes API calls
  - urllib3, for the request timeouts of the Kubernetes API calls
  - PyYAML, shared code that renders and parses YAML (loaded with the other module_utils)
options:
  holder:
    description:
      - Identity of the run, the same for every call of one run, for example
        V(node_patching/ops@ctl-1/20261130T081500-4711).
    type: str
    required: true
  state:
    description:
      - V(acquired) takes one slot per node of O(nodes) for O(holder), all or none, waiting up to O(wait_timeout)
        seconds for enough free slots; nodes the holder already holds are renewed (a failed one becomes a live entry
        again, which is how a resumed run takes its failed node back).
      - V(released) gives back O(nodes), or every slot of O(holder) when O(nodes) is omitted. Nodes held by another
        holder are left alone (a warning names them). Released nodes need not exist any more.
      - V(failed) keeps O(nodes) counted with no expiry (see the description).
      - V(query) reads the lock and writes nothing.
    type: str
    choices: [acquired, released, failed, query]
    default: acquired
  nodes:
    description:
      - Kubernetes Node names (private DNS names on EKS). Required for V(acquired) and V(failed), where each must be a
        Node of the cluster (checked before anything is written).
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
  - "C(changed) reports slots taken, released, marked failed or expired entries dropped. A renewal (acquiring nodes the
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

- name: Who holds the lock
  selfmanaged.eks.eks_disruption_lock:
    cluster_name: prod
    holder: "{{ run_holder }}"
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

import random
import time

try:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as TransportError
except ImportError:
    ApiException = TransportError = None  # kube_api_client() reports the missing library

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as lock
from ansible_collections.selfmanaged.eks.plugins.module_utils.aws import EksAWSModule
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import compact_node, is_available
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KUBE_CONNECTION_SPEC, kube_api_client, request_json

REQUEST_TIMEOUT = (10, 30)
POLL_SECONDS = 1.0
# 409s in a row before giving up: each means another run wrote in between, so this many means a storm, not a race.
MAX_CONFLICTS = 25
HINTS = {
    401: "the cluster does not recognise the identity running the task (Unauthorized); see docs/runbooks/recovering-aws-auth.md",
    403: "the identity running the task may not do this (Forbidden); the lock needs get, create and update on leases in its "
    "namespace and get on nodes",
}


class LeaseApi:
    """The Kubernetes calls of the lock, raw JSON."""

    def __init__(self, client, namespace, name):
        self.client, self.namespace, self.name = client, namespace, name
        self.collection = "/apis/coordination.k8s.io/v1/namespaces/{0}/leases".format(namespace)

    def call(self, method, path, body=None):
        return request_json(self.client, method, path, body=body, timeout=REQUEST_TIMEOUT)

    def read(self):
        try:
            return self.call("GET", "{0}/{1}".format(self.collection, self.name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def write(self, lease, body):
        """Create (no lease read) or replace with the resourceVersion read; a 409 means someone else wrote first."""
        if lease is None:
            return self.call("POST", self.collection, body)
        return self.call("PUT", "{0}/{1}".format(self.collection, self.name), body)

    def node(self, name):
        try:
            return self.call("GET", "/api/v1/nodes/" + name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def node_available(api, name):
    """True: Ready and schedulable; False: not; None: no such Node."""
    node = api.node(name)
    return None if node is None else is_available(compact_node(node))


def api_message(exc, what):
    return "{0}: HTTP {1} {2}: {3}".format(what, exc.status, exc.reason, HINTS.get(exc.status, "the Kubernetes API refused the request"))


class Outcome:
    """What one decision over the slots read gives: the slots after, and what changed."""

    def __init__(self, before):
        self.before = before
        self.after = before
        self.acquired, self.renewed, self.released, self.failed, self.dropped = [], [], [], [], []
        self.others = {}
        self.blocked = None


def decide(params, slots, api, now):
    """One decision over the slots read (re-run after every 409)."""
    failed_nodes = [n for n, e in slots.items() if e.get("failed")]
    availability = dict((n, node_available(api, n)) for n in failed_nodes)
    live, dropped = lock.live_slots(slots, now, availability.get)
    outcome = Outcome(slots)
    outcome.after, outcome.dropped = live, dropped
    state, holder, nodes = params["state"], params["holder"], params["nodes"]
    if state == "acquired":
        decision = lock.acquire(live, holder, nodes, params["max_unavailable"], params["reason"], now, params["ttl_seconds"])
        if not decision["fits"]:
            outcome.blocked = lock.blocked_message(decision, nodes, params["max_unavailable"], live)
            return outcome
        outcome.after, outcome.acquired, outcome.renewed = decision["slots"], decision["taken"], decision["renewed"]
    elif state == "released":
        outcome.after, outcome.released, outcome.others = lock.release(live, holder, nodes)
    elif state == "failed":
        outcome.after, outcome.failed, outcome.others = lock.mark_failed(live, holder, nodes, params["reason"], now,
                                                                         params["ttl_seconds"])
    return outcome


def result_of(params, outcome, lease, conflicts, waited, timed_out=False):
    changed = bool(outcome.acquired or outcome.released or outcome.failed or outcome.dropped) and params["state"] != "query"
    return dict(
        changed=changed,
        slots=outcome.after,
        holders=lock.holders_of(outcome.after),
        in_use=len(outcome.after),
        free=lock.free_slots(outcome.after, params["max_unavailable"]),
        acquired=outcome.acquired,
        renewed=outcome.renewed,
        released=outcome.released,
        marked_failed=outcome.failed,
        dropped=outcome.dropped,
        conflicts=conflicts,
        waited_seconds=round(waited, 1),
        timed_out=timed_out,
        lease=dict(namespace=params["lease_namespace"], name=params["lease_name"],
                   resource_version=((lease or {}).get("metadata") or {}).get("resourceVersion")),
    )


def check_nodes_exist(module, api):
    missing = [n for n in sorted(set(module.params["nodes"] or [])) if api.node(n) is None]
    if missing:
        module.fail_json(msg="node {0} is not a Node of cluster {1}; check the names (kubectl get nodes shows them; on EKS they are "
                             "the instances' private DNS names). Nothing was changed.".format(
                                 ", ".join(missing), module.params["cluster_name"] or "(the cluster of the connection)"))


def run(module, api):
    params = module.params
    if params["state"] in ("acquired", "failed"):
        check_nodes_exist(module, api)
    started = time.monotonic()
    deadline = started + (0 if module.check_mode else params["wait_timeout"])
    conflicts = 0
    while True:
        lease = api.read()
        slots = lock.slots_of_lease(lease)
        now = lock.utc_now()
        outcome = decide(params, slots, api, now)
        if outcome.blocked:
            if time.monotonic() + POLL_SECONDS <= deadline:
                time.sleep(POLL_SECONDS)
                continue
            waited = time.monotonic() - started
            timed_out = params["wait_timeout"] > 0 and not module.check_mode
            if module.check_mode and params["wait_timeout"] > 0:
                module.warn("the slots are not free now; a real run would wait up to {0} s: {1}".format(
                    params["wait_timeout"], outcome.blocked))
                return lease, outcome, conflicts, waited
            message = outcome.blocked + (" (waited {0:.0f} of wait_timeout {1} s)".format(waited, params["wait_timeout"])
                                         if timed_out else " (wait_timeout 0: not waiting)")
            module.fail_json(msg=message + ". Nothing was changed.", **result_of(params, outcome, lease, conflicts, waited, timed_out))
        if params["state"] == "query" or module.check_mode or outcome.after == slots:
            return lease, outcome, conflicts, time.monotonic() - started
        body = lock.lease_body(lease, outcome.after, params["holder"], params["ttl_seconds"], params["lease_namespace"],
                               params["lease_name"], now)
        try:
            written = api.write(lease, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            conflicts += 1
            if conflicts > MAX_CONFLICTS:
                module.fail_json(msg="Lease {0}/{1}: {2} writes in a row were refused with 409 Conflict (other runs kept writing); "
                                     "run the task again".format(params["lease_namespace"], params["lease_name"], conflicts),
                                 conflicts=conflicts)
            time.sleep(random.uniform(0.0, 0.2))  # two runs that conflicted do not retry in lockstep
            continue
        return written, outcome, conflicts, time.monotonic() - started


def main():
    argument_spec = dict(
        holder=dict(type="str", required=True),
        state=dict(type="str", default="acquired", choices=["acquired", "released", "failed", "query"]),
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
                              params["wait_timeout"])
    except lock.LockError as exc:
        module.fail_json(msg=str(exc) + ". Nothing was changed.")

    api = LeaseApi(kube_api_client(module), params["lease_namespace"], params["lease_name"])
    try:
        lease, outcome, conflicts, waited = run(module, api)
    except lock.LockError as exc:
        module.fail_json(msg=str(exc) + ". Nothing was changed.")
    except ApiException as exc:
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
