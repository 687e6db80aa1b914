# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A node in maintenance (rebooting, patching): what keeps Auto Scaling and cluster-autoscaler away from it.

Pure functions, no AWS or Kubernetes imports; plugins/modules/eks_node_maintenance.py reads and applies.

Protections:
    scale_in_protection  the instance's scale-in protection (a scale-in never picks it);
    replace_unhealthy    the group's ReplaceUnhealthy process suspended, for groups with ELB health checks (a rebooting
                         node fails them, and the ASG would terminate and replace it). Standby is not used: a Standby
                         instance leaves desired capacity (the ASG launches a replacement unless desired is decremented,
                         which a group at min size refuses), races cluster-autoscaler, and drops out of the eks_nodes
                         inventory (InService only), so a re-run would not find it;
    scale_down_disabled  the Node's cluster-autoscaler.kubernetes.io/scale-down-disabled annotation.

The record, in the instance's MAINTENANCE_TAG (fleet.py), names the protections this maintenance added; protections
that were in place before are left alone. ReplaceUnhealthy is group-wide: when the instance that suspended it leaves
maintenance while other instances of the group are still in it, the suspension is handed over to one of them (its
record takes it), and the last one resumes the process.
"""

import json

SCALE_IN = "scale_in_protection"
REPLACE_UNHEALTHY = "replace_unhealthy"
SCALE_DOWN = "scale_down_disabled"
PROTECTIONS = (SCALE_IN, REPLACE_UNHEALTHY, SCALE_DOWN)
REPLACE_UNHEALTHY_PROCESS = "ReplaceUnhealthy"
# AWS tag values are at most 256 characters.
TAG_VALUE_MAX = 256


def parse_record(value):
    """The maintenance record of a tag value: {"by", "reason", "since", "added": [...]}; None without a tag.

    An unreadable value (edited by hand) counts as a record that added nothing: nothing is removed on its account.
    """
    if value is None:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return {"by": "", "reason": "", "since": "", "added": [], "unreadable": value}
    if not isinstance(record, dict):
        return {"by": "", "reason": "", "since": "", "added": [], "unreadable": value}
    added = [p for p in record.get("added") or [] if p in PROTECTIONS]
    return {"by": str(record.get("by") or ""), "reason": str(record.get("reason") or ""), "since": str(record.get("since") or ""),
            "added": sorted(set(added))}


def render_record(by, reason, since, added):
    """The tag value of a record, within AWS's 256 characters (`by` and `reason` shortened when needed)."""
    body = {"added": sorted(set(added)), "since": since, "reason": reason or "", "by": by or ""}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    while len(text) > TAG_VALUE_MAX and (body["by"] or body["reason"]):
        key = "by" if len(body["by"]) >= len(body["reason"]) else "reason"
        body[key] = body[key][: max(0, len(body[key]) - (len(text) - TAG_VALUE_MAX) - 1)]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return text


def wanted_protections(health_check_type, has_node, scale_in=True, scale_down=True):
    """The protections a node in maintenance needs: scale-in protection, ReplaceUnhealthy for ELB health checks, the annotation."""
    wanted = []
    if scale_in:
        wanted.append(SCALE_IN)
    if (health_check_type or "").upper() == "ELB":
        wanted.append(REPLACE_UNHEALTHY)
    if scale_down and has_node:
        wanted.append(SCALE_DOWN)
    return wanted


def plan_present(in_place, wanted, record):
    """{"apply": protections to put in place, "added": the record's list after}.

    `in_place` maps each protection to whether it is in place now. A protection already in place that this
    maintenance did not add stays out of the record (someone else's; it is not removed later).
    """
    before = list((record or {}).get("added") or [])
    apply = [p for p in PROTECTIONS if p in wanted and not in_place.get(p)]
    return {"apply": apply, "added": sorted(set(before) | set(apply))}


def plan_absent(in_place, record, group_members_in_maintenance):
    """{"remove": protections to take away, "hand_over": True when the group's ReplaceUnhealthy suspension goes to another
    instance of the group still in maintenance instead of being resumed}."""
    added = (record or {}).get("added") or []
    remove = [p for p in PROTECTIONS if p in added and in_place.get(p)]
    hand_over = False
    if REPLACE_UNHEALTHY in remove and group_members_in_maintenance:
        remove.remove(REPLACE_UNHEALTHY)
        hand_over = True
    return {"remove": remove, "hand_over": hand_over}


