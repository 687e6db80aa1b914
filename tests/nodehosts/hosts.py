"""Node hosts: one podman container per sandbox EC2 instance, named after the instance id.

Each container boots the node image with systemd as PID 1, no network, and restarts when it is
rebooted from inside (``--restart=always``: ``systemctl reboot`` ends PID 1, podman starts it
again). Bind mounts: the local apt repository read-only at ``/srv/apt``, the reports directory
(the sandbox's kubelet stand-in reads it) at ``/srv/node-reports``, and a per-host control
directory read-only at ``/srv/node-control`` (``hold_next_boot``).

    with NodeHosts(reports_dir, apt_dir) as hosts:
        hosts.start(["i-0abc...", "i-0def..."])   # in parallel; waits for the first reports
        hosts.exec("i-0abc...", "apt-get", "update")

Every container carries the label ``selfmanaged.eks.nodehost.owner=<hostname>:<pid>``;
``remove_all()`` (the context manager's exit, the fixtures' finalizers) removes this owner's
containers, and ``remove_orphans()`` those of owners that no longer run (a killed test run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .image import ensure_image
from .podman import OWNER_LABEL, Podman

BOOT_TIME_COMMAND = "cut -d' ' -f22 /proc/1/stat"  # PID 1's start time: changes with each container reboot


def owner_token() -> str:
    """Who owns the containers this process starts: ``NODEHOSTS_OWNER`` (set by ``python -m
    tests.sandbox.with_sandbox --node-hosts`` for the processes it runs), else this process."""
    return os.environ.get("NODEHOSTS_OWNER") or "{0}:{1}".format(socket.gethostname(), os.getpid())


def read_report(reports_dir, instance_id) -> dict | None:
    """The last report of a host ({"boot_id", "time"}), None before its first one."""
    try:
        with open(os.path.join(str(reports_dir), instance_id)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def remove_orphans(podman: Podman | None = None) -> list[str]:
    """Remove node host containers whose owner process is gone (on this machine); return their names."""
    podman = podman or Podman()
    removed = []
    for container in podman.containers(OWNER_LABEL):
        owner = container["labels"].get(OWNER_LABEL, "")
        host, _, pid = owner.rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            continue
        podman.run("rm", "-f", "-t", "0", container["name"], check=False)
        removed.append(container["name"])
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NodeHosts:
    def __init__(self, reports_dir, apt_dir, podman: Podman | None = None, image: str | None = None):
        self.podman = podman or Podman()
        self.reports_dir = Path(reports_dir)
        self.apt_dir = Path(apt_dir)
        self.owner = owner_token()
        self.control_root = self.podman.directory / "control" / self.owner.replace(":", "-")
        self.image = image
        self.names: list[str] = []
        self.timings: dict[str, float] = {}

    def __enter__(self) -> "NodeHosts":
        return self

    def __exit__(self, *exc) -> None:
        self.remove_all()

    # ---- life cycle ------------------------------------------------------------------------
    def start(self, instance_ids, wait=True, timeout=120.0) -> None:
        """Start one container per instance id (in parallel) and, with ``wait``, return once every
        one of them reports a boot. Sets ``timings["start"]`` (seconds for all of them)."""
        if self.image is None:
            self.image, self.timings["image_build"] = ensure_image(self.podman)
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        remove_orphans(self.podman)
        began = time.monotonic()
        ids = list(instance_ids)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(ids)))) as pool:
            list(pool.map(self._run_container, ids))
        if wait:
            for instance_id in ids:
                self.wait_for_boot(instance_id, timeout=max(1.0, timeout - (time.monotonic() - began)))
        self.timings["start"] = time.monotonic() - began

    def _run_container(self, instance_id: str) -> None:
        control = self.control_dir(instance_id)
        control.mkdir(parents=True, exist_ok=True)
        self.podman.run(
            "run", "-d", "--name", instance_id, "--hostname", instance_id, "--label", "{0}={1}".format(OWNER_LABEL, self.owner),
            "--network", "none", "--systemd=always", "--restart=always",
            "-v", "{0}:/srv/apt:ro".format(self.apt_dir), "-v", "{0}:/srv/node-reports".format(self.reports_dir),
            "-v", "{0}:/srv/node-control:ro".format(control),
            self.image, "/sbin/init")
        self.names.append(instance_id)

    def remove(self, instance_id: str) -> None:
        self.podman.run("rm", "-f", "-t", "0", instance_id, check=False)
        if instance_id in self.names:
            self.names.remove(instance_id)
        shutil.rmtree(self.control_dir(instance_id), ignore_errors=True)
        try:
            os.unlink(self.reports_dir / instance_id)
        except OSError:
            pass

    def remove_all(self) -> None:
        """Remove every container of this owner (also ones started by another NodeHosts of this process)."""
        names = [c["name"] for c in self.podman.containers("{0}={1}".format(OWNER_LABEL, self.owner))]
        if names:
            self.podman.run("rm", "-f", "-t", "0", *names, check=False, timeout=600)
        for name in names:
            try:
                os.unlink(self.reports_dir / name)
            except OSError:
                pass
        self.names.clear()
        shutil.rmtree(self.control_root, ignore_errors=True)

    # ---- inside a host ---------------------------------------------------------------------
    def exec(self, instance_id: str, *command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a command in the host as root (``podman exec``); raises on a non-zero exit with ``check``."""
        return self.podman.run("exec", instance_id, *command, check=check, timeout=timeout)

    def reboot(self, instance_id: str) -> None:
        """``systemctl reboot`` inside, as an operator would (the container restarts)."""
        self.exec(instance_id, "systemctl", "reboot", check=False)

    # ---- boot identity ---------------------------------------------------------------------
    def report(self, instance_id: str) -> dict | None:
        return read_report(self.reports_dir, instance_id)

    def wait_for_boot(self, instance_id: str, other_than: str | None = None, timeout: float = 120.0) -> str:
        """The host's reported boot id once it reports one (different from ``other_than``) that is fresh."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.report(instance_id)
            if report and report.get("boot_id") != other_than and time.time() - report.get("time", 0) < 3:
                return report["boot_id"]
            if time.monotonic() > deadline:
                state = self.podman.run("inspect", "--format", "{{.State.Status}}", instance_id, check=False).stdout.strip()
                raise AssertionError("node host {0} reported no boot{1} within {2:.0f}s (container state: {3!r}, last report: {4})".format(
                    instance_id, " other than " + other_than if other_than else "", timeout, state, report))
            time.sleep(0.2)

    def control_dir(self, instance_id: str) -> Path:
        return self.control_root / instance_id

    def hold_next_boot(self, instance_id: str) -> None:
        """The host's next boot "never comes back": its reporter stays silent until ``release_boot``."""
        (self.control_dir(instance_id) / "hold-boot").write_text("")

    def pid1_start(self, instance_id: str) -> str:
        """PID 1's start time (``BOOT_TIME_COMMAND``), "" while the host is down: it changes with each reboot."""
        done = self.exec(instance_id, "sh", "-c", BOOT_TIME_COMMAND, check=False, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    def slow_next_boot(self, instance_id: str, seconds: float, timeout: float = 600.0) -> threading.Thread:
        """The host's next boot reports (its Node follows) only ``seconds`` after PID 1 restarted: a slow boot, so that a wait
        for it takes several slices whatever the machine's speed. Returns the thread that releases it (joined by the caller)."""
        before = self.pid1_start(instance_id)
        self.hold_next_boot(instance_id)

        def release():
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.pid1_start(instance_id) in ("", before):
                time.sleep(0.2)
            time.sleep(seconds)
            self.release_boot(instance_id)

        thread = threading.Thread(target=release, daemon=True)
        thread.start()
        return thread

    def release_boot(self, instance_id: str) -> None:
        """The fix: a held boot completes (the reporter starts reporting a new boot id)."""
        try:
            os.unlink(self.control_dir(instance_id) / "hold-boot")
        except FileNotFoundError:
            pass

    def inventory_env(self, base: dict | None = None) -> dict:
        """The environment ansible-playbook needs to reach the hosts (``CONTAINERS_CONF``)."""
        return self.podman.env(base)
