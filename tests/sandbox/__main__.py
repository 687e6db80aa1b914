"""``python -m tests.sandbox``: start the sandbox, print the environment to export, run until
Ctrl-C or SIGTERM, then stop cleanly."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import threading
from pathlib import Path

from tests.sandbox.server import Sandbox, SandboxSettings

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="AWS endpoint port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--status-delay", type=float, default=SandboxSettings.status_delay,
                        help="seconds EKS resources stay CREATING/UPDATING/DELETING")
    parser.add_argument("--state-dir", default=None, help="where kubeconfigs and CA files go (default: a temporary directory)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    settings = SandboxSettings(region=args.region, port=args.port, status_delay=args.status_delay, state_dir=args.state_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sandbox = Sandbox(settings).start()
    try:
        for key, value in sandbox.env().items():
            print(f"export {key}={shlex.quote(value)}")
        # This checkout's collection and roles, as make demo and the tests use them.
        print(f"export ANSIBLE_COLLECTIONS_PATH={shlex.quote(str(ROOT / '.venv' / 'collections'))}")
        print(f"export ANSIBLE_ROLES_PATH={shlex.quote(str(ROOT / 'roles'))}")
        print(f"export PATH={shlex.quote(str(ROOT / '.venv' / 'bin'))}:\"$PATH\"")
        print(f"# kubectl: each EKS cluster you create gets a kubeconfig at "
              f"{os.path.join(settings.state_dir, 'clusters', settings.region + '-<cluster>', 'kubeconfig')}")
        print(f"# sandbox ready in {sandbox.startup_seconds:.2f}s; state in {settings.state_dir}; Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