def daemonset_pod_status(pods):
    """{"total", "ready", "not_ready": [namespace/name]} of the DaemonSet pods in `pods` (API JSON) not terminating."""
    total, not_ready = 0, []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            continue
        if not any(ref.get("kind") == "DaemonSet" for ref in metadata.get("ownerReferences") or []):
            continue
        total += 1
        conditions = (pod.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            not_ready.append("{0}/{1}".format(metadata.get("namespace"), metadata.get("name")))
    return {"total": total, "ready": total - len(not_ready), "not_ready": sorted(not_ready)}


def pdb_status(pdb):
    """A PodDisruptionBudget (API JSON) -> {"name" (namespace/name), "disruptions_allowed", "current_healthy", "desired_healthy"}."""
    metadata, status = pdb.get("metadata") or {}, pdb.get("status") or {}
    return {
        "name": "{0}/{1}".format(metadata.get("namespace"), metadata.get("name")),
        "disruptions_allowed": int(status.get("disruptionsAllowed") or 0),
        "current_healthy": int(status.get("currentHealthy") or 0),
        "desired_healthy": int(status.get("desiredHealthy") or 0),
    }


def pdbs_worse(before, after):
    """Descriptions of the PDBs (pdb_status lists) that are worse after than before: fewer allowed disruptions, or healthy
    pods below the desired count when they were not before. A PDB that is new or gone is not compared."""
    earlier = dict((p["name"], p) for p in before or [])
    worse = []
    for now in after or []:
        then = earlier.get(now["name"])
        if then is None:
            continue
        if now["disruptions_allowed"] < then["disruptions_allowed"] or (
                now["current_healthy"] < now["desired_healthy"] <= then["current_healthy"]):
            worse.append("{0}: {1} disruptions allowed, {2} healthy of {3} desired (before: {4} allowed, {5} healthy)".format(
                now["name"], now["disruptions_allowed"], now["current_healthy"], now["desired_healthy"],
                then["disruptions_allowed"], then["current_healthy"]))
    return worse


def _node_standing(entry, boot_ids):
    """One status entry read once for both wait texts: None when the instance has no Node, else its Node with
    `rebooted` (None when no bootID was given for it, else whether the Node reports another one)."""
    node = entry["node"]
    if node is None:
        return None
    old = boot_ids.get(entry["instance_id"])
    return dict(node, old_boot_id=old, rebooted=None if not old else node["boot_id"] != old)


def not_back_yet(entries, boot_ids):
    """Each instance whose Node is not back yet and why, one line each ([] when all are back).

    `entries` are eks_node_maintenance's status entries ({"instance_id", "node": {...} or None}); `boot_ids` maps instance ids
    to the bootID read before their reboot: those are back only once their Node reports another bootID.
    """
    return [line for line in (_not_back_line(entry, boot_ids) for entry in entries) if line]


def _not_back_line(entry, boot_ids):
    node = _node_standing(entry, boot_ids)
    if node is None:
        return "{0}: no Node".format(entry["instance_id"])
    why = []
    if not node["ready"]:
        why.append("not Ready ({0})".format(node["ready_reason"] or "no Ready condition"))
    if node["rebooted"] is False:
        why.append("bootID still {0} (not rebooted, or its kubelet has not reported since)".format(node["old_boot_id"]))
    if node["daemonset_pods"]["not_ready"]:
        why.append("DaemonSet pods not Ready: {0}".format(", ".join(node["daemonset_pods"]["not_ready"])))
    return "{0} ({1}): {2}".format(entry["instance_id"], node["name"], "; ".join(why)) if why else None


def wait_states(entries, boot_ids):
    """Where each instance's Node stands, one short line each, for a progress line:
    'Node ip-10-0-1-5.ec2.internal NotReady, bootID unchanged' or '... Ready, new bootID, DaemonSet pods 2 of 2 Ready'."""
    return [_state_line(entry, boot_ids) for entry in entries]


def _state_line(entry, boot_ids):
    node = _node_standing(entry, boot_ids)
    if node is None:
        return "{0}: no Node".format(entry["instance_id"])
    parts = ["Node {0} {1}".format(node["name"], "Ready" if node["ready"] else "NotReady")]
    if node["rebooted"] is not None:
        parts.append("new bootID" if node["rebooted"] else "bootID unchanged")
    pods = node["daemonset_pods"]
    if pods["total"]:
        parts.append("DaemonSet pods {0} of {1} Ready".format(pods["ready"], pods["total"]))
    return ", ".join(parts)


def rebooted(entries, boot_ids):
    """True when every instance named in `boot_ids` has a Node that reports another bootID than the one given (it rebooted and its
    kubelet reported since); Ready or not does not matter here."""
    nodes = dict((e["instance_id"], e["node"]) for e in entries)
    return all(nodes.get(i) is not None and nodes[i].get("boot_id") not in ("", old) for i, old in boot_ids.items())
