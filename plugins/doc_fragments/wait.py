# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Options of modules that wait for a resource to settle.
    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait for the resource to reach its target state before returning.
      - Throttled polls are retried; on timeout the error says which state the resource was in.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait when O(wait=true).
    type: int
    default: 1200
"""
