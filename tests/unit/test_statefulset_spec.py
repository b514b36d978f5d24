"""Unit tests of the statefulset module's pure logic: input checks, manifests, immutable fields."""

from __future__ import annotations

from decimal import Decimal

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_spec as spec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.modules.statefulset import argument_spec


def params(**over):
    """Module params as AnsibleModule hands them over (defaults filled in)."""
    base = option_defaults(argument_spec())
    base.update({"name": "cassandra", "namespace": "db", "image": "cassandra:5.0"})
    base.update(over)
    return base


def fails(field, **over):
    with pytest.raises(InvalidInput) as info:
        spec.validate(params(**over))
        spec.build_statefulset(params(**over))
    assert info.value.field == field, info.value.msg
    return info.value.msg


# -- validation -------------------------------------------------------------------
def test_valid_input_passes():
    spec.validate(params(ports=[{"name": "cql", "container_port": 9042, "protocol": "TCP"}],
                         volume_claim_templates=[{"name": "data", "size": "10Gi", "storage_class": "standard",
                                                  "access_modes": ["ReadWriteOnce"], "mount_path": "/d"}]))


@pytest.mark.parametrize("name", ["Cassandra", "-db", "db-", "db_1", "a" * 53, "", None])
def test_bad_name(name):
    assert "DNS-1123" in fails("name", name=name)


def test_bad_namespace():
    assert "DNS-1123" in fails("namespace", namespace="Db")


@pytest.mark.parametrize("port", ["cql_native", "a-very-long-portname", "9042", "-cql", "c--ql", "CQL"])
def test_bad_port_name(port):
    msg = fails("ports[0].name", ports=[{"name": port, "container_port": 1, "protocol": "TCP"}])
    assert "IANA_SVC_NAME" in msg


def test_port_number_range_and_duplicates():
    fails("ports[0].container_port", ports=[{"name": "cql", "container_port": 70000, "protocol": "TCP"}])
    fails("ports[1].name", ports=[{"name": "cql", "container_port": 1, "protocol": "TCP"},
                                  {"name": "cql", "container_port": 2, "protocol": "TCP"}])


def test_replicas_and_partition_conflicts():
    assert "0 or more" in fails("replicas", replicas=-1)
    msg = fails("update_strategy.partition", update_strategy={"type": "OnDelete", "partition": 1})
    assert "OnDelete" in msg
    fails("update_strategy.partition", update_strategy={"type": "RollingUpdate", "partition": -1})


def test_image_required_without_definition():
    assert "definition" in fails("image", image=None)


def test_claim_template_checks():
    tmpl = {"name": "data", "size": "10Gi", "storage_class": None, "access_modes": ["ReadWriteOnce"],
            "mount_path": None}
    fails("volume_claim_templates[0].size", volume_claim_templates=[dict(tmpl, size="ten gigs")])
    fails("volume_claim_templates[0].size", volume_claim_templates=[dict(tmpl, size="0")])
    fails("volume_claim_templates[0].name", volume_claim_templates=[dict(tmpl, name="Data")])
    fails("volume_claim_templates[0].storage_class", volume_claim_templates=[dict(tmpl, storage_class="Fast_SSD")])
    fails("volume_claim_templates[0].mount_path", volume_claim_templates=[dict(tmpl, mount_path="data")])
    fails("volume_claim_templates[1].name", volume_claim_templates=[tmpl, tmpl])


def test_label_values_must_be_strings():
    assert "quote it" in fails("pod_annotations.datastore.test/unready", pod_annotations={
        "datastore.test/unready": True})
    fails("labels.tier", labels={"tier": 1})
    fails("service.annotations.x", service={"name": None, "publish_not_ready_addresses": False, "labels": None,
                                            "annotations": {"x": None}})


def test_env_forms():
    fails("env.DEBUG", env={"DEBUG": True})
    fails("env[0]", env=[{"value": "x"}])
    fails("env_from[0]", env_from=[{"config_map": "a", "secret": "b", "prefix": None, "optional": None}])


