"""The day-2 modules' work on an in-memory cluster: refusals and check mode write nothing."""

from __future__ import annotations

import pytest
from testlib import option_defaults
from testlib.fake_kube import FakeKube

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.modules import rolling_update, scale_down


class Cluster(FakeKube):
    def patch(self, *args, **kwargs):
        self.calls.append(("patch",) + args)
        raise AssertionError("nothing may be written here")


def cluster(pods=(("web-0", "r1", True), ("web-1", "r1", True), ("web-2", "r1", True))):
    kube = Cluster()
    kube.apply({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "db"},
                "spec": {"replicas": len(pods), "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
                         "volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
                "status": {"observedGeneration": 1, "updateRevision": "r1"}})
    store = kube.store[("StatefulSet", "db", "web")]
    store["metadata"]["generation"] = 1
    store["status"] = {"observedGeneration": 1, "updateRevision": "r1"}
    for name, rev, ready in pods:
        kube.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "db", "labels": {"app": "web", plan.REVISION_LABEL: rev}}})
        kube.store[("Pod", "db", name)]["status"] = {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    kube.calls.clear()
    return kube


def params(module, **given):
    out = option_defaults(module.argument_spec())
    out.update({"name": "web", "namespace": "db", "engine": "none"})
    out.update(given)
    return out


def test_check_mode_plans_a_restart_and_writes_nothing():
    kube = cluster()
    result = _day2.run_rolling_update(Task(params(rolling_update, image="app:2"), check_mode=True, diff=True), kube)
    assert result["changed"] is True
    assert result["plan"]["pods"] == ["web-2", "web-1", "web-0"] and result["plan"]["stuck"] == []
    assert result["diff"] == {"before": {"image": "app:1"}, "after": {"image": "app:2"}}
    assert kube.writes() == [] and not [c for c in kube.calls if c[0] == "patch"]


def test_nothing_to_do_is_no_change():
    kube = cluster()
    result = _day2.run_rolling_update(Task(params(rolling_update, image="app:1")), kube)
    assert result["changed"] is False and result["plan"]["pods"] == []
    assert kube.writes() == []


def test_a_stuck_pod_is_refused_before_anything_is_written():
    kube = cluster(pods=(("web-0", "r1", True), ("web-1", "r1", False)))
    with pytest.raises(InvalidInput) as err:
        _day2.run_rolling_update(Task(params(rolling_update, image="app:2")), kube)
    assert err.value.field == "delete_stuck_pods" and "web-1" in err.value.msg
    assert kube.writes() == []


@pytest.mark.parametrize("given, field", [
    ({"resources": {"limits": {"memory": "much"}}}, "resources.limits.memory"),
    ({"container": "nope"}, "container"),
    ({"config_maps": ["missing"]}, "config_maps"),
    ({"max_lag_bytes": -1}, "max_lag_bytes"),
    ({"gate_timeout": 0}, "gate_timeout"),
])
def test_bad_input_names_the_field_and_writes_nothing(given, field):
    kube = cluster()
    with pytest.raises(InvalidInput) as err:
        _day2.run_rolling_update(Task(params(rolling_update, **given)), kube)
    assert err.value.field == field
    assert kube.writes() == []


def test_scale_down_to_zero_is_refused_for_postgres_before_anything_is_written():
    kube = cluster(pods=())
    with pytest.raises(InvalidInput) as err:
        _day2.run_scale_down(Task(params(scale_down, replicas=0, engine="postgres")), kube)
    assert err.value.msg.startswith("replicas: 0 would remove the PostgreSQL primary web-0")
    with pytest.raises(InvalidInput, match="replicas: 5 is more than the 0"):
        _day2.run_scale_down(Task(params(scale_down, replicas=5, engine="postgres")), kube)
    assert kube.writes() == []


def test_scale_down_check_mode_plans_pods_and_claims():
    kube = cluster()
    kube.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data-web-2", "namespace": "db"}})
    kube.calls.clear()
    result = _day2.run_scale_down(Task(params(scale_down, replicas=2, delete_pvcs=True), check_mode=True), kube)
    assert result["changed"] is True
    assert result["plan"]["remove"] == ["web-2"] and result["plan"]["claims"] == ["data-web-2"]
    assert kube.writes() == []
