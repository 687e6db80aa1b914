# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Misspelt keys of role inputs, named with the nearest valid key (module_utils/option_keys.py)."""

from ansible_collections.selfmanaged.eks.plugins.module_utils import option_keys


def unknown_keys(value, valid_keys, where):
    return option_keys.unknown_key_problems(value, valid_keys, where)


class FilterModule:
    def filters(self):
        return {"unknown_keys": unknown_keys}
