"""Unit tests of what the statefulset and info modules report: DNS names, seeds, pods, claims."""

from __future__ import annotations

from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_report as report


def sts(replicas=3, service="cassandra", start=None, update_revision="cassandra-new"):
    obj = {"metadata": {"name": "cassandra", "namespace": "db"},
           "spec": {"replicas": replicas, "serviceName": service,
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}}, {"metadata": {"name": "logs"}}]},
           "status": {"updateRevision": update_revision}}
    if start is not None:
        obj["spec"]["ordinals"] = {"start": start}
    return obj


def pod(name, ready=True, revision="cassandra-new", node="kwok-node-0", claims=None, index=None):
    labels = {"controller-revision-hash": revision}
    if index is not None:
        labels["apps.kubernetes.io/pod-index"] = str(index)
    volumes = [{"name": c, "persistentVolumeClaim": {"claimName": "%s-%s" % (c, name)}} for c in claims or []]
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "volumes": volumes + [{"name": "cfg", "configMap": {"name": "x"}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_dns_names():
    assert report.service_fqdn("cassandra", "db", "cluster.local") == "cassandra.db.svc.cluster.local"
    assert report.pod_fqdn("cassandra-0", "cassandra", "db", "k8s.example") == \
        "cassandra-0.cassandra.db.svc.k8s.example"
    ports = [{"name": "cql", "port": 9042, "protocol": "TCP"}, {"name": "gossip", "port": 7000, "protocol": "UDP"},
             {"port": 1}]
    assert report.srv_names(ports, "cassandra", "db", "cluster.local") == {
        "cql": "_cql._tcp.cassandra.db.svc.cluster.local",
        "gossip": "_gossip._udp.cassandra.db.svc.cluster.local"}


def test_seeds():
    assert report.seeds(sts(5), "cluster.local") == [
        "cassandra-%d.cassandra.db.svc.cluster.local" % n for n in range(3)]
    assert report.seeds(sts(2), "cluster.local", 5) == [
        "cassandra-0.cassandra.db.svc.cluster.local", "cassandra-1.cassandra.db.svc.cluster.local"]
    assert report.seeds(sts(3), "cluster.local", 1) == ["cassandra-0.cassandra.db.svc.cluster.local"]
    assert report.seeds(sts(0), "cluster.local") == []
    expected = ["cassandra-5.peers.db.svc.c.l", "cassandra-6.peers.db.svc.c.l"]
    assert report.seeds(sts(2, service="peers", start=5), "c.l") == expected


def test_pod_ordinal():
    assert report.pod_ordinal(pod("cassandra-12"), "cassandra") == 12
    assert report.pod_ordinal(pod("cassandra-12", index=12), "cassandra") == 12
    assert report.pod_ordinal(pod("cassandra-web-0"), "cassandra") is None
    assert report.pod_ordinal(pod("other-0"), "cassandra") is None


def test_pod_entries_sorted_with_claims_and_revision():
    pods = [pod("cassandra-10", claims=["data"]), pod("cassandra-2", ready=False, revision="cassandra-old"),
            pod("cassandra-x")]
    entries = report.pod_entries(pods, sts(), "cluster.local")
    assert [e["ordinal"] for e in entries] == [2, 10]
    two, ten = entries
    assert two["ready"] is False and two["updated"] is False
    assert two["pvcs"] == ["data-cassandra-2", "logs-cassandra-2"]  # from the templates: no claim volumes
    assert ten["pvcs"] == ["data-cassandra-10"]
    assert ten["fqdn"] == "cassandra-10.cassandra.db.svc.cluster.local"
    assert ten["node"] == "kwok-node-0" and ten["updated"] is True


def test_claims_of():
    pvcs = [{"metadata": {"name": n}} for n in
            ("data-cassandra-1", "data-cassandra-0", "data-cassandra-x", "data-cassandra-web-0", "logs-cassandra-3",
             "other-cassandra-0")]
    names = [p["metadata"]["name"] for p in report.claims_of(pvcs, "cassandra", ["data", "logs"])]
    assert names == ["data-cassandra-0", "data-cassandra-1", "logs-cassandra-3"]
