"""Integration fixtures: the sandbox, and running our modules and playbooks through Ansible.

Tests drive `ansible-playbook` as users do (a subprocess, our collection by FQCN, AWS
reached through AWS_ENDPOINT_URL), and read results from the ansible.posix.json callback.
"""

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from tests.nodehosts.fixtures import apt_repository, node_hosts, node_image, node_reports_dir, nodehost_timings, patch_fleet  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sandbox(node_reports_dir):
    """The session's sandbox; Nodes of instances that have a real node host follow their host's reports."""
    from tests.sandbox.pytest_support import start_sandbox_for_tests
    from tests.sandbox.server import SandboxSettings

    yield from start_sandbox_for_tests(SandboxSettings(node_reports_dir=str(node_reports_dir)))


@pytest.fixture
def unique_name():
    """A short unique name for per-test AWS resources (clusters, roles, node groups)."""

    def make(prefix="t"):
        return "{0}-{1}".format(prefix, uuid.uuid4().hex[:8])

    return make


def ansible_env(sandbox, extra=None):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        }
    )
    # Runs skip work they repeat identically: compiling AnsiballZ imports, building payloads, parsing routing
    # metadata and botocore's data files, and each process's last garbage collection (tests/tools/run_cache.py,
    # installed into .venv by the Makefile, which also sets this for make's runs).
    env.setdefault("SELFMANAGED_EKS_RUN_CACHE", str(ROOT / ".venv" / "run-cache"))
    env.update(extra or {})
    return env


class PlaybookRun:
    """The outcome of one ansible-playbook run: exit code, per-task results and stats."""

    def __init__(self, returncode, output, stderr):
        self.returncode = returncode
        self.output = output
        self.stderr = stderr

    @property
    def tasks(self):
        return [task for play in self.output.get("plays", []) for task in play.get("tasks", [])]

    def result(self, task_name, host="localhost"):
        """The registered result of the last task called `task_name`."""
        matches = [t for t in self.tasks if t["task"]["name"] == task_name]
        if not matches:
            raise AssertionError("no task named {0!r}; ran: {1}".format(task_name, [t["task"]["name"] for t in self.tasks]))
        return matches[-1]["hosts"][host]

    @property
    def stats(self):
        return self.output.get("stats", {})

    def changed_count(self, host="localhost"):
        return self.stats.get(host, {}).get("changed", 0)


def run_playbook(sandbox, playbook, extra_vars=None, check=False, diff=False, inventory=None, env=None, timeout=900, tags=None):
    """Run a playbook file against the sandbox and return a PlaybookRun (``tags``: ``--tags`` as given)."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook)]
    cmd += ["-i", inventory or "localhost,"]
    if extra_vars:
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(extra_vars, handle)
        cmd += ["-e", "@" + path]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if tags:
        cmd += ["--tags", tags]
    before = os.times()
    proc = subprocess.run(cmd, env=ansible_env(sandbox, env), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    after = os.times()
    if os.environ.get("SELFMANAGED_EKS_KEEP_RUNS"):
        # Profiling aid: every run's JSON output kept in that directory (task durations are in it).
        keep = Path(os.environ["SELFMANAGED_EKS_KEEP_RUNS"])
        keep.mkdir(parents=True, exist_ok=True)
        fd, kept = tempfile.mkstemp(prefix=Path(str(playbook)).stem + "-", suffix=".json", dir=str(keep))
        with os.fdopen(fd, "w") as handle:
            handle.write(proc.stdout)
        with open(kept[:-len(".json")] + ".cpu", "w") as handle:
            handle.write("{0:.2f} {1:.2f} {2}\n".format(after.children_user + after.children_system - before.children_user - before.children_system,
                                                          after.elapsed - before.elapsed,
                                                          os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]))
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON (rc={0}):\n{1}\n{2}".format(proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return PlaybookRun(proc.returncode, output, proc.stderr)


def run_module(sandbox, module, args, check=False, diff=False, env=None):
    """Run one module (FQCN or short name of ours) as a playbook task; return its result dict.

    The result carries `failed: true` and `msg` when the module failed; tests assert on it.
    """
    return run_modules(sandbox, [(module, args)], check=check, diff=diff, env=env)[0]


def run_modules(sandbox, calls, check=False, diff=False, env=None):
    """Run several modules, one after another, as the tasks of one playbook (`calls`: (module, args) pairs); return
    their results in order. A failed one ends the run: the calls after it have no result (None). Set-up helpers use it
    to spare an ansible-playbook start-up per step."""
    tasks = [{"name": "module {0}".format(index), (module if "." in module else "selfmanaged.eks." + module): args}
             for index, (module, args) in enumerate(calls)]
    play = [{"name": "integration", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(play, handle)
    try:
        run = run_playbook(sandbox, handle.name, check=check, diff=diff, env=env)
    finally:
        os.unlink(handle.name)
    ran = {task["task"]["name"]: task["hosts"]["localhost"] for task in run.tasks}
    return [ran.get("module {0}".format(index)) for index in range(len(calls))]


@pytest.fixture
def eks_status_delay():
    """Set the sandbox's EKS status delay (seconds a CREATING/UPDATING state lasts) for one test; restored after it."""
    from tests.sandbox.aws import eks_common

    saved = eks_common.SETTINGS.status_delay

    def set_delay(seconds):
        eks_common.SETTINGS.status_delay = seconds

    yield set_delay
    eks_common.SETTINGS.status_delay = saved