def test_definition_checks():
    assert "kind" in fails("definition", definition={"kind": "Deployment"})
    assert "metadata.name" in fails("definition", definition={"metadata": {"name": "other"}})
    fails("definition", image=None, definition={"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}})


def test_cluster_domain():
    fails("cluster_domain", cluster_domain="cluster_local")


# -- manifests ------------------------------------------------------------------------
def test_build_generated_statefulset_and_service():
    p = params(replicas=3, ports=[{"name": "cql", "container_port": 9042, "protocol": "TCP"}],
               env={"HEAP": "512M", "PORT": 9042, "PASSWORD": {"secretKeyRef": {"name": "s", "key": "p"}}},
               volume_claim_templates=[{"name": "data", "size": "10Gi", "storage_class": "standard",
                                        "access_modes": ["ReadWriteOnce"], "mount_path": "/var/lib/cassandra"}],
               update_strategy={"type": "RollingUpdate", "partition": 2}, labels={"app": "cassandra"},
               pod_annotations={"a": "b"}, sidecars=[{"name": "exporter", "image": "exp",
                                                     "ports": [{"name": "metrics", "containerPort": 9500}]}],
               service={"name": "cassandra-peers", "publish_not_ready_addresses": True, "labels": {"x": "y"},
                        "annotations": None})
    sts = spec.build_statefulset(p)
    s = sts["spec"]
    assert s["serviceName"] == "cassandra-peers"
    assert s["replicas"] == 3
    assert s["podManagementPolicy"] == "OrderedReady"
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert s["selector"] == {"matchLabels": {spec.SELECTOR_LABEL: "cassandra"}}
    assert s["template"]["metadata"]["labels"] == {"app": "cassandra", spec.SELECTOR_LABEL: "cassandra"}
    assert s["template"]["metadata"]["annotations"] == {"a": "b"}
    main, sidecar = s["template"]["spec"]["containers"]
    assert main["env"] == [{"name": "HEAP", "value": "512M"}, {"name": "PORT", "value": "9042"},
                           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}}]
    assert main["volumeMounts"] == [{"name": "data", "mountPath": "/var/lib/cassandra"}]
    assert sidecar["name"] == "exporter"
    assert s["volumeClaimTemplates"][0]["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                                                    "resources": {"requests": {"storage": "10Gi"}}}
    svc = spec.build_service(p, sts)
    assert svc["metadata"]["name"] == "cassandra-peers"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {spec.SELECTOR_LABEL: "cassandra"}
    assert [p["name"] for p in svc["spec"]["ports"]] == ["cql", "metrics"]
    assert svc["metadata"]["labels"]["x"] == "y"


def test_on_delete_has_no_rolling_update():
    sts = spec.build_statefulset(params(update_strategy={"type": "OnDelete", "partition": None}))
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_definition_merges_over_generated():
    p = params(replicas=2, env={"A": "1"}, definition={
        "spec": {"replicas": 5, "template": {"spec": {
            "terminationGracePeriodSeconds": 60,
            "containers": [{"name": "cassandra", "env": [{"name": "B", "value": "2"}]},
                           {"name": "agent", "image": "agent:1"}]}}}})
    sts = spec.build_statefulset(p)
    assert sts["spec"]["replicas"] == 2  # the explicit option wins
    pod = sts["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert [c["name"] for c in pod["containers"]] == ["cassandra", "agent"]
    assert pod["containers"][0]["image"] == "cassandra:5.0"
    assert pod["containers"][0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_definition_instead_of_generated():
    definition = {"spec": {"replicas": 4, "serviceName": "peers",
                           "selector": {"matchLabels": {"app": "x"}},
                           "template": {"metadata": {"labels": {"app": "x"}},
                                        "spec": {"containers": [{"name": "x", "image": "x:1"}]}}}}
    sts = spec.build_statefulset(params(image=None, definition=definition))
    assert sts["spec"]["replicas"] == 4
    assert sts["spec"]["serviceName"] == "peers"
    assert sts["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["x"]
    svc = spec.build_service(params(image=None, definition=definition), sts)
    assert svc["metadata"]["name"] == "peers"
    assert svc["spec"]["selector"] == {"app": "x"}


def test_definition_selector_labels_the_pods():
    sts = spec.build_statefulset(params(definition={"spec": {"selector": {"matchLabels": {"app": "x"}}}}))
    assert sts["spec"]["template"]["metadata"]["labels"] == {"app": "x"}
    with pytest.raises(InvalidInput) as info:
        spec.build_statefulset(params(definition={"spec": {"selector": {"matchLabels": {"app": "x"}},
                                                           "template": {"metadata": {"labels": {"app": "y"}}}}}))
    assert info.value.field == "definition"


def test_deep_merge_rules():
    assert spec.deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert spec.deep_merge({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}
    merged = spec.deep_merge([{"name": "a", "x": 1}], [{"name": "a", "y": 2}, {"name": "b"}])
    assert merged == [{"name": "a", "x": 1, "y": 2}, {"name": "b"}]
    by_meta = spec.deep_merge([{"metadata": {"name": "d"}, "spec": {"s": 1}}], [{"metadata": {"name": "d"},
                                                                                 "spec": {"t": 2}}])
    assert by_meta == [{"metadata": {"name": "d"}, "spec": {"s": 1, "t": 2}}]


# -- quantities and immutable fields -------------------------------------------------------
@pytest.mark.parametrize("text,value", [("1Gi", 2 ** 30), ("1024Mi", 2 ** 30), ("1G", 10 ** 9), ("500m", Decimal("0.5")),
                                        ("1e3", 1000), ("1.5Gi", Decimal("1.5") * 2 ** 30), ("10", 10)])
def test_parse_quantity(text, value):
    assert spec.parse_quantity(text) == value


def _live(sts):
    """What the API server returns for ``sts``: defaults filled in, claim templates with status."""
    live = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": dict(sts["metadata"], uid="u"),
            "spec": dict(sts["spec"])}
    live["spec"]["volumeClaimTemplates"] = [
        dict(t, spec=dict(t["spec"], volumeMode="Filesystem"), status={"phase": "Pending"})
        for t in sts["spec"].get("volumeClaimTemplates") or []]
    return live


def _with_size(size, **over):
    return params(volume_claim_templates=[{"name": "data", "size": size, "storage_class": "standard",
                                           "access_modes": ["ReadWriteOnce"], "mount_path": None}], **over)


def test_no_immutable_change_against_defaulted_live_object():
    sts = spec.build_statefulset(_with_size("1Gi"))
    assert spec.immutable_changes(_live(sts), spec.build_statefulset(_with_size("1024Mi"))) == []
    assert spec.storage_growth(_live(sts), sts) == {}


def test_immutable_changes_are_named():
    live = _live(spec.build_statefulset(_with_size("1Gi")))
    changes = dict(spec.immutable_changes(live, spec.build_statefulset(_with_size("2Gi"))))
    assert changes == {"volumeClaimTemplates": "data: storage 1Gi -> 2Gi"}
    changes = dict(spec.immutable_changes(live, spec.build_statefulset(_with_size(
        "1Gi", pod_management_policy="Parallel", service={"name": "peers", "publish_not_ready_addresses": False,
                                                          "labels": None, "annotations": None}))))
    assert set(changes) == {"podManagementPolicy", "serviceName"}
    changes = dict(spec.immutable_changes(live, spec.build_statefulset(params())))
    assert changes == {"volumeClaimTemplates": "data removed"}


def test_mutable_changes_are_not_immutable():
    live = _live(spec.build_statefulset(_with_size("1Gi")))
    desired = spec.build_statefulset(_with_size("1Gi", replicas=5, image="cassandra:5.1",
                                                update_strategy={"type": "OnDelete", "partition": None}))
    assert spec.immutable_changes(live, desired) == []


def test_storage_growth():
    live = _live(spec.build_statefulset(_with_size("1Gi")))
    growth = spec.storage_growth(live, spec.build_statefulset(_with_size("2Gi")))
    assert growth == {"data": ("1Gi", "2Gi", 2 ** 30, 2 * 2 ** 30)}
