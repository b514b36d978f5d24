# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading status: conditions, and why pods are not ready.

When a wait ends without success, every module says the same things about the
pods that are not ready: the scheduler's reason for a pod without a node (node
affinity, anti-affinity, taints, too little CPU or memory, an unbound claim), a
container's waiting reason (image pulls, crash loops, with the last lines of the
crashed run's log), failing probes (the kubelet's ``Unhealthy`` events) and a node
that is not ready. ``diagnose_pods`` builds those lines; ``pods_of`` finds the pods
of a workload through its selector and owner references.
"""

from __future__ import annotations

__metaclass__ = type

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import KubeApiError

# Logs are read for at most this many pods; the other lines still say why.
LOG_PODS = 10
LOG_LINES = 5
# Warning events whose news the pod's own status already carries.
_EVENTS_IN_STATUS = ("FailedScheduling", "BackOff", "Scheduled", "Pulling", "Pulled", "Created", "Started")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")


def condition(obj, ctype):
    """The status condition of type ``ctype`` of an object, or ``None``."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def condition_true(obj, ctype):
    cond = condition(obj, ctype)
    return bool(cond) and cond.get("status") == "True"


def pod_is_ready(pod):
    return (pod.get("status") or {}).get("phase") == "Succeeded" or condition_true(pod, "Ready")


def label_selector(selector):
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) as the API's query string."""
    selector = selector or {}
    parts = ["%s=%s" % (k, v) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append("%s in (%s)" % (key, ",".join(values)))
        elif op == "NotIn":
            parts.append("%s notin (%s)" % (key, ",".join(values)))
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append("!" + key)
    return ",".join(parts)


def _oneline(text, limit=300):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _container_problem(cs, init):
    """Why one container keeps its pod from being ready, or ``None``."""
    state = cs.get("state") or {}
    name = cs.get("name")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    restarts = cs.get("restartCount") or 0
    if "waiting" in state:
        waiting = state["waiting"] or {}
        text = "container %s waiting: %s" % (name, waiting.get("reason") or "unknown reason")
        if waiting.get("message"):
            text += " (%s)" % _oneline(waiting["message"])
        if last or restarts:
            text += ", restarted %d times, last exit code %s%s" % (
                restarts, last.get("exitCode", "unknown"), (" (%s)" % last["reason"]) if last.get("reason") else "")
        return text
    if "terminated" in state:
        term = state["terminated"] or {}
        if init and term.get("exitCode") == 0:
            return None
        return "container %s terminated: %s (exit code %s)%s" % (
            name, term.get("reason") or "unknown reason", term.get("exitCode"),
            (": " + _oneline(term["message"])) if term.get("message") else "")
    if "running" in state and not cs.get("ready") and not init:
        return "container %s running, not ready%s" % (name, (", restarted %d times" % restarts) if restarts else "")
    return None


def _needs_log(pod):
    """The container whose log says why it fails, and whether that is the previous (crashed) run."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff" or (
                "waiting" in state and (cs.get("lastState") or {}).get("terminated")):
            return cs.get("name"), True
        if (state.get("terminated") or {}).get("exitCode") not in (None, 0):
            return cs.get("name"), False
    return None, False


def pod_problems(pod, events=(), log=()):
    """One line saying why a pod is not ready (``pod NAME: why``), or ``None`` when it is.

    ``events`` are the pod's Warning events (oldest first), ``log`` the last lines of
    the log of its failing container.
    """
    if pod_is_ready(pod):
        return None
    return "pod %s: %s" % ((pod.get("metadata") or {}).get("name"), pod_reasons(pod, events, log))


def pod_reasons(pod, events=(), log=()):
    """Why a pod is not ready, as one line of ``; ``-separated reasons."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    reasons = []
    if meta.get("deletionTimestamp"):
        reasons.append("terminating")
    scheduled = condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") != "True":
        reasons.append("%s: %s" % (scheduled.get("reason") or "not scheduled",
                                   _oneline(scheduled.get("message") or "no node chosen yet", 600)))
    elif not (pod.get("spec") or {}).get("nodeName") and status.get("phase", "Pending") == "Pending":
        reasons.append("not scheduled yet")
    for cs in status.get("initContainerStatuses") or []:
        line = _container_problem(cs, True)
        if line:
            reasons.append("init " + line)
    for cs in status.get("containerStatuses") or []:
        line = _container_problem(cs, False)
        if line:
            reasons.append(line)
    seen = set()
    for event in reversed(list(events)):
        reason = event.get("reason")
        if reason in _EVENTS_IN_STATUS or reason in seen or len(seen) >= 2:
            continue
        seen.add(reason)
        count = event.get("count") or (event.get("series") or {}).get("count") or 1
        reasons.append("%s: %s%s" % (reason, _oneline(event.get("message") or event.get("note")),
                                     (" (x%d)" % count) if count > 1 else ""))
    if status.get("phase") == "Failed" and status.get("reason"):
        reasons.append("pod failed: %s%s" % (status["reason"], (" (%s)" % _oneline(status["message"]))
                                             if status.get("message") else ""))
    ready = condition(pod, "Ready")
    if ready and ready.get("status") != "True" and not seen and all("running, not ready" in r for r in reasons):
        # Nothing better known (no probe event): the kubelet's own word on readiness.
        reasons.append("Ready=False: %s" % _oneline(ready.get("message") or ready.get("reason") or "no reason given"))
    if not reasons:
        reasons.append("phase %s" % status.get("phase", "Unknown"))
    if log:
        reasons.append("last log lines: %s" % " | ".join(_oneline(line, 200) for line in log))
    return "; ".join(reasons)


def node_problem(client, name):
    """Why a node cannot run ready pods (``None`` when it is Ready or cannot be read)."""
    try:
        node = client.get("v1", "Node", name)
    except KubeApiError:
        return None
    cond = condition(node or {}, "Ready")
    if node is None or cond is None or cond.get("status") == "True":
        return None
    return "node %s is not ready (Ready=%s%s)" % (name, cond.get("status"), (": " + cond["reason"])
                                                  if cond.get("reason") else "")


def _warning_events(client, namespace):
    """Warning events about pods in ``namespace``, by pod name, oldest first (best effort)."""
    try:
        items = client.list("v1", "Event", namespace,
                            field_selector="involvedObject.kind=Pod,type=Warning").get("items") or []
    except KubeApiError:
        return {}
    out = {}
    for event in sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime")
                        or (e.get("metadata") or {}).get("creationTimestamp") or ""):
        out.setdefault((event.get("involvedObject") or {}).get("name"), []).append(event)
    return out


