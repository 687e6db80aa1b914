"""podman as the node hosts use it: every call with the private containers.conf.

Debian's podman 4.3 on this kind of machine needs ``runtime = "runc"`` (crun fails) and an
nproc ulimit (without it runc fails with "error setting rlimit type 6"). The file lives in the
node hosts' state directory, never in the repository; every podman call, including Ansible's
``containers.podman.podman`` connection, finds it through ``CONTAINERS_CONF`` (see ``env()``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CONTAINERS_CONF = """\
# Written by tests/nodehosts (test infrastructure). podman 4.3 + runc; crun fails here.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""

# Every container of the node hosts carries this label (value: the owner, "<hostname>:<pid>"),
# so a later run can remove what a killed one left behind without touching other runs' hosts.
OWNER_LABEL = "selfmanaged.eks.nodehost.owner"


def state_dir() -> Path:
    """Where the node hosts keep their containers.conf, image build lock, apt repositories and
    reports: ``NODEHOSTS_STATE_DIR``, else ``$XDG_CACHE_HOME/selfmanaged-eks-nodehosts``
    (``~/.cache/...``)."""
    explicit = os.environ.get("NODEHOSTS_STATE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(cache) / "selfmanaged-eks-nodehosts"
    path.mkdir(parents=True, exist_ok=True)
    return path


class PodmanError(RuntimeError):
    pass


class Podman:
    """Runs podman with the node hosts' containers.conf."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory or state_dir())
        self.conf_path = self.directory / "containers.conf"
        if not self.conf_path.exists() or self.conf_path.read_text() != CONTAINERS_CONF:
            tmp = self.conf_path.with_suffix(".tmp.%d" % os.getpid())
            tmp.write_text(CONTAINERS_CONF)
            os.replace(tmp, self.conf_path)

    def env(self, base: dict | None = None) -> dict:
        """``base`` (default: this process's environment) plus ``CONTAINERS_CONF``."""
        env = dict(os.environ if base is None else base)
        env["CONTAINERS_CONF"] = str(self.conf_path)
        return env

    def run(self, *args, check=True, input=None, timeout=300, stdin=None) -> subprocess.CompletedProcess:
        proc = subprocess.run(["podman", *args], env=self.env(), capture_output=True, text=input is None or isinstance(input, str),
                              input=input, timeout=timeout, stdin=stdin)
        if check and proc.returncode != 0:
            err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
            raise PodmanError("podman {0} failed (rc={1}): {2}".format(" ".join(args[:3]), proc.returncode, err.strip()[-2000:]))
        return proc

    def image_exists(self, reference: str) -> bool:
        return self.run("image", "exists", reference, check=False).returncode == 0

    def containers(self, label_filter: str | None = None, all_states: bool = True) -> list[dict]:
        """[{"name", "labels", "state"}] of containers, optionally filtered by ``label=...``."""
        import json

        args = ["ps", "--format", "json"]
        if all_states:
            args.append("-a")
        if label_filter:
            args += ["--filter", "label=" + label_filter]
        out = self.run(*args).stdout.strip() or "[]"
        return [{"name": (c.get("Names") or [""])[0], "labels": c.get("Labels") or {}, "state": c.get("State", "")}
                for c in json.loads(out)]
