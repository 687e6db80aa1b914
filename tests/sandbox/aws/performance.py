"""Speed fixes for moto at fleet scale (thousands of instances), same answers.

moto's ``TaggedEC2Resource.get_tags`` scans every tag of every EC2 resource with regular
expressions to find one resource's tags, so DescribeInstances is quadratic in the fleet size
(200 instances: ~3 s; 2,000: minutes). The resource's tags are one dict lookup away.

moto's response serializer works out, for every attribute of every object it serialises, the
candidate attribute names (alias providers, ``xform_name``), creating several objects each
time. The candidates depend only on the picker, the object's class, the key and the model
shape, so they are computed once per combination; the values are still read from each object
in the same order, so responses are unchanged.

moto renders XML (EC2 and query protocols) through ``xmltodict.unparse``, one SAX event per
element; ``fast_unparse`` writes the same bytes directly (tests compare both on real
responses).
"""

from __future__ import annotations

_installed = False


def cache_available_regions() -> None:
    """moto calls ``boto3.Session().get_available_regions(...)`` ~50 times while importing,
    each time from a new session that parses botocore's endpoints.json again (~2.5 s of the
    sandbox's start-up). The answer is static data: cache it per arguments."""
    import functools

    import boto3.session

    if getattr(boto3.session.Session.get_available_regions, "_sandbox_cached", False):
        return
    original = boto3.session.Session.get_available_regions
    shared = []  # one session whose loader keeps endpoints.json parsed

    @functools.lru_cache(maxsize=None)
    def cached(service_name, partition_name="aws", allow_non_regional=False):
        if not shared:
            shared.append(boto3.session.Session())
        return tuple(original(shared[0], service_name, partition_name, allow_non_regional))

    def get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
        return list(cached(service_name, partition_name, allow_non_regional))

    get_available_regions._sandbox_cached = True
    boto3.session.Session.get_available_regions = get_available_regions


def _get_tags(self) -> list[dict[str, str]]:
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    tags = self.ec2_backend.tags.get(resource_id)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in list(tags.items())]


_KEYS_CACHE: dict = {}
_TRANSFORM_CACHE: dict = {}


def _picker_call(self, context):
    from moto.core.serialize import MISSING, get_value

    obj = context.obj
    cache_key = (type(self), type(obj), context.key, context.shape)
    keys = _KEYS_CACHE.get(cache_key)
    if keys is None:
        keys = _KEYS_CACHE[cache_key] = tuple(self.get_possible_keys(context))
    value = None
    for possible_key in keys:
        found = get_value(obj, possible_key, MISSING)
        if found is not MISSING:
            value = found
            break
    if self.response_transformers:
        key_path = f"{context.key_path}.{context.key}"
        transform_key = (id(self.response_transformers), key_path)
        transform = _TRANSFORM_CACHE.get(transform_key, MISSING)
        if transform is MISSING:
            transform = next((t for path, t in self.response_transformers.items() if key_path.endswith(path)), None)
            if len(_TRANSFORM_CACHE) > 100_000:
                _TRANSFORM_CACHE.clear()
            _TRANSFORM_CACHE[transform_key] = transform
        if transform is not None:
            return transform(value)
    return value


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _emit(key: str, value, out: list, short_empty: bool) -> None:
    """xmltodict's element emission (no pretty printing, no namespaces, no comments), writing
    strings directly instead of through SAX events; byte-identical output."""
    from xml.sax.saxutils import escape, quoteattr

    if not hasattr(value, "__iter__") or isinstance(value, (str, bytes, bytearray, memoryview, dict)):
        value = [value]
    for item in value:
        if item is None:
            item = {}
        elif not isinstance(item, (dict, str)):
            item = _text(item)
        if isinstance(item, str):
            item = {"#text": item}
        cdata = None
        attrs = []
        children = []
        for child_key, child_value in item.items():
            if child_key == "#text":
                cdata = None if child_value is None else _text(child_value)
            elif isinstance(child_key, str) and child_key.startswith("@"):
                if child_key == "@xmlns" and isinstance(child_value, dict):
                    for prefix, uri in child_value.items():
                        attrs.append((f"xmlns:{prefix}" if prefix else "xmlns", "" if uri is None else _text(uri)))
                else:
                    attrs.append((child_key[1:], "" if child_value is None else _text(child_value)))
            elif not (isinstance(child_value, list) and not child_value):
                children.append((child_key, child_value))
        start = "<" + key + "".join(f" {name}={quoteattr(text)}" for name, text in attrs)
        inner: list = []
        for child_key, child_value in children:
            _emit(child_key, child_value, inner, short_empty)
        if cdata:
            inner.append(escape(cdata))
        if not inner and short_empty:
            out.append(start + "/>")
        else:
            out.append(start + ">")
            out.extend(inner)
            out.append(f"</{key}>")


def fast_unparse(input_dict, output=None, encoding="utf-8", full_document=True, short_empty_elements=False, **kwargs):
    """``xmltodict.unparse`` for the calls moto's serializers make; anything else (pretty
    printing, namespaces, comments, an output stream) goes to xmltodict itself."""
    import xmltodict

    if output is not None or kwargs.get("pretty") or set(kwargs) - {"pretty"} or encoding != "utf-8" or not isinstance(input_dict, dict) \
            or any(not isinstance(k, str) or k.startswith("#") for k in input_dict):
        return xmltodict.unparse(input_dict, output=output, encoding=encoding, full_document=full_document,
                                 short_empty_elements=short_empty_elements, **kwargs)
    if full_document and len(input_dict) != 1:
        return xmltodict.unparse(input_dict, full_document=full_document, short_empty_elements=short_empty_elements, **kwargs)
    out = ['<?xml version="1.0" encoding="utf-8"?>\n'] if full_document else []
    for key, value in input_dict.items():
        _emit(key, value, out, short_empty_elements)
    return "".join(out)


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.core.serialize import AttributePicker
    from moto.ec2.models.core import TaggedEC2Resource

    TaggedEC2Resource.get_tags = _get_tags
    AttributePicker.__call__ = _picker_call
    import types

    import moto.core.serialize as serialize
    import xmltodict

    serialize.xmltodict = types.SimpleNamespace(unparse=fast_unparse, parse=xmltodict.parse)
    _installed = True
