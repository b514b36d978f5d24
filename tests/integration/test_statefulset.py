"""The statefulset module against the local cluster: what the API server and the cluster DNS hold."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from testlib import unique

IMAGE = "registry.example/datastore:1"


def params(namespace, name, **over):
    base = {
        "name": name,
        "namespace": namespace,
        "image": IMAGE,
        "replicas": 2,
        "ports": [{"name": "cql", "container_port": 9042}, {"name": "gossip", "container_port": 7000}],
        "volume_claim_templates": [{"name": "data", "size": "1Gi", "mount_path": "/data"}],
        "service": {"publish_not_ready_addresses": True},
        "wait_timeout": 60,
    }
    base.update(over)
    return base


def read(kube, kind, namespace, name):
    """The live object as a dict, or None."""
    try:
        if kind == "StatefulSet":
            obj = client.AppsV1Api(kube).read_namespaced_stateful_set(name, namespace)
        elif kind == "Service":
            obj = client.CoreV1Api(kube).read_namespaced_service(name, namespace)
        elif kind == "Pod":
            obj = client.CoreV1Api(kube).read_namespaced_pod(name, namespace)
        else:
            obj = client.CoreV1Api(kube).read_namespaced_persistent_volume_claim(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return kube.sanitize_for_serialization(obj)


def pvcs(kube, namespace):
    items = client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(namespace).items
    return {p.metadata.name: kube.sanitize_for_serialization(p) for p in items}


def image_of(pod):
    return pod["spec"]["containers"][0]["image"]


def rv(obj):
    return obj["metadata"]["resourceVersion"]


def assert_nothing_written(kube, namespace):
    assert client.AppsV1Api(kube).list_namespaced_stateful_set(namespace).items == []
    assert client.CoreV1Api(kube).list_namespaced_service(namespace).items == []


def assert_ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def test_lifecycle(run_module, kube, namespace):
    name = unique("db")
    p = params(namespace, name)

    # check mode on create: the server validates, nothing is stored
    result = assert_ok(run_module("statefulset", p, check=True, diff=True))
    assert result["changed"] and result["statefulset"]["spec"]["serviceName"] == name
    assert read(kube, "StatefulSet", namespace, name) is None and read(kube, "Service", namespace, name) is None

    result = assert_ok(run_module("statefulset", p))
    assert result["changed"]
    sts, svc = read(kube, "StatefulSet", namespace, name), read(kube, "Service", namespace, name)
    assert sts["spec"]["replicas"] == 2 and sts["spec"]["serviceName"] == name
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["status"]["readyReplicas"] == 2
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"cql": 9042, "gossip": 7000}
    domain = "%s.%s.svc.cluster.local" % (name, namespace)
    assert [(e["name"], e["ordinal"], e["fqdn"], e["ready"]) for e in result["pods"]] == [
        ("%s-%d" % (name, n), n, "%s-%d.%s" % (name, n, domain), True) for n in range(2)]
    assert all(e["node"] and e["pvcs"] == ["data-%s" % e["name"]] for e in result["pods"])
    assert result["service_fqdn"] == domain
    assert result["srv_names"] == {"cql": "_cql._tcp." + domain, "gossip": "_gossip._tcp." + domain}
    assert result["seeds"] == ["%s-0.%s" % (name, domain), "%s-1.%s" % (name, domain)]
    claims = pvcs(kube, namespace)
    assert sorted(claims) == ["data-%s-0" % name, "data-%s-1" % name]
    assert all(c["status"]["phase"] == "Bound" for c in claims.values())

    # OrderedReady: ordinal 0 was Ready before ordinal 1 was created
    pod0, pod1 = read(kube, "Pod", namespace, name + "-0"), read(kube, "Pod", namespace, name + "-1")
    ready0 = [c for c in pod0["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready0["status"] == "True"
    assert ready0["lastTransitionTime"] <= pod1["metadata"]["creationTimestamp"]

    # a second identical run changes nothing
    result = assert_ok(run_module("statefulset", p, diff=True))
    assert result["changed"] is False
    assert rv(read(kube, "StatefulSet", namespace, name)) == rv(sts)
    assert rv(read(kube, "Service", namespace, name)) == rv(svc)

    # a change rolls out and the wait covers it
    changed = dict(p, image=IMAGE + "-2", replicas=3)
    result = assert_ok(run_module("statefulset", changed, diff=True))
    assert result["changed"] and not result["recreated"] and result["outdated_pods"] == []
    sts = read(kube, "StatefulSet", namespace, name)
    assert sts["spec"]["replicas"] == 3 and sts["status"]["updatedReplicas"] == 3
    assert all(image_of(read(kube, "Pod", namespace, "%s-%d" % (name, n))) == IMAGE + "-2" for n in range(3))
    before_after = result["diff"][0]
    assert before_after["before"]["spec"]["replicas"] == 2 and before_after["after"]["spec"]["replicas"] == 3

    # check mode on a change: reported, not written
    result = assert_ok(run_module("statefulset", dict(changed, image=IMAGE + "-3"), check=True, diff=True))
    assert result["changed"]
    assert result["diff"][0]["after"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE + "-3"
    live = read(kube, "StatefulSet", namespace, name)
    assert rv(live) == rv(sts) and live["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE + "-2"

    # absent: StatefulSet and Service go, PVCs stay
    result = assert_ok(run_module("statefulset", {"name": name, "namespace": namespace, "state": "absent"}))
    assert result["changed"] and sorted(result["kept_pvcs"]) == ["data-%s-%d" % (name, n) for n in range(3)]
    assert read(kube, "StatefulSet", namespace, name) is None and read(kube, "Service", namespace, name) is None
    assert sorted(pvcs(kube, namespace)) == ["data-%s-%d" % (name, n) for n in range(3)]
    result = assert_ok(run_module("statefulset", {"name": name, "namespace": namespace, "state": "absent"}))
    assert result["changed"] is False


def test_dns_names_resolve(run_module, localenv, namespace):
    import dns.resolver

    name = unique("dns")
    result = assert_ok(run_module("statefulset", params(namespace, name)))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [localenv["DNS_SERVER"]]
    resolver.port = int(localenv["DNS_PORT"])

    def answers(qname, rtype, expected):
        """The records once they match ``expected``: the DNS server follows the API with a short lag."""
        deadline = time.monotonic() + 20
        while True:
            try:
                got = sorted(r.to_text() if rtype == "A" else r.target.to_text().rstrip(".")
                             for r in resolver.resolve(qname, rtype))
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                got = []
            if got == sorted(expected) or time.monotonic() > deadline:
                return got
            time.sleep(0.5)

    for entry in result["pods"]:
        assert answers(entry["fqdn"], "A", [entry["ip"]]) == [entry["ip"]]
    ips = sorted(e["ip"] for e in result["pods"])
    assert answers(result["service_fqdn"], "A", ips) == ips
    fqdns = sorted(e["fqdn"] for e in result["pods"])
    for port, srv in result["srv_names"].items():
        assert answers(srv, "SRV", fqdns) == fqdns, port
    assert result["seeds"] == fqdns


def test_partitioned_then_on_delete_rollout(run_module, kube, kubectl, namespace):
    name = unique("part")
    p = params(namespace, name, replicas=3, volume_claim_templates=[])
    assert_ok(run_module("statefulset", p))

    result = assert_ok(run_module("statefulset", dict(p, image=IMAGE + "-2", update_strategy={"partition": 2})))
    assert result["changed"] and result["partition"] == 2
    assert result["outdated_pods"] == [name + "-0", name + "-1"]
    images = [image_of(read(kube, "Pod", namespace, "%s-%d" % (name, n))) for n in range(3)]
    assert images == [IMAGE, IMAGE, IMAGE + "-2"]
    assert all(e["ready"] for e in result["pods"])

    on_delete = dict(p, image=IMAGE + "-3", update_strategy={"type": "OnDelete"})
    result = assert_ok(run_module("statefulset", on_delete))
    assert result["changed"]
    assert read(kube, "StatefulSet", namespace, name)["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert result["outdated_pods"] == ["%s-%d" % (name, n) for n in range(3)]
    assert any("OnDelete" in str(w) for w in result.get("warnings", []))

    kubectl("-n", namespace, "delete", "pod", name + "-0", "--wait=true")
    result = assert_ok(run_module("statefulset", on_delete))
    assert result["changed"] is False
    assert result["outdated_pods"] == [name + "-1", name + "-2"]
    assert image_of(read(kube, "Pod", namespace, name + "-0")) == IMAGE + "-3"
    assert all(e["ready"] for e in result["pods"])


def test_immutable_change_fails_then_recreate_keeps_pvcs(run_module, kube, namespace):
    name = unique("imm")
    p = params(namespace, name)
    assert_ok(run_module("statefulset", p))
    sts = read(kube, "StatefulSet", namespace, name)
    claims = {n: c["metadata"]["uid"] for n, c in pvcs(kube, namespace).items()}
    pods = {n: read(kube, "Pod", namespace, "%s-%d" % (name, n))["metadata"]["uid"] for n in range(2)}

    grown = dict(p, volume_claim_templates=[{"name": "data", "size": "2Gi", "mount_path": "/data"}])
    result = run_module("statefulset", grown)
    assert result.get("failed")
    assert result["msg"].startswith("StatefulSet %s/%s: volumeClaimTemplates cannot change in place" % (namespace, name))
    assert "on_immutable=recreate" in result["msg"]
    assert rv(read(kube, "StatefulSet", namespace, name)) == rv(sts)

    result = run_module("statefulset", dict(p, pod_management_policy="Parallel"))
    assert result.get("failed") and "podManagementPolicy cannot change in place" in result["msg"]

    result = assert_ok(run_module("statefulset", dict(grown, on_immutable="recreate"), check=True))
    assert result["changed"] and result["recreated"]
    assert read(kube, "StatefulSet", namespace, name)["metadata"]["uid"] == sts["metadata"]["uid"]

    result = assert_ok(run_module("statefulset", dict(grown, on_immutable="recreate")))
    assert result["changed"] and result["recreated"]
    assert sorted(result["expanded_pvcs"]) == sorted(claims)
    new = read(kube, "StatefulSet", namespace, name)
    assert new["metadata"]["uid"] != sts["metadata"]["uid"]
    assert new["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    live_claims = pvcs(kube, namespace)
    assert {n: c["metadata"]["uid"] for n, c in live_claims.items()} == claims
    assert all(c["spec"]["resources"]["requests"]["storage"] == "2Gi" for c in live_claims.values())
    for n, uid in pods.items():
        pod = read(kube, "Pod", namespace, "%s-%d" % (name, n))
        assert pod["metadata"]["uid"] == uid
        assert pod["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"]

    result = assert_ok(run_module("statefulset", dict(grown, on_immutable="recreate")))
    assert result["changed"] is False and result["recreated"] is False


def test_recreate_fails_before_writing_when_class_cannot_expand(run_module, kube, namespace):
    storage = client.StorageV1Api(kube)
    sc_name = unique("fixed")
    storage.create_storage_class(client.V1StorageClass(
        metadata=client.V1ObjectMeta(name=sc_name), provisioner="kubernetes.io/host-path",
        allow_volume_expansion=False))
    try:
        name = unique("fix")
        p = params(namespace, name, replicas=1,
                   volume_claim_templates=[{"name": "data", "size": "1Gi", "storage_class": sc_name}])
        assert_ok(run_module("statefulset", p))
        sts = read(kube, "StatefulSet", namespace, name)
        grown = dict(p, on_immutable="recreate",
                     volume_claim_templates=[{"name": "data", "size": "2Gi", "storage_class": sc_name}])
        result = run_module("statefulset", grown)
        assert result.get("failed")
        assert "does not allow volume expansion" in result["msg"] and sc_name in result["msg"]
        live = read(kube, "StatefulSet", namespace, name)
        assert live["metadata"]["uid"] == sts["metadata"]["uid"] and rv(live) == rv(sts)
        assert pvcs(kube, namespace)["data-%s-0" % name]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    finally:
        storage.delete_storage_class(sc_name)


def test_absent_with_delete_pvcs(run_module, kube, namespace):
    name = unique("gone")
    assert_ok(run_module("statefulset", params(namespace, name)))
    absent = {"name": name, "namespace": namespace, "state": "absent", "delete_pvcs": True, "wait_timeout": 60}
    result = assert_ok(run_module("statefulset", absent, check=True))
    assert result["changed"] and sorted(result["deleted_pvcs"]) == ["data-%s-0" % name, "data-%s-1" % name]
    assert read(kube, "StatefulSet", namespace, name) is not None and len(pvcs(kube, namespace)) == 2
    result = assert_ok(run_module("statefulset", absent))
    assert result["changed"]
    assert read(kube, "StatefulSet", namespace, name) is None and read(kube, "Service", namespace, name) is None
    assert pvcs(kube, namespace) == {}


@pytest.mark.parametrize("over,field", [
    ({"name": None}, "name"),
    ({"replicas": "many"}, "replicas"),
    ({"replicas": -1}, "replicas"),
    ({"name": "Cassandra"}, "name"),
    ({"namespace": "Bad_NS"}, "namespace"),
    ({"ports": [{"name": "cql-native-transport", "container_port": 9042}]}, "ports[0].name"),
    ({"update_strategy": {"type": "OnDelete", "partition": 1}}, "update_strategy.partition"),
    ({"image": None}, "image"),
    ({"volume_claim_templates": [{"name": "data", "size": "lots"}]}, "volume_claim_templates[0].size"),
    ({"pod_annotations": {"ready": True}}, "pod_annotations.ready"),
])
def test_bad_input_fails_and_writes_nothing(run_module, kube, namespace, over, field):
    p = params(namespace, "bad")
    p.update(over)
    p = {k: v for k, v in p.items() if v is not None}
    result = run_module("statefulset", p)
    assert result.get("failed")
    assert field in result["msg"]
    assert_nothing_written(kube, namespace)


def test_server_side_validation_fails_before_any_write(run_module, kube, namespace):
    # A probe without a handler passes the module's checks; the API server's dry run refuses it.
    result = run_module("statefulset", params(namespace, unique("probe"), readiness_probe={"periodSeconds": 5}))
    assert result.get("failed") and "readinessProbe" in result["msg"]
    assert_nothing_written(kube, namespace)


def test_wait_times_out_with_per_pod_message(run_module, kubectl, namespace):
    name = unique("slow")
    p = params(namespace, name, replicas=1, volume_claim_templates=[], wait=False,
               pod_annotations={"datastore.test/unready": "true"})
    assert_ok(run_module("statefulset", p))
    # The pod runs but never becomes ready; then a short wait must time out and say why, per pod.
    kubectl("-n", namespace, "wait", "--for=jsonpath={.status.phase}=Running", "pod/%s-0" % name, "--timeout=60s")
    result = run_module("statefulset", dict(p, wait=True, wait_timeout=3))
    assert result.get("failed")
    assert "StatefulSet %s/%s: not ready after 3s (ready 0/1" % (namespace, name) in result["msg"]
    assert "pod %s-0: " % name in result["msg"] and "Unhealthy: Readiness probe failed" in result["msg"]
    assert result["not_ready"] and result["not_ready"][0].startswith("pod %s-0" % name)


POD_OPTIONS = {
    "termination_grace_period": 45,
    "pre_stop": {"command": ["sh", "-c", "sleep 1"]},
    "anti_affinity": "required",
    "anti_affinity_topology_key": "topology.kubernetes.io/zone",
    "security_context": {"run_as_user": 999, "fs_group": 999},
    "node_selector": {"type": "kwok"},
    "tolerations": [{"key": "datastore.kubernetes/maintenance", "operator": "Exists", "effect": "NoSchedule"}],
    "enable_service_links": False,
    "automount_service_account_token": False,
}


def test_pod_options_reach_the_pods(run_module, kube, namespace):
    name = unique("pods")
    p = params(namespace, name, init_containers=[{"name": "init", "image": IMAGE}], **POD_OPTIONS)
    assert_ok(run_module("statefulset", p))
    sts = read(kube, "StatefulSet", namespace, name)
    pod_spec = sts["spec"]["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] == 45
    assert pod_spec["enableServiceLinks"] is False and pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["nodeSelector"] == {"type": "kwok"}
    assert pod_spec["tolerations"] == POD_OPTIONS["tolerations"]
    assert pod_spec["securityContext"] == {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999, "runAsNonRoot": True,
                                           "fsGroupChangePolicy": "OnRootMismatch",
                                           "seccompProfile": {"type": "RuntimeDefault"}}
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                  "readOnlyRootFilesystem": True}
    assert [c["securityContext"] for c in pod_spec["containers"] + pod_spec["initContainers"]] == [restricted] * 2
    assert pod_spec["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}}
    # The scheduler honoured the anti-affinity and the node selector: one pod per zone, kwok nodes only.
    nodes = {n.metadata.name: n.metadata.labels for n in client.CoreV1Api(kube).list_node().items}
    placed = [read(kube, "Pod", namespace, "%s-%d" % (name, i))["spec"]["nodeName"] for i in range(2)]
    assert [nodes[n]["type"] for n in placed] == ["kwok", "kwok"]
    assert len({nodes[n]["topology.kubernetes.io/zone"] for n in placed}) == 2

    # Again: nothing to do, nothing written.
    result = assert_ok(run_module("statefulset", p))
    assert not result["changed"] and rv(read(kube, "StatefulSet", namespace, name)) == rv(sts)

    # A new grace period in check mode: reported with its diff, not stored.
    result = assert_ok(run_module("statefulset", dict(p, termination_grace_period=90), check=True, diff=True))
    assert result["changed"] and "terminationGracePeriodSeconds" in str(result["diff"])
    assert rv(read(kube, "StatefulSet", namespace, name)) == rv(sts)

    # The same field in definition with another value: an error naming both, nothing written.
    conflict = dict(p, definition={"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 10}}}})
    result = run_module("statefulset", conflict)
    assert result.get("failed")
    assert "termination_grace_period" in result["msg"]
    assert "definition spec.template.spec.terminationGracePeriodSeconds" in result["msg"]
    assert rv(read(kube, "StatefulSet", namespace, name)) == rv(sts)


@pytest.mark.parametrize("over,field", [
    ({"pre_stop": {"sleep": 60}, "termination_grace_period": 30}, "pre_stop.sleep"),
    ({"tolerations": [{"key": "a", "operator": "In"}]}, "tolerations[0].operator"),
    ({"security_context": {"run_as_user": -5}}, "security_context.run_as_user"),
    ({"node_selector": {"type": 1}}, "node_selector.type"),
    ({"anti_affinity": "required", "anti_affinity_topology_key": "no spaces"}, "anti_affinity_topology_key"),
])
def test_bad_pod_option_fails_and_writes_nothing(run_module, kube, namespace, over, field):
    result = run_module("statefulset", params(namespace, "bad", **over))
    assert result.get("failed")
    assert field in result["msg"]
    assert_nothing_written(kube, namespace)
