# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster-wide disruption lock, pure: slot accounting over one coordination.k8s.io/v1 Lease.

Every run that takes nodes out of service (node_patching, node_rollout) holds one slot per
node it disrupts. The slots live as JSON in one annotation of the Lease:

    {"<node>": {"holder": "<run id>", "reason": "patch", "acquired": "<UTC time>",
                "expires": "<UTC time>" | null, "failed": false}}

An entry counts until it is released, or until it expires (not renewed within the ttl: a
killed run cannot block the cluster forever). A failed entry (a node that failed after its
drain) has no expiry and counts until its Node is Ready and schedulable again, or is gone.

The module reads the Lease, asks these functions for the slots after the call, and writes
them back with the resourceVersion it read (compare-and-swap); nothing here talks to a server.
"""

import datetime
import json

SLOTS_ANNOTATION = "selfmanaged.eks/disruption-slots"
DEFAULT_LEASE_NAME = "selfmanaged-eks-disruption"
DEFAULT_LEASE_NAMESPACE = "kube-system"
DEFAULT_TTL_SECONDS = 1800
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# spec.renewTime is a MicroTime
MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

DROP_EXPIRED = "expired"
DROP_NODE_BACK = "node_back"
DROP_NODE_GONE = "node_gone"


class LockError(Exception):
    """Bad input or a lock that cannot be read; the message names the value and the fix."""


def format_time(moment):
    return moment.strftime(TIME_FORMAT)


def parse_time(text):
    return datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


# ---------------------------------------------------------------------------------------
# The annotation


def slots_of_lease(lease):
    """The node -> entry map stored in a Lease (a dict as the API returns it, or None: no Lease yet, no slots)."""
    if not lease:
        return {}
    text = ((lease.get("metadata") or {}).get("annotations") or {}).get(SLOTS_ANNOTATION)
    return parse_slots(text, "{0}/{1}".format(lease["metadata"].get("namespace", ""), lease["metadata"].get("name", "")))


def parse_slots(text, where="the lease"):
    """The node -> entry map of an annotation value ('' or None: no slots). Raises LockError when it does not parse."""
    if not text:
        return {}
    fix = ("fix or remove the annotation {0} of Lease {1} (kubectl annotate lease -n <namespace> <name> {0}-) "
           "once no run holds nodes".format(SLOTS_ANNOTATION, where))
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise LockError("the disruption slots of Lease {0} are not JSON ({1}); {2}".format(where, exc, fix))
    if not isinstance(raw, dict):
        raise LockError("the disruption slots of Lease {0} are not a JSON object; {1}".format(where, fix))
    slots = {}
    for node, entry in raw.items():
        if not isinstance(entry, dict) or not entry.get("holder") or not entry.get("acquired"):
            raise LockError("the disruption slot of node {0} in Lease {1} has no holder or acquired time: {2!r}; {3}".format(
                node, where, entry, fix))
        try:
            parse_time(entry["acquired"])
            if entry.get("expires"):
                parse_time(entry["expires"])
        except (TypeError, ValueError):
            raise LockError("the disruption slot of node {0} in Lease {1} has a time that is not {2}: {3!r}; {4}".format(
                node, where, TIME_FORMAT, entry, fix))
        slots[node] = {"holder": str(entry["holder"]), "reason": str(entry.get("reason") or ""), "acquired": entry["acquired"],
                       "expires": entry.get("expires") or None, "failed": bool(entry.get("failed"))}
    return slots


def serialise_slots(slots):
    """The annotation value for a node -> entry map: compact JSON, keys sorted, so equal slots are equal text."""
    return json.dumps(slots, sort_keys=True, separators=(",", ":"))


def lease_body(lease, slots, holder, ttl_seconds, namespace, name, now):
    """The Lease to PUT (with the resourceVersion read, for compare-and-swap) or to create when `lease` is None.

    spec.holderIdentity is the last writer and spec.renewTime the time of the write, so `kubectl get lease` shows who
    touched the lock last; the slots themselves are in the annotation.
    """
    if lease:
        body = json.loads(json.dumps(lease))  # a deep copy: the read Lease stays as read
    else:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": namespace}, "spec": {}}
    metadata = body.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    annotations[SLOTS_ANNOTATION] = serialise_slots(slots)
    metadata["annotations"] = annotations
    spec = body.get("spec") or {}
    # a query names no holder: its write (dropping expired entries) keeps the last writer's name
    holder = holder or spec.get("holderIdentity") or "query"
    renew = now.strftime(MICRO_TIME_FORMAT)
    if spec.get("holderIdentity") != holder:
        spec["acquireTime"] = renew
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
    spec["holderIdentity"] = holder
    spec["renewTime"] = renew
    spec["leaseDurationSeconds"] = int(ttl_seconds)
    body["spec"] = spec
    return body


# ---------------------------------------------------------------------------------------
# Slot accounting


def validate_request(state, nodes, max_unavailable, ttl_seconds, holder, wait_timeout=0, previous_holder=None):
    """Raise LockError for a request that can never succeed; the message names the value and the fix."""
    if state != "query" and (not holder or not str(holder).strip()):
        raise LockError("state {0} needs a holder; pass an identity of the run, for example "
                        "node_patching/<user>@<host>/<time>".format(state))
    if state == "taken_over" and (not previous_holder or not str(previous_holder).strip()):
        raise LockError("state taken_over needs previous_holder: the identity of the killed run whose slots this run takes over "
                        "(node_rollout reads it from the node group's selfmanaged.eks/rollout-holder tag)")
    if previous_holder and state != "taken_over":
        raise LockError("previous_holder {0!r} is only used with state taken_over, not {1}; leave it out or use state "
                        "taken_over".format(previous_holder, state))
    if ttl_seconds is not None and ttl_seconds < 1:
        raise LockError("ttl_seconds {0} is below 1; pass the seconds a run may go without renewing its slots "
                        "(default {1})".format(ttl_seconds, DEFAULT_TTL_SECONDS))
    if wait_timeout is not None and wait_timeout < 0:
        raise LockError("wait_timeout {0} is negative; pass 0 to fail at once or the seconds to wait for a slot".format(wait_timeout))
    if state in ("acquired", "failed") and not nodes:
        raise LockError("state {0} needs nodes: the Node names to {1}".format(
            state, "take slots for" if state == "acquired" else "mark failed"))
    if state != "acquired":
        return
    if max_unavailable is None:
        raise LockError("state acquired needs max_unavailable: how many nodes of the cluster may be disrupted at once")
    if max_unavailable < 1:
        raise LockError("max_unavailable {0} allows no disruption at all; set it to 1 or more (the nodes the cluster may "
                        "lose at once)".format(max_unavailable))
    if len(set(nodes)) > max_unavailable:
        raise LockError("{0} nodes ({1}) can never fit in max_unavailable {2}; pass at most {2} nodes per call (smaller "
                        "batches) or raise max_unavailable".format(len(set(nodes)), ", ".join(sorted(set(nodes))), max_unavailable))


def is_expired(entry, now):
    """An entry not renewed in time; failed entries never expire."""
    return not entry.get("failed") and bool(entry.get("expires")) and parse_time(entry["expires"]) <= now


def live_slots(slots, now, node_available):
    """(slots still counting, [dropped {node, holder, reason, why}]).

    Dropped: entries past their expiry, and failed entries whose Node is Ready and schedulable again or gone.
    `node_available(name)` -> True (Ready and schedulable), False (not), or None (no such Node); it is asked about
    failed entries only.
    """
    kept, dropped = {}, []
    for node in sorted(slots):
        entry = slots[node]
        why = None
        if is_expired(entry, now):
            why = DROP_EXPIRED
        elif entry.get("failed"):
            available = node_available(node)
            if available is None:
                why = DROP_NODE_GONE
            elif available:
                why = DROP_NODE_BACK
        if why:
            dropped.append({"node": node, "holder": entry["holder"], "reason": entry.get("reason", ""), "why": why})
        else:
            kept[node] = entry
    return kept, dropped


def new_entry(holder, reason, now, ttl_seconds, failed=False):
    return {"holder": holder, "reason": reason or "", "acquired": format_time(now),
            "expires": None if failed else format_time(now + datetime.timedelta(seconds=ttl_seconds)), "failed": bool(failed)}


def acquire(slots, holder, nodes, max_unavailable, reason, now, ttl_seconds):
    """Take one slot per node for `holder` if they all fit; renew what `holder` already holds.

    Returns a dict: fits (bool), slots (after; the input when it does not fit), taken (nodes newly held), renewed
    (nodes held before, their expiry pushed to now + ttl), held_by_others ({node: holder} of target nodes someone else
    holds), in_use (after, or now when it does not fit). All or nothing: a batch never holds part of its nodes.
    `slots` must already be the live slots (see live_slots).
    """
    nodes = sorted(set(nodes))
    held_by_others = {n: slots[n]["holder"] for n in nodes if n in slots and slots[n]["holder"] != holder}
    mine = [n for n in nodes if n in slots and slots[n]["holder"] == holder]
    wanted = [n for n in nodes if n not in slots]
    fits = not held_by_others and len(slots) + len(wanted) <= max_unavailable
    result = {"fits": fits, "slots": slots, "taken": [], "renewed": [], "held_by_others": held_by_others, "in_use": len(slots)}
    if not fits:
        return result
    after = dict(slots)
    for node in mine:
        # a failed node taken again by its run (a resumed run) counts with an expiry again
        entry = new_entry(holder, reason or slots[node]["reason"], now, ttl_seconds)
        entry["acquired"] = slots[node]["acquired"]
        after[node] = entry
    for node in wanted:
        after[node] = new_entry(holder, reason, now, ttl_seconds)
    result.update(slots=after, taken=wanted, renewed=mine, in_use=len(after))
    return result


def release(slots, holder, nodes=None):
    """(slots after, released nodes, {node: holder} of named nodes someone else holds). nodes=None: all of holder's."""
    if nodes is None:
        names = [n for n in sorted(slots) if slots[n]["holder"] == holder]
    else:
        names = sorted(set(nodes))
    others = {n: slots[n]["holder"] for n in names if n in slots and slots[n]["holder"] != holder}
    released = [n for n in names if n in slots and slots[n]["holder"] == holder]
    after = {n: e for n, e in slots.items() if n not in released}
    return after, released, others


