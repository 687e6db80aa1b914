"""The node image: a Debian root file system with systemd as PID 1, imported into podman.

Built with ``debootstrap --variant=minbase`` from the Debian mirror and suite this machine's apt
uses, then: apt reads only the local test repository (``/srv/apt``, bind mounted; the containers
have no network), and the node-reporter service (the kubelet's place) is installed and enabled.
The image is tagged with a hash of this recipe and reused while that tag exists, so only the
first test run on a machine (or the first after the recipe changes) pays for debootstrap.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .podman import Podman

IMAGE_REPOSITORY = "localhost/selfmanaged-eks-nodehost"
PACKAGES = ("systemd", "systemd-sysv", "python3", "python3-apt", "dbus")
APT_SOURCES = "deb [trusted=yes] file:/srv/apt ./\n"
REPORTER_PATH = "/usr/local/sbin/node-reporter"
REPORTER_UNIT = """\
[Unit]
Description=Node reporter (the kubelet's place): reports this host's boot identity to the sandbox
After=local-fs.target

[Service]
ExecStart=/usr/local/sbin/node-reporter
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""
# Units that only slow a container's boot or fail without the hardware/network they expect.
MASKED_UNITS = ("systemd-resolved.service", "systemd-networkd.service", "systemd-timesyncd.service", "apt-daily.timer",
                "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "fstrim.timer")


def machine_debian_source(sources_dir: str = "/etc/apt") -> tuple[str, str]:
    """(mirror URL, suite) of the first Debian archive this machine's apt uses (deb822 .sources
    files or sources.list), so the image is built from the same mirror and release."""
    candidates = []
    root = Path(sources_dir)
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                for uri in fields.get("URIs", "").split():
                    candidates.append((uri, fields.get("Suites", "").split()))
    for path in [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
                if match:
                    candidates.append((match.group(1), [match.group(2)]))
    for uri, suites in candidates:
        suites = [s for s in suites if "-" not in s and "/" not in s]
        if suites and "security" not in uri:
            return uri.rstrip("/"), suites[0]
    raise RuntimeError("no Debian archive in {0}/sources.list(.d): the node image is built with debootstrap from the mirror "
                       "apt uses; add a 'deb http://deb.debian.org/debian bookworm main' source".format(sources_dir))


def reporter_source() -> str:
    return (Path(__file__).parent / "node_reporter.py").read_text()


def recipe(mirror: str, suite: str) -> str:
    """Everything that decides the image's content, as text (its hash is the image tag)."""
    return "\n".join(["minbase", mirror, suite, ",".join(PACKAGES), APT_SOURCES, REPORTER_UNIT, reporter_source(),
                      ",".join(MASKED_UNITS)])


def image_reference(mirror: str | None = None, suite: str | None = None) -> str:
    if mirror is None or suite is None:
        mirror, suite = machine_debian_source()
    return "{0}:{1}".format(IMAGE_REPOSITORY, hashlib.sha256(recipe(mirror, suite).encode()).hexdigest()[:16])


def ensure_image(podman: Podman | None = None, log=print) -> tuple[str, float]:
    """The node image's reference, built first when podman does not have it; and the seconds the
    build took (0.0 when reused). Concurrent callers (pytest workers, other test runs) wait on a
    lock file instead of building twice."""
    podman = podman or Podman()
    mirror, suite = machine_debian_source()
    reference = image_reference(mirror, suite)
    if podman.image_exists(reference):
        return reference, 0.0
    lock_path = podman.directory / "image-build.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if podman.image_exists(reference):
            return reference, 0.0
        began = time.monotonic()
        log("building node image {0} (debootstrap {1} from {2}, about a minute)".format(reference, suite, mirror))
        _build(podman, reference, mirror, suite)
        return reference, time.monotonic() - began


def _build(podman: Podman, reference: str, mirror: str, suite: str) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: run 'make nodehost-tools' (apt-get install podman runc debootstrap)")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=podman.directory))
    try:
        rootfs = work / "rootfs"
        proc = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), suite, str(rootfs), mirror],
                              capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            raise RuntimeError("debootstrap {0} {1} failed (rc={2}): {3}".format(suite, mirror, proc.returncode,
                                                                                 (proc.stdout + proc.stderr)[-3000:]))
        _customize(rootfs)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
        try:
            podman.run("import", "--change", "CMD=/sbin/init", "--message", "selfmanaged.eks test node host", "-", reference,
                       stdin=tar.stdout, input=None, timeout=600)
        finally:
            tar.stdout.close()
            tar.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _customize(rootfs: Path) -> None:
    apt = rootfs / "etc" / "apt"
    (apt / "sources.list").write_text(APT_SOURCES)
    for extra in (apt / "sources.list.d").glob("*"):
        extra.unlink()
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (rootfs / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    for cached in (rootfs / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        cached.unlink()
    reporter = rootfs / REPORTER_PATH.lstrip("/")
    reporter.parent.mkdir(parents=True, exist_ok=True)
    reporter.write_text(reporter_source())
    reporter.chmod(0o755)
    units = rootfs / "etc" / "systemd" / "system"
    (units / "node-reporter.service").write_text(REPORTER_UNIT)
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "node-reporter.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/node-reporter.service")
    for unit in MASKED_UNITS:
        masked = units / unit
        if masked.is_symlink() or masked.exists():
            masked.unlink()
        masked.symlink_to("/dev/null")
    for path in ("srv/apt", "srv/node-reports", "srv/node-control"):
        (rootfs / path).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "machine-id").write_text("")  # systemd makes one per boot of each container
