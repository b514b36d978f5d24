"""Unit tests for the shared pod diagnosis (plugins/module_utils/_status.py), on recorded API objects."""

from __future__ import annotations

from ansible_collections.datastore.kubernetes.plugins.module_utils import _status, _wait
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import KubeApiError

# Trimmed from pods and events of a 1.35 cluster (kube-scheduler's and kubelet's own words).
UNSCHEDULABLE = {
    "metadata": {"name": "db-3", "namespace": "apps", "uid": "p3",
                 "ownerReferences": [{"kind": "StatefulSet", "name": "db", "uid": "sts1"}]},
    "spec": {},
    "status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes "
                   "are available: 3 No preemption victims found for incoming pod."}]},
}
IMAGE_PULL = {
    "metadata": {"name": "web-1", "namespace": "apps", "uid": "p4"},
    "spec": {"nodeName": "node-a"},
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"},
                                                  {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
               "containerStatuses": [{"name": "web", "ready": False, "restartCount": 0, "state": {"waiting": {
                   "reason": "ImagePullBackOff",
                   "message": "Back-off pulling image \"registry.example/web:9.9\": ErrImagePull: not found"}}}]},
}
CRASH_LOOP = {
    "metadata": {"name": "web-2", "namespace": "apps", "uid": "p5"},
    "spec": {"nodeName": "node-b"},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
               "containerStatuses": [{
                   "name": "web", "ready": False, "restartCount": 4,
                   "state": {"waiting": {"reason": "CrashLoopBackOff",
                                         "message": "back-off 1m20s restarting failed container=web"}},
                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
}
PROBE = {
    "metadata": {"name": "web-3", "namespace": "apps", "uid": "p6"},
    "spec": {"nodeName": "node-a"},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False",
                                                   "message": "containers with unready status: [web]"}],
               "containerStatuses": [{"name": "web", "ready": False, "restartCount": 0,
                                      "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
}
READY = {"metadata": {"name": "web-0", "namespace": "apps", "uid": "p0"}, "spec": {"nodeName": "node-a"},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def event(pod, uid, reason, message, count=1, when="2026-01-01T00:00:01Z"):
    return {"involvedObject": {"kind": "Pod", "name": pod, "uid": uid}, "reason": reason, "message": message,
            "count": count, "type": "Warning", "lastTimestamp": when}


class Client:
    def __init__(self, objects=(), events=(), logs=None, nodes=None):
        self.objects = list(objects)
        self.events = list(events)
        self.logs = logs or {}
        self.nodes = nodes or {}
        self.calls = []

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", kind, label_selector, field_selector))
        if kind == "Event":
            return {"items": self.events}
        return {"items": [o for o in self.objects if o.get("kind", "Pod") == kind]}

    def get(self, api_version, kind, name, namespace=None):
        self.calls.append(("get", kind, name))
        if kind == "Node":
            return self.nodes.get(name)
        return next((o for o in self.objects if o.get("kind") == kind and o["metadata"]["name"] == name), None)

    def pod_log(self, namespace, name, container=None, tail_lines=None, previous=False):
        self.calls.append(("log", name, container, tail_lines, previous))
        return self.logs.get(name, "")


def test_each_kind_of_trouble_is_named():
    client = Client(
        events=[event("web-3", "p6", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                      count=7),
                event("web-3", "old-uid", "FailedMount", "a previous pod of the same name"),
                event("db-3", "p3", "FailedScheduling", "0/3 nodes are available: (already in the condition)")],
        logs={"web-2": "starting\n\nFATAL: config key 'port' missing\n"},
        nodes={"node-b": {"status": {"conditions": [{"type": "Ready", "status": "Unknown",
                                                     "reason": "NodeStatusUnknown"}]}}})
    lines = _status.diagnose_pods(client, [READY, PROBE, CRASH_LOOP, IMAGE_PULL, UNSCHEDULABLE])
    assert len(lines) == 4  # the ready pod is left out
    by_pod = {line.split(":", 1)[0]: line for line in lines}
    assert by_pod["pod db-3"] == (
        "pod db-3: Unschedulable: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")
    assert "container web waiting: ImagePullBackOff (Back-off pulling image" in by_pod["pod web-1"]
    assert ("container web waiting: CrashLoopBackOff (back-off 1m20s restarting failed container=web), "
            "restarted 4 times, last exit code 1 (Error)") in by_pod["pod web-2"]
    assert by_pod["pod web-2"].endswith("last log lines: starting | FATAL: config key 'port' missing; "
                                        "node node-b is not ready (Ready=Unknown: NodeStatusUnknown)")
    assert by_pod["pod web-3"] == ("pod web-3: container web running, not ready; Unhealthy: Readiness probe failed: "
                                   "HTTP probe failed with statuscode: 503 (x7)")
    # One events call for the namespace; the previous run's log of the crashing container only.
    assert [c for c in client.calls if c[0] == "log"] == [("log", "web-2", "web", 5, True)]
    assert len([c for c in client.calls if c[:2] == ("list", "Event")]) == 1


def test_ready_condition_message_when_nothing_else_is_known():
    pod = {"metadata": {"name": "x"}, "spec": {"nodeName": "n"},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False",
                                                          "message": "readiness probe failed"}]}}
    assert _status.pod_problems(pod) == "pod x: Ready=False: readiness probe failed"
    assert _status.pod_problems(READY) is None
    assert _status.pod_problems({"metadata": {"name": "y"}, "status": {"phase": "Pending"}}) == \
        "pod y: not scheduled yet"