def mark_failed(slots, holder, nodes, reason, now, ttl_seconds):
    """(slots after, nodes newly marked failed, {node: holder} of nodes someone else holds).

    A failed entry has no expiry. A node the holder does not hold (its slot expired meanwhile) is added as failed
    even beyond max_unavailable: it is out of service, and the lock must count what is.
    """
    names = sorted(set(nodes))
    others = {n: slots[n]["holder"] for n in names if n in slots and slots[n]["holder"] != holder}
    after = dict(slots)
    marked = []
    for node in names:
        if node in others:
            continue
        current = slots.get(node)
        if current and current.get("failed"):
            continue
        entry = new_entry(holder, reason or (current or {}).get("reason", ""), now, ttl_seconds, failed=True)
        if current:
            entry["acquired"] = current["acquired"]
        after[node] = entry
        marked.append(node)
    return after, marked, others


def take_over(slots, previous_holder, holder, nodes, now, ttl_seconds):
    """(slots after, nodes taken over): `previous_holder`'s live entries on `nodes` become `holder`'s, renewed.

    A run that resumes or aborts a roll a killed run left takes that run's slots on the roll's nodes at once instead of
    waiting for them to expire. The slots are already counted, so this never waits and needs no limit. Failed entries stay
    as they are (with their holder) until their Node is back; entries of any other holder are never touched.
    `slots` must already be the live slots (see live_slots).
    """
    if not previous_holder or previous_holder == holder:
        return slots, []
    after = dict(slots)
    taken = []
    for node in sorted(set(nodes or [])):
        entry = slots.get(node)
        if not entry or entry["holder"] != previous_holder or entry.get("failed"):
            continue
        renewed = new_entry(holder, entry.get("reason"), now, ttl_seconds)
        renewed["acquired"] = entry["acquired"]
        after[node] = renewed
        taken.append(node)
    return after, taken


