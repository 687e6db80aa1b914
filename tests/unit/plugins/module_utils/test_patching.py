"""Patching decisions: the package manager of a host (Bottlerocket and unknown systems refused with the way out), pending
updates read from real apt/dnf/yum output, reboots (reboot-required, needs-restarting, and kernel6.x kernels that
needs-restarting misses), AL2023 release versions, batches one zone at a time, and the summary table."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils import patching as pt

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
UBUNTU = 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
AL2023 = 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023.6.20241111"\n'
AL2 = 'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\nPRETTY_NAME="Amazon Linux 2"\n'
BOTTLEROCKET = 'NAME=Bottlerocket\nID=bottlerocket\nVERSION_ID=1.26.1\nPRETTY_NAME="Bottlerocket OS 1.26.1 (aws-k8s-1.31)"\n'


@pytest.mark.parametrize("text,manager", [(DEBIAN, "apt"), (UBUNTU, "apt"), (AL2023, "dnf"), (AL2, "yum")])
def test_each_supported_os_gets_its_package_manager(text, manager):
    assert pt.package_manager(pt.parse_os_release(text)) == manager


def test_bottlerocket_is_refused_with_the_way_to_update_it():
    with pytest.raises(pt.PatchingError) as err:
        pt.package_manager(pt.parse_os_release(BOTTLEROCKET), host="ip-10-0-1-5")
    message = str(err.value)
    assert message.startswith("ip-10-0-1-5 runs Bottlerocket OS 1.26.1 (aws-k8s-1.31), which has no package manager")
    assert "selfmanaged.eks.node_rollout" in message


def test_an_unknown_os_is_refused_naming_it():
    with pytest.raises(pt.PatchingError) as err:
        pt.package_manager(pt.parse_os_release('ID=alpine\nVERSION_ID=3.20\n'), host="n1")
    assert "n1 runs alpine 3.20 (ID='alpine'), which node_patching does not support" in str(err.value)


APT_SIMULATION = """NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libc6 sandbox-kernel
Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64]) []
Inst sandbox-kernel [1.0] (2.0 localhost [all])
Inst new-dependency (0.1 localhost [all])
Conf libc6 (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64])
Conf sandbox-kernel (2.0 localhost [all])
"""


def test_apt_simulation_lists_upgrades_new_packages_and_security_origins():
    updates = pt.parse_apt_simulation(APT_SIMULATION)
    assert [(u["name"], u["current"], u["available"], u["security"]) for u in updates] == [
        ("libc6", "2.36-9", "2.36-9+deb12u4", True), ("sandbox-kernel", "1.0", "2.0", False), ("new-dependency", None, "0.1", False)]
    # new packages come in as dependencies; the upgrade names only what is installed
    assert pt.package_names(updates) == ["libc6", "sandbox-kernel"]


DNF_CHECK_UPDATE = """Last metadata expiration check: 0:02:11 ago on Mon Nov 30 08:00:00 2026.

containerd.x86_64                   1.7.22-1.amzn2023.0.1                amazonlinux
kernel6.12.x86_64                   6.12.8-33.amzn2023                    amazonlinux
python3-requests.noarch             2.25.1-1.amzn2023.0.4                 amazonlinux
Obsoleting Packages
kernel-livepatch-6.1.x86_64         1.0-0.11.amzn2023                     amazonlinux
    kernel-livepatch-6.1.x86_64     1.0-0.10.amzn2023                     @System
