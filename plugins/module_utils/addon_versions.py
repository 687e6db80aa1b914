# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EKS add-on version resolution: keywords, partial versions and one-minor-at-a-time upgrades.

Add-on versions look like `v1.19.2-eksbuild.1`. DescribeAddonVersions lists, per add-on, the
versions with their `compatibilities` (cluster versions), one of them flagged
`defaultVersion` for each cluster version. Nothing here talks to AWS.
"""

import re

from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import ClusterConfigError
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import parse_version

DEFAULT = "default"
LATEST = "latest"

_VERSION_RE = re.compile(r"^v?(?P<numbers>\d+(?:\.\d+)*)(?:-(?P<suffix>.*))?$")


class AddonVersionError(Exception):
    """The requested version cannot be used; the message lists what can."""


def version_key(version):
    """A sort key for an add-on version string (`v1.19.2-eksbuild.1` sorts after `-eksbuild.0`).

    Unparseable strings sort first, so they never become "latest".
    """
    match = _VERSION_RE.match(version or "")
    if not match:
        return ((), ())
    numbers = tuple(int(part) for part in match.group("numbers").split("."))
    suffix = match.group("suffix") or ""
    suffix_numbers = tuple(int(part) for part in re.findall(r"\d+", suffix))
    return (numbers, suffix_numbers)


def minor_of(version):
    """(major, minor) of a version string (`v1.19.2-eksbuild.1` -> (1, 19)), or None when it is not a version."""
    try:
        return parse_version(version or "")
    except ClusterConfigError:
        return None


def normalize_version(version):
    """Add the leading `v` EKS uses, so `1.19.2-eksbuild.1` and `v1.19.2-eksbuild.1` are the same."""
    version = (version or "").strip()
    if version and version[0].isdigit():
        return "v" + version
    return version


def compatible_versions(addon_entries, cluster_version):
    """[{"version": str, "default": bool}] compatible with `cluster_version`, highest first.

    `addon_entries` is the `addons` list of DescribeAddonVersions (already filtered by add-on name
    and, usually, by kubernetesVersion; the compatibilities are checked again here).
    """
    found = {}
    for entry in addon_entries or []:
        for info in entry.get("addonVersions", []):
            for compat in info.get("compatibilities", []):
                if cluster_version and compat.get("clusterVersion") != cluster_version:
                    continue
                version = info["addonVersion"]
                found[version] = found.get(version, False) or bool(compat.get("defaultVersion"))
    ordered = sorted(found, key=version_key, reverse=True)
    return [{"version": version, "default": found[version]} for version in ordered]


def _version_list(versions):
    return ", ".join(v["version"] + (" (default)" if v["default"] else "") for v in versions) or "none"


def is_keyword(requested):
    return (requested or DEFAULT).strip().lower() in (DEFAULT, LATEST)


def resolve_version(requested, versions, addon_name="add-on", cluster_version=None):
    """The concrete version for `requested` among `versions` (from compatible_versions()).

    `requested` is `default`, `latest`, an exact version, or a partial one (`v1.19`,
    `1.19.2`) meaning the highest compatible version that starts with it.
    Raises AddonVersionError listing the compatible versions.
    """
    where = " with Kubernetes {0}".format(cluster_version) if cluster_version else ""
    if not versions:
        raise AddonVersionError(
            "no version of {0} is compatible{1}; check the add-on name (selfmanaged.eks.eks_addon_info lists what is available)".format(addon_name, where)
        )
    requested = (requested or DEFAULT).strip()
    keyword = requested.lower()
    if keyword == LATEST:
        return versions[0]["version"]
    if keyword == DEFAULT:
        defaults = [v["version"] for v in versions if v["default"]]
        # EKS always flags one; without a flag the newest compatible one is the safest guess.
        return defaults[0] if defaults else versions[0]["version"]

    wanted = normalize_version(requested)
    names = [v["version"] for v in versions]
    if wanted in names:
        return wanted
    if _VERSION_RE.match(wanted) and not (_VERSION_RE.match(wanted).group("suffix")):
        prefix = version_key(wanted)[0]
        matching = [name for name in names if version_key(name)[0][: len(prefix)] == prefix]
        if matching:
            return matching[0]  # names are highest first
    raise AddonVersionError(
        "version {0!r} of {1} is unknown or not compatible{2}; compatible versions: {3}. "
        "Use one of them, a partial version such as {4!r}, 'default' or 'latest'".format(
            requested, addon_name, where, _version_list(versions), _partial_example(names[0])
        )
    )


def _partial_example(version):
    minor = minor_of(version)
    return "v{0}.{1}".format(*minor) if minor else version


def upgrade_path(current, target, versions, allow_multi_minor=False):
    """The versions to update through to go from `current` to `target`, `target` last.

    EKS add-ons should move one minor version at a time: when `target` is more than one minor
    ahead of `current`, the path goes through the highest compatible version of each minor in
    between (a minor with no compatible version is skipped). Empty when nothing changes.
    """
    if not current or current == target:
        return []
    if allow_multi_minor:
        return [target]
    cur, tgt = minor_of(current), minor_of(target)
    if cur is None or tgt is None or cur[0] != tgt[0] or tgt[1] - cur[1] <= 1:
        return [target]
    steps = []
    for minor in range(cur[1] + 1, tgt[1]):
        in_minor = [v["version"] for v in versions if minor_of(v["version"]) == (cur[0], minor)]
        if in_minor:
            steps.append(in_minor[0])
    steps.append(target)
    return steps


def is_downgrade(current, target):
    """True when `target` is lower than `current` (EKS cannot downgrade an add-on)."""
    return bool(current) and version_key(target) < version_key(current)
