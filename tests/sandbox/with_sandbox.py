"""Run one command with the sandbox up and its environment exported, then stop it.

    python -m tests.sandbox.with_sandbox -- molecule test -s control_plane

Exits with the command's exit code. Used by `make molecule` so that every scenario talks
to a fresh sandbox exactly as it would talk to AWS.
"""

import os
import subprocess
import sys

from tests.sandbox.server import Sandbox


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.exit("usage: python -m tests.sandbox.with_sandbox -- COMMAND [ARGS...]")
    with Sandbox() as sandbox:
        env = dict(os.environ)
        env.update(sandbox.env())
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main())
