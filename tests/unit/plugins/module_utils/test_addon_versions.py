"""Version resolution for EKS add-ons: keywords, exact and partial versions, upgrade steps."""

import pytest

from ansible_collections.selfmanaged.eks.plugins.module_utils.addon_versions import (
    AddonVersionError,
    compatible_versions,
    is_downgrade,
    minor_of,
    resolve_version,
    upgrade_path,
    version_key,
)
from ansible_collections.selfmanaged.eks.plugins.module_utils.cluster import parse_version


def _entry(versions, cluster="1.31", default=None):
    """A DescribeAddonVersions `addons` entry; `versions` may map to other cluster versions."""
    infos = []
    for version in versions:
        clusters = [cluster] if isinstance(version, str) else version[1]
        name = version if isinstance(version, str) else version[0]
        infos.append(
            {
                "addonVersion": name,
                "compatibilities": [{"clusterVersion": c, "defaultVersion": name == default and c == cluster} for c in clusters],
            }
        )
    return [{"addonName": "vpc-cni", "addonVersions": infos}]


CATALOGUE = _entry(
    [
        "v1.16.4-eksbuild.2",
        "v1.17.1-eksbuild.1",
        "v1.18.3-eksbuild.3",
        "v1.18.3-eksbuild.10",
        "v1.18.5-eksbuild.1",
        "v1.19.0-eksbuild.1",
        "v1.19.2-eksbuild.1",
        ("v1.20.0-eksbuild.1", ["1.32"]),
    ],
    default="v1.18.5-eksbuild.1",
)
VERSIONS = compatible_versions(CATALOGUE, "1.31")


def test_compatible_versions_are_sorted_highest_first_and_filtered_by_cluster_version():
    names = [v["version"] for v in VERSIONS]
    assert names[0] == "v1.19.2-eksbuild.1"
    assert "v1.20.0-eksbuild.1" not in names
    # eksbuild numbers compare as numbers: .10 is newer than .3
    assert names.index("v1.18.3-eksbuild.10") < names.index("v1.18.3-eksbuild.3")
    assert [v["version"] for v in VERSIONS if v["default"]] == ["v1.18.5-eksbuild.1"]


def test_default_keyword_picks_the_flagged_default():
    assert resolve_version("default", VERSIONS) == "v1.18.5-eksbuild.1"
    assert resolve_version(None, VERSIONS) == "v1.18.5-eksbuild.1"


def test_latest_keyword_picks_the_highest_compatible():
    assert resolve_version("latest", VERSIONS) == "v1.19.2-eksbuild.1"
    assert resolve_version("LATEST", VERSIONS) == "v1.19.2-eksbuild.1"


def test_exact_version_with_or_without_leading_v():
    assert resolve_version("v1.17.1-eksbuild.1", VERSIONS) == "v1.17.1-eksbuild.1"
    assert resolve_version("1.17.1-eksbuild.1", VERSIONS) == "v1.17.1-eksbuild.1"


@pytest.mark.parametrize(
    "partial, expected",
    [("v1.18", "v1.18.5-eksbuild.1"), ("1.18.3", "v1.18.3-eksbuild.10"), ("v1", "v1.19.2-eksbuild.1"), ("v1.19", "v1.19.2-eksbuild.1")],
)
def test_partial_version_picks_the_highest_match(partial, expected):
    assert resolve_version(partial, VERSIONS) == expected


def test_partial_does_not_match_a_longer_minor():
    versions = compatible_versions(_entry(["v1.1.0-eksbuild.1", "v1.10.0-eksbuild.1"]), "1.31")
    assert resolve_version("v1.1", versions) == "v1.1.0-eksbuild.1"


@pytest.mark.parametrize("bad", ["v1.20.0-eksbuild.1", "v2.0", "v1.18.4-eksbuild.1", "banana"])
def test_incompatible_or_unknown_versions_fail_listing_the_compatible_ones(bad):
    with pytest.raises(AddonVersionError) as info:
        resolve_version(bad, VERSIONS, addon_name="vpc-cni", cluster_version="1.31")
    message = str(info.value)
    assert repr(bad) in message
    assert "Kubernetes 1.31" in message
    assert "v1.19.2-eksbuild.1" in message and "v1.18.5-eksbuild.1 (default)" in message


def test_no_compatible_version_at_all_says_so():
    with pytest.raises(AddonVersionError, match="no version of nope is compatible"):
        resolve_version("default", [], addon_name="nope", cluster_version="1.31")


def test_upgrade_by_one_minor_is_a_single_step():
    assert upgrade_path("v1.18.5-eksbuild.1", "v1.19.2-eksbuild.1", VERSIONS) == ["v1.19.2-eksbuild.1"]


def test_upgrade_within_a_minor_is_a_single_step():
    assert upgrade_path("v1.18.3-eksbuild.3", "v1.18.5-eksbuild.1", VERSIONS) == ["v1.18.5-eksbuild.1"]


def test_upgrade_across_minors_steps_through_the_highest_of_each_minor():
    assert upgrade_path("v1.16.4-eksbuild.2", "v1.19.2-eksbuild.1", VERSIONS) == [
        "v1.17.1-eksbuild.1",
        "v1.18.5-eksbuild.1",
        "v1.19.2-eksbuild.1",
    ]


def test_upgrade_skips_a_minor_with_no_compatible_version():
    versions = compatible_versions(_entry(["v1.15.0-eksbuild.1", "v1.17.0-eksbuild.1", "v1.18.0-eksbuild.1"]), "1.31")
    assert upgrade_path("v1.15.0-eksbuild.1", "v1.18.0-eksbuild.1", versions) == ["v1.17.0-eksbuild.1", "v1.18.0-eksbuild.1"]


def test_multi_minor_upgrade_when_allowed_is_direct():
    assert upgrade_path("v1.16.4-eksbuild.2", "v1.19.2-eksbuild.1", VERSIONS, allow_multi_minor=True) == ["v1.19.2-eksbuild.1"]


def test_no_path_when_already_there():
    assert upgrade_path("v1.19.2-eksbuild.1", "v1.19.2-eksbuild.1", VERSIONS) == []


def test_downgrade_detection_and_ordering():
    assert is_downgrade("v1.19.2-eksbuild.1", "v1.18.5-eksbuild.1")
    assert not is_downgrade("v1.18.5-eksbuild.1", "v1.19.2-eksbuild.1")
    assert version_key("garbage") < version_key("v0.0.1")


@pytest.mark.parametrize(
    "addon_version, kubernetes_version",
    [("v1.19.2-eksbuild.1", "1.19"), ("1.11.4-eksbuild.2", "1.11"), ("v1.31.0", "v1.31.0-eks-a737599")],
)
def test_addon_minor_is_read_like_a_kubernetes_version(addon_version, kubernetes_version):
    assert minor_of(addon_version) == parse_version(kubernetes_version)


@pytest.mark.parametrize("value", ["", None, "latest", "v1"])
def test_not_a_version_has_no_minor(value):
    assert minor_of(value) is None
