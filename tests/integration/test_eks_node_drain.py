"""eks_node_drain against the sandbox: real nodes, real workloads, PDBs enforced by the sandbox's eviction API, pods
that take time to stop and to become Ready. Every behaviour of issue 12 a user would notice."""

import json

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.fleet import (
    AUTOSCALER_SCALE_DOWN_DISABLED,
    CORDON_OWNER_ANNOTATION,
    EXCLUDE_FROM_LB_LABEL,
)
from tests.integration.drain_workloads import DrainCluster, PdbWatcher
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture
def two_nodes(sandbox):
    return DrainCluster(sandbox, size=2)


def drain(module_runner, cluster, check=False, diff=False, **args):
    args.setdefault("timeout", 60)
    return module_runner("eks_node_drain", dict(cluster_name=cluster.name, **args), check=check, diff=diff)


def node_report(result, name):
    return next(n for n in result["nodes"] if n["name"] == name)


def cordoned(cluster, name):
    return bool(cluster.node(name)["spec"].get("unschedulable"))


def test_drain_moves_pods_skips_daemonsets_and_a_second_run_changes_nothing(module_runner, two_nodes):
    target, other = two_nodes.nodes
    two_nodes.daemonset("default", "agent")
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "web", 4, stop_seconds=0.3), "app=web", count=4)
    wait_for(lambda: len(two_nodes.pods_on(target)) == 5, message="web and agent pods on the target")

    result = drain(module_runner, two_nodes, nodes=[target], reason="patching (change 42)")
    assert result.get("failed") is not True, result.get("msg")
    report = node_report(result, target)
    assert result["changed"] is True and report["state"] == "drained"
    assert len(report["evicted"]) == 4 and all(p.startswith("default/web-") for p in report["evicted"])
    assert [s["reason"] for s in report["skipped"]] == ["managed by DaemonSet agent"]
    assert cordoned(two_nodes, target)
    assert json.loads(two_nodes.node(target)["metadata"]["annotations"][CORDON_OWNER_ANNOTATION])["reason"] == "patching (change 42)"
    assert [p.metadata.name.startswith("agent-") for p in two_nodes.pods_on(target)] == [True]
    wait_for(lambda: two_nodes.ready_count("default", "app=web") == 4, message="web Ready again on the other node")
    assert all(p.spec.node_name == other for p in two_nodes.core.list_namespaced_pod("default", label_selector="app=web").items)

    again = drain(module_runner, two_nodes, nodes=[target])
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and node_report(again, target)["evicted"] == []

    uncordon = drain(module_runner, two_nodes, nodes=[target], state="uncordoned")
    assert uncordon["changed"] is True and not cordoned(two_nodes, target)
    assert CORDON_OWNER_ANNOTATION not in (two_nodes.node(target)["metadata"].get("annotations") or {})


def test_refusals_are_reported_for_every_pod_before_anything_is_cordoned(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.bare_pod("default", "debug", target)
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "cache", 2, emptydir=True), "app=cache", count=2)

    result = drain(module_runner, two_nodes, nodes=[target])
    assert result.get("failed") is True
    assert "default/debug on {0} has no controller".format(target) in result["msg"] and "force: true" in result["msg"]
    assert result["msg"].count("delete_emptydir_data: true") == 2
    assert "Nothing was cordoned or evicted" in result["msg"]
    assert node_report(result, target)["state"] == "refused"
    assert not cordoned(two_nodes, target)
    assert len(two_nodes.pods_on(target, "default")) == 3

    forced = drain(module_runner, two_nodes, nodes=[target], force=True, delete_emptydir_data=True)
    assert forced.get("failed") is not True, forced.get("msg")
    assert sorted(p.split("/")[1].split("-")[0] for p in node_report(forced, target)["evicted"]) == ["cache", "cache", "debug"]
    assert two_nodes.pods_on(target, "default") == []