def test_label_selector_with_expressions():
    assert _status.label_selector({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web", "db"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "owner", "operator": "Exists"}, {"key": "legacy", "operator": "DoesNotExist"}]}) == \
        "a=1,b=2,tier in (db,web),env notin (dev),owner,!legacy"


def test_pods_of_a_deployment_follow_owner_references():
    deployment = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "apps", "uid": "d1"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}}}
    mine = {"kind": "ReplicaSet", "metadata": {"name": "web-abc", "uid": "rs1",
                                               "ownerReferences": [{"kind": "Deployment", "uid": "d1"}]}}
    other = {"kind": "ReplicaSet", "metadata": {"name": "web-other", "uid": "rs9",
                                                "ownerReferences": [{"kind": "Deployment", "uid": "d9"}]}}

    def pod(name, owner):
        return {"kind": "Pod", "metadata": {"name": name, "uid": name, "ownerReferences": [{"uid": owner}]},
                "status": {"phase": "Pending"}}

    client = Client([deployment, mine, other, pod("web-abc-1", "rs1"), pod("web-other-1", "rs9")])
    assert [p["metadata"]["name"] for p in _status.pods_of(client, deployment)] == ["web-abc-1"]
    # From manifests (helm): the live object is read, then its pods; kinds without pods are skipped.
    lines = _status.diagnose_objects(client, [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-cm"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gone"}}], "apps")
    assert lines == ["pod web-abc-1: not scheduled yet"]


class BrokenClient(Client):
    def list(self, *args, **kwargs):
        raise KubeApiError("forbidden", status=403)


def test_diagnosis_is_best_effort():
    # No events to read: the Ready condition's message is all there is.
    assert _status.diagnose_pods(BrokenClient(), [PROBE]) == [
        "pod web-3: container web running, not ready; Ready=False: containers with unready status: [web]"]
    assert _status.describe_pods(BrokenClient(), "apps", "app=web") == []


def test_wait_ready_reports_pods_when_a_wait_fails():
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "apps", "uid": "sts1", "generation": 1},
           "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "db"}}},
           "status": {"observedGeneration": 1, "replicas": 4, "readyReplicas": 3}}

    class Timeout(Client):
        def watch(self, *args, **kwargs):
            return iter(())

        def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
            if kind == "StatefulSet":
                return {"items": [dict(sts)], "metadata": {"resourceVersion": "5"}}
            return super().list(api_version, kind, namespace, label_selector, field_selector)

    client = Timeout([dict(UNSCHEDULABLE, kind="Pod"), dict(READY, kind="Pod")])
    try:
        _wait.wait_ready(client, sts, 0.01)
    except _wait.WaitTimeout as exc:
        assert exc.details["not_ready"] == [_status.pod_problems(UNSCHEDULABLE)]
        assert exc.msg.startswith("StatefulSet apps/db: not ready after 0.01s; pod db-3: Unschedulable: 0/3 nodes")
    else:
        raise AssertionError("no timeout")


def test_log_of_the_current_run_when_the_node_keeps_no_previous_one():
    class NoPrevious(Client):
        def pod_log(self, namespace, name, container=None, tail_lines=None, previous=False):
            self.calls.append(("log", name, container, tail_lines, previous))
            return "" if previous else "current run\n"

    client = NoPrevious()
    [line] = _status.diagnose_pods(client, [CRASH_LOOP])
    assert line.endswith("last log lines: current run")
    assert [c[-1] for c in client.calls if c[0] == "log"] == [True, False]
