"""Pure whole-cluster upgrade logic: steps, the versions whose phases run, skew at each step,
add-on availability, insights."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils import upgrade as u
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import ClusterConfigError


def test_two_minors_are_two_steps_when_stepping():
    assert u.upgrade_steps("1.30", "1.32") == ["1.31", "1.32"]


def test_same_version_has_no_step():
    assert u.upgrade_steps("1.32", "1.32") == []


def test_one_minor_is_allowed_without_stepping():
    assert u.upgrade_steps("1.30", "1.31", step_through=False) == ["1.31"]


def test_two_minors_without_stepping_is_refused_naming_the_next_minor():
    with pytest.raises(ClusterConfigError) as err:
        u.upgrade_steps("1.30", "1.32", step_through=False)
    assert "target version 1.32 is 2 minor versions above the cluster's 1.30" in str(err.value)
    assert "set the target to 1.31" in str(err.value)


def test_older_target_is_refused():
    with pytest.raises(ClusterConfigError, match="older than the cluster's 1.31"):
        u.upgrade_steps("1.31", "1.30")


def test_unsupported_target_is_refused_with_the_choices():
    with pytest.raises(ClusterConfigError, match="choose one of 1.29"):
        u.upgrade_steps("1.31", "1.40")


def test_runs_start_with_the_current_version_without_its_control_plane():
    assert u.upgrade_runs("1.30", ["1.31", "1.32"]) == [
        {"version": "1.30", "control_plane": False},
        {"version": "1.31", "control_plane": True},
        {"version": "1.32", "control_plane": True},
    ]


def test_a_finished_upgrade_runs_only_the_current_version():
    assert u.upgrade_runs("v1.32.3-eks-1", []) == [{"version": "1.32", "control_plane": False}]


def test_nodes_within_skew_at_the_first_step_pass_when_nodes_follow():
    # 1.29 kubelets are fine against 1.31 (3 minors allowed) and are replaced before 1.32.
    assert u.skew_problems(["1.30", "1.31", "1.32"], {"n1": "v1.29.8-eks-1"}, nodes_follow=True) == []


def test_without_node_phase_every_step_meets_todays_kubelets():
    problems = u.skew_problems(["1.30", "1.31", "1.32", "1.33"], {"n1": "v1.29.8-eks-1", "n2": "v1.30.1"}, nodes_follow=False)
    assert problems == [
        "at control plane 1.33, node n1 runs kubelet v1.29.8-eks-1, more than 3 minor versions behind 1.33; "
        "replace those nodes with kubelet 1.30 or newer first"
    ]


def test_a_kubelet_too_old_for_the_first_step_is_a_problem_even_when_nodes_follow():
    problems = u.skew_problems(["1.33"], {"old": "v1.29.0"}, nodes_follow=True)
    assert len(problems) == 1 and "node old" in problems[0] and "1.30 or newer" in problems[0]


def test_addon_without_a_version_for_a_step_is_named():
    versions = {
        "1.31": {"coredns": [{"version": "v1.11.3-eksbuild.1", "default": True}], "vpc-cni": [{"version": "v1.19.0-eksbuild.1", "default": True}]},
        "1.32": {"coredns": [{"version": "v1.11.4-eksbuild.1", "default": True}], "vpc-cni": []},
    }
    problems = u.addon_version_problems(["coredns", "vpc-cni"], versions)
    assert problems == [
        "add-on vpc-cni has no version compatible with Kubernetes 1.32; remove it (selfmanaged.eks.eks_addon state=absent) "
        "or manage it outside EKS add-ons before upgrading"
    ]


def test_default_addon_versions_prefer_the_flagged_default():
    versions = {"1.32": {"coredns": [{"version": "v1.12.0-eksbuild.1", "default": False}, {"version": "v1.11.4-eksbuild.1", "default": True}],
                         "kube-proxy": [{"version": "v1.32.0-eksbuild.2", "default": False}], "gone": []}}
    assert u.default_addon_versions(versions) == {"1.32": {"coredns": "v1.11.4-eksbuild.1", "kube-proxy": "v1.32.0-eksbuild.2"}}


def test_only_error_insights_block():
    insights = [
        {"id": "a1", "name": "Deprecated APIs removed in Kubernetes v1.32", "insightStatus": {"status": "ERROR", "reason": "2 clients use them"}},
        {"id": "b2", "name": "Kubelet version skew", "insightStatus": {"status": "WARNING"}},
        {"id": "c3", "name": "Cluster health issues", "insightStatus": {"status": "PASSING"}},
    ]
    problems = u.insight_problems(insights)
    assert problems == [
        "upgrade insight ERROR: Deprecated APIs removed in Kubernetes v1.32 (2 clients use them); "
        "fix what it reports (aws eks describe-insight --id a1) before upgrading"
    ]
    assert u.insight_summary(insights[1]) == "WARNING: Kubelet version skew"
