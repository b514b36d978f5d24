"""Unit tests of the statefulset module's pre-write decisions (immutable fields, PVC expansion), with a fake client."""

from __future__ import annotations

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset as sts_mod
from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_spec as spec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import ImmutableField
from ansible_collections.datastore.kubernetes.plugins.modules.statefulset import argument_spec


class FakeClient:
    """Answers GET and LIST from a fixed set of objects and records every call."""

    def __init__(self, objects):
        self.objects = objects
        self.calls = []

    def get(self, api_version, kind, name, namespace=None):
        self.calls.append(("get", kind, name))
        return self.objects.get((kind, name))

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", kind))
        return {"items": [o for (k, _unused), o in sorted(self.objects.items()) if k == kind]}


class FakeModule:
    def __init__(self):
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def params(size="1Gi", **over):
    base = option_defaults(argument_spec())
    base.update({"name": "cassandra", "namespace": "db", "image": "cassandra:5.0", "replicas": 2,
                 "volume_claim_templates": [{"name": "data", "size": size, "storage_class": None,
                                             "access_modes": ["ReadWriteOnce"], "mount_path": None}]})
    base.update(over)
    return base


def built(p):
    s = spec.build_statefulset(p)
    return s, spec.build_service(p, s)


def pvc(name, size="1Gi", storage_class="standard"):
    return {"metadata": {"name": name}, "spec": {"storageClassName": storage_class,
                                                 "resources": {"requests": {"storage": size}}}}


def test_immutable_fail_names_field_and_remedy():
    live, _unused = built(params())
    desired, svc = built(params("2Gi"))
    with pytest.raises(ImmutableField) as exc:
        sts_mod._immutable(params("2Gi"), desired, svc, live, None)
    assert exc.value.msg == ("StatefulSet db/cassandra: volumeClaimTemplates cannot change in place "
                             "(data: storage 1Gi -> 2Gi); set on_immutable=recreate to recreate it keeping pods "
                             "and PVCs")
    assert exc.value.fields == ["volumeClaimTemplates"]


def test_immutable_recreate_plans_instead_of_failing():
    live, _unused = built(params())
    desired, svc = built(params("2Gi", on_immutable="recreate"))
    changes, svc_recreate = sts_mod._immutable(params("2Gi", on_immutable="recreate"), desired, svc, live, None)
    assert [c[0] for c in changes] == ["volumeClaimTemplates"] and svc_recreate is False


def test_non_headless_service_is_an_immutable_change():
    desired, svc = built(params())
    with pytest.raises(ImmutableField) as exc:
        sts_mod._immutable(params(), desired, svc, None, {"spec": {"clusterIP": "10.0.0.5"}})
    assert "clusterIP cannot change in place" in exc.value.msg


def test_expansion_plan_when_class_allows_it():
    live, _unused = built(params())
    desired, _unused = built(params("2Gi"))
    client = FakeClient({("PersistentVolumeClaim", "data-cassandra-0"): pvc("data-cassandra-0"),
                         ("PersistentVolumeClaim", "data-cassandra-1"): pvc("data-cassandra-1", "4Gi"),
                         ("PersistentVolumeClaim", "data-other-0"): pvc("data-other-0"),
                         ("StorageClass", "standard"): {"allowVolumeExpansion": True}})
    assert sts_mod._plan_expansion(client, FakeModule(), live, desired) == [("data-cassandra-0", "2Gi")]


def test_expansion_refused_before_writing_when_class_cannot_expand():
    live, _unused = built(params())
    desired, _unused = built(params("2Gi"))
    client = FakeClient({("PersistentVolumeClaim", "data-cassandra-0"): pvc("data-cassandra-0", storage_class="slow"),
                         ("StorageClass", "slow"): {"allowVolumeExpansion": False}})
    with pytest.raises(ImmutableField) as exc:
        sts_mod._plan_expansion(client, FakeModule(), live, desired)
    assert "StorageClass slow, which does not allow volume expansion" in exc.value.msg
    assert "nothing was changed" in exc.value.msg
    assert all(call[0] in ("get", "list") for call in client.calls)


def test_shrinking_template_only_warns():
    live, _unused = built(params("2Gi"))
    desired, _unused = built(params("1Gi"))
    module = FakeModule()
    client = FakeClient({("PersistentVolumeClaim", "data-cassandra-0"): pvc("data-cassandra-0", "2Gi")})
    assert sts_mod._plan_expansion(client, module, live, desired) == []
    assert "cannot shrink" in module.warnings[0]


def test_strategy_switch_to_on_delete_needs_reset():
    live, _unused = built(params())
    live["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    desired, _unused = built(params(update_strategy={"type": "OnDelete", "partition": None}))
    assert sts_mod._needs_strategy_reset(live, desired)
    assert not sts_mod._needs_strategy_reset(desired, desired)
    probe = sts_mod._with_live_strategy(desired, live)
    assert probe["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert desired["spec"]["updateStrategy"] == {"type": "OnDelete"}
