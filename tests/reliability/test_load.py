"""Load: parallel namespaces from one playbook, a 100-replica StatefulSet, 500 objects in one task.

No conflicts (every host and task succeeds, a re-run changes nothing) and no lost
objects (everything asked for is counted on the cluster afterwards).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client as k8s

from testlib.reliability import JSON_CALLBACK, ansible_playbook, record

PLAYBOOK = """
- name: One datastore per host, all at once
  hosts: all
  gather_facts: false
  tasks:
    - name: Namespace
      datastore.kubernetes.resource:
        definition: {apiVersion: v1, kind: Namespace, metadata: {name: "{{ load_namespace }}"}}
    - name: Configuration
      datastore.kubernetes.configmap:
        name: db-config
        namespace: "{{ load_namespace }}"
        from_literal: {replicas: "2", owner: "{{ inventory_hostname }}"}
        hash_annotation: true
    - name: Datastore
      datastore.kubernetes.statefulset:
        name: db
        namespace: "{{ load_namespace }}"
        image: busybox
        replicas: 2
        pod_management_policy: Parallel
        ports: [{name: db, container_port: 5432}]
        env_from: [{config_map: db-config}]
        volume_claim_templates: [{name: data, size: 1Gi, mount_path: /data}]
        wait_timeout: 180
"""
LOAD = {}


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    if LOAD:
        record("load", LOAD)


def delete_namespaces(kube, names):
    core = k8s.CoreV1Api(kube)
    for name in names:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except k8s.exceptions.ApiException:
            pass


def play_stats(proc):
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["stats"]


def test_ten_namespaces_in_parallel(localenv, kube, tmp_path):
    prefix = "load-" + uuid.uuid4().hex[:6]
    names = ["%s-%d" % (prefix, i) for i in range(10)]
    inventory = {"all": {"hosts": {"site%d" % i: {"ansible_connection": "local", "load_namespace": name,
                                                  "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
                                   for i, name in enumerate(names)}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "load.yml").write_text(PLAYBOOK)
    args = ["-i", str(tmp_path / "inventory.json"), "--forks", "10", str(tmp_path / "load.yml")]
    try:
        started = time.monotonic()
        first = play_stats(ansible_playbook(localenv, args, JSON_CALLBACK))
        seconds = round(time.monotonic() - started, 1)
        assert sorted(first) == sorted(inventory["all"]["hosts"])
        assert all(s["failures"] == 0 and s["unreachable"] == 0 and s["changed"] == 3 for s in first.values()), first
        second = play_stats(ansible_playbook(localenv, args, JSON_CALLBACK))
        assert all(s["changed"] == 0 and s["failures"] == 0 for s in second.values()), second

        apps, core = k8s.AppsV1Api(kube), k8s.CoreV1Api(kube)
        ready = sum(apps.read_namespaced_stateful_set("db", n).status.ready_replicas or 0 for n in names)
        configmaps = sum(1 for n in names if core.read_namespaced_config_map("db-config", n).data["owner"])
        assert ready == 20 and configmaps == 10, (ready, configmaps)
        LOAD.update(parallel_namespaces=len(names), parallel_forks=10, parallel_ready_pods=ready,
                    parallel_configmaps=configmaps, parallel_seconds=seconds, parallel_rerun_changed=0)
    finally:
        delete_namespaces(kube, names)


def test_hundred_replica_statefulset(run_module, kube, namespace):
    params = {"name": "wide", "namespace": namespace, "image": "busybox", "replicas": 100,
              "pod_management_policy": "Parallel", "ports": [{"name": "db", "container_port": 5432}],
              "volume_claim_templates": [{"name": "data", "size": "1Gi", "mount_path": "/data"}],
              "wait_timeout": 600}
    started = time.monotonic()
    result = run_module("statefulset", params)
    seconds = round(time.monotonic() - started, 1)
    assert not result.get("failed"), result.get("msg")
    core = k8s.CoreV1Api(kube)
    pods = core.list_namespaced_pod(namespace, label_selector="datastore.kubernetes/statefulset=wide").items
    ready = [p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    bound = [c for c in core.list_namespaced_persistent_volume_claim(namespace).items if c.status.phase == "Bound"]
    assert len(ready) == 100 and len(bound) == 100, (len(ready), len(bound))
    assert len(result["pods"]) == 100 and len(set(p["fqdn"] for p in result["pods"])) == 100
    again = run_module("statefulset", params)
    assert again["changed"] is False, again.get("msg")
    LOAD.update(statefulset_replicas=100, statefulset_pods_ready=len(ready), statefulset_pvcs_bound=len(bound),
                statefulset_seconds=seconds)
    run_module("statefulset", {"name": "wide", "namespace": namespace, "state": "absent", "delete_pvcs": True,
                               "wait": False})


def test_five_hundred_objects_in_one_task(run_module, kube, namespace):
    objects = []
    for i in range(250):
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-%03d" % i},
                        "data": {"index": str(i)}})
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc-%03d" % i},
                        "spec": {"clusterIP": "None", "selector": {"app": "x%d" % i},
                                 "ports": [{"name": "p", "port": 80}]}})
    params = {"namespace": namespace, "definition": objects}
    started = time.monotonic()
    result = run_module("resource", params)
    seconds = round(time.monotonic() - started, 1)
    assert not result.get("failed"), result.get("msg")
    assert result["counts"]["created"] == 500, result["counts"]
    core = k8s.CoreV1Api(kube)
    configmaps = [c for c in core.list_namespaced_config_map(namespace).items if c.metadata.name.startswith("cm-")]
    services = core.list_namespaced_service(namespace).items
    assert len(configmaps) == 250 and len(services) == 250, (len(configmaps), len(services))
    again = run_module("resource", params)
    assert again["changed"] is False and again["counts"]["unchanged"] == 500, again["counts"]
    LOAD.update(bulk_objects=500, bulk_counted=len(configmaps) + len(services), bulk_seconds=seconds,
                bulk_rerun_unchanged=again["counts"]["unchanged"])
