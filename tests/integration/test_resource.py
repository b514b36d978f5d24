"""The resource module against the local cluster: what the API server holds after each step."""

from __future__ import annotations

import uuid

import pytest

SECRET_VALUE = "pw-" + uuid.uuid4().hex


def get(kubectl, kind, name, namespace=None, *extra):
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else []) + list(extra)
    proc = kubectl(*args, check=False)
    return proc if isinstance(proc, dict) else None


def multi_doc(ns, mode="primary"):
    return """
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    team: data
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: {mode}
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: {ns}
stringData:
  password: {secret}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: loader
  namespace: {ns}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: db
  namespace: {ns}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: db
""".format(ns=ns, mode=mode, secret=SECRET_VALUE)


@pytest.fixture
def fresh_namespace_name(kubectl):
    name = "r-" + uuid.uuid4().hex[:10]
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def versions(result, kinds=("ConfigMap", "Secret", "ServiceAccount", "Namespace", "Service")):
    """resourceVersions of the objects no controller writes to after us (their RV is ours alone)."""
    return [(o["kind"], o["name"], o["resourceVersion"]) for o in result["objects"] if o["kind"] in kinds]


def our_apply(kubectl, obj):
    """This collection's managedFields entry: its time moves only when the module really wrote."""
    live = get(kubectl, obj["kind"].lower(), obj["name"], obj["namespace"], "--show-managed-fields")
    return [(m["time"], m["fieldsV1"]) for m in live["metadata"].get("managedFields", [])
            if m["manager"] == "datastore.kubernetes"]


def test_multi_document_lifecycle(run_module, kubectl, fresh_namespace_name):
    ns = fresh_namespace_name
    preview = run_module("resource", {"definition": multi_doc(ns)}, check=True, diff=True)
    assert not preview.get("failed"), preview
    assert preview["counts"] == {"created": 5, "changed": 0, "unchanged": 0, "deleted": 0}
    assert get(kubectl, "namespace", ns) is None

    created = run_module("resource", {"definition": multi_doc(ns)}, diff=True)
    assert not created.get("failed"), created
    assert created["counts"]["created"] == 5
    assert [o["kind"] for o in created["objects"]] == ["Namespace", "ConfigMap", "Secret", "ServiceAccount",
                                                       "PodDisruptionBudget"]
    assert created["objects"][0]["namespace"] is None
    assert get(kubectl, "namespace", ns)["metadata"]["labels"]["team"] == "data"
    assert get(kubectl, "configmap", "settings", ns)["data"] == {"mode": "primary"}
    assert get(kubectl, "secret", "creds", ns)["data"]["password"]
    assert get(kubectl, "pdb", "db", ns)["spec"]["maxUnavailable"] == 1
    assert SECRET_VALUE not in created["_stdout"]
    for obj in created["objects"]:
        live = get(kubectl, obj["kind"].lower(), obj["name"], obj["namespace"])
        assert live["metadata"]["uid"] == obj["uid"]

    stamps = [our_apply(kubectl, o) for o in created["objects"]]
    again = run_module("resource", {"definition": multi_doc(ns)}, diff=True)
    assert not again["changed"] and again["counts"]["unchanged"] == 5 and again["diff"] == []
    assert versions(again) == versions(created) and len(versions(created)) == 4
    assert [our_apply(kubectl, o) for o in again["objects"]] == stamps
    assert get(kubectl, "configmap", "settings", ns)["metadata"]["resourceVersion"] == \
        created["objects"][1]["resourceVersion"]

    rv = get(kubectl, "configmap", "settings", ns)["metadata"]["resourceVersion"]
    preview = run_module("resource", {"definition": multi_doc(ns, mode="replica")}, check=True, diff=True)
    assert preview["changed"] and preview["counts"] == {"created": 0, "changed": 1, "unchanged": 4, "deleted": 0}
    assert preview["diff"][0]["after"]["data"] == {"mode": "replica"}
    live = get(kubectl, "configmap", "settings", ns)
    assert live["data"] == {"mode": "primary"} and live["metadata"]["resourceVersion"] == rv

    changed = run_module("resource", {"definition": multi_doc(ns, mode="replica")})
    assert changed["counts"]["changed"] == 1
    assert get(kubectl, "configmap", "settings", ns)["data"] == {"mode": "replica"}

    gone = run_module("resource", {"definition": multi_doc(ns, mode="replica"), "state": "absent", "wait": True,
                                   "wait_timeout": 120})
    assert not gone.get("failed"), gone
    assert gone["counts"]["deleted"] == 5
    assert get(kubectl, "namespace", ns) is None
    assert not run_module("resource", {"definition": multi_doc(ns), "state": "absent"})["changed"]


def deployment(name, replicas=2, image="registry.example/exporter:1.0"):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
    }


