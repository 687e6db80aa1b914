"""coordination.k8s.io/v1 Leases as the API server serves them: discovery, create, get, and the
resourceVersion compare-and-swap every lock built on a Lease relies on (a PUT with a stale
resourceVersion is refused with 409 Conflict and changes nothing)."""

import json
import os
import shutil
import subprocess

import kubernetes
import pytest

from tests.sandbox.clusters import create_cluster
from tests.sandbox.kube import scenarios

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_cluster(sandbox)


@pytest.fixture(scope="module")
def api(sandbox, cluster):
    return scenarios.kube_client(sandbox, cluster)


@pytest.fixture(scope="module")
def leases(api):
    return kubernetes.client.CoordinationV1Api(api)


def _lease(name, holder, annotations=None):
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30}}


def _error(call):
    with pytest.raises(kubernetes.client.ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def test_discovery_lists_leases_as_namespaced(api):
    groups = kubernetes.client.ApisApi(api).get_api_versions()
    assert "coordination.k8s.io/v1" in [v.group_version for g in groups.groups if g.name == "coordination.k8s.io" for v in g.versions]
    resources = kubernetes.client.CoordinationV1Api(api).get_api_resources().resources
    lease = next(r for r in resources if r.name == "leases")
    assert (lease.kind, lease.namespaced) == ("Lease", True)
    assert {"create", "get", "list", "update", "watch"} <= set(lease.verbs)


def test_create_get_and_stale_put_gets_409_conflict(leases):
    created = leases.create_namespaced_lease("kube-system", _lease("cas", "run-a", {"slots": "{}"}))
    assert created.metadata.resource_version
    read = leases.read_namespaced_lease("cas", "kube-system")
    assert (read.spec.holder_identity, read.metadata.annotations) == ("run-a", {"slots": "{}"})

    # run-b writes first with the version it read ...
    read.spec.holder_identity = "run-b"
    read.metadata.annotations = {"slots": '{"n1": "run-b"}'}
    written = leases.replace_namespaced_lease("cas", "kube-system", read)
    assert written.metadata.resource_version != created.metadata.resource_version

    # ... so run-a's write based on the older version is refused and changes nothing
    stale = created
    stale.spec.holder_identity = "run-a"
    stale.metadata.annotations = {"slots": '{"n1": "run-a"}'}
    code, body = _error(lambda: leases.replace_namespaced_lease("cas", "kube-system", stale))
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["message"].startswith('Operation cannot be fulfilled on leases.coordination.k8s.io "cas"')
    after = leases.read_namespaced_lease("cas", "kube-system")
    assert (after.spec.holder_identity, after.metadata.annotations) == ("run-b", {"slots": '{"n1": "run-b"}'})

    # re-read and retry: the write goes through
    after.spec.holder_identity = "run-a"
    assert leases.replace_namespaced_lease("cas", "kube-system", after).spec.holder_identity == "run-a"


def test_create_twice_is_409_already_exists_and_bad_duration_is_422(leases):
    leases.create_namespaced_lease("kube-system", _lease("once", "run-a"))
    code, body = _error(lambda: leases.create_namespaced_lease("kube-system", _lease("once", "run-b")))
    assert (code, body["reason"]) == (409, "AlreadyExists")
    bad = _lease("bad", "run-a")
    bad["spec"]["leaseDurationSeconds"] = 0
    code, body = _error(lambda: leases.create_namespaced_lease("kube-system", bad))
    assert (code, body["reason"]) == (422, "Invalid")
    assert "spec.leaseDurationSeconds" in body["message"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_kubectl_shows_the_holder(sandbox, cluster, leases):
    leases.create_namespaced_lease("kube-system", _lease("shown", "ops@ctl-1"))
    env = dict(os.environ, KUBECONFIG=sandbox.kube.kubeconfig_path(cluster["name"]))
    result = subprocess.run([KUBECTL, "get", "leases", "-n", "kube-system", "shown"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "HOLDER", "AGE"]
    assert row.split()[:2] == ["shown", "ops@ctl-1"]


def test_concurrent_write_fault_makes_the_next_put_conflict(sandbox, cluster, leases):
    leases.create_namespaced_lease("kube-system", _lease("raced", "run-a"))
    read = leases.read_namespaced_lease("raced", "kube-system")
    read.spec.holder_identity = "run-b"
    sandbox.inject_kube_faults(cluster["name"], codes=["concurrent-write"], operations=["PUT leases"], every=1)
    try:
        code, body = _error(lambda: leases.replace_namespaced_lease("raced", "kube-system", read))
    finally:
        sandbox.clear_kube_faults(cluster["name"])
    assert (code, body["reason"]) == (409, "Conflict")
    after = leases.read_namespaced_lease("raced", "kube-system")
    # the other client's write went through; the stale one did not
    assert after.spec.holder_identity == "run-a"
    assert after.metadata.annotations["sandbox.selfmanaged.eks/concurrent-writes"] == "1"
    after.spec.holder_identity = "run-b"
    assert leases.replace_namespaced_lease("raced", "kube-system", after).spec.holder_identity == "run-b"
