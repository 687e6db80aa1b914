"""A local apt repository for the node hosts: .deb packages built with ``dpkg-deb --build`` and a
flat repository index (Packages, Packages.gz, Release) written here, read by the hosts through a
read-only bind mount at ``/srv/apt`` (``deb [trusted=yes] file:/srv/apt ./``).

    repo = AptRepository(tmp_path / "apt")
    repo.publish(*node_packages("old"))    # the versions the hosts are provisioned with
    ...                                    # hosts: apt-get update && apt-get install ...
    repo.publish(*node_packages("new"))    # the update: apt list --upgradable shows it

``node_packages`` is the fleet's package set: small packages with an old and a new version, one
of them kernel-like (its new version's postinst touches /run/reboot-required and lists itself in
/run/reboot-required.pkgs, as Debian's kernel packages do).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

SOURCES_LINE = "deb [trusted=yes] file:/srv/apt ./"

REBOOT_POSTINST = """\
#!/bin/sh
set -e
# As Debian's kernel packages (update-notifier's postinst.d hook): ask for a reboot.
if [ "$1" = "configure" ]; then
    echo '*** System restart required ***' > /run/reboot-required
    grep -qx '{name}' /run/reboot-required.pkgs 2>/dev/null || echo '{name}' >> /run/reboot-required.pkgs
fi
"""


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    description: str = "selfmanaged.eks test node package"
    depends: tuple = ()
    reboot_required: bool = False
    files: dict = field(default_factory=dict, hash=False, compare=False)  # path in the host -> text

    @property
    def filename(self) -> str:
        return "{0}_{1}_all.deb".format(self.name, self.version)

    def control(self) -> str:
        lines = ["Package: " + self.name, "Version: " + self.version, "Architecture: all",
                 "Maintainer: selfmanaged.eks tests <tests@selfmanaged.invalid>", "Priority: optional", "Section: misc"]
        if self.depends:
            lines.append("Depends: " + ", ".join(self.depends))
        lines.append("Description: " + self.description)
        return "\n".join(lines) + "\n"


# The fleet's packages: name -> versions, one per release of RELEASES. Every release after the
# first is an update; the kernel-like package asks for a reboot in each of them.
RELEASES = ("old", "new", "newer", "newest")
NODE_PACKAGES = {"nodehost-utils": ("1.0-1", "1.1-1", "1.2-1", "1.3-1"), "nodehost-agent": ("2.3-1", "2.4-1", "2.5-1", "2.6-1"),
                 "nodehost-kernel": ("6.1.100-1", "6.1.120-1", "6.1.130-1", "6.1.140-1")}
KERNEL_LIKE = "nodehost-kernel"


def node_packages(which: str) -> list[DebPackage]:
    """The fleet's packages at one release: ``"old"`` (what hosts are provisioned with), ``"new"``,
    then ``"newer"`` and ``"newest"`` (further updates, for tests that patch the same fleet again)."""
    if which not in RELEASES:
        raise ValueError("release {0!r} is not one of {1}".format(which, ", ".join(RELEASES)))
    index = RELEASES.index(which)
    packages = []
    for name, versions in NODE_PACKAGES.items():
        version = versions[index]
        packages.append(DebPackage(name, version, description="{0} {1} (selfmanaged.eks test package)".format(name, version),
                                   reboot_required=(name == KERNEL_LIKE and index > 0),
                                   files={"/usr/share/{0}/version".format(name): version + "\n"}))
    return packages


class AptRepository:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.pool = self.directory / "pool"
        self.pool.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)

    def build(self, package: DebPackage) -> Path:
        """``dpkg-deb --build`` of ``package`` into the pool (not yet in the index)."""
        target = self.pool / package.filename
        with tempfile.TemporaryDirectory(prefix="deb-") as work:
            root = Path(work) / "root"
            (root / "DEBIAN").mkdir(parents=True)
            (root / "DEBIAN" / "control").write_text(package.control())
            if package.reboot_required:
                postinst = root / "DEBIAN" / "postinst"
                postinst.write_text(REBOOT_POSTINST.format(name=package.name))
                postinst.chmod(0o755)
            for path, text in package.files.items():
                dest = root / path.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text)
            proc = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(target)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError("dpkg-deb --build {0} failed: {1}".format(package.filename, proc.stderr.strip()))
        target.chmod(0o644)
        return target

    def publish(self, *packages: DebPackage) -> None:
        """Build ``packages`` into the pool and index the pool (the versions already published stay listed)."""
        for package in packages:
            self.build(package)
        self.write_index()

    def published(self) -> list[tuple]:
        """(name, version) of every package in the pool (what the index lists)."""
        return sorted(tuple(deb.name[:-len("_all.deb")].split("_", 1)) for deb in self.pool.glob("*_all.deb"))

    def write_index(self) -> None:
        """Packages (+ .gz) and Release for every .deb of the pool: its control fields as dpkg-deb reads them,
        so another process (python -m tests.nodehosts) can publish into the same repository."""
        stanzas = []
        for deb in sorted(self.pool.glob("*.deb")):
            control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
            data = deb.read_bytes()
            stanzas.append(control.rstrip("\n") + "\n" + "\n".join([
                "Filename: pool/" + deb.name, "Size: {0}".format(len(data)),
                "MD5sum: " + hashlib.md5(data).hexdigest(), "SHA256: " + hashlib.sha256(data).hexdigest()]) + "\n")
        text = "\n".join(stanzas).encode()
        self._write(self.directory / "Packages", text)
        self._write(self.directory / "Packages.gz", gzip.compress(text, mtime=0))
        release = ["Origin: selfmanaged.eks tests", "Label: nodehosts", "Date: " + formatdate(time.time(), usegmt=True),
                   "SHA256:"]
        for name in ("Packages", "Packages.gz"):
            data = (self.directory / name).read_bytes()
            release.append(" {0} {1} {2}".format(hashlib.sha256(data).hexdigest(), len(data), name))
        self._write(self.directory / "Release", ("\n".join(release) + "\n").encode())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        tmp.replace(path)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
