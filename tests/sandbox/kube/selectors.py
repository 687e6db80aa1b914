"""Label and field selectors, parsed like the API server does."""

import re


class SelectorError(ValueError):
    pass


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split_requirements(text):
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(text):
    """A list of (key, operator, values) requirements; operators: in, notin, exists, !exists."""
    requirements = []
    for part in _split_requirements(text or ""):
        match = _SET_RE.match(part)
        if match:
            values = [v.strip() for v in match.group(4).split(",") if v.strip()]
            requirements.append((match.group(2), match.group(3), values))
            continue
        match = _CMP_RE.match(part)
        if match:
            key, op, value = match.groups()
            requirements.append((key, "notin" if op == "!=" else "in", [value]))
            continue
        match = _EXISTS_RE.match(part)
        if match:
            requirements.append((match.group(2), "!exists" if match.group(1) else "exists", []))
            continue
        raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
    return requirements


def labels_match(requirements, labels):
    labels = labels or {}
    for key, op, values in requirements:
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and key in labels and labels[key] in values:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def label_selector_object_matches(selector, labels):
    """Match a metav1.LabelSelector object (matchLabels/matchExpressions). An empty selector matches everything."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


FIELD_PATHS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "status.phase": ("status", "phase"),
    "spec.unschedulable": ("spec", "unschedulable"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.kind": ("involvedObject", "kind"),
    "type": ("type",),
}


def parse_field_selector(text):
    requirements = []
    for part in _split_requirements(text or ""):
        match = _CMP_RE.match(part)
        if not match:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        field, op, value = match.groups()
        if field not in FIELD_PATHS:
            raise SelectorError(f'field label not supported: {field}')
        requirements.append((field, op != "!=", value))
    return requirements


def _field_value(obj, field):
    value = obj
    for key in FIELD_PATHS[field]:
        value = (value or {}).get(key) if isinstance(value, dict) else None
    if field == "spec.unschedulable":
        return "true" if value else "false"
    return "" if value is None else str(value)


def fields_match(requirements, obj):
    for field, equal, value in requirements:
        if (_field_value(obj, field) == value) != equal:
            return False
    return True
