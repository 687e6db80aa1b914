"""pytest fixtures for tests that need real node hosts (imported by the conftest.py files that use them).

- ``node_image`` (session): the node image's podman reference, built on first use on a machine.
- ``node_reports_dir`` (session): the directory the hosts report their boot identity into; give it
  to the sandbox as ``SandboxSettings(node_reports_dir=...)`` so Nodes follow their hosts.
- ``apt_repository``: an empty ``AptRepository`` for the test (publish packages into it).
- ``node_hosts``: a ``NodeHosts`` on that repository and the reports directory; every container it
  (or anything else in this process) started is removed when the test ends, passed or failed.
- ``patch_fleet``: a factory ``patch_fleet(nodes=6, groups=2)`` -> ``PatchFleet`` (tests/nodehosts/fleet.py):
  a sandbox cluster with ``nodes`` real hosts in ``groups`` node groups over three AZs, old
  packages installed, new ones published, a Deployment behind a PDB, an eks_nodes inventory file.
- ``nodehost_timings`` (session): {"image_build": s, "start": [s, ...], "reboot": [s, ...]} measured.
"""

from __future__ import annotations

import shutil

import pytest

from .apt_repo import AptRepository
from .fleet import PatchFleet
from .hosts import NodeHosts, remove_orphans
from .image import ensure_image
from .podman import Podman


def _require_tools():
    missing = [tool for tool in ("podman", "runc", "debootstrap", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        pytest.fail("node host tests need {0}: run 'make nodehost-tools' (apt-get install podman runc debootstrap)".format(
            ", ".join(missing)), pytrace=False)


@pytest.fixture(scope="session")
def nodehost_timings():
    return {"image_build": 0.0, "start": [], "reboot": []}


@pytest.fixture(scope="session")
def node_image(nodehost_timings):
    _require_tools()
    podman = Podman()
    remove_orphans(podman)
    reference, seconds = ensure_image(podman)
    nodehost_timings["image_build"] = seconds
    return reference


@pytest.fixture(scope="session")
def node_reports_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("node-reports")
    path.chmod(0o755)
    return path


@pytest.fixture
def apt_repository(tmp_path):
    return AptRepository(tmp_path / "apt")


@pytest.fixture
def node_hosts(node_image, node_reports_dir, apt_repository, nodehost_timings):
    hosts = NodeHosts(node_reports_dir, apt_repository.directory, image=node_image)
    try:
        yield hosts
    finally:
        if "start" in hosts.timings:
            nodehost_timings["start"].append(hosts.timings["start"])
        hosts.remove_all()


@pytest.fixture
def patch_fleet(sandbox, node_hosts, apt_repository, tmp_path):
    """``patch_fleet(nodes=6, groups=2)``: a PatchFleet on the test's hosts and apt repository (one per test)."""
    def build(nodes=6, groups=2):
        return PatchFleet(sandbox, node_hosts, apt_repository, nodes=nodes, groups=groups, directory=tmp_path)

    return build
