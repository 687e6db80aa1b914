"""Run one command with the sandbox up and its environment exported, then stop it.

    python -m tests.sandbox.with_sandbox -- molecule test -s control_plane
    python -m tests.sandbox.with_sandbox --node-hosts -- molecule test -s node_patching

Exits with the command's exit code. Used by `make molecule` so that every scenario talks
to a fresh sandbox exactly as it would talk to AWS. With ``--node-hosts`` the Nodes follow
real node hosts (tests/nodehosts) that the command starts with ``python -m tests.nodehosts up``:
their reports and apt directories, their owner and CONTAINERS_CONF are exported, and every
host of that owner is removed when the command ends.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from tests.sandbox.server import Sandbox, SandboxSettings


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    node_hosts = bool(argv) and argv[0] == "--node-hosts"
    if node_hosts:
        argv = argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.exit("usage: python -m tests.sandbox.with_sandbox [--node-hosts] -- COMMAND [ARGS...]")
    if not node_hosts:
        with Sandbox() as sandbox:
            env = dict(os.environ)
            env.update(sandbox.env())
            return subprocess.call(argv, env=env)
    from tests.nodehosts.hosts import NodeHosts

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the hosts are removed on SIGTERM too

    work = tempfile.mkdtemp(prefix="node-hosts-")
    reports, apt = os.path.join(work, "reports"), os.path.join(work, "apt")
    for path in (reports, apt):
        os.makedirs(path, mode=0o755)
    hosts = NodeHosts(reports, apt)
    try:
        with Sandbox(SandboxSettings(node_reports_dir=reports)) as sandbox:
            env = hosts.inventory_env(dict(os.environ))
            env.update(sandbox.env())
            env.update(NODEHOSTS_REPORTS_DIR=reports, NODEHOSTS_APT_DIR=apt, NODEHOSTS_OWNER=hosts.owner)
            return subprocess.call(argv, env=env)
    finally:
        hosts.remove_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
