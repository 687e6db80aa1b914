# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cluster-wide disruption lock over the Kubernetes API: read the Lease, decide with disruption_lock.py's pure rules,
write with resourceVersion compare-and-swap, retry 409s, wait for free slots.

`run(module, api, params)` is one call of the lock (state acquired, released, failed, taken_over or query) for any module: the
eks_disruption_lock module, and eks_node_maintenance when it takes and gives back slots with its protections (one call
instead of two per node). `params` holds the lock's options (holder, state, nodes, max_unavailable, reason, ttl_seconds,
wait_timeout, lease_name, lease_namespace, cluster_name); failures end the module with `module.fail_json`.
"""

import random
import time

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock as lock
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import compact_node, is_available
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import KubeApiError
from ansible_collections.selfmanaged.eks.plugins.module_utils.kube import request_json

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
        except KubeApiError as exc:
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
        except KubeApiError as exc:
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
        self.acquired, self.renewed, self.released, self.failed, self.dropped, self.taken_over = [], [], [], [], [], []
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
    elif state == "taken_over":
        previous = params["previous_holder"]
        # a slot of the previous run on a Node that is gone (terminated before that run could give it back) is its too
        gone = [n for n, e in live.items() if e["holder"] == previous and not e.get("failed") and api.node(n) is None]
        outcome.after, outcome.taken_over = lock.take_over(live, previous, holder, list(nodes or []) + gone, now,
                                                           params["ttl_seconds"])
    return outcome


def result_of(params, outcome, lease, conflicts, waited, timed_out=False):
    changed = bool(outcome.acquired or outcome.released or outcome.failed or outcome.dropped or outcome.taken_over) and params["state"] != "query"
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
        taken_over=outcome.taken_over,
        dropped=outcome.dropped,
        conflicts=conflicts,
        waited_seconds=round(waited, 1),
        timed_out=timed_out,
        lease=dict(namespace=params["lease_namespace"], name=params["lease_name"],
                   resource_version=((lease or {}).get("metadata") or {}).get("resourceVersion")),
    )


def check_nodes_exist(module, api, params):
    missing = [n for n in sorted(set(params["nodes"] or [])) if api.node(n) is None]
    if missing:
        module.fail_json(msg="node {0} is not a Node of cluster {1}; check the names (kubectl get nodes shows them; on EKS they are "
                             "the instances' private DNS names). Nothing was changed.".format(
                                 ", ".join(missing), params.get("cluster_name") or "(the cluster of the connection)"))


def run(module, api, params=None):
    """One call of the lock: (lease after, Outcome, 409 conflicts, seconds waited); failures end the module."""
    params = module.params if params is None else params
    if params["state"] in ("acquired", "failed"):
        check_nodes_exist(module, api, params)
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
        except KubeApiError as exc:
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
