"""The kubelet stand-in follows real node hosts (setting ``node_reports_dir``): a host's reports
(``<dir>/<instance id>``: {"boot_id", "time"}) drive its Node's Ready condition and bootID;
instances whose host never reported keep the simulated kubelet."""

import json
import os
import threading
import time

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios
from tests.sandbox.kube.scenarios import wait_for


@pytest.fixture
def reports_dir(sandbox, tmp_path):
    saved = (sandbox.settings.node_reports_dir, sandbox.settings.node_report_grace_period)
    sandbox.settings.node_reports_dir = str(tmp_path)
    sandbox.settings.node_report_grace_period = 1.5
    yield tmp_path
    sandbox.settings.node_reports_dir, sandbox.settings.node_report_grace_period = saved


class Reporter:
    """A host's reporter: writes its report every 0.2 s while running (the real one writes every second)."""

    def __init__(self, directory, instance_id):
        self.path = os.path.join(str(directory), instance_id)
        self.boot_id = None
        self._stop = threading.Event()
        self._thread = None

    def boot(self, boot_id):
        self.halt()
        self.boot_id, self._stop = boot_id, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True)
        self._thread.start()

    def halt(self):
        if self._thread:
            self._stop.set()
            self._thread.join()

    def _run(self, stop):
        while not stop.is_set():
            with open(self.path + ".tmp", "w") as handle:
                json.dump({"boot_id": self.boot_id, "time": time.time()}, handle)
            os.replace(self.path + ".tmp", self.path)
            stop.wait(0.2)


@pytest.fixture
def two_nodes(sandbox):
    cluster = create_cluster(sandbox, mode="CONFIG_MAP")
    core = kubernetes.client.CoreV1Api(scenarios.kube_client(sandbox, cluster))
    role, profile = scenarios.node_role(sandbox)
    scenarios.map_node_role(core, role)
    scenarios.node_group(sandbox, cluster, profile, scenarios.nodeadm_user_data(cluster), size=2)
    wait_for(lambda: len(scenarios.ready_node_names(core)) == 2, timeout=30, message="2 Ready nodes")
    nodes = {n.spec.provider_id.rsplit("/", 1)[1]: n.metadata.name for n in core.list_node().items}
    return core, nodes


def node_state(core, name):
    node = core.read_node(name)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    return ready.status, ready.reason, node.status.node_info.boot_id


def test_the_node_of_a_reporting_host_follows_its_boots_and_silences(reports_dir, two_nodes):
    core, nodes = two_nodes
    (host, name), (other_host, other_name) = sorted(nodes.items())
    other_before = node_state(core, other_name)
    reporter = Reporter(reports_dir, host)
    try:
        reporter.boot("boot-1")
        wait_for(lambda: node_state(core, name)[::2] == ("True", "boot-1"), timeout=10, message="bootID of the first report")

        reporter.halt()  # the host goes down: after the grace period the Node is Unknown, its bootID kept
        wait_for(lambda: node_state(core, name)[:2] == ("Unknown", "NodeStatusUnknown"), timeout=10, message="NotReady after grace")
        assert node_state(core, name)[2] == "boot-1"

        reporter.boot("boot-2")  # it comes back with a new boot: NotReady first, then Ready with the new bootID
        wait_for(lambda: node_state(core, name)[2] == "boot-2", timeout=10, message="new bootID")
        wait_for(lambda: node_state(core, name)[0] == "True", timeout=10, message="Ready after the new boot")

        reporter.halt()
        wait_for(lambda: node_state(core, name)[0] == "Unknown", timeout=10, message="NotReady after grace")
        reporter.boot("boot-2")  # the same boot reports again (a stalled reporter): Ready, same bootID
        wait_for(lambda: node_state(core, name) == ("True", "KubeletReady", "boot-2"), timeout=10, message="Ready again")
    finally:
        reporter.halt()
    assert node_state(core, other_name) == other_before  # the host without reports: simulated kubelet, unchanged
    assert other_host not in os.listdir(reports_dir)


def test_without_a_reports_dir_a_report_file_changes_nothing(sandbox, two_nodes, tmp_path):
    assert sandbox.settings.node_reports_dir in (None, "")
    core, nodes = two_nodes
    host, name = sorted(nodes.items())[0]
    before = node_state(core, name)
    (tmp_path / host).write_text(json.dumps({"boot_id": "ignored", "time": time.time()}))
    time.sleep(1.0)
    assert node_state(core, name) == before
