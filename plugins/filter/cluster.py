# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cluster facts for roles, decided where the modules decide them (module_utils/cluster.py)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfmanaged.eks.plugins.module_utils import cluster


def authentication_mode_includes(mode, source):
    try:
        return cluster.authentication_mode_includes(mode or cluster.DEFAULT_AUTHENTICATION_MODE, source)
    except cluster.ClusterConfigError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"authentication_mode_includes": authentication_mode_includes}