def slice_spent(task_name):
    """N of a wait slice's task line '... (N of M s spent)'."""
    return int(task_name.rsplit("(", 1)[1].split(" of ")[0])


@pytest.fixture
def playbook(sandbox):
    def runner(path, **kwargs):
        return run_playbook(sandbox, path, **kwargs)

    return runner


@pytest.fixture
def module_runner(sandbox):
    def runner(module, args, **kwargs):
        return run_module(sandbox, module, args, **kwargs)

    return runner


# The files whose tests take longest (first test started to last ended, in CI10: a whole CI run, 5 workers on 2
# cores), longest first; every file of a minute or more is here. A file that starts last must not run on alone at
# the end: in CI9 test_upgrade.py started at 885 s of 1388 and ended the run, because pytest-xdist's default re-sorts
# files by their number of tests (these have few, long ones), which is why the scheduler below keeps the collection
# order. The rest keep their alphabetical order after these.
LONGEST_FIRST = (
    "test_upgrade.py",                   # 796 s
    "test_node_rollout_resume.py",       # 644 s
    "test_node_rollout_protection.py",   # 456 s
    "test_node_rollout.py",              # 443 s
    "test_node_rollout_autoscaler.py",   # 313 s
    "test_node_patching.py",             # 306 s
    "test_role_csi_drivers.py",          # 224 s
    "test_awx_runner_patch.py",          # ~170 s (ansible-runner: not in the kept runs)
    "test_eks_node_drain.py",            # 170 s
    "test_eks_nodegroup_role.py",        # 167 s
    "test_node_patching_progress.py",    # 161 s
    "test_awx_runner.py",                # ~140 s
    "test_eks_nodegroup_asg.py",         # 138 s
    "test_eks_cluster.py",               # 127 s
    "test_eks_addon.py",                 # 121 s
    "test_eks_node_maintenance.py",      # 109 s
    "test_eks_disruption_lock.py",       # 106 s
    "test_eks_aws_auth.py",              # 99 s
    "test_eks_nodegroup_info.py",        # 84 s
    "test_nodehosts.py",                 # 75 s
    "test_role_iam.py",                  # 68 s
    "test_site_under_throttling.py",     # 65 s
    "test_node_patching_under_load.py",  # 59 s
)


def pytest_collection_modifyitems(session, config, items):
    """Longest files first (LONGEST_FIRST), so that no long file starts last."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))


def pytest_xdist_make_scheduler(config, log):
    """Whole files (--dist loadfile) in collection order, each handed to a worker only when the worker is about to
    need it. pytest-xdist's own file scheduler re-sorts the files by their number of tests and hands a worker its next
    file while two tests of its current one are still to run: a file queued behind two long tests (an upgrade, a
    roll) waited minutes while other workers were free. Here a worker gets its next file when its current file's last
    test is the only one left (the worker needs to know its next test before it runs the last one)."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler.loadfile import LoadFileScheduling

    class InCollectionOrder(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False

        def _reschedule(self, node):
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return InCollectionOrder(config, log)


def pytest_sessionfinish(session):
    """Profiling aid (with SELFMANAGED_EKS_KEEP_RUNS set): this worker's CPU seconds, its own (the sandbox
    runs in it) and its children's (ansible-playbook and its modules), written next to the kept runs."""
    keep = os.environ.get("SELFMANAGED_EKS_KEEP_RUNS")
    if not keep:
        return
    times = os.times()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(keep).mkdir(parents=True, exist_ok=True)
    (Path(keep) / "cpu-{0}.txt".format(worker)).write_text(
        "self {0:.1f} children {1:.1f} elapsed {2:.1f}\n".format(times.user + times.system, times.children_user + times.children_system, times.elapsed))
