"""Rolling OS patching (the node_patching role, playbooks/patch.yml) on real node hosts (issue 13, "Measured").

    python tests/benchmarks/bench_patching.py [--nodes 6] [--groups 2] [--max-unavailable 1] [--parts full,again,together,stuck]
                                              [--boot-seconds 0]

One sandbox, one fleet (tests/nodehosts/fleet.py): `--nodes` podman node hosts in `--groups` node groups over three
AZs, the web Deployment (one pod a node) behind a PDB (maxUnavailable 1), old packages installed, updates published.
A FleetWatcher samples the cluster every 50 ms throughout (unschedulable and not Ready nodes, PDB violations, each
node's cordon / drained / host down / host up / Ready events). Parts, in order, on the same fleet:

- full: `ansible-playbook playbooks/patch.yml` over the fleet's eks_nodes inventory, one node a batch, reboots as the
  kernel-like package asks. Its wall time against the sum of its unavoidable parts, per node: drain (cordoned -> no
  pod left but DaemonSet pods, observed), package install (`apt-get update` + `apt-get upgrade` of the same packages
  timed on a scratch host before the run), reboot (the old boot's last report -> the new boot's first report,
  observed), Ready (the new boot's first report -> the Node Ready, observed). Target ratio <= 1.3. A container
  reboots in seconds where an EC2 instance takes about a minute: `--boot-seconds N` makes each host's boot report N s
  after it went down (its Node follows), so that the ratio weighs the run's own cost as a real fleet would.
- again: the same command right after: 0 drains, 0 reboots, and its wall time.
- together: the next update published, two runs started together (one per node group, as two operators or two
  AWX slices) with the same cluster-wide max_unavailable: never more nodes unschedulable at once, 0 PDB violations.
- stuck: the next update published, one host's next boot never comes back: the run stops at that node (the rest
  untouched), then the fix (the boot completes) and a re-run that finishes.

Prints one table; asserts nothing.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))
from tests.tools.run_cache import measure_as_users_run  # noqa: E402

measure_as_users_run()  # the Ansible runs measured here run as users' do, without the test suites' caches

from tests.nodehosts.apt_repo import KERNEL_LIKE, AptRepository, node_packages  # noqa: E402
from tests.nodehosts.fleet import FleetWatcher, PatchFleet  # noqa: E402
from tests.nodehosts.hosts import NodeHosts, read_report  # noqa: E402
from tests.nodehosts.image import ensure_image  # noqa: E402
from tests.sandbox import Sandbox, SandboxSettings  # noqa: E402

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PLAYBOOK = ROOT / "playbooks" / "patch.yml"
playbook_path = PLAYBOOK


def ansible_env(sandbox, fleet):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(fleet.env())
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", KUBECONFIG=sandbox.kube.kubeconfig_path(fleet.name), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def patch_vars(fleet, max_unavailable, **extra):
    # Timeouts sized for the sandbox (a reboot takes seconds here), so the stuck node fails within a minute.
    variables = {"node_patching_max_unavailable": max_unavailable,
                 "node_patching_reboot_timeout": 120, "node_patching_ready_timeout": 60, "node_patching_drain_timeout": 120,
                 "node_patching_lock_wait_timeout": 900}
    variables.update(extra)
    return variables


def start_patch_run(sandbox, fleet, logdir, label, variables, limit=None):
    import json

    log = open(os.path.join(logdir, label + ".log"), "w")
    varfile = os.path.join(logdir, label + ".vars.json")
    with open(varfile, "w") as handle:
        json.dump(variables, handle)
    cmd = [ANSIBLE_PLAYBOOK, str(playbook_path), "-i", fleet.inventory, "-e", "@" + varfile]
    if limit:
        cmd += ["--limit", limit]
    proc = subprocess.Popen(cmd, env=ansible_env(sandbox, fleet), cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    return proc, log, time.monotonic()


def finish(run):
    proc, log, began = run
    rc = proc.wait(timeout=1800)
    log.close()
    return rc, time.monotonic() - began


def patch(sandbox, fleet, logdir, label, variables, limit=None):
    return finish(start_patch_run(sandbox, fleet, logdir, label, variables, limit))


def tail(logdir, label, lines=25):
    with open(os.path.join(logdir, label + ".log")) as handle:
        return "".join(handle.readlines()[-lines:])


def measure_install(hosts, repo, release):
    """Seconds of `apt-get update` + `apt-get upgrade` from the release before `release` to it, on a scratch host."""
    scratch = "i-0scratch" + os.urandom(4).hex()
    hosts.start([scratch])
    try:
        previous = ["{0}={1}".format(p.name, p.version) for p in node_packages("old")]
        hosts.exec(scratch, "apt-get", "update", "-qq")
        hosts.exec(scratch, "apt-get", "install", "-y", "-qq", "--allow-downgrades", *previous)
        began = time.monotonic()
        hosts.exec(scratch, "apt-get", "update", "-qq")
        hosts.exec(scratch, "apt-get", "upgrade", "-y", "-qq")
        return time.monotonic() - began
    finally:
        hosts.remove(scratch)


def slow_boots(hosts, reports, instance_ids, seconds):
    """Each host's next boot reports (its Node follows) `seconds` after its last report before the reboot, as a real
    node's boot takes that long; a thread a host, reading only the report files (no podman call while it waits)."""
    import threading

    def release(instance_id):
        deadline = time.time() + 3600
        while time.time() < deadline:
            last = read_report(reports, instance_id)
            if last and time.time() - last["time"] > 2.0:  # the reporter writes every 0.5 s: the host went down
                time.sleep(max(0.0, last["time"] + seconds - time.time()))
                break
            time.sleep(0.5)
        hosts.release_boot(instance_id)

    threads = []
    for instance_id in instance_ids:
        hosts.hold_next_boot(instance_id)
        threads.append(threading.Thread(target=release, args=(instance_id,), daemon=True))
        threads[-1].start()
    return threads