def test_pdb_one_at_a_time_is_never_violated_and_waits_are_reported(module_runner, two_nodes, tmp_path):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "api", 4, stop_seconds=0.5, ready_seconds=1), "app=api",
                       count=4)
    two_nodes.pdb("default", "api", "api", min_available=3)

    with PdbWatcher(two_nodes) as watcher:
        result = drain(module_runner, two_nodes, nodes=[target], max_concurrent_evictions=4, progress_file=str(tmp_path / "progress"))
    assert result.get("failed") is not True, result.get("msg")
    report = node_report(result, target)
    assert len(report["evicted"]) == 4
    events = [json.loads(line)["event"] for line in (tmp_path / "progress").read_text().splitlines()]
    assert events == ["cordoned"] + ["evicted"] * 4 + ["drained"]
    assert watcher.samples > 10 and watcher.violations == []
    assert report["pdb_wait_seconds"]["default/api"] > 1.0
    assert report["pdbs"][0]["name"] == "api" and report["pdbs"][0]["can_ever_allow"] is True


def test_a_pdb_that_never_allows_fails_before_the_cordon_and_names_it(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "db", 2), "app=db", count=2)
    two_nodes.pdb("default", "db", "db", min_available=2)

    result = drain(module_runner, two_nodes, nodes=[target])
    assert result.get("failed") is True
    assert "PodDisruptionBudget default/db needs 2 healthy pods of its 2" in result["msg"]
    assert not cordoned(two_nodes, target)
    assert len(two_nodes.pods_on(target, "default")) == 2


def test_a_drain_interrupted_by_its_timeout_leaves_the_node_as_it_was_with_a_diagnosis(module_runner, two_nodes):
    target, other = two_nodes.nodes
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "free", 2), "app=free", count=2)
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "db", 2), "app=db", count=2)
    two_nodes.pdb("default", "db", "db", min_available=2)

    result = drain(module_runner, two_nodes, nodes=[target], pdb_preflight=False, timeout=3)
    assert result.get("failed") is True
    assert "not drained within timeout 3s" in result["msg"] and "default/db" in result["msg"]
    report = node_report(result, target)
    assert report["state"] == "restored"
    assert len(report["evicted"]) == 2 and all(p.startswith("default/free-") for p in report["evicted"])
    blocked = report["diagnosis"]
    assert {d["pdb"] for d in blocked} == {"default/db"} and len(blocked) == 2
    assert blocked[0]["desired_healthy"] == 2 and blocked[0]["disruptions_allowed"] == 0
    assert blocked[0]["unhealthy_pod_eviction_policy"] == "IfHealthyBudget"
    assert report["disruption_budget_429s"] == 0  # the ledger never asked what the budget could not give
    assert report["pdb_wait_seconds"]["default/db"] >= 2
    assert not cordoned(two_nodes, target)
    assert CORDON_OWNER_ANNOTATION not in (two_nodes.node(target)["metadata"].get("annotations") or {})

    kept = drain(module_runner, two_nodes, nodes=[target], pdb_preflight=False, timeout=2, on_failure="keep_cordoned")
    assert kept.get("failed") is True and node_report(kept, target)["state"] == "failed"
    assert cordoned(two_nodes, target)
    assert other not in kept["msg"]


