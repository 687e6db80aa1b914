# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""In-place OS patching of self-managed nodes: what the node_patching role decides.

Pure functions over plain values (command output, host records), no Ansible, AWS or
Kubernetes imports; the role reaches them through the selfmanaged.eks filters of
plugins/filter/patching.py, so its Jinja stays thin.

- which package manager patches a host (from /etc/os-release), and which hosts cannot be
  patched in place at all (Bottlerocket: replace them with node_rollout);
- the pending updates, parsed from `apt-get -s dist-upgrade` and `dnf/yum check-update`;
- whether a reboot is needed: Debian's /run/reboot-required, `needs-restarting -r`, and the
  running kernel against the newest installed one (rpm version order, which
  needs-restarting misses for AL2023's kernel6.x packages);
- AL2023 release versions;
- batches: a count or a percentage of the targets, one availability zone at a time;
- the summary rows of a run.
"""

import fnmatch
import re

from ansible_collections.selfmanaged.eks.plugins.module_utils.rollout import RolloutError
from ansible_collections.selfmanaged.eks.plugins.module_utils.rollout import parse_amount

APT, DNF, YUM = "apt", "dnf", "yum"
PACKAGE_MANAGERS = (APT, DNF, YUM)
REBOOT_MODES = ("auto", "always", "never")
# The release version value that follows AL2023's newest release; only used when asked for.
LATEST_RELEASE = "latest"
# AL2023 dated release versions: 2023.<minor>.<yyyymmdd>[.<n>]
AL2023_RELEASE = re.compile(r"^2023\.\d+\.(20\d{6})(\.\d+)?$")
# Kernel package names of the RHEL family: kernel, and AL2023's kernel6.1 / kernel6.12 side by side.
KERNEL_PACKAGE = re.compile(r"^kernel(\d+(\.\d+)*)?$")
NODE_ROLLOUT_HINT = "replace its nodes with the selfmanaged.eks.node_rollout role (playbooks/roll.yml) after moving the launch template to a new AMI"


class PatchingError(ValueError):
    """A value the patching run cannot work with; the message names it and the fix."""


# ---------------------------------------------------------------------------------------
# Operating system


def parse_os_release(text):
    """/etc/os-release content -> {KEY: value}, quotes removed."""
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def os_name(os_release):
    """A readable name of an os-release record: PRETTY_NAME, else ID VERSION_ID."""
    return os_release.get("PRETTY_NAME") or " ".join(v for v in (os_release.get("ID"), os_release.get("VERSION_ID")) if v) or "an unknown OS"


def package_manager(os_release, host="the host"):
    """'apt', 'dnf' or 'yum' for an os-release record; PatchingError (naming the OS and what to do) otherwise."""
    os_id = (os_release.get("ID") or "").lower()
    like = (os_release.get("ID_LIKE") or "").lower().split()
    version = os_release.get("VERSION_ID") or ""
    if os_id == "bottlerocket":
        raise PatchingError(
            "{0} runs {1}, which has no package manager (image-based updates): it cannot be patched in place; {2}".format(
                host, os_name(os_release), NODE_ROLLOUT_HINT))
    if os_id in ("debian", "ubuntu") or "debian" in like or "ubuntu" in like:
        return APT
    if os_id == "amzn":
        if version.startswith("2023"):
            return DNF
        if version == "2":
            return YUM
    elif os_id in ("rhel", "centos", "rocky", "almalinux", "fedora", "ol") or "rhel" in like or "fedora" in like:
        major = version.split(".")[0]
        return YUM if major.isdigit() and int(major) < 8 and os_id != "fedora" else DNF
    raise PatchingError(
        "{0} runs {1} (ID={2!r}), which node_patching does not support; it patches Debian/Ubuntu (apt), Amazon Linux 2023 (dnf) "
        "and Amazon Linux 2 (yum) nodes. Leave the host out of node_patching_hosts, or {3}".format(
            host, os_name(os_release), os_id or "unknown", NODE_ROLLOUT_HINT))


def is_al2023(os_release):
    return (os_release.get("ID") or "").lower() == "amzn" and (os_release.get("VERSION_ID") or "").startswith("2023")


# ---------------------------------------------------------------------------------------
# Pending updates

# apt-get -s: "Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian:12.5/stable, Debian-Security:12/stable-security [amd64]) []"
_APT_INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<current>[^\]]+)\])? \((?P<available>\S+)(?: (?P<origin>[^\[)]*?))?(?: \[(?P<arch>[^\]]+)\])?\)")
_RPM_ARCHES = ("noarch", "x86_64", "aarch64", "i686", "i386", "armv7hl", "ppc64le", "s390x", "src")


def parse_apt_simulation(output):
    """`apt-get -s dist-upgrade` output -> [{"name", "current", "available", "origin", "security"}] (current None: a new package)."""
    updates = []
    for line in (output or "").splitlines():
        match = _APT_INST.match(line.strip())
        if not match:
            continue
        origin = (match.group("origin") or "").strip()
        updates.append({
            "name": match.group("name"),
            "current": match.group("current"),
            "available": match.group("available"),
            "origin": origin,
            "security": "-security" in origin.lower(),
        })
    return updates


def parse_check_update(output, security_names=None):
    """`dnf check-update` / `yum check-update` output -> [{"name", "arch", "current", "available", "origin", "security"}].

    Only the list of available updates is read (a line `name.arch  version  repo`); the metadata lines before it and
    the "Obsoleting Packages" section after it are not updates. `current` is not in that output (None).
    `security_names` (names from a `--security` listing) marks security updates.
    """
    security = set(security_names or [])
    updates = []
    for line in (output or "").splitlines():
        if line.strip().lower().startswith("obsoleting packages"):
            break
        fields = line.split()
        if len(fields) != 3 or line[:1].isspace():
            continue
        name_arch, version, repo = fields
        if "." not in name_arch:
            continue
        name, arch = name_arch.rsplit(".", 1)
        if arch not in _RPM_ARCHES or not re.match(r"^(\d+:)?[0-9A-Za-z._+~^-]+$", version) or not any(c.isdigit() for c in version):
            continue
        updates.append({"name": name, "arch": arch, "current": None, "available": version, "origin": repo,
                        "security": name in security})
    return updates


def check_update_failed(manager, rc, stderr, releasever=None):
    """Why a `check-update` run failed (exit codes: 0 nothing, 100 updates, else an error), or None when it did not.

    A release version the repositories do not know shows as metadata that cannot be downloaded.
    """
    if rc in (0, 100):
        return None
    text = (stderr or "").strip()
    if releasever and re.search(r"(Failed to download metadata|Cannot download repomd|404|Status code: 404|Curl error)", text, re.I):
        return ("release version {0!r} does not exist in the host's repositories ({1}); give an existing dated release in "
                "node_patching_al2023_releasever (see 'dnf check-release-update' on a node) or leave it empty".format(releasever, _last_line(text)))
    return "{0} check-update failed with exit code {1}: {2}".format(manager, rc, _last_line(text) or "no message")


def _last_line(text):
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def select_updates(updates, include=None, exclude=None, security_only=False):
    """The updates to install: matching an `include` pattern (all when empty), no `exclude` pattern, security when asked.

    Patterns are shell-style (`linux-image-*`), matched on the package name.
    """
    chosen = []
    for update in updates:
        name = update["name"]
        if include and not any(fnmatch.fnmatchcase(name, p) for p in include):
            continue
        if exclude and any(fnmatch.fnmatchcase(name, p) for p in exclude):
            continue
        if security_only and not update.get("security"):
            continue
        chosen.append(update)
    return chosen


def package_names(updates):
    """Sorted unique names of the updates that upgrade an installed package (new dependencies come with them)."""
    return sorted(set(u["name"] for u in updates if u.get("current") is not None or u.get("arch") is not None))


# ---------------------------------------------------------------------------------------
# Versions (rpm order) and reboots


def _rpm_segments(text):
    return re.findall(r"~|\^|[0-9]+|[A-Za-z]+", text)


def rpmvercmp(a, b):
    """-1, 0 or 1: rpm's order of two version (or version-release) strings.

    Digit runs compare as numbers and beat letters; `~` sorts before anything (even the end), `^` after the end but before
    anything else; separators only split.
    """
    if a == b:
        return 0
    sa, sb = _rpm_segments(a), _rpm_segments(b)
    i = 0
    while True:
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        i += 1
        if x == "~" or y == "~":
            if x != y:
                return -1 if x == "~" else 1
            continue
        if x == "^" or y == "^":
            if x == y:
                continue
            if x is None:
                return -1
            if y is None:
                return 1
            return -1 if x == "^" else 1
        if x is None and y is None:
            return 0
        if x is None:
            return -1
        if y is None:
            return 1
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        if x.isdigit():
            nx, ny = int(x), int(y)
            if nx != ny:
                return 1 if nx > ny else -1
        elif x != y:
            return 1 if x > y else -1


def _evr(version):
    """'1:6.1.2-3.amzn2023' -> (1, '6.1.2', '3.amzn2023')."""
    epoch, _sep, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    ver, _sep, rel = rest.partition("-")
    return int(epoch or 0), ver, rel


def compare_versions(a, b):
    """-1, 0 or 1: rpm order of two [epoch:]version[-release] strings."""
    ea, va, ra = _evr(a)
    eb, vb, rb = _evr(b)
    if ea != eb:
        return 1 if ea > eb else -1
    return rpmvercmp(va, vb) or rpmvercmp(ra, rb)


def strip_arch(kernel):
    """'6.1.102-111.182.amzn2023.x86_64' -> '6.1.102-111.182.amzn2023' (uname -r and rpm's VERSION-RELEASE.ARCH)."""
    for arch in _RPM_ARCHES:
        if kernel.endswith("." + arch):
            return kernel[: -len(arch) - 1]
    return kernel


def installed_kernels(rpm_output):
    """Kernel versions from `rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE}.%{ARCH}\\n'` (other packages ignored).

    kernel, kernel6.1 and kernel6.12 all count: AL2023 installs the 6.12 kernel as another package name.
    """
    versions = []
    for line in (rpm_output or "").splitlines():
        fields = line.split()
        if len(fields) == 2 and KERNEL_PACKAGE.match(fields[0]):
            versions.append(strip_arch(fields[1]))
    return versions


def newest_kernel(versions):
    """The newest of kernel version strings in rpm order, or None."""
    newest = None
    for version in versions:
        if newest is None or compare_versions(strip_arch(version), strip_arch(newest)) > 0:
            newest = version
    return newest


def reboot_decision(mode, manager, reboot_required_file=False, needs_restarting_rc=None, running_kernel=None, kernels=None):
    """{"reboot": bool, "reason": str}: whether a host reboots after its patch.

    `mode` always/never/auto. In auto: apt hosts reboot when /run/reboot-required exists; dnf/yum hosts when
    `needs-restarting -r` exits 1, or the running kernel is older than the newest installed one.
    """
    if mode not in REBOOT_MODES:
        raise PatchingError("node_patching_reboot {0!r} is not one of {1}".format(mode, ", ".join(REBOOT_MODES)))
    if mode == "always":
        return {"reboot": True, "reason": "node_patching_reboot is always"}
    if mode == "never":
        return {"reboot": False, "reason": "node_patching_reboot is never"}
    if manager == APT:
        if reboot_required_file:
            return {"reboot": True, "reason": "/run/reboot-required exists"}
        return {"reboot": False, "reason": "no /run/reboot-required"}
    newest = newest_kernel(kernels or [])
    if running_kernel and newest and compare_versions(strip_arch(newest), strip_arch(running_kernel)) > 0:
        return {"reboot": True, "reason": "running kernel {0} is older than the newest installed {1}".format(
            strip_arch(running_kernel), strip_arch(newest))}
    if needs_restarting_rc == 1:
        return {"reboot": True, "reason": "needs-restarting -r asks for a reboot"}
    return {"reboot": False, "reason": "needs-restarting -r and the kernel need no reboot"}


# ---------------------------------------------------------------------------------------
# AL2023 release versions


def validate_releasever(value, allow_latest=False):
    """The release version to pass as --releasever ('' to keep each host's own), or PatchingError."""
    text = "" if value is None else str(value).strip()
    if text == "":
        return ""
    if text == LATEST_RELEASE:
        if not allow_latest:
            raise PatchingError(
                "node_patching_al2023_releasever is 'latest', which moves nodes to whatever AL2023 release is newest at the time; pin a "
                "tested dated release (for example 2023.6.20241111) or set node_patching_al2023_allow_latest: true")
        return text
    if not AL2023_RELEASE.match(text):
        raise PatchingError(
            "node_patching_al2023_releasever {0!r} is not an AL2023 release version; give a dated release like 2023.6.20241111 "
            "(the node's /etc/dnf/vars/releasever shows its own), 'latest' with node_patching_al2023_allow_latest, or leave it empty".format(text))
    return text


# ---------------------------------------------------------------------------------------
# Batches


def batch_size(batch, targets):
    """The nodes per batch for `batch` (a count or a percentage of the `targets` count), or PatchingError."""
    try:
        size = parse_amount(batch, targets, "node_patching_batch", round_up=False)
    except RolloutError as exc:
        raise PatchingError(str(exc))
    if size == 0 and str(batch).strip().endswith("%") and targets and _percent(batch) > 0:
        size = 1  # a percentage of a small fleet still patches one node at a time, as Ansible's serial does
    if size < 1:
        raise PatchingError("node_patching_batch {0} patches no node per batch; give 1 or more (a count like 2 or a percentage like 25%)".format(batch))
    if size > targets:
        raise PatchingError("node_patching_batch {0} is above the {1} target hosts; give at most {1} (or a percentage)".format(batch, targets))
    return size


def _percent(value):
    try:
        return float(str(value).strip()[:-1])
    except ValueError:
        return 0.0


def plan_batches(hosts, batch, targets=None, one_zone_at_a_time=True):
    """Ordered batches of host names: [[name, ...], ...].

    `hosts` are the hosts with something to do, each {"name", "availability_zone"}; `targets` the number of target
    hosts the batch size is a share of (default: len(hosts); a re-run keeps the size of the first). Zones in name
    order, hosts in name order inside a zone; with `one_zone_at_a_time`, a batch never spans two zones (EBS-backed
    pods can only move within their zone, so only one zone is disrupted at a time).

    Hosts an earlier run left in maintenance (a `holder`) come first, and their zones first: such a host still
    holds its slot in the disruption lock under that run's identity, which this run renews as its own. Another
    host first would wait for that very slot (with max_unavailable 1, until the killed run's slot expires).
    """
    targets = len(hosts) if targets is None else targets
    size = batch_size(batch, targets)
    leftover_zones = set(h.get("availability_zone") or "" for h in hosts if h.get("holder"))
    ordered = sorted(hosts, key=lambda h: (not h.get("holder"), h.get("availability_zone") or "", h["name"]))
    if not one_zone_at_a_time:
        names = [h["name"] for h in ordered]
        return [names[i:i + size] for i in range(0, len(names), size)]
    batches = []
    zone_hosts = {}
    for host in ordered:
        zone_hosts.setdefault(host.get("availability_zone") or "", []).append(host["name"])
    for zone in sorted(zone_hosts, key=lambda z: (z not in leftover_zones, z)):
        names = zone_hosts[zone]
        batches.extend(names[i:i + size] for i in range(0, len(names), size))
    return batches


# ---------------------------------------------------------------------------------------
# What each host needs


def host_work(updates, reboot_pending=False, leftover=False, reboot_mode="auto"):
    """{"todo": bool, "why": str} for a host: pending updates, a reboot already pending, or an earlier run's leftover."""
    reasons = []
    if updates:
        reasons.append("{0} updates".format(len(updates)))
    if reboot_pending and reboot_mode != "never":
        reasons.append("reboot pending")
    if leftover:
        reasons.append("left in maintenance by an earlier run")
    return {"todo": bool(reasons), "why": ", ".join(reasons) or "nothing to do"}


def plan_hosts(hosts, status_entries, drain_reason, reboot_mode="auto"):
    """One plan entry per host, in the order given: {"name", "instance_id", "node", "availability_zone", "manager",
    "packages", "kernel_before", "todo", "why", "holder"}.

    `hosts` are {"name", "instance_id", "manager", "updates", "reboot_pending", "kernel_before"} (what each host read);
    `status_entries` eks_node_maintenance's status of their instances. A host is left over from an earlier run when it
    still has a maintenance record, or its Node carries the cordon of `drain_reason`: it is finished even with nothing
    left to install (uncordoned, its protection removed).
    """
    by_instance = dict((entry["instance_id"], entry) for entry in status_entries)
    plan = []
    for host in hosts:
        entry = by_instance.get(host["instance_id"]) or {}
        node = entry.get("node") or {}
        leftover = entry.get("maintenance") is not None or ((node.get("cordoned_by") or {}).get("reason") == drain_reason)
        work = host_work(host.get("updates") or [], host.get("reboot_pending"), leftover, reboot_mode)
        plan.append({
            "name": host["name"],
            "instance_id": host["instance_id"],
            "node": node.get("name"),
            "availability_zone": entry.get("availability_zone"),
            "manager": host.get("manager"),
            "packages": len(host.get("updates") or []),
            "kernel_before": host.get("kernel_before") or "",
            "todo": work["todo"],
            "why": work["why"],
            # A node an earlier run left keeps that run's identity in the disruption lock, where it may still count as
            # failed: the new run takes the node's slot back under it.
            "holder": ((entry.get("maintenance") or {}).get("by") or None) if leftover else None,
        })
    return plan


# ---------------------------------------------------------------------------------------
# Summary

SUMMARY_COLUMNS = (("host", "host"), ("node", "node"), ("zone", "zone"), ("packages", "packages updated"), ("kernel", "kernel"),
                   ("rebooted", "rebooted"), ("drain_seconds", "drain s"), ("total_seconds", "total s"), ("result", "result"))


def run_records(plan, records, check_mode=False):
    """host -> record for the summary, in plan order: what the run recorded for a host, else what the plan says of it."""
    result = {}
    for entry in plan:
        record = records.get(entry["name"])
        if record is None:
            if not entry.get("todo"):
                status = "nothing to do"
            else:
                status = "would patch ({0})".format(entry.get("why")) if check_mode else "not started"
            record = {"node": entry.get("node"), "zone": entry.get("availability_zone"), "kernel_before": entry.get("kernel_before"),
                      "packages": entry.get("packages") if check_mode else 0, "result": status}
        result[entry["name"]] = record
    return result


def failure_message(failure, drain_reason):
    """What an operator reads when a node failed: which node, at which step, its state, and how to resume or undo."""
    head = "{0} (node {1}, instance {2}) failed at step {3}: {4}".format(
        failure["host"], failure.get("node"), failure.get("instance_id"), failure["step"], str(failure.get("error") or "").strip())
    if failure.get("kept"):
        tail = ("It stays cordoned ({0!r}) and protected (scale-in protection, recorded in its selfmanaged.eks/maintenance tag) and "
                "counts as failed in the disruption lock until it is Ready and schedulable again; its workloads already moved. "
                "Look at the host (its journal, the kubelet), fix it, and run the playbook again: the run finishes this node "
                "(waits for Ready, uncordons it, removes its protection) and goes on with the hosts not yet patched. To give it back "
                "by hand instead: selfmanaged.eks.eks_node_drain state uncordoned and selfmanaged.eks.eks_node_maintenance state "
                "absent for it.".format(drain_reason))
    elif failure.get("step") == "lock":
        tail = ("It was not drained: the cluster's disruption lock had no free slot for it (other runs hold node_patching_max_unavailable "
                "nodes; docs/runbooks/disruption-lock.md shows who), or protecting it failed (the error says which), and what it got of "
                "them was given back. Run again when they are done or the cause is fixed, or raise node_patching_lock_wait_timeout.")
    else:
        tail = ("Nothing of it was kept: it is schedulable as before (the drain's restore), its protection was removed and its "
                "slot released. Fix the cause (docs/runbooks/draining-a-node.md for drain refusals and timeouts; node_patching_drain_timeout "
                "bounds each drain) and run again.")
    if failure.get("cleanup_errors"):
        tail += " Cleaning up also failed: {0}.".format("; ".join(failure["cleanup_errors"]))
    return "{0}. {1}".format(head.rstrip(". "), tail)


def summary_row(host, record):
    """One summary row of a host from what the run recorded for it (missing steps show as not done)."""
    before, after = record.get("kernel_before") or "", record.get("kernel_after") or record.get("kernel_before") or ""
    return {
        "host": host,
        "node": record.get("node") or "",
        "zone": record.get("zone") or "",
        "packages": int(record.get("packages") or 0),
        "kernel": before if before == after else "{0} -> {1}".format(before, after),
        "rebooted": bool(record.get("rebooted")),
        "drain_seconds": round(float(record.get("drain_seconds") or 0), 1),
        "total_seconds": round(float(record.get("total_seconds") or 0), 1),
        "result": record.get("result") or "not started",
    }


def summary_rows(records):
    """Summary rows of every host, in the order the hosts were planned (`records` is an ordered mapping host -> record)."""
    return [summary_row(host, records[host]) for host in records]


def summary_table(rows):
    """The rows as aligned text lines, a header first."""
    header = [title for _key, title in SUMMARY_COLUMNS]
    cells = [[_cell(row[key]) for key, _title in SUMMARY_COLUMNS] for row in rows]
    widths = [max([len(header[i])] + [len(c[i]) for c in cells]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(widths[i]) for i, text in enumerate(header)).rstrip()]
    lines.extend("  ".join(text.ljust(widths[i]) for i, text in enumerate(c)).rstrip() for c in cells)
    return lines


def _cell(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
