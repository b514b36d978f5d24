"""The info module against the local cluster: a read-only report that never writes or leaks."""

from __future__ import annotations

import base64
import uuid

from kubernetes import client
from testlib import unique

SECRET_VALUE = "not-for-output-" + uuid.uuid4().hex


def versions(kube, namespace):
    """resourceVersion of everything in the namespace the report reads."""
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    out = {}
    for kind, items in (("sts", apps.list_namespaced_stateful_set(namespace).items),
                        ("svc", core.list_namespaced_service(namespace).items),
                        ("secret", core.list_namespaced_secret(namespace).items),
                        ("pvc", core.list_namespaced_persistent_volume_claim(namespace).items),
                        ("pod", core.list_namespaced_pod(namespace).items)):
        for item in items:
            out["%s/%s" % (kind, item.metadata.name)] = item.metadata.resource_version
    return out


def test_report(run_module, kube, namespace):
    name = unique("ring")
    created = run_module("statefulset", {
        "name": name, "namespace": namespace, "image": "registry.example/datastore:1", "replicas": 2,
        "ports": [{"name": "cql", "container_port": 9042}],
        "volume_claim_templates": [{"name": "data", "size": "1Gi"}], "wait_timeout": 60})
    assert not created.get("failed"), created.get("msg")
    secret = unique("creds")
    client.CoreV1Api(kube).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret, annotations={
            "datastore.kubernetes/lease-id": "database/creds/app/abc123",
            "datastore.kubernetes/lease-expires": "2099-01-01T00:00:00Z"}),
        string_data={"password": SECRET_VALUE}))
    before = versions(kube, namespace)

    params = {"name": name, "namespace": namespace, "vault_secret": [secret, "missing-secret"]}
    for check in (False, True):
        result = run_module("info", params, check=check)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False and result["exists"] is True
        assert result["replicas"] == 2 and result["ready_replicas"] == 2
        domain = "%s.%s.svc.cluster.local" % (name, namespace)
        assert [(p["ordinal"], p["name"], p["ready"], p["fqdn"]) for p in result["pods"]] == [
            (n, "%s-%d" % (name, n), True, "%s-%d.%s" % (name, n, domain)) for n in range(2)]
        assert all(p["node"] and p["node"].startswith("kwok-node") for p in result["pods"])
        assert [(c["name"], c["phase"]) for c in result["pvcs"]] == [
            ("data-%s-%d" % (name, n), "Bound") for n in range(2)]
        hosts = sorted((e["hostname"], e["ready"]) for e in result["endpoints"])
        assert hosts == [("%s-%d" % (name, n), True) for n in range(2)]
        assert {e["addresses"][0] for e in result["endpoints"]} == {p["ip"] for p in result["pods"]}
        assert result["service_fqdn"] == domain
        assert result["srv_names"] == {"cql": "_cql._tcp." + domain}
        lease, missing = result["leases"]
        assert lease["lease_id"] == "database/creds/app/abc123" and lease["expired"] is False
        assert lease["lease_expires"] == "2099-01-01T00:00:00Z" and lease["expires_in_seconds"] > 0
        assert missing == {"secret": "missing-secret", "exists": False, "lease_id": None, "lease_expires": None,
                           "expires_in_seconds": None, "expired": None, "annotations": {}}
        output = result["_stdout"] + result["_stderr"]
        assert SECRET_VALUE not in output
        assert base64.b64encode(SECRET_VALUE.encode()).decode() not in output

    assert versions(kube, namespace) == before


def test_missing_statefulset(run_module, namespace):
    result = run_module("info", {"name": unique("none"), "namespace": namespace})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["exists"] is False
    assert result["pods"] == [] and result["pvcs"] == [] and result["endpoints"] == []
    assert result["statefulset"] == {} and result["service_fqdn"] is None


def test_bad_input_names_the_field(run_module, namespace):
    result = run_module("info", {"name": "Not_Valid", "namespace": namespace})
    assert result.get("failed") and result["msg"].startswith("name: ")
    result = run_module("info", {"name": "ok", "namespace": namespace, "vault_secret": ["Bad Secret"]})
    assert result.get("failed") and result["msg"].startswith("vault_secret[0]: ")