def test_unhealthy_pod_eviction_policy_decides_for_pods_that_are_not_ready(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    def never_ready():
        # Pods that never become Ready (a crash loop, as far as the budgets can tell), bound to the target.
        for name in ("stuck", "loose"):
            two_nodes.deployment("default", name, 2, ready_seconds=3600)
        wait_for(lambda: len(two_nodes.pods_on(target, "default")) == 4, message="four pods on the target")

    two_nodes.place_on(target, never_ready)
    two_nodes.pdb("default", "stuck", "stuck", min_available=1, policy="IfHealthyBudget")
    two_nodes.pdb("default", "loose", "loose", min_available=1, policy="AlwaysAllow")

    result = drain(module_runner, two_nodes, nodes=[target], timeout=4)
    assert result.get("failed") is True
    report = node_report(result, target)
    assert sorted(p.rsplit("-", 2)[0] for p in report["evicted"]) == ["default/loose", "default/loose"]
    stuck = report["diagnosis"]
    assert {d["pdb"] for d in stuck} == {"default/stuck"}
    assert stuck[0]["unhealthy_pod_eviction_policy"] == "IfHealthyBudget" and stuck[0]["current_healthy"] == 0
    assert len(stuck[0]["unhealthy_pods"]) == 2 and all(" on {0} (Running, not Ready)".format(target) in p for p in stuck[0]["unhealthy_pods"])
    assert not cordoned(two_nodes, target)


def test_an_operators_cordon_stays_through_drain_failure_and_uncordon(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "db", 1), "app=db", count=1)
    two_nodes.pdb("default", "db", "db", min_available=1)
    two_nodes.set_unschedulable(target, True)  # by hand, as `kubectl cordon` does

    failed = drain(module_runner, two_nodes, nodes=[target], pdb_preflight=False, timeout=2)
    assert failed.get("failed") is True
    assert cordoned(two_nodes, target)
    assert CORDON_OWNER_ANNOTATION not in (two_nodes.node(target)["metadata"].get("annotations") or {})

    left = drain(module_runner, two_nodes, nodes=[target], state="uncordoned")
    assert left.get("failed") is not True and left["changed"] is False
    assert node_report(left, target)["state"] == "left_cordoned" and cordoned(two_nodes, target)
    assert any("ignore_cordon_owner" in w for w in left.get("warnings", []))

    asked = drain(module_runner, two_nodes, nodes=[target], state="uncordoned", ignore_cordon_owner=True)
    assert asked["changed"] is True and not cordoned(two_nodes, target)


def test_check_mode_is_a_pdb_preflight_that_writes_nothing(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "web", 2), "app=web", count=2)
    two_nodes.pdb("default", "web", "web", max_unavailable=1)
    before = two_nodes.node(target)
    pods_before = sorted(p.metadata.uid for p in two_nodes.pods_on(target))
    requests_before = two_nodes.kube_requests()

    result = drain(module_runner, two_nodes, check=True, diff=True, nodes=[target], exclude_from_load_balancers=True)
    assert result.get("failed") is not True, result.get("msg")
    report = node_report(result, target)
    assert result["changed"] is True and len(report["evicted"]) == 2
    assert report["pdbs"][0]["can_ever_allow"] is True and report["pdbs"][0]["disruptions_allowed"] == 1
    assert result["diff"]["before"][target]["unschedulable"] is False
    assert result["diff"]["after"][target]["unschedulable"] is True
    assert result["diff"]["after"][target]["exclude_from_external_load_balancers"] is True
    after = two_nodes.node(target)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert sorted(p.metadata.uid for p in two_nodes.pods_on(target)) == pods_before
    requests = {k: v - requests_before.get(k, 0) for k, v in two_nodes.kube_requests().items() if v != requests_before.get(k, 0)}
    assert requests and all(k.startswith("GET ") for k in requests), requests