def test_deployment_and_pvc_waits(run_module, kubectl, namespace):
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                    "resources": {"requests": {"storage": "1Gi"}}}}
    out = run_module("resource", {"namespace": namespace, "definition": [deployment("exporter"), pvc],
                                  "wait": True, "wait_timeout": 120})
    assert not out.get("failed"), out
    live = get(kubectl, "deployment", "exporter", namespace)
    assert live["status"]["availableReplicas"] == 2 and live["status"]["updatedReplicas"] == 2
    assert get(kubectl, "pvc", "data", namespace)["status"]["phase"] == "Bound"

    stamps = [our_apply(kubectl, o) for o in out["objects"]]
    live_versions = [get(kubectl, o["kind"].lower(), o["name"], namespace)["metadata"]["resourceVersion"]
                     for o in out["objects"]]
    rerun = run_module("resource", {"namespace": namespace, "definition": [deployment("exporter"), pvc],
                                    "wait": True})
    assert not rerun["changed"] and rerun["counts"]["unchanged"] == 2
    assert [o["resourceVersion"] for o in rerun["objects"]] == live_versions
    assert [our_apply(kubectl, o) for o in rerun["objects"]] == stamps

    newer = deployment("exporter", replicas=3, image="registry.example/exporter:1.1")
    rollout = run_module("resource", {"namespace": namespace, "wait": True, "wait_timeout": 120, "definition": newer})
    assert rollout["changed"], rollout
    live = get(kubectl, "deployment", "exporter", namespace)
    assert live["status"]["availableReplicas"] == 3 and live["status"]["updatedReplicas"] == 3


def test_job_wait_and_unready_timeout(run_module, kubectl, namespace):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "load"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "load", "image": "registry.example/load:1"}]}}}}
    out = run_module("resource", {"namespace": namespace, "definition": job, "wait_timeout": 120})
    assert not out.get("failed"), out
    assert get(kubectl, "job", "load", namespace)["status"]["succeeded"] == 1

    stuck = deployment("stuck", replicas=1)
    stuck["spec"]["template"]["metadata"]["annotations"] = {"datastore.test/unready": "true"}
    failed = run_module("resource", {"namespace": namespace, "definition": stuck, "wait_timeout": 5})
    assert failed.get("failed") and "Deployment %s/stuck: not ready after 5s" % namespace in failed["msg"]
    # kwok's stage reports the failing readiness probe as a kubelet does, with an Unhealthy event.
    assert "container main running, not ready; Unhealthy: Readiness probe failed" in failed["msg"], failed["msg"]
    assert len(failed["not_ready"]) == 1 and failed["not_ready"][0].startswith("pod stuck-")


def test_failed_wait_says_why_each_pod_is_not_ready(run_module, namespace):
    crash = deployment("crash", replicas=1)
    crash["spec"]["template"]["metadata"]["annotations"] = {
        "datastore.test/waiting-reason": "CrashLoopBackOff",
        "datastore.test/waiting-message": "back-off 40s restarting failed container=main"}
    pull = deployment("pull", replicas=1)
    pull["spec"]["template"]["metadata"]["annotations"] = {
        "datastore.test/waiting-reason": "ImagePullBackOff",
        "datastore.test/waiting-message": 'Back-off pulling image "registry.example/exporter:1.0"'}
    # No node has this much memory: the scheduler says so.
    big = deployment("big", replicas=1)
    big["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"memory": "100Ti"}}
    failed = run_module("resource", {"namespace": namespace, "definition": [crash, pull, big], "wait_timeout": 5})
    assert failed.get("failed") is True
    lines = {line.split("-", 1)[0]: line for line in failed["not_ready"]}
    assert sorted(lines) == ["pod big", "pod crash", "pod pull"], failed["not_ready"]
    assert ("container main waiting: CrashLoopBackOff (back-off 40s restarting failed container=main), "
            "restarted 3 times, last exit code 1 (Error)") in lines["pod crash"]
    # The last lines of the crashed run's log, read from the node.
    assert "last log lines: " in lines["pod crash"] and "localenv: done" in lines["pod crash"]
    assert 'container main waiting: ImagePullBackOff (Back-off pulling image "registry.example' in lines["pod pull"]
    assert "Unschedulable: 0/" in lines["pod big"] and "Insufficient memory" in lines["pod big"]
    assert all(line in failed["msg"] for line in failed["not_ready"])


def test_many_configmaps_in_one_task(run_module, kubectl, namespace):
    definition = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%03d" % i},
                   "data": {"index": str(i)}} for i in range(100)]
    out = run_module("resource", {"namespace": namespace, "definition": definition})
    assert not out.get("failed"), out
    assert out["counts"]["created"] == 100
    listing = kubectl("get", "configmap", "-n", namespace, "-o", "json")
    names = {item["metadata"]["name"]: item for item in listing["items"]}
    assert all(names["cm-%03d" % i]["data"] == {"index": str(i)} for i in range(100))

    again = run_module("resource", {"namespace": namespace, "definition": definition})
    assert not again["changed"] and again["counts"]["unchanged"] == 100
    assert versions(again) == versions(out)


