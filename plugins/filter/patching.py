# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The node_patching role's decisions, made where they are unit-tested (module_utils/patching.py, maintenance.py)."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.selfmanaged.eks.plugins.module_utils import disruption_lock
from ansible_collections.selfmanaged.eks.plugins.module_utils import maintenance
from ansible_collections.selfmanaged.eks.plugins.module_utils import patching


def _checked(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except patching.PatchingError as exc:
        raise AnsibleFilterError(str(exc))


def _flag(value, name):
    """A yes/no role variable as a bool. Extra vars (`-e name=false`) and AWX survey answers arrive as strings, and
    the role's argument spec validates them without converting them: bool("false") would be True."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise AnsibleFilterError("{0} is {1!r}, not a boolean: use true or false".format(name, value))


def patch_package_manager(os_release_text, host="the host"):
    """/etc/os-release text -> apt, dnf or yum; an error naming the OS (Bottlerocket: use node_rollout) otherwise."""
    return _checked(patching.package_manager, patching.parse_os_release(os_release_text), host)


def patch_os_problem(os_release_text, host="the host"):
    """'' when the host can be patched in place, else why not (the package manager error's text)."""
    try:
        patching.package_manager(patching.parse_os_release(os_release_text), host)
    except patching.PatchingError as exc:
        return str(exc)
    return ""


def patch_is_al2023(os_release_text):
    return patching.is_al2023(patching.parse_os_release(os_release_text))


def patch_pending_updates(output, manager, security_output=""):
    """The pending updates in a host's `apt-get -s dist-upgrade` or `check-update` output."""
    if manager == patching.APT:
        return patching.parse_apt_simulation(output)
    security = [u["name"] for u in patching.parse_check_update(security_output)] if security_output else []
    return patching.parse_check_update(output, security)


def patch_select_updates(updates, include=None, exclude=None, security_only=False):
    return patching.select_updates(updates, include or [], exclude or [], _flag(security_only, "node_patching_security_only"))


def patch_package_names(updates):
    return patching.package_names(updates)


def patch_check_update_failed(rc, manager, stderr="", releasever=""):
    """Why a check-update failed ('' when it did not): a release version that does not exist is named."""
    return patching.check_update_failed(manager, int(rc), stderr, releasever or None) or ""


def patch_reboot_decision(mode, manager, reboot_required_file=False, needs_restarting_rc=None, running_kernel=None, rpm_kernels=""):
    return _checked(patching.reboot_decision, mode, manager, bool(reboot_required_file),
                    None if needs_restarting_rc in (None, "") else int(needs_restarting_rc), running_kernel or None,
                    patching.installed_kernels(rpm_kernels))


def patch_releasever(value, allow_latest=False):
    return _checked(patching.validate_releasever, value, _flag(allow_latest, "node_patching_al2023_allow_latest"))


def patch_host_work(updates, reboot_pending=False, leftover=False, reboot_mode="auto"):
    return patching.host_work(updates, bool(reboot_pending), bool(leftover), reboot_mode)


def patch_plan(host_names, hostvars, status_entries, drain_reason, reboot_mode="auto"):
    """The plan entry of each host (patching.plan_hosts) from what each read in play 1 (its node_patching_* facts)."""
    hosts = []
    for name in host_names:
        values = hostvars[name]
        hosts.append({"name": name, "instance_id": values.get("eks_node_instance_id"), "manager": values.get("node_patching_manager"),
                      "updates": values.get("node_patching_updates") or [], "reboot_pending": values.get("node_patching_reboot_pending"),
                      "kernel_before": values.get("node_patching_kernel_before")})
    return patching.plan_hosts(hosts, status_entries, drain_reason, reboot_mode)


def patch_batches(hosts, batch, targets=None, one_zone_at_a_time=True):
    return _checked(patching.plan_batches, hosts, batch, targets,
                    _flag(one_zone_at_a_time, "node_patching_one_zone_at_a_time"))


def patch_batch_size(batch, targets):
    return _checked(patching.batch_size, batch, int(targets))


def patch_run_records(plan, hostvars, check_mode=False):
    """host -> summary record: each host's node_patching_record, else what the plan says of it."""
    records = {}
    for entry in plan:
        record = hostvars[entry["name"]].get("node_patching_record")
        if record is not None:
            records[entry["name"]] = record
    return patching.run_records(plan, records, bool(check_mode))


def patch_failure_message(failure, drain_reason):
    return patching.failure_message(failure, drain_reason)


def patch_summary_rows(records):
    return patching.summary_rows(records)


def patch_summary_table(rows):
    return patching.summary_table(rows)


def patch_lock_state(result, max_unavailable):
    """The state line of a wait for a disruption lock slot, from a timed-out eks_node_maintenance (or eks_disruption_lock) result."""
    return disruption_lock.waiting_state(result.get("holders"), result.get("in_use"), max_unavailable)


def patch_node_rebooted(result, boot_ids):
    """Whether the Nodes of an eks_node_maintenance status result (a timed-out wait too) report new bootIDs."""
    return maintenance.rebooted(result.get("instances") or [], boot_ids or {})


def pdbs_worse(before, after):
    return maintenance.pdbs_worse(before, after)


class FilterModule:
    def filters(self):
        return {
            "patch_package_manager": patch_package_manager,
            "patch_os_problem": patch_os_problem,
            "patch_is_al2023": patch_is_al2023,
            "patch_pending_updates": patch_pending_updates,
            "patch_select_updates": patch_select_updates,
            "patch_package_names": patch_package_names,
            "patch_check_update_failed": patch_check_update_failed,
            "patch_reboot_decision": patch_reboot_decision,
            "patch_releasever": patch_releasever,
            "patch_host_work": patch_host_work,
            "patch_plan": patch_plan,
            "patch_batches": patch_batches,
            "patch_batch_size": patch_batch_size,
            "patch_run_records": patch_run_records,
            "patch_failure_message": patch_failure_message,
            "patch_summary_rows": patch_summary_rows,
            "patch_summary_table": patch_summary_table,
            "patch_lock_state": patch_lock_state,
            "patch_node_rebooted": patch_node_rebooted,
            "pdbs_worse": pdbs_worse,
        }
