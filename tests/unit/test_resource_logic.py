"""Unit tests of the resource logic: parsing, checks before any write, order, check mode, results."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _resource as res
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, WaitFailed, WaitTimeout
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import MASK

from testlib.fake_kube import FakeKube

MULTI = """
---
apiVersion: v1
kind: Namespace
metadata:
  name: db
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: conf
  namespace: db
data:
  a: "1"
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: db
stringData:
  password: s3cr3t-value
"""

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Widget", "plural": "widgets"}, "versions": [{"name": "v1"}]},
}


def params(**kw):
    base = {"state": "present", "namespace": None, "force_conflicts": False, "wait": False, "wait_timeout": 30,
            "concurrency": 8, "propagation_policy": "Background", "definition": None, "src": None}
    base.update(kw)
    return base


def cm(name, namespace=None, **data):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def test_load_yaml_text_skips_empty_documents():
    items = res.load_items(MULTI)
    assert [i.label for i in items] == ["definition document 0", "definition document 1", "definition document 2"]
    assert [i.obj["kind"] for i in items] == ["Namespace", "ConfigMap", "Secret"]


def test_load_dict_list_and_kind_list():
    assert [i.label for i in res.load_items({"kind": "ConfigMap"})] == ["definition"]
    items = res.load_items([cm("a"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
                            {"apiVersion": "v1", "kind": "List", "items": [cm("c"), cm("d")]}])
    assert [i.label for i in items] == ["definition[0]", "definition[1] document 0", "definition[2].items[0]",
                                        "definition[2].items[1]"]


def test_load_src(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(MULTI)
    assert [i.label for i in res.load_items(src=str(path))][0] == "src document 0"
    with pytest.raises(InvalidInput, match="^src: cannot read"):
        res.load_items(src=str(tmp_path / "missing.yaml"))


def test_bad_yaml_names_the_line():
    with pytest.raises(InvalidInput, match="definition: is not valid YAML at line 2"):
        res.load_items("a: b\n  c: d: e\n")


@pytest.mark.parametrize("doc, message", [
    ("- just\n- a list\n", r"definition document 0: each manifest must be a mapping"),
    ("apiVersion: v1\nmetadata: {name: x}\n", r"definition document 0: manifest has no kind"),
    ("kind: ConfigMap\nmetadata: {name: x}\n", r"definition document 0: manifest has no apiVersion"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
     r"definition document 0: ConfigMap manifest has no metadata.name"),
    ("apiVersion: v1\nkind: Gadget\nmetadata: {name: x}\n", r"definition document 0.kind: Gadget is not a kind"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", r"definition document 0: ConfigMap x is namespaced"),
])
def test_bad_input_fails_before_any_write(doc, message):
    kube = FakeKube()
    definition = [cm("good", "ns"), doc]
    with pytest.raises(InvalidInput, match=message.replace("definition document 0", r"definition\[1\] document 0")):
        res.run(Task(params(definition=definition)), kube)
    assert kube.writes() == [] and kube.store == {}


def test_duplicate_objects_are_rejected():
    with pytest.raises(InvalidInput, match=r"definition\[1\]: ConfigMap ns/a is also defined by definition\[0\]"):
        res.run(Task(params(definition=[cm("a"), cm("a")], namespace="ns")), FakeKube())


def test_namespace_defaulting_and_cluster_scoped():
    kube = FakeKube()
    out = res.run(Task(params(definition=[cm("a"), cm("b", "other"),
                                          {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": "n1", "namespace": "ns"}}], namespace="ns")), kube)
    assert [(o["namespace"], o["name"]) for o in out["objects"]] == [("ns", "a"), ("other", "b"), (None, "n1")]
    assert ("Namespace", "", "n1") in kube.store


def test_apply_idempotent_counts_and_no_secret_data():
    kube = FakeKube()
    first = res.run(Task(params(definition=MULTI), diff=True), kube)
    assert first["changed"] and first["counts"] == {"created": 3, "changed": 0, "unchanged": 0, "deleted": 0}
    text = json.dumps(first)
    assert "s3cr3t-value" not in text
    assert set(first["objects"][2]) == {"apiVersion", "kind", "namespace", "name", "changed", "created",
                                        "resourceVersion", "uid"}
    second = res.run(Task(params(definition=MULTI), diff=True), kube)
    assert not second["changed"] and second["counts"]["unchanged"] == 3 and second["diff"] == []
    assert [o["resourceVersion"] for o in second["objects"]] == [o["resourceVersion"] for o in first["objects"]]
    third = res.run(Task(params(definition=MULTI.replace('"1"', '"2"')), diff=True), kube)
    assert third["counts"] == {"created": 0, "changed": 1, "unchanged": 2, "deleted": 0}
    assert third["diff"][0]["after_header"] == "ConfigMap db/conf"


def test_barriers_keep_order():
    kube = FakeKube()
    definition = [cm("a", "db"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db"}}] + \
        [cm("c%d" % i, "db") for i in range(20)]
    res.run(Task(params(definition=definition)), kube)
    applies = [c for c in kube.calls if c[0] == "apply"]
    assert applies[0][3] == "a" and applies[1][1] == "Namespace"
    assert len(applies) == 22


def test_check_mode_into_new_namespace_writes_nothing():
    kube = FakeKube()
    out = res.run(Task(params(definition=MULTI), check_mode=True, diff=True), kube)
    assert out["changed"] and out["counts"]["created"] == 3
    assert kube.store == {} and kube.writes() == []
    # Only the Namespace went to the server as a dry run; what lives in it cannot.
    assert [c for c in kube.calls if c[0] == "apply"] == [("apply", "Namespace", None, "db", True)]
    assert "s3cr3t-value" not in json.dumps(out)


def test_crd_kinds_are_deferred_until_established(monkeypatch):
    kube = FakeKube()
    waited = []

    def fake_wait_ready(client, obj, timeout):
        waited.append(obj["kind"])
        # The CRD is established: its kind is now served.
        client.kinds[("example.com/v1", "Widget")] = ("widgets", True)
        return obj

    monkeypatch.setattr(res, "wait_ready", fake_wait_ready)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    out = res.run(Task(params(definition=[CRD, widget], namespace="ns")), kube)
    assert waited == ["CustomResourceDefinition"]
    assert out["objects"][1]["namespace"] == "ns" and ("Widget", "ns", "w") in kube.store


def test_waits_run_concurrently(monkeypatch):
    running = []
    peak = []
    lock = threading.Lock()

    def slow_wait(client, obj, timeout):
        with lock:
            running.append(1)
            peak.append(len(running))
        time.sleep(0.2)
        with lock:
            running.pop()
        return obj

    monkeypatch.setattr(res, "wait_ready", slow_wait)
    pvcs = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p%d" % i}, "spec": {}}
            for i in range(6)]
    start = time.monotonic()
    res.run(Task(params(definition=pvcs + [cm("x")], namespace="ns", wait=True, concurrency=4)), FakeKube())
    assert max(peak) == 4 and time.monotonic() - start < 1.0


def test_wait_failures_are_reported_together(monkeypatch):
    def failing(client, obj, timeout):
        name = obj["metadata"]["name"]
        raise WaitTimeout("%s not ready" % name, not_ready=["pod %s-0: Ready=False" % name])

    monkeypatch.setattr(res, "wait_ready", failing)
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n}, "spec": {}} for n in ("a", "b")]
    with pytest.raises(WaitTimeout) as err:
        res.run(Task(params(definition=pods, namespace="ns", wait=True)), FakeKube())
    assert "2 objects failed: a not ready; b not ready" in err.value.msg
    assert err.value.details["not_ready"] == ["pod a-0: Ready=False", "pod b-0: Ready=False"]


def test_absent_deletes_in_reverse_with_barriers_last(monkeypatch):
    kube = FakeKube()
    res.run(Task(params(definition=MULTI)), kube)
    gone = []
    monkeypatch.setattr(res, "wait_deleted", lambda client, av, kind, ns, name, timeout: gone.append(name))
    preview = res.run(Task(params(definition=MULTI, state="absent"), check_mode=True), kube)
    assert preview["counts"]["deleted"] == 3 and len(kube.store) == 3
    out = res.run(Task(params(definition=MULTI, state="absent", wait=True, concurrency=1,
                              propagation_policy="Foreground"), diff=True), kube)
    deletes = [c for c in kube.calls if c[0] == "delete"]
    assert [c[3] for c in deletes] == ["creds", "conf", "db"]
    assert {c[4] for c in deletes} == {"Foreground"}
    assert sorted(gone) == ["conf", "creds", "db"] and kube.store == {}
    assert out["counts"]["deleted"] == 3 and "s3cr3t-value" not in json.dumps(out)
    again = res.run(Task(params(definition=MULTI, state="absent")), kube)
    assert not again["changed"] and again["counts"]["unchanged"] == 3


def test_masked_definition():
    masked = res.masked_definition(MULTI)
    assert "s3cr3t-value" not in json.dumps(masked)
    assert masked[2]["stringData"] == {"password": MASK}
    plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    assert res.masked_definition(plain) == plain
    assert res.masked_definition([cm("a")]) == [cm("a")]
    assert "<not shown" in res.masked_definition("a: [unclosed\nsecret: x")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dmFsdWU="}}
    assert res.masked_definition({"kind": "List", "items": [secret]})["items"][0]["data"] == {"k": MASK}
    assert secret["data"] == {"k": "dmFsdWU="}


def test_wait_fails_fast_on_an_object_being_deleted():
    kube = FakeKube()
    res.run(Task(params(definition=MULTI)), kube)
    kube.store[("Namespace", "", "db")]["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    with pytest.raises(WaitFailed, match="Namespace db is being deleted"):
        res.run(Task(params(definition=MULTI, wait=True)), kube)