def test_absent_with_wait_deletes(run_module, kubectl, namespace):
    objs = [deployment("web", replicas=1),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}]
    assert not run_module("resource", {"namespace": namespace, "definition": objs, "wait_timeout": 120}).get("failed")
    assert kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json")["items"]

    preview = run_module("resource", {"namespace": namespace, "definition": objs, "state": "absent"}, check=True)
    assert preview["counts"]["deleted"] == 2 and get(kubectl, "deployment", "web", namespace) is not None

    gone = run_module("resource", {"namespace": namespace, "definition": objs, "state": "absent", "wait": True,
                                   "propagation_policy": "Foreground", "wait_timeout": 120})
    assert not gone.get("failed"), gone
    assert gone["changed"] and [o["deleted"] for o in gone["objects"]] == [True, True]
    assert get(kubectl, "deployment", "web", namespace) is None and get(kubectl, "service", "web", namespace) is None
    # Foreground: the Deployment was gone only after its ReplicaSet and pods.
    assert kubectl("get", "replicasets", "-n", namespace, "-o", "json")["items"] == []


@pytest.mark.parametrize("bad, message", [
    ("- not\n- a mapping\n", "definition document 1: each manifest must be a mapping"),
    ("apiVersion: v1\nmetadata:\n  name: x\n", "definition document 1: manifest has no kind"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
     "definition document 1: ConfigMap manifest has no metadata.name"),
    ("apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: x\n", "definition document 1.kind: Gizmo is not a kind of v1"),
    ("apiVersion: gadgets.example.com/v1\nkind: Gizmo\nmetadata:\n  name: x\n",
     "definition document 1.apiVersion: gadgets.example.com/v1 is not served"),
])
def test_bad_input_writes_nothing(run_module, kubectl, fresh_namespace_name, namespace, bad, message):
    good = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n  namespace: {cm_ns}\n---\n"
            ).format(ns=fresh_namespace_name, cm_ns=namespace)
    text = good.replace("---\napiVersion: v1\nkind: ConfigMap", "---\n" + bad + "---\napiVersion: v1\nkind: ConfigMap")
    out = run_module("resource", {"definition": text})
    assert out.get("failed") and message in out["msg"], out
    assert get(kubectl, "namespace", fresh_namespace_name) is None
    assert get(kubectl, "configmap", "first", namespace) is None


def test_crd_and_its_objects_in_one_input(run_module, kubectl, namespace):
    group = "t%s.example.com" % uuid.uuid4().hex[:8]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "backups." + group},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"kind": "Backup", "plural": "backups", "singular": "backup", "listKind": "BackupList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    backup = {"apiVersion": group + "/v1", "kind": "Backup", "metadata": {"name": "nightly"},
              "spec": {"schedule": "0 3 * * *"}}
    try:
        out = run_module("resource", {"namespace": namespace, "definition": [crd, backup]})
        assert not out.get("failed"), out
        assert out["objects"][1]["namespace"] == namespace
        live = get(kubectl, "backups." + group, "nightly", namespace)
        assert live["spec"] == {"schedule": "0 3 * * *"}
        assert not run_module("resource", {"namespace": namespace, "definition": [crd, backup]})["changed"]
    finally:
        kubectl("delete", "crd", "backups." + group, "--ignore-not-found", "--wait=false", check=False)


def test_secret_values_never_in_output(run_module, namespace):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "stringData": {"password": SECRET_VALUE}}
    for check in (True, False):
        out = run_module("resource", {"namespace": namespace, "definition": [secret]}, check=check, diff=True,
                         verbosity=4)
        assert SECRET_VALUE not in out["_stdout"] + out["_stderr"]
    changed = dict(secret, stringData={"password": SECRET_VALUE + "-2"})
    out = run_module("resource", {"namespace": namespace, "definition": [changed]}, diff=True, verbosity=4)
    assert out["changed"] and SECRET_VALUE not in out["_stdout"] + out["_stderr"]
    assert out["diff"][0]["after"]["data"]["password"] == "<masked, changed>"


def test_terminating_namespace_fails_fast(run_module, kubectl, fresh_namespace_name):
    ns = fresh_namespace_name
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": ns, "finalizers": ["datastore.test/hold"]}}
    definition = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, held]
    assert not run_module("resource", {"definition": definition}).get("failed")
    kubectl("delete", "namespace", ns, "--wait=false")
    try:
        out = run_module("resource", {"definition": definition[:1], "wait_timeout": 120}, timeout=60)
        assert out.get("failed"), out
        assert "Namespace %s is being deleted" % ns in out["msg"] and "run again" in out["msg"]
    finally:
        kubectl("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=False)