def node_parts(events):
    """(drain, reboot, ready) seconds of one node's events, None for a part that did not happen."""
    def first(prefix, after=0.0):
        return next((t for t, what in events if what.startswith(prefix) and t >= after), None)

    cordoned = first("cordoned")
    empty = first("empty", cordoned or 0.0) if cordoned is not None else None
    down = first("host down")
    up = first("host up", down or 0.0) if down is not None else None
    ready = first("ready", up or 0.0) if up is not None else None
    drain = empty - cordoned if cordoned is not None and empty is not None else None
    reboot = up - down if down is not None and up is not None else None
    return drain, reboot, (ready - up if ready is not None and up is not None else None)


def counts(watcher):
    drains = sum(1 for events in watcher.events.values() for _, what in events if what == "cordoned")
    reboots = sum(1 for events in watcher.events.values() for _, what in events if what.startswith("host up"))
    return drains, reboots


def kernel_versions(fleet):
    return {i: fleet.installed(i).get(KERNEL_LIKE) for i in fleet.instance_ids()}


def cordoned_nodes(fleet):
    return sorted(n.metadata.name for n in fleet.nodes().values() if n.spec.unschedulable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--max-unavailable", type=int, default=1)
    parser.add_argument("--parts", default="full,again,together,stuck")
    parser.add_argument("--playbook", default=str(PLAYBOOK), help="another patching playbook to measure the same way")
    parser.add_argument("--boot-seconds", type=float, default=0.0,
                        help="in the full run, each host's boot reports that long after it went down (a real node's reboot "
                             "takes about a minute; a container's takes seconds); 0: as fast as the container")
    args = parser.parse_args()
    parts = args.parts.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop like Ctrl-C: hosts removed, sandbox stopped
    global playbook_path
    playbook_path = Path(args.playbook)
    if not playbook_path.exists():
        sys.exit("{0} is missing: the node_patching role and its playbook come with issue 13's patch branch".format(playbook_path))
    rows = []
    logdir = tempfile.mkdtemp(prefix="bench-patching-")
    reports = tempfile.mkdtemp(prefix="node-reports-")
    os.chmod(reports, 0o755)
    image, build_seconds = ensure_image()
    rows.append(("node image", "built in {0:.0f} s".format(build_seconds) if build_seconds else "reused (cached by recipe hash)", ""))
    with Sandbox(SandboxSettings(node_reports_dir=reports)) as sandbox, \
            NodeHosts(reports, os.path.join(logdir, "apt"), image=image) as hosts:
        try:
            repo = AptRepository(os.path.join(logdir, "apt"))
            fleet = PatchFleet(sandbox, hosts, repo, nodes=args.nodes, groups=args.groups, directory=logdir)
            rows.append(("fleet: {0} hosts, {1} groups, 3 AZs".format(args.nodes, args.groups),
                         "{0:.1f} s (hosts started in parallel in {1:.1f} s)".format(fleet.build_seconds, hosts.timings["start"]), ""))
            install = measure_install(hosts, repo, "new")
            instance_of = {n.metadata.name: i for i, n in fleet.nodes().items()}
            watch = dict(reports_dir=reports, instance_of=instance_of)
            mu = args.max_unavailable

            if "full" in parts:
                slow = slow_boots(hosts, reports, fleet.instance_ids(), args.boot_seconds) if args.boot_seconds else []
                with FleetWatcher(fleet.store(), **watch) as watcher:
                    rc, wall = patch(sandbox, fleet, logdir, "full", patch_vars(fleet, mu))
                for instance_id in fleet.instance_ids():
                    hosts.release_boot(instance_id)  # a host the run did not reboot
                for thread in slow:
                    thread.join(timeout=1)
                drains, reboots = counts(watcher)
                per_node = [node_parts(watcher.events.get(name, [])) for name in instance_of]
                drain = sum(p[0] or 0.0 for p in per_node)
                reboot = sum(p[1] or 0.0 for p in per_node)
                ready = sum(p[2] or 0.0 for p in per_node)
                unavoidable = drain + install * len(per_node) + reboot + ready
                patched = sum(1 for v in kernel_versions(fleet).values() if v == node_packages("new")[-1].version)
                rows.append(("full run: wall / rc{0}".format(" (boots of {0:.0f} s)".format(args.boot_seconds) if args.boot_seconds else ""),
                             "{0:.1f} s / rc {1}".format(wall, rc), "rc 0"))
                rows.append(("  patched / drains / reboots", "{0} / {1} / {2} of {3}".format(patched, drains, reboots, len(per_node)), "all"))
                rows.append(("  unavoidable: drain + install + reboot + Ready", "{0:.1f} + {1:.1f} + {2:.1f} + {3:.1f} = {4:.1f} s".format(
                    drain, install * len(per_node), reboot, ready, unavoidable), ""))
                rows.append(("  ratio wall / unavoidable", "{0:.2f}".format(wall / unavoidable if unavoidable else float("inf")), "<= 1.3"))
                rows.append(("  max unschedulable at once / PDB violations", "{0} / {1}".format(
                    watcher.max_unschedulable, len(watcher.pdb_violations)), "<= {0} / 0".format(mu)))
                if rc:
                    print(tail(logdir, "full"))

            if "again" in parts:
                boots = fleet.boot_ids()
                with FleetWatcher(fleet.store(), **watch) as watcher:
                    rc, wall = patch(sandbox, fleet, logdir, "again", patch_vars(fleet, mu))
                drains, reboots = counts(watcher)
                unchanged = boots == fleet.boot_ids()
                rows.append(("second run: wall / rc", "{0:.1f} s / rc {1}".format(wall, rc), "rc 0"))
                rows.append(("  drains / reboots", "{0} / {1}{2}".format(drains, reboots, "" if unchanged else " (boot ids changed)"), "0 / 0"))
                if rc:
                    print(tail(logdir, "again"))

            if "together" in parts:
                repo.publish(*node_packages("newer"))
                with FleetWatcher(fleet.store(), **watch) as watcher:
                    runs = [start_patch_run(sandbox, fleet, logdir, "together-{0}".format(i + 1), patch_vars(fleet, mu),
                                            limit="node_group_" + group.replace("-", "_")) for i, group in enumerate(fleet.groups)]
                    results = [finish(run) for run in runs]
                wall = max(r[1] for r in results)
                patched = sum(1 for v in kernel_versions(fleet).values() if v == node_packages("newer")[-1].version)
                rows.append(("two runs together (one per group): wall / rcs", "{0:.1f} s / rc {1}".format(
                    wall, ", ".join(str(r[0]) for r in results)), "rc 0, 0"))
                rows.append(("  patched / max unschedulable at once / PDB violations", "{0} of {1} / {2} / {3}".format(
                    patched, args.nodes, watcher.max_unschedulable, len(watcher.pdb_violations)), "all / <= {0} / 0".format(mu)))
                for i, result in enumerate(results):
                    if result[0]:
                        print(tail(logdir, "together-{0}".format(i + 1)))

            if "stuck" in parts:
                repo.publish(*node_packages("newest"))
                newest = node_packages("newest")[-1].version
                order = sorted(instance_of.items())
                stuck_name, stuck = order[len(order) // 2]
                hosts.hold_next_boot(stuck)
                before = kernel_versions(fleet)
                boots = fleet.boot_ids()
                with FleetWatcher(fleet.store(), **watch) as watcher:
                    rc, wall = patch(sandbox, fleet, logdir, "stuck", patch_vars(fleet, mu))
                after = kernel_versions(fleet)
                patched = sorted(i for i in after if after[i] == newest and i != stuck)
                untouched = sorted(i for i in after if after[i] == before[i] and boots[i] == fleet.boot_ids()[i])
                cordoned = cordoned_nodes(fleet)
                rows.append(("stuck node {0}: run rc / wall".format(stuck), "rc {0} / {1:.1f} s".format(rc, wall), "rc != 0"))
                rows.append(("  patched before it / untouched / cordoned after", "{0} / {1} / {2}".format(
                    len(patched), len(untouched), ", ".join(cordoned) or "none"), "-, rest, only it"))
                print(tail(logdir, "stuck", 15))
                hosts.release_boot(stuck)
                with FleetWatcher(fleet.store(), **watch) as watcher:
                    rc, wall = patch(sandbox, fleet, logdir, "resume", patch_vars(fleet, mu))
                done = sum(1 for v in kernel_versions(fleet).values() if v == newest)
                rows.append(("  after the fix, re-run: rc / wall / patched / cordoned", "rc {0} / {1:.1f} s / {2} of {3} / {4}".format(
                    rc, wall, done, args.nodes, ", ".join(cordoned_nodes(fleet)) or "none"), "rc 0 / all / none"))
                if rc:
                    print(tail(logdir, "resume"))

        except BaseException:
            print_table(rows, logdir)  # what was measured before the failure
            raise
    print_table(rows, logdir)


def print_table(rows, logdir):
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print("\n{0}  {1}  {2}".format("measurement".ljust(width), "value".ljust(value_width), "target"))
    print("{0}  {1}  {2}".format("-" * width, "-" * value_width, "------"))
    for name, value, target in rows:
        print("{0}  {1}  {2}".format(name.ljust(width), value.ljust(value_width), target))
    print("\nlogs: " + logdir)


if __name__ == "__main__":
    main()
