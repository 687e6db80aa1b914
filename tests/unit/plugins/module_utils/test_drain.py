"""Drain planning: kubectl's pod filters and their order, grace periods, PDB arithmetic, the timeout diagnosis and
the cordon-owner record that keeps an operator's cordon in place."""

import json

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import drain as dm
from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import CORDON_OWNER_ANNOTATION, EXCLUDE_FROM_LB_LABEL


def pod(name, owner_kind="ReplicaSet", owner="web-1", phase="Running", ready=True, labels=None, volumes=None, annotations=None,
        namespace="default", node="n1", terminating=False, grace=None):
    metadata = {"name": name, "namespace": namespace, "uid": "uid-" + name, "labels": labels or {"app": "web"}}
    if owner_kind:
        metadata["ownerReferences"] = [{"kind": owner_kind, "name": owner, "controller": True, "uid": "o-" + owner}]
    if annotations:
        metadata["annotations"] = annotations
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        metadata["deletionGracePeriodSeconds"] = 30
    spec = {"nodeName": node, "volumes": volumes or []}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": metadata, "spec": spec,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(name, selector=None, min_available=None, max_unavailable=None, current=3, desired=2, expected=3, allowed=1, policy=None,
        namespace="default"):
    spec = {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec,
            "status": {"currentHealthy": current, "desiredHealthy": desired, "expectedPods": expected, "disruptionsAllowed": allowed}}


def actions(decisions):
    return {d["name"]: (d["action"], d["reason"]) for d in decisions}


def test_filters_follow_kubectl_order_and_report_every_refusal():
    pods = [
        pod("ds-live", owner_kind="DaemonSet", owner="kube-proxy"),
        pod("ds-orphan", owner_kind="DaemonSet", owner="gone"),
        pod("mirror", owner_kind="Node", owner="n1", annotations={dm.MIRROR_ANNOTATION: "x"}),
        pod("cache", volumes=[{"name": "scratch", "emptyDir": {}}]),
        pod("bare", owner_kind=None),
        pod("bare-with-emptydir", owner_kind=None, volumes=[{"name": "tmp", "emptyDir": {}}]),
        pod("done", owner_kind=None, phase="Succeeded", volumes=[{"name": "tmp", "emptyDir": {}}]),
        pod("leaving", terminating=True),
        pod("web"),
    ]
    got = actions(dm.select_pods(pods, {("default", "kube-proxy")}))
    assert got["ds-live"] == (dm.SKIP, "managed by DaemonSet kube-proxy")
    assert got["ds-orphan"][0] == dm.REFUSE and "gone does not exist" in got["ds-orphan"][1] and "force" in got["ds-orphan"][1]
    assert got["mirror"][0] == dm.SKIP
    assert got["cache"][0] == dm.REFUSE and "scratch" in got["cache"][1] and "delete_emptydir_data" in got["cache"][1]
    assert got["bare"][0] == dm.REFUSE and "force" in got["bare"][1]
    # kubectl's order: the emptyDir filter comes before the controller filter, so that refusal is reported
    assert "emptyDir" in got["bare-with-emptydir"][1]
    assert got["done"][0] == dm.DELETE
    assert got["leaving"][0] == dm.WAIT
    assert got["web"] == (dm.EVICT, "")


def test_force_and_delete_emptydir_data_let_those_pods_go():
    pods = [pod("ds-orphan", owner_kind="DaemonSet", owner="gone"), pod("cache", volumes=[{"name": "s", "emptyDir": {}}]),
            pod("bare", owner_kind=None)]
    got = actions(dm.select_pods(pods, set(), force=True, delete_emptydir_data=True))
    assert {name: action for name, (action, _) in got.items()} == {"ds-orphan": dm.EVICT, "cache": dm.EVICT, "bare": dm.EVICT}


def test_daemonsets_to_check_names_only_running_daemonset_pods():
    pods = [pod("a", owner_kind="DaemonSet", owner="x"), pod("b", owner_kind="DaemonSet", owner="y", phase="Failed"), pod("c")]
    assert dm.daemonsets_to_check(pods) == [("default", "x")]


