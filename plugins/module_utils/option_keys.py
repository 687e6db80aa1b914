# -*- coding: utf-8 -*-
# Copyright: selfmanaged.eks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Keys of user-given dicts that nothing reads: a misspelt key must be an error, not a silent default."""

import difflib


def nearest_key(key, valid_keys):
    """The valid key closest to `key` (difflib's ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(str(key), sorted(valid_keys), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_problems(value, valid_keys, where):
    """'<where>[i]: unknown key k; did you mean x?' for each key of a dict, or of each dict of a list, not in `valid_keys`.

    Items that are not dicts are reported too (the role or module expects dicts there).
    """
    valid = set(valid_keys)
    if isinstance(value, dict):
        items = [(where, value)]
    else:
        items = [("{0}[{1}]".format(where, index), item) for index, item in enumerate(value or [])]
    problems = []
    for place, item in items:
        if not isinstance(item, dict):
            problems.append("{0}: {1!r} is not a dict of settings".format(place, item))
            continue
        for key in sorted(item, key=str):
            if key in valid:
                continue
            nearest = nearest_key(key, valid)
            hint = "did you mean {0}?".format(nearest) if nearest else "valid keys are {0}".format(", ".join(sorted(valid)))
            problems.append("{0}: unknown key {1}; {2}".format(place, key, hint))
    return problems
