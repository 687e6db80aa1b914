# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What `tags` + `purge_tags` do to a resource's tags, as amazon.aws modules do it.

One rule for every module (clusters, add-ons, access entries, OIDC providers, node group
ASGs): tags given are set when their value differs; with purge, tags not given are removed,
except AWS's own `aws:` tags, which no one may delete. Pure functions, no AWS calls.
"""

# AWS reserves this prefix; tags under it cannot be set or removed by users.
AWS_RESERVED_PREFIX = "aws:"


def _tag_value(value):
    # A node group's ASG tag is (value, propagate_at_launch); every other tag value is a string.
    if isinstance(value, tuple):
        return value
    return "" if value is None else str(value)


def tag_changes(current, desired, purge=True):
    """(to_set, to_remove): {key: value} to create or update, sorted keys to delete.

    `current` and `desired` map keys to values; `desired` None means tags are not managed
    (nothing changes). Without purge, tags not in `desired` stay.
    """
    current = current or {}
    if desired is None:
        return {}, []
    to_set = {}
    for key, value in desired.items():
        wanted = _tag_value(value)
        if current.get(key) != wanted:
            to_set[key] = wanted
    to_remove = []
    if purge:
        to_remove = sorted(key for key in current if key not in desired and not key.startswith(AWS_RESERVED_PREFIX))
    return to_set, to_remove


def tags_after(current, to_set, to_remove):
    """The tags a resource has once `to_set` and `to_remove` are applied to `current`."""
    after = dict((key, value) for key, value in (current or {}).items() if key not in to_remove)
    after.update(to_set)
    return after
