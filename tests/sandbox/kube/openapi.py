"""A minimal OpenAPI v3 discovery: enough for kubectl to know that the server validates fields
(`fieldValidation` on PATCH), so `kubectl apply` validates server-side instead of needing full
schemas. No component schemas are served: kubectl then computes strategic merge patches from
its compiled-in types, as it does for built-in kinds.
"""

import hashlib
import json

from .resources import BY_GROUP_VERSION


def _url_prefix(group_version):
    return f"api/{group_version}" if group_version == "v1" else f"apis/{group_version}"


def _hash(group_version):
    return hashlib.sha256(group_version.encode()).hexdigest()[:32].upper()


def openapi_v3_root():
    return {"paths": {_url_prefix(gv): {"serverRelativeURL": f"/openapi/v3/{_url_prefix(gv)}?hash={_hash(gv)}"}
                      for gv in BY_GROUP_VERSION}}


def openapi_v3_group_version(prefix):
    """The document for 'api/v1' or 'apis/<group>/<version>', or None."""
    for gv, types in BY_GROUP_VERSION.items():
        if _url_prefix(gv) != prefix:
            continue
        paths = {}
        params = [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for name in ("dryRun", "fieldManager", "fieldValidation", "force")]
        for rt in types.values():
            gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
            base = f"/{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"/{prefix}/{rt.plural}"
            ok = {"200": {"description": "OK"}}
            paths[base] = {"get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "list", "responses": ok},
                           "post": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post", "parameters": params,
                                    "responses": ok}}
            paths[f"{base}/{{name}}"] = {
                verb: {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": action, "parameters": params, "responses": ok}
                for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "sandbox"}, "paths": paths, "components": {}}
    return None


def etag(document):
    return '"' + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper() + '"'
