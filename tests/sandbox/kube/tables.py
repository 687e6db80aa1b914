"""meta.k8s.io/v1 Table responses, which kubectl asks for when it prints `kubectl get`."""

import datetime


def _age(obj):
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int((datetime.datetime.now(datetime.timezone.utc)
                   - datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _node_status(node):
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _pod_ready(pod):
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


COLUMNS = {
    "Node": [("Status", _node_status),
             ("Roles", lambda o: "<none>"),
             ("Age", _age),
             ("Version", lambda o: ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""))],
    "Pod": [("Ready", _pod_ready),
            ("Status", lambda o: (o.get("status") or {}).get("phase", "")),
            ("Restarts", lambda o: 0),
            ("Age", _age)],
    "Deployment": [("Ready", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 0)}"),
                   ("Up-to-date", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
                   ("Available", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
                   ("Age", _age)],
    "DaemonSet": [("Desired", lambda o: (o.get("status") or {}).get("desiredNumberScheduled", 0)),
                  ("Current", lambda o: (o.get("status") or {}).get("currentNumberScheduled", 0)),
                  ("Ready", lambda o: (o.get("status") or {}).get("numberReady", 0)),
                  ("Age", _age)],
    "Lease": [("Holder", lambda o: (o.get("spec") or {}).get("holderIdentity", "")),
              ("Age", _age)],
}


def as_table(kind, items, resource_version, include_object="Metadata"):
    columns = [("Name", lambda o: o["metadata"]["name"])] + COLUMNS.get(kind, [("Age", _age)])
    definitions = [{"name": name, "type": "string" if name != "Restarts" else "integer", "format": "name" if name == "Name" else "",
                    "description": name, "priority": 0} for name, _ in columns]
    rows = []
    for obj in items:
        row = {"cells": [fn(obj) for _, fn in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(resource_version)},
            "columnDefinitions": definitions, "rows": rows}


def wants_table(accept):
    return "as=Table" in (accept or "")
