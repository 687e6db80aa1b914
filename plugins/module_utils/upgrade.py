# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A whole-cluster upgrade as data: which versions to pass through, whether the control plane
moves at each, and the pre-flight checks that must pass before anything changes. (The order of
the add-on and node phases is the upgrade role's, roles/upgrade/tasks/version.yml.)

Pure functions, no AWS or Ansible imports: `plugins/modules/eks_upgrade_preflight.py` reads the
cluster, its nodes, add-ons and insights, and calls these. The version rules themselves (path,
skew) are cluster.py's.
"""

from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import ClusterConfigError
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import kubelet_skew_violations
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import oldest_kubelet_for
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import plan_upgrade_path
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import validate_target_version

# Insight statuses that block an upgrade, and the category that is about upgrades.
BLOCKING_INSIGHT_STATUSES = ("ERROR",)
UPGRADE_INSIGHT_CATEGORY = "UPGRADE_READINESS"


def upgrade_steps(current, target, step_through=True):
    """The control plane versions between `current` and `target`, one minor each: ('1.30', '1.32') -> ['1.31', '1.32'].

    With `step_through` false one run may move one minor only. Raises ClusterConfigError naming
    the value and the fix (downgrade, unsupported version, too far for one step).
    """
    steps = plan_upgrade_path(current, target)
    if not step_through and len(steps) > 1:
        raise ClusterConfigError(
            "target version {0} is {1} minor versions above the cluster's {2} and stepping through versions is off: "
            "set the target to {3}, or allow stepping so each minor version is upgraded and waited for in turn".format(
                validate_target_version(target), len(steps), current, steps[0]
            )
        )
    return steps


def upgrade_runs(current, steps):
    """The versions whose phases run, in order: the current one first (add-ons and nodes a failed
    run left behind are finished there; its control plane phase has nothing to do), then each step.

    [{"version": "1.30", "control_plane": False}, {"version": "1.31", "control_plane": True}, ...]
    """
    runs = [{"version": validate_target_version(current), "control_plane": False}]
    runs.extend({"version": step, "control_plane": True} for step in steps)
    return runs


def skew_problems(steps, kubelet_versions, nodes_follow=True):
    """Nodes whose kubelet would break the skew policy at some control plane step.

    `kubelet_versions` maps node name -> kubeletVersion today. With `nodes_follow` every node is
    replaced at each step, so only the first step meets today's kubelets; without it (no node
    phase) every step does. Returns readable problems, empty when every step is fine.
    """
    problems = []
    for index, step in enumerate(steps):
        if index > 0 and nodes_follow:
            break
        for problem in kubelet_skew_violations(step, kubelet_versions):
            problems.append(
                "at control plane {0}, {1}; replace those nodes with kubelet {2} or newer first".format(step, problem, oldest_kubelet_for(step))
            )
    return problems


def addon_version_problems(installed, versions_by_step):
    """Installed add-ons that have no version for some step.

    `installed` is the names of the cluster's add-ons; `versions_by_step` maps version ->
    {add-on name: [compatible versions]} (DescribeAddonVersions, as compatible_versions() returns).
    """
    problems = []
    for step in sorted(versions_by_step):
        available = versions_by_step[step]
        for name in sorted(installed):
            if not available.get(name):
                problems.append(
                    "add-on {0} has no version compatible with Kubernetes {1}; remove it (selfmanaged.eks.eks_addon state=absent) "
                    "or manage it outside EKS add-ons before upgrading".format(name, step)
                )
    return problems


def default_addon_versions(versions_by_step):
    """{version: {add-on: default version}}: what the add-on phase installs at each step (the flagged default, else the newest)."""
    defaults = {}
    for step, available in versions_by_step.items():
        defaults[step] = {}
        for name, versions in available.items():
            flagged = [v["version"] for v in versions if v.get("default")]
            if flagged or versions:
                defaults[step][name] = flagged[0] if flagged else versions[0]["version"]
    return defaults


def insight_summary(insight):
    """One line for a ListInsights summary: status, name and its recommendation when given."""
    status = (insight.get("insightStatus") or {}).get("status", "UNKNOWN")
    reason = (insight.get("insightStatus") or {}).get("reason")
    return "{0}: {1}{2}".format(status, insight.get("name") or insight.get("id"), " ({0})".format(reason) if reason else "")


def insight_problems(insights):
    """Upgrade insights whose status blocks an upgrade (ERROR), as readable problems."""
    return [
        "upgrade insight {0}; fix what it reports (aws eks describe-insight --id {1}) before upgrading".format(insight_summary(insight), insight.get("id"))
        for insight in insights
        if (insight.get("insightStatus") or {}).get("status") in BLOCKING_INSIGHT_STATUSES
    ]