def diagnose_pods(client, pods, log_lines=LOG_LINES):
    """One line per pod of ``pods`` that is not ready, saying why; ready pods are left out."""
    return ["pod %s: %s" % (name, why) for name, why in pod_diagnoses(client, pods, log_lines)]


def pod_diagnoses(client, pods, log_lines=LOG_LINES):
    """``(pod name, why)`` for each pod of ``pods`` that is not ready, by namespace and name.

    Reads, best effort, the namespace's Warning events (one call per namespace), the
    log of a crashing container (for the first ``LOG_PODS`` such pods) and the nodes
    of the pods (one call per node).
    """
    unready = sorted((p for p in pods if not pod_is_ready(p)),
                     key=lambda p: ((p.get("metadata") or {}).get("namespace") or "", p["metadata"]["name"]))
    events, nodes, out, logs_read = {}, {}, [], 0
    for pod in unready:
        meta = pod["metadata"]
        namespace = meta.get("namespace")
        if namespace not in events:
            events[namespace] = _warning_events(client, namespace)
        log = []
        container, previous = _needs_log(pod)
        if container and log_lines and logs_read < LOG_PODS:
            logs_read += 1
            text = client.pod_log(namespace, meta["name"], container=container, tail_lines=log_lines,
                                  previous=previous)
            if previous and not (text or "").strip():
                # No log of the run before (a node that keeps none): the current run's, if any.
                text = client.pod_log(namespace, meta["name"], container=container, tail_lines=log_lines)
            log = [line for line in (text or "").splitlines() if line.strip()][-log_lines:]
        # A StatefulSet's pod keeps its name across restarts: only this pod's own events count.
        mine = [e for e in events[namespace].get(meta["name"], ())
                if (e.get("involvedObject") or {}).get("uid") in (None, "", meta.get("uid"))]
        why = pod_reasons(pod, mine, log)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node not in nodes:
            nodes[node] = node_problem(client, node)
        out.append((meta["name"], why + ("; " + nodes[node] if node and nodes[node] else "")))
    return out


def describe_pods(client, namespace, selector):
    """``diagnose_pods`` for the pods a label selector string picks."""
    if not selector:
        return []
    try:
        pods = client.list("v1", "Pod", namespace, label_selector=selector).get("items", [])
    except KubeApiError:
        return []
    return diagnose_pods(client, pods)


def _owned_by(obj, uids):
    return any(ref.get("uid") in uids for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def pods_of(client, obj):
    """The pods of a workload (``WORKLOAD_KINDS``): by its selector, kept when its owner references lead to it.

    A Deployment's pods belong to its ReplicaSets. ``obj`` is the live object (its uid
    is what the pods' owner references name).
    """
    kind, meta = obj.get("kind"), obj.get("metadata") or {}
    namespace = meta.get("namespace")
    if kind == "Pod":
        return [obj]
    selector = label_selector((obj.get("spec") or {}).get("selector"))
    if kind == "Job" and not selector:
        selector = "batch.kubernetes.io/controller-uid=%s" % meta.get("uid")
    if not selector or kind not in WORKLOAD_KINDS:
        return []
    uids = {meta.get("uid")}
    if kind == "Deployment":
        replica_sets = client.list("apps/v1", "ReplicaSet", namespace, label_selector=selector).get("items") or []
        uids = {rs["metadata"]["uid"] for rs in replica_sets if _owned_by(rs, uids)}
    pods = client.list("v1", "Pod", namespace, label_selector=selector).get("items") or []
    return [p for p in pods if _owned_by(p, uids)]


def diagnose_objects(client, objects, default_namespace):
    """Lines for the pods of every workload in ``objects`` (manifests: kind, apiVersion, metadata.name)."""
    pods, seen = [], set()
    for doc in objects:
        kind = doc.get("kind")
        if kind not in WORKLOAD_KINDS:
            continue
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or default_namespace
        try:
            live = client.get(doc.get("apiVersion") or "v1", kind, meta.get("name"), namespace)
            if live is None:
                continue
            live.setdefault("kind", kind)
            found = pods_of(client, live)
        except KubeApiError:
            continue
        for pod in found:
            key = (namespace, pod["metadata"]["name"])
            if key not in seen:
                seen.add(key)
                pods.append(pod)
    return diagnose_pods(client, pods)
