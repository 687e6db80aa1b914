"""Node hosts from the command line, for Molecule scenarios and by hand, inside
``python -m tests.sandbox.with_sandbox --node-hosts -- COMMAND`` (which sets the sandbox's
node_reports_dir and exports NODEHOSTS_REPORTS_DIR, NODEHOSTS_APT_DIR, NODEHOSTS_OWNER and
CONTAINERS_CONF, and removes the hosts when COMMAND ends):

    python -m tests.nodehosts image               build the node image unless cached (make nodehost-image)
    python -m tests.nodehosts up --cluster NAME [--installed old] [--published new]
        a host for every InService/Standby instance of the cluster's node groups (names printed),
        the fleet's packages installed at --installed, --published published
    python -m tests.nodehosts publish RELEASE     publish a release (old, new, newer, newest)
    python -m tests.nodehosts hold|release ID     that host's next boot never comes back / comes back
    python -m tests.nodehosts down                remove this owner's hosts
"""

import argparse
import os
import sys

from .apt_repo import RELEASES, AptRepository, node_packages
from .fleet import cluster_instance_ids, provision
from .hosts import NodeHosts
from .image import ensure_image


def _required(name):
    value = os.environ.get(name)
    if not value:
        sys.exit("{0} is not set: run inside 'python -m tests.sandbox.with_sandbox --node-hosts -- ...'".format(name))
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.nodehosts", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up")
    up.add_argument("--cluster", required=True)
    up.add_argument("--installed", default="old", choices=RELEASES)
    up.add_argument("--published", default="new", choices=RELEASES)
    commands.add_parser("publish").add_argument("release", choices=RELEASES)
    commands.add_parser("hold").add_argument("instance_id")
    commands.add_parser("release").add_argument("instance_id")
    commands.add_parser("down")
    commands.add_parser("image")
    args = parser.parse_args(argv)
    if args.command == "image":
        reference, seconds = ensure_image()
        print("{0} ({1})".format(reference, "built in {0:.0f} s".format(seconds) if seconds else "cached"))
        return 0
    repo = AptRepository(_required("NODEHOSTS_APT_DIR"))
    hosts = NodeHosts(_required("NODEHOSTS_REPORTS_DIR"), repo.directory)
    if args.command == "up":
        import boto3

        ids = cluster_instance_ids(boto3.client("autoscaling"), args.cluster)
        if not ids:
            sys.exit("cluster {0} has no InService instance in node groups tagged kubernetes.io/cluster/{0}".format(args.cluster))
        provision(hosts, repo, ids, installed=args.installed, published=args.published)
        print("\n".join(ids))
    elif args.command == "publish":
        repo.publish(*node_packages(args.release))
    elif args.command == "hold":
        hosts.hold_next_boot(args.instance_id)
    elif args.command == "release":
        hosts.release_boot(args.instance_id)
    elif args.command == "down":
        hosts.remove_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
