"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and a strategic-merge subset."""

import copy


class PatchError(ValueError):
    pass


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _walk(doc, path):
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    tokens = [_unescape(t) for t in path[1:].split("/")]
    parent = doc
    for token in tokens[:-1]:
        parent = _child(parent, token, path)
    return parent, tokens[-1]


def _child(node, token, path):
    try:
        if isinstance(node, list):
            return node[int(token)]
        return node[token]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"path {path!r} does not exist") from None


def _get(doc, path):
    if path == "":
        return doc
    parent, last = _walk(doc, path)
    return _child(parent, last, path)


def _add(doc, path, value):
    parent, last = _walk(doc, path)
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent):
            raise PatchError(f"index {index} out of range in {path!r}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"cannot add at {path!r}")


def _remove(doc, path):
    parent, last = _walk(doc, path)
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"unable to remove nonexistent key {last!r} at {path!r}") from None


def apply_json_patch(doc, operations):
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _remove(doc, op["from"])
            _add(doc, path, value)
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"test operation failed at {path!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


def apply_merge_patch(doc, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# Lists merged by key in strategic merge patch (the patchMergeKey of the built-in types we serve).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name", "env": "name",
    "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name", "ownerReferences": "uid",
    "conditions": "type", "ports": "containerPort", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
}
# Primitive lists merged as sets.
MERGE_SETS = {"finalizers"}


def _merge_list_by_key(original, patch, key):
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if not isinstance(item, dict):
            continue
        directive = item.get("$patch")
        match_index = next((i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item.get(key)), None)
        if directive == "delete":
            if match_index is not None:
                result.pop(match_index)
            continue
        if directive == "replace" and match_index is not None:
            result[match_index] = {k: v for k, v in item.items() if k != "$patch"}
            continue
        if match_index is None:
            result.append(strategic_merge({}, item))
        else:
            result[match_index] = strategic_merge(result[match_index], item)
    return result


def strategic_merge(doc, patch):
    """Apply a strategic merge patch: maps merge, lists with a known merge key merge by key, other lists replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list_by_key(result[key], value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGE_SETS and isinstance(result.get(key), list):
            result[key] = result[key] + [v for v in value if v not in result[key]]
        elif isinstance(value, list):
            result[key] = [strategic_merge({}, v) if isinstance(v, dict) else copy.deepcopy(v) for v in value
                           if not (isinstance(v, dict) and v.get("$patch") == "delete")]
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def apply_patch(doc, content_type, patch):
    content_type = (content_type or "").split(";")[0].strip()
    if content_type == "application/json-patch+json":
        return apply_json_patch(doc, patch)
    if content_type == "application/merge-patch+json":
        return apply_merge_patch(doc, patch)
    if content_type == "application/strategic-merge-patch+json":
        return strategic_merge(doc, patch)
    if content_type == "application/apply-patch+yaml":
        raise PatchError("server-side apply is not supported by the sandbox; use client-side apply")
    raise PatchError(f"unsupported patch content type {content_type!r}")