@pytest.mark.parametrize("own,grace,cap,expected", [
    (None, None, None, None), (60, None, 30, 30), (10, None, 30, None), (None, None, 20, 20), (60, 0, 30, 0), (5, 15, 30, 15),
])
def test_grace_seconds(own, grace, cap, expected):
    assert dm.grace_seconds(pod("p", grace=own), grace, cap) == expected


def test_selector_matching_follows_policy_v1():
    labels = {"app": "web", "tier": "front"}
    assert dm.selector_matches({}, labels)  # empty selects all
    assert not dm.selector_matches(None, labels)
    assert dm.selector_matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels)
    assert not dm.selector_matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels)
    assert dm.selector_matches({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, labels)
    assert not dm.selector_matches({"matchLabels": {"app": "db"}}, labels)


def test_pdbs_of_pod_stay_in_the_pods_namespace():
    budgets = [pdb("web"), pdb("other-ns", namespace="prod"), pdb("db", selector={"matchLabels": {"app": "db"}})]
    assert [p["metadata"]["name"] for p in dm.pdbs_of_pod(pod("w"), budgets)] == ["web"]


@pytest.mark.parametrize("budget,never", [
    (pdb("a", min_available=3, current=3, desired=3, expected=3, allowed=0), True),
    (pdb("b", max_unavailable=0, current=3, desired=3, expected=3, allowed=0), True),
    (pdb("c", max_unavailable="0%", current=3, desired=3, expected=3, allowed=0), True),
    (pdb("d", min_available=2, current=2, desired=2, expected=3, allowed=0), False),  # one pod not Ready: it may recover
    (pdb("e", min_available=1), False),
])
def test_pdb_never_allows(budget, never):
    reason = dm.pdb_never_allows(budget)
    assert bool(reason) is never
    if never:
        assert "default/" + budget["metadata"]["name"] in reason


def test_preflight_refuses_pods_whose_budget_never_allows_and_pods_with_two_budgets():
    pods = [pod("w1"), pod("w2"), pod("db", labels={"app": "db"}), pod("both", labels={"app": "web", "tier": "x"})]
    budgets = [pdb("web", selector={"matchLabels": {"app": "web"}}, allowed=1),
               pdb("db", selector={"matchLabels": {"app": "db"}}, min_available=1, current=1, desired=1, expected=1, allowed=0),
               pdb("tier", selector={"matchLabels": {"tier": "x"}})]
    decisions = dm.select_pods(pods, set())
    refusals, summary = dm.preflight(decisions, pods, budgets)
    refused = {r["name"]: r["reason"] for r in refusals}
    assert set(refused) == {"db", "both"}
    assert "default/db needs 1 healthy pods of its 1" in refused["db"]
    assert "default/tier, default/web" in refused["both"]
    by_name = {b["name"]: b for b in summary}
    assert by_name["web"]["pods_to_evict"] == ["default/w1", "default/w2"] and by_name["web"]["can_ever_allow"]
    assert by_name["db"]["can_ever_allow"] is False and by_name["db"]["blocks_now"] is True


def test_preflight_lets_an_unhealthy_pod_go_when_the_policy_allows():
    sick = pod("sick", ready=False)
    budget = pdb("web", min_available=3, current=2, desired=3, expected=3, allowed=0, policy="AlwaysAllow")
    refusals, _ = dm.preflight(dm.select_pods([sick], set()), [sick], [budget])
    assert refusals == []


def test_eviction_order_puts_unbudgeted_first_and_interleaves_budgets():
    decisions = [{"name": n, "action": dm.EVICT} for n in ("a1", "a2", "a3", "b1", "free", "b2")]
    decisions.append({"name": "done", "action": dm.DELETE})
    order = dm.eviction_order(decisions, lambda d: None if d["name"] in ("free", "done") else d["name"][0])
    assert [d["name"] for d in order] == ["done", "free", "a1", "b1", "a2", "b2", "a3"]


def test_ledger_spends_what_a_read_allowed_and_forgets_evictions_a_later_read_saw():
    ledger = dm.DisruptionLedger()
    assert ledger.try_start("p") is None  # never read: nothing may start
    ledger.observe("p", 2, ledger.read_started())
    first, second = ledger.try_start("p"), ledger.try_start("p")
    assert first and second and ledger.try_start("p") is None
    ledger.finished(first, True)
    stale = ledger.read_started()
    ledger.finished(second, True)
    ledger.observe("p", 0, stale)  # began before the second answer: it still counts
    assert ledger.outstanding("p") == 1
    ledger.observe("p", 1, ledger.read_started())
    assert ledger.outstanding("p") == 0 and ledger.available("p") == 1


def test_ledger_refusal_marks_the_budget_spent():
    ledger = dm.DisruptionLedger()
    ledger.observe("p", 3, ledger.read_started())
    ledger.finished(ledger.try_start("p"), False)
    assert ledger.available("p") == 0


def test_timeout_diagnosis_names_the_blocking_budget_and_its_unhealthy_pods():
    stuck = pod("w1", node="n1")
    elsewhere = pod("w2", node="n2", ready=False)
    budget = pdb("web", min_available=2, current=1, desired=2, expected=3, allowed=0)
    diagnosis = dm.timeout_diagnosis([stuck], [budget], {"default/web": [stuck, elsewhere]})
    assert diagnosis[0]["pdb"] == "default/web"
    assert diagnosis[0]["disruptions_allowed"] == 0 and diagnosis[0]["current_healthy"] == 1 and diagnosis[0]["desired_healthy"] == 2
    assert diagnosis[0]["unhealthy_pods"] == ["default/w2 on n2 (Running, not Ready)"]
    message = dm.diagnosis_message("n1", 60, diagnosis)
    assert "node n1 not drained within timeout 60s" in message and "default/web" in message and "default/w2 on n2" in message


def node(unschedulable=False, annotations=None, labels=None):
    return {"metadata": {"name": "n1", "labels": labels or {}, "annotations": annotations or {}}, "spec": {"unschedulable": unschedulable}}


apply = dm.apply_merge_patch


def test_cordon_records_owner_and_marks_and_uncordon_removes_only_ours():
    before = node(labels={"team": "a"})
    cordoned = apply(before, dm.cordon_patch(before, "patching", "2026-01-01T00:00:00Z", exclude_from_load_balancers=True,
                                             disable_scale_down=True))
    assert cordoned["spec"]["unschedulable"] is True
    assert cordoned["metadata"]["labels"][EXCLUDE_FROM_LB_LABEL] == "true"
    assert dm.cordon_record(cordoned)["reason"] == "patching"
    assert dm.cordon_patch(cordoned, "patching", "later", True, True) is None  # second run: nothing
    patch, note = dm.uncordon_patch(cordoned)
    after = apply(cordoned, patch)
    assert note == "" and after == apply(before, {"spec": {"unschedulable": False}})


def test_an_operators_cordon_is_never_taken_over_nor_undone_unless_asked():
    by_hand = node(unschedulable=True)
    assert dm.cordon_patch(by_hand, "patching", "now") is None
    patch, note = dm.uncordon_patch(by_hand)
    assert patch is None and "ignore_cordon_owner" in note
    patch, _ = dm.uncordon_patch(by_hand, ignore_cordon_owner=True)
    assert apply(by_hand, patch)["spec"]["unschedulable"] is False
    assert dm.restore_patch(by_hand, by_hand) is None


def test_restore_returns_a_node_to_what_it_was():
    before = node()
    cordoned = apply(before, dm.cordon_patch(before, "drain", "now", exclude_from_load_balancers=True))
    assert apply(cordoned, dm.restore_patch(before, cordoned)) == apply(before, {"spec": {"unschedulable": False}})
    assert CORDON_OWNER_ANNOTATION not in apply(cordoned, dm.restore_patch(before, cordoned))["metadata"]["annotations"]


@pytest.mark.parametrize("params,fragment", [
    ({"timeout": 0}, "timeout 0"),
    ({"timeout": -5}, "timeout -5"),
    ({"grace_period": 120, "max_grace_period": 60}, "grace_period 120 is above max_grace_period 60"),
    ({"grace_period": -1}, "grace_period -1"),
    ({"disable_eviction": True, "pdb_preflight": True}, "disable_eviction"),
    ({"node_selector": "  "}, "node_selector is empty"),
    ({"nodes": []}, "nodes is an empty list"),
])
def test_bad_options_are_named(params, fragment):
    with pytest.raises(dm.DrainError, match=fragment):
        dm.validate_options(params)