"""


def test_check_update_lists_only_the_updates_not_metadata_or_obsoletes():
    updates = pt.parse_check_update(DNF_CHECK_UPDATE, security_names=["kernel6.12"])
    assert [(u["name"], u["arch"], u["available"], u["security"]) for u in updates] == [
        ("containerd", "x86_64", "1.7.22-1.amzn2023.0.1", False), ("kernel6.12", "x86_64", "6.12.8-33.amzn2023", True),
        ("python3-requests", "noarch", "2.25.1-1.amzn2023.0.4", False)]


def test_yum_wrapped_lines_and_plugin_chatter_are_not_updates():
    output = "Loaded plugins: extras_suggestions, langpacks, priorities, update-motd\n\nopenssl-libs.x86_64   1:1.0.2k-24.amzn2.0.14   amzn2-core\n"
    assert [(u["name"], u["available"]) for u in pt.parse_check_update(output)] == [("openssl-libs", "1:1.0.2k-24.amzn2.0.14")]


def test_a_release_version_the_repositories_do_not_know_is_named():
    stderr = "Errors during downloading metadata for repository 'amazonlinux':\n  - Status code: 404 for https://cdn.amazonlinux.com/al2023/core/mirrors/2023.9.20991231/x86_64/mirror.list\nError: Failed to download metadata for repo 'amazonlinux'"
    message = pt.check_update_failed("dnf", 1, stderr, releasever="2023.9.20991231")
    assert message.startswith("release version '2023.9.20991231' does not exist in the host's repositories")
    assert pt.check_update_failed("dnf", 100, "", "2023.6.20241111") is None
    assert pt.check_update_failed("yum", 1, "Error: rpmdb open failed") == "yum check-update failed with exit code 1: Error: rpmdb open failed"


def test_include_exclude_and_security_only_choose_the_updates():
    updates = pt.parse_apt_simulation(APT_SIMULATION)
    assert [u["name"] for u in pt.select_updates(updates, include=["lib*", "sandbox-*"], exclude=["sandbox-kernel"])] == ["libc6"]
    assert [u["name"] for u in pt.select_updates(updates, security_only=True)] == ["libc6"]
    assert len(pt.select_updates(updates)) == 3


@pytest.mark.parametrize("a,b,order", [
    ("6.1.102-111.182.amzn2023", "6.1.99-1.1", 1), ("6.12.8-33.amzn2023", "6.1.119-129.201.amzn2023", 1),
    ("1.0~rc1", "1.0", -1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.0.1", -1), ("1.0a", "1.0", 1), ("1.0", "1.0.a", -1),
    ("2:1.0", "1:9.9", 1), ("1.01", "1.1", 0), ("5.10.1", "5.10.1", 0), ("1.0.10", "1.0.9", 1), ("1a", "1.1", -1)])
def test_versions_compare_in_rpm_order(a, b, order):
    assert pt.compare_versions(a, b) == order
    assert pt.compare_versions(b, a) == -order


@given(st.lists(st.integers(min_value=0, max_value=999), min_size=1, max_size=4), st.lists(st.integers(min_value=0, max_value=999), min_size=1, max_size=4))
def test_dotted_numbers_compare_like_tuples(a, b):
    def expected(x, y):
        return (x > y) - (x < y)
    assert pt.rpmvercmp(".".join(map(str, a)), ".".join(map(str, b))) == expected(a, b)


RPM_KERNELS = """kernel 6.1.115-126.197.amzn2023.x86_64
kernel6.12 6.12.8-33.amzn2023.x86_64
kernel-headers 6.1.119-129.201.amzn2023.x86_64
kernel-livepatch-repo-s3 2023.6.20241111-0.amzn2023.noarch
"""


def test_a_kernel6_12_install_asks_for_a_reboot_that_needs_restarting_misses():
    kernels = pt.installed_kernels(RPM_KERNELS)
    assert kernels == ["6.1.115-126.197.amzn2023", "6.12.8-33.amzn2023"]
    decision = pt.reboot_decision("auto", "dnf", needs_restarting_rc=0, running_kernel="6.1.115-126.197.amzn2023.x86_64", kernels=kernels)
    assert decision == {"reboot": True, "reason": "running kernel 6.1.115-126.197.amzn2023 is older than the newest installed 6.12.8-33.amzn2023"}


def test_rpm_hosts_on_their_newest_kernel_reboot_only_when_needs_restarting_says_so():
    kernels = ["6.1.115-126.197.amzn2023"]
    running = "6.1.115-126.197.amzn2023.x86_64"
    assert pt.reboot_decision("auto", "dnf", needs_restarting_rc=0, running_kernel=running, kernels=kernels)["reboot"] is False
    assert pt.reboot_decision("auto", "yum", needs_restarting_rc=1, running_kernel=running, kernels=kernels)["reboot"] is True


def test_apt_hosts_reboot_on_reboot_required_and_the_modes_override():
    assert pt.reboot_decision("auto", "apt", reboot_required_file=True)["reboot"] is True
    assert pt.reboot_decision("auto", "apt", reboot_required_file=False)["reboot"] is False
    assert pt.reboot_decision("always", "apt")["reboot"] is True
    assert pt.reboot_decision("never", "dnf", needs_restarting_rc=1)["reboot"] is False
    with pytest.raises(pt.PatchingError, match="node_patching_reboot 'sometimes' is not one of auto, always, never"):
        pt.reboot_decision("sometimes", "apt")


def test_release_versions_are_dated_releases_and_latest_only_when_asked():
    assert pt.validate_releasever("2023.6.20241111") == "2023.6.20241111"
    assert pt.validate_releasever(None) == ""
    assert pt.validate_releasever("latest", allow_latest=True) == "latest"
    with pytest.raises(pt.PatchingError, match="set node_patching_al2023_allow_latest: true"):
        pt.validate_releasever("latest")
    with pytest.raises(pt.PatchingError, match="'2023.six' is not an AL2023 release version; give a dated release like 2023.6.20241111"):
        pt.validate_releasever("2023.six")


def hosts(*specs):
    return [{"name": name, "availability_zone": zone} for name, zone in specs]


def test_batches_disrupt_one_zone_at_a_time_in_zone_and_name_order():
    fleet = hosts(("n4", "us-east-1b"), ("n1", "us-east-1a"), ("n3", "us-east-1a"), ("n2", "us-east-1b"), ("n5", "us-east-1a"))
    assert pt.plan_batches(fleet, 2) == [["n1", "n3"], ["n5"], ["n2", "n4"]]
    assert pt.plan_batches(fleet, "2", one_zone_at_a_time=False) == [["n1", "n3"], ["n5", "n2"], ["n4"]]
    assert pt.plan_batches(fleet, 1) == [["n1"], ["n3"], ["n5"], ["n2"], ["n4"]]


def test_a_host_an_earlier_run_left_in_maintenance_goes_first_with_its_zone():
    """Its slot in the lock is still held under the killed run's identity, which this run takes as its own: any other
    host first would wait for that slot (max_unavailable 1) until it expires."""
    fleet = hosts(("n1", "us-east-1a"), ("n2", "us-east-1b"), ("n3", "us-east-1b"), ("n4", "us-east-1c"))
    fleet[2]["holder"] = "node_patching/ops/20261130T140000Z-1a2b"
    assert pt.plan_batches(fleet, 1) == [["n3"], ["n2"], ["n1"], ["n4"]]
    assert pt.plan_batches(fleet, 2) == [["n3", "n2"], ["n1"], ["n4"]]
    assert pt.plan_batches(fleet, 2, one_zone_at_a_time=False) == [["n3", "n1"], ["n2", "n4"]]


def test_percentages_are_of_the_targets_rounded_down_but_at_least_one():
    fleet = hosts(*[("n{0}".format(i), "a") for i in range(10)])
    assert [len(b) for b in pt.plan_batches(fleet, "25%")] == [2, 2, 2, 2, 2]
    assert [len(b) for b in pt.plan_batches(fleet[:3], "10%")] == [1, 1, 1]
    # a re-run with two hosts left keeps the batch size of the whole target list
    assert pt.plan_batches(fleet[:2], "50%", targets=10) == [["n0", "n1"]]


@pytest.mark.parametrize("batch,message", [
    (0, "node_patching_batch 0 patches no node per batch; give 1 or more"),
    ("0%", "node_patching_batch 0% patches no node per batch"),
    (7, "node_patching_batch 7 is above the 4 target hosts; give at most 4"),
    ("two", "node_patching_batch 'two' is neither a count (2) nor a percentage (25%)"),
])
def test_bad_batches_are_refused_with_the_fix(batch, message):
    with pytest.raises(pt.PatchingError) as err:
        pt.plan_batches(hosts(("a", "z1"), ("b", "z1"), ("c", "z2"), ("d", "z2")), batch)
    assert message in str(err.value)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50)), min_size=1, max_size=30, unique=True), st.integers(1, 30))
def test_every_host_is_planned_once_and_no_batch_spans_two_zones(specs, size):
    fleet = [{"name": "n{0}{1}".format(z, i), "availability_zone": z} for z, i in specs]
    size = min(size, len(fleet))
    batches = pt.plan_batches(fleet, size)
    assert sorted(n for b in batches for n in b) == sorted(h["name"] for h in fleet)
    zone = {h["name"]: h["availability_zone"] for h in fleet}
    assert all(len(set(zone[n] for n in b)) == 1 and 1 <= len(b) <= size for b in batches)
    zones_in_order = [zone[b[0]] for b in batches]
    assert zones_in_order == sorted(zones_in_order)


def test_a_host_with_nothing_pending_has_nothing_to_do_unless_an_earlier_run_left_it():
    assert pt.host_work([]) == {"todo": False, "why": "nothing to do"}
    assert pt.host_work([], reboot_pending=True) == {"todo": True, "why": "reboot pending"}
    assert pt.host_work([], reboot_pending=True, reboot_mode="never")["todo"] is False
    assert pt.host_work([{"name": "x"}], leftover=True)["why"] == "1 updates, left in maintenance by an earlier run"


def test_the_summary_table_shows_kernels_before_and_after_and_unstarted_hosts():
    rows = pt.summary_rows({
        "n1": {"node": "ip-1", "zone": "a", "packages": 2, "kernel_before": "1.0", "kernel_after": "2.0", "rebooted": True,
               "drain_seconds": 3.14159, "total_seconds": 20, "result": "patched"},
        "n2": {"node": "ip-2", "zone": "b", "kernel_before": "1.0"},
    })
    assert rows[0]["kernel"] == "1.0 -> 2.0" and rows[0]["drain_seconds"] == 3.1
    assert rows[1] == {"host": "n2", "node": "ip-2", "zone": "b", "packages": 0, "kernel": "1.0", "rebooted": False, "drain_seconds": 0.0,
                       "total_seconds": 0.0, "result": "not started"}
    lines = pt.summary_table(rows)
    assert lines[0].split() == ["host", "node", "zone", "packages", "updated", "kernel", "rebooted", "drain", "s", "total", "s", "result"]
    assert lines[1].split() == ["n1", "ip-1", "a", "2", "1.0", "->", "2.0", "yes", "3.1", "20.0", "patched"]


REASON = "patched by selfmanaged.eks.node_patching"


def status(instance, node, maintenance=None, cordoned_by=None, zone="us-east-1a"):
    return {"instance_id": instance, "availability_zone": zone, "maintenance": maintenance,
            "node": {"name": node, "cordoned_by": cordoned_by}}


def test_the_plan_skips_hosts_with_nothing_to_do_and_finishes_what_an_earlier_run_left():
    hosts = [{"name": "a", "instance_id": "i-a", "manager": "apt", "updates": [{"name": "x"}], "kernel_before": "6.1"},
             {"name": "b", "instance_id": "i-b", "manager": "apt", "updates": []},
             {"name": "c", "instance_id": "i-c", "manager": "apt", "updates": []},
             {"name": "d", "instance_id": "i-d", "manager": "apt", "updates": []}]
    entries = [status("i-a", "n-a"), status("i-b", "n-b"),
               status("i-c", "n-c", maintenance={"by": "node_patching/ops@ctl/1-2", "added": ["scale_in_protection"]}),
               status("i-d", "n-d", cordoned_by={"reason": REASON})]
    plan = pt.plan_hosts(hosts, entries, REASON)
    assert [(p["name"], p["todo"], p["why"], p["holder"]) for p in plan] == [
        ("a", True, "1 updates", None), ("b", False, "nothing to do", None),
        ("c", True, "left in maintenance by an earlier run", "node_patching/ops@ctl/1-2"),
        ("d", True, "left in maintenance by an earlier run", None)]
    assert plan[0]["node"] == "n-a" and plan[0]["packages"] == 1 and plan[0]["kernel_before"] == "6.1"


def test_an_operators_cordon_is_not_an_earlier_run():
    hosts = [{"name": "a", "instance_id": "i-a", "updates": []}]
    assert pt.plan_hosts(hosts, [status("i-a", "n-a", cordoned_by={"reason": "disk check"})], REASON)[0]["todo"] is False


def test_run_records_fill_in_hosts_the_run_did_not_reach():
    plan = [{"name": "a", "node": "n-a", "todo": True, "why": "3 updates", "packages": 3},
            {"name": "b", "node": "n-b", "todo": True, "why": "1 updates", "packages": 1},
            {"name": "c", "node": "n-c", "todo": False, "why": "nothing to do", "packages": 0}]
    records = pt.run_records(plan, {"a": {"node": "n-a", "result": "failed at wait"}})
    assert [r["result"] for r in records.values()] == ["failed at wait", "not started", "nothing to do"]
    assert pt.run_records(plan, {}, check_mode=True)["b"] == {"node": "n-b", "zone": None, "kernel_before": None, "packages": 1,
                                                            "result": "would patch (1 updates)"}


def test_a_failure_after_the_drain_says_the_node_stays_cordoned_and_how_to_resume_or_undo():
    message = pt.failure_message({"host": "h1", "node": "n1", "instance_id": "i-1", "step": "wait", "error": "timed out after 60s.",
                                  "kept": True}, REASON)
    assert message.startswith("h1 (node n1, instance i-1) failed at step wait: timed out after 60s. It stays cordoned")
    assert "run the playbook again" in message and "eks_node_maintenance state absent" in message


def test_a_failed_drain_says_nothing_was_kept_and_a_full_lock_says_who_to_wait_for():
    drained = pt.failure_message({"host": "h1", "node": "n1", "instance_id": "i-1", "step": "drain", "error": "PDB web", "kept": False,
                                  "cleanup_errors": ["HTTP 500"]}, REASON)
    assert "Nothing of it was kept" in drained and drained.endswith("Cleaning up also failed: HTTP 500.")
    assert "node_patching_drain_timeout bounds each drain" in drained, "a drain that ran out names the variable that bounds it"
    locked = pt.failure_message({"host": "h1", "step": "lock", "error": "no free slot", "kept": False}, REASON)
    # The slot and the protection are one call: the message covers either failing, and says nothing was kept.
    assert "It was not drained: the cluster's disruption lock had no free slot for it" in locked
    assert "or protecting it failed" in locked and "given back" in locked