def holders_of(slots):
    """{holder: [nodes]} of the slots, nodes sorted."""
    holders = {}
    for node in sorted(slots):
        holders.setdefault(slots[node]["holder"], []).append(node)
    return holders


def free_slots(slots, max_unavailable):
    """Slots left under max_unavailable (never below 0), or None without a limit."""
    if max_unavailable is None:
        return None
    return max(0, max_unavailable - len(slots))


def blocked_message(decision, nodes, max_unavailable, slots):
    """Why `holder` cannot take slots for `nodes` now, naming who holds what and what to do."""
    nodes = sorted(set(nodes))
    if decision["held_by_others"]:
        taken = ", ".join("{0} (held by {1})".format(n, h) for n, h in sorted(decision["held_by_others"].items()))
        return ("nodes already held in the disruption lock by another run: {0}; wait for that run to release them, or clear "
                "a stale entry (docs/runbooks/disruption-lock.md)".format(taken))
    described = "; ".join("{0}: {1}".format(h, ", ".join(ns)) for h, ns in sorted(holders_of(slots).items())) or "nobody"
    return ("{0} node(s) ({1}) do not fit: {2} of max_unavailable {3} slots are in use ({4}); wait (wait_timeout), lower "
            "the batch size, or raise max_unavailable".format(
                len([n for n in nodes if n not in slots]), ", ".join(nodes), len(slots), max_unavailable, described))


def waiting_state(holders, in_use, max_unavailable):
    """What a run waiting for slots reads in its progress line: who holds the slots and how many of the limit are in use,
    'slots held by other runs: node_patching/a: ip-1, ip-2 (2 of 2 in use)'. `holders` is holders_of's {holder: [nodes]}."""
    held = "; ".join("{0}: {1}".format(h, ", ".join(nodes)) for h, nodes in sorted((holders or {}).items())) or "nobody"
    return "slots held by other runs: {0} ({1} of {2} in use)".format(held, int(in_use or 0), max_unavailable)