def test_cordon_marks_are_added_and_removed_with_the_cordon(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    result = drain(module_runner, two_nodes, nodes=[target], state="cordoned", exclude_from_load_balancers=True, disable_scale_down=True)
    assert result["changed"] is True
    metadata = two_nodes.node(target)["metadata"]
    assert metadata["labels"][EXCLUDE_FROM_LB_LABEL] == "true" and metadata["annotations"][AUTOSCALER_SCALE_DOWN_DISABLED] == "true"
    again = drain(module_runner, two_nodes, nodes=[target], state="cordoned", exclude_from_load_balancers=True, disable_scale_down=True)
    assert again["changed"] is False
    drain(module_runner, two_nodes, nodes=[target], state="uncordoned")
    metadata = two_nodes.node(target)["metadata"]
    assert EXCLUDE_FROM_LB_LABEL not in metadata["labels"]
    assert AUTOSCALER_SCALE_DOWN_DISABLED not in (metadata.get("annotations") or {})


def test_statefulset_pod_recreated_under_its_name_counts_as_gone_and_selector_drains_several_nodes(sandbox, module_runner):
    cluster = DrainCluster(sandbox, size=3)
    target = cluster.nodes[0]
    cluster.place_on(target, lambda: cluster.statefulset("default", "kv", 1), "app=kv", count=1)
    cluster.place_on(cluster.nodes[1], lambda: cluster.deployment("default", "web", 2), "app=web", count=2)
    for name in cluster.nodes[:2]:
        cluster.raw("PATCH", "/api/v1/nodes/" + name, {"metadata": {"labels": {"pool": "old"}}})

    result = drain(module_runner, cluster, node_selector="pool=old", max_concurrent_nodes=2)
    assert result.get("failed") is not True, result.get("msg")
    assert [n["name"] for n in result["nodes"]] == sorted(cluster.nodes[:2])
    assert node_report(result, target)["evicted"] == ["default/kv-0"]
    kv = wait_for(lambda: [p for p in cluster.core.list_namespaced_pod("default", label_selector="app=kv").items
                           if p.spec.node_name == cluster.nodes[2]], message="kv-0 recreated on the third node")
    assert kv[0].metadata.name == "kv-0"


def test_rate_limiting_and_dropped_connections_are_retried_not_fatal(sandbox, module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "web", 6), "app=web", count=6)
    sandbox.inject_kube_faults(two_nodes.name, codes=["429", "drop", "503"], every=2, operations=["POST pods/eviction"])
    try:
        result = drain(module_runner, two_nodes, nodes=[target])
    finally:
        sandbox.clear_kube_faults(two_nodes.name)
    assert result.get("failed") is not True, result.get("msg")
    report = node_report(result, target)
    assert len(report["evicted"]) == 6 and report["rate_limited_429s"] >= 1 and report["disruption_budget_429s"] == 0


def test_disable_eviction_deletes_past_the_budget_with_a_warning(module_runner, two_nodes):
    target = two_nodes.nodes[0]
    two_nodes.place_on(target, lambda: two_nodes.deployment("default", "db", 2), "app=db", count=2)
    two_nodes.pdb("default", "db", "db", min_available=2)
    result = drain(module_runner, two_nodes, nodes=[target], disable_eviction=True, grace_period=0)
    assert result.get("failed") is not True, result.get("msg")
    assert len(node_report(result, target)["evicted"]) == 2
    assert any("disable_eviction" in w for w in result.get("warnings", []))


@pytest.mark.parametrize("args,fragment", [
    ({"nodes": ["ip-10-9-9-9.ec2.internal"]}, "node ip-10-9-9-9.ec2.internal not found"),
    ({"node_selector": "pool=none"}, "node_selector 'pool=none' matches no node"),
    ({"node_selector": "pool=x", "timeout": 0}, "timeout 0 must be a positive number"),
    ({"node_selector": "pool=x", "timeout": -1}, "timeout -1"),
    ({"node_selector": "pool=x", "grace_period": 700}, "grace_period 700 is above max_grace_period 600"),
    ({"node_selector": "pool=x", "disable_eviction": True, "pdb_preflight": True}, "disable_eviction"),
])
def test_bad_input_is_named_before_any_change(module_runner, two_nodes, args, fragment):
    result = drain(module_runner, two_nodes, **args)
    assert result.get("failed") is True and fragment in result["msg"], result.get("msg")
    assert not any(cordoned(two_nodes, n) for n in two_nodes.nodes)


def test_selector_matching_nothing_is_fine_when_allowed(module_runner, two_nodes):
    result = drain(module_runner, two_nodes, node_selector="pool=none", allow_no_match=True)
    assert result.get("failed") is not True and result["changed"] is False and result["nodes"] == []
