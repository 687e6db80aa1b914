"""Maintenance protections: only what was not in place is added and recorded, only the record is taken back, ReplaceUnhealthy
is handed over while other nodes of the group are still in maintenance, the record fits in a tag, and the health readings
a patch run gates on (DaemonSet pods, PDBs no worse than before)."""

import json

from ansible_collections.selfmanaged.eks.plugins.module_utils import maintenance as mt


def test_present_adds_and_records_only_what_was_missing():
    in_place = {"scale_in_protection": True, "replace_unhealthy": False, "scale_down_disabled": False}
    wanted = mt.wanted_protections("ELB", has_node=True)
    assert wanted == ["scale_in_protection", "replace_unhealthy", "scale_down_disabled"]
    assert mt.plan_present(in_place, wanted, None) == {"apply": ["replace_unhealthy", "scale_down_disabled"],
                                                       "added": ["replace_unhealthy", "scale_down_disabled"]}
    # a re-run after a kill keeps what the record says it added, even though it is in place now
    record = {"added": ["scale_in_protection"]}
    assert mt.plan_present({"scale_in_protection": True}, ["scale_in_protection"], record) == {"apply": [], "added": ["scale_in_protection"]}


def test_ec2_health_checked_groups_and_nodes_without_a_node_need_less():
    assert mt.wanted_protections("EC2", has_node=False) == ["scale_in_protection"]
    assert mt.wanted_protections("EC2", has_node=True, scale_down=False) == ["scale_in_protection"]


def test_absent_removes_the_record_and_hands_replace_unhealthy_over():
    in_place = dict.fromkeys(mt.PROTECTIONS, True)
    record = {"added": ["replace_unhealthy", "scale_in_protection"]}
    assert mt.plan_absent(in_place, record, []) == {"remove": ["scale_in_protection", "replace_unhealthy"], "hand_over": False}
    assert mt.plan_absent(in_place, record, ["i-2"]) == {"remove": ["scale_in_protection"], "hand_over": True}
    assert mt.plan_absent(in_place, None, []) == {"remove": [], "hand_over": False}


def test_records_round_trip_fit_in_a_tag_and_hand_edits_remove_nothing():
    value = mt.render_record("node_patching/" + "x" * 300, "patch", "2026-11-30T08:00:00Z", ["scale_in_protection"])
    assert len(value) <= 256
    record = mt.parse_record(value)
    assert record["added"] == ["scale_in_protection"] and record["reason"] == "patch" and record["by"].startswith("node_patching/x")
    assert mt.parse_record("not json")["added"] == [] and mt.parse_record(None) is None
    assert mt.parse_record(json.dumps({"added": ["scale_in_protection", "bogus"]}))["added"] == ["scale_in_protection"]


def pod(name, owner="DaemonSet", ready=True, deleting=False):
    metadata = {"namespace": "kube-system", "name": name, "ownerReferences": [{"kind": owner}] if owner else []}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-30T08:00:00Z"
    return {"metadata": metadata, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_daemonset_pods_count_only_live_daemonset_pods():
    pods = [pod("aws-node-1"), pod("kube-proxy-1", ready=False), pod("web-1", owner="ReplicaSet", ready=False), pod("old", deleting=True)]
    assert mt.daemonset_pod_status(pods) == {"total": 2, "ready": 1, "not_ready": ["kube-system/kube-proxy-1"]}


def pdb(allowed, healthy, desired, name="web"):
    return {"name": "default/" + name, "disruptions_allowed": allowed, "current_healthy": healthy, "desired_healthy": desired}


def test_a_pdb_is_worse_with_fewer_disruptions_allowed_or_newly_below_its_desired_count():
    assert mt.pdbs_worse([pdb(1, 4, 3)], [pdb(1, 4, 3)]) == []
    assert mt.pdbs_worse([pdb(1, 4, 3)], [pdb(0, 3, 3)]) == ["default/web: 0 disruptions allowed, 3 healthy of 3 desired (before: 1 allowed, 4 healthy)"]
    assert mt.pdbs_worse([pdb(0, 2, 3)], [pdb(0, 2, 3)]) == []  # already unhealthy before: not this batch's doing
    assert mt.pdbs_worse([], [pdb(0, 0, 3, "new")]) == []
    assert mt.pdb_status({"metadata": {"namespace": "a", "name": "b"}, "status": {"disruptionsAllowed": 2}})["disruptions_allowed"] == 2


def status_entry(instance_id, name, ready, boot_id, not_ready_pods=(), total_pods=2, reason="KubeletNotReady"):
    return {"instance_id": instance_id, "node": {
        "name": name, "ready": ready, "ready_reason": "" if ready else reason, "boot_id": boot_id,
        "daemonset_pods": {"total": total_pods, "ready": total_pods - len(not_ready_pods), "not_ready": list(not_ready_pods)}}}


def test_a_rebooted_node_is_back_only_with_a_new_boot_id_ready_and_its_daemonset_pods_ready():
    boot_ids = {"i-1": "boot-a"}
    before_reboot = [status_entry("i-1", "ip-1", True, "boot-a")]
    assert mt.not_back_yet(before_reboot, boot_ids) == [
        "i-1 (ip-1): bootID still boot-a (not rebooted, or its kubelet has not reported since)"]
    assert mt.wait_states(before_reboot, boot_ids) == ["Node ip-1 Ready, bootID unchanged, DaemonSet pods 2 of 2 Ready"]
    rebooting = [status_entry("i-1", "ip-1", False, "boot-b", not_ready_pods=["kube-system/aws-node-x"])]
    assert mt.not_back_yet(rebooting, boot_ids) == [
        "i-1 (ip-1): not Ready (KubeletNotReady); DaemonSet pods not Ready: kube-system/aws-node-x"]
    assert mt.wait_states(rebooting, boot_ids) == ["Node ip-1 NotReady, new bootID, DaemonSet pods 1 of 2 Ready"]
    back = [status_entry("i-1", "ip-1", True, "boot-b")]
    assert mt.not_back_yet(back, boot_ids) == []
    # without a reboot (no bootID given), Ready with its DaemonSet pods is enough; the state line says nothing of boots
    assert mt.not_back_yet(before_reboot, {}) == []
    assert mt.wait_states([status_entry("i-1", "ip-1", True, "boot-a", total_pods=0)], {}) == ["Node ip-1 Ready"]


def test_an_instance_without_a_node_is_never_back():
    gone = [{"instance_id": "i-9", "node": None}]
    assert mt.not_back_yet(gone, {}) == ["i-9: no Node"] and mt.wait_states(gone, {"i-9": "x"}) == ["i-9: no Node"]


def test_a_node_has_rebooted_once_it_reports_another_boot_id_ready_or_not():
    boot_ids = {"i-1": "boot-a"}
    assert not mt.rebooted([status_entry("i-1", "ip-1", False, "boot-a")], boot_ids)
    assert mt.rebooted([status_entry("i-1", "ip-1", False, "boot-b")], boot_ids)
    assert not mt.rebooted([{"instance_id": "i-1", "node": None}], boot_ids)
    assert not mt.rebooted([status_entry("i-1", "ip-1", True, "")], boot_ids), "no bootID reported is no new bootID"
    assert mt.rebooted([status_entry("i-1", "ip-1", True, "boot-a")], {}), "nothing to reboot is done"
