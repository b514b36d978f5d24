# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waits driven by the watch API.

A wait lists the object once, then follows a watch from that list's
``resourceVersion`` until a predicate holds or the deadline passes. A 410 Gone
re-lists; a dropped connection or an API server that is down is retried until
the deadline. On timeout the error lists, per pod, what is not ready and why.
"""

from __future__ import annotations

__metaclass__ = type

import time

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    KubeApiError,
    TransientError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._status import (
    condition,
    condition_true,
    diagnose_pods,
    pods_of,
)


def _observed(obj):
    status = obj.get("status") or {}
    return status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 0)


def statefulset_ready(obj):
    """Done when every pod the update strategy lets the controller replace is updated and ready.

    RollingUpdate with a partition: the pods at or above the partition ordinal must be
    on the update revision. OnDelete: the controller replaces no pod itself, so the
    rollout is done when all replicas are ready; outdated pods are reported by the
    caller instead of waiting forever.
    """
    if not obj or not _observed(obj):
        return False
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    replicas = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    if status.get("replicas", 0) != replicas or ready < replicas:
        return False
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "OnDelete":
        return True
    partition = ((strategy.get("rollingUpdate") or {}).get("partition")) or 0
    if partition > 0:
        return status.get("updatedReplicas", 0) >= max(0, replicas - partition)
    return (status.get("updatedReplicas", 0) == replicas
            and status.get("currentRevision") == status.get("updateRevision"))


def deployment_ready(obj):
    if not obj or not _observed(obj):
        return False
    cond = condition(obj, "Progressing")
    if cond and cond.get("reason") == "ProgressDeadlineExceeded":
        raise WaitFailed("%s: rollout exceeded its progress deadline: %s" % (_ref(obj), cond.get("message")))
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    status = obj.get("status") or {}
    return (status.get("updatedReplicas", 0) == replicas and status.get("availableReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas)


def daemonset_ready(obj):
    if not obj or not _observed(obj):
        return False
    status = obj.get("status") or {}
    desired = status.get("desiredNumberScheduled", 0)
    return (status.get("updatedNumberScheduled", 0) == desired and status.get("numberReady", 0) == desired
            and status.get("numberAvailable", 0) == desired)


def job_done(obj):
    """True when Complete; raises ``WaitFailed`` when the Job Failed."""
    if not obj:
        return False
    if condition_true(obj, "Failed"):
        cond = condition(obj, "Failed")
        raise WaitFailed("%s failed: %s (%s)" % (_ref(obj), cond.get("reason"), cond.get("message")), job=obj)
    return condition_true(obj, "Complete")


def pod_ready(obj):
    if not obj:
        return False
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Failed":
        raise WaitFailed("%s failed" % _ref(obj))
    return phase == "Succeeded" or condition_true(obj, "Ready")


READY_PREDICATES = {
    "StatefulSet": statefulset_ready,
    "Deployment": deployment_ready,
    "DaemonSet": daemonset_ready,
    "Job": job_done,
    "Pod": pod_ready,
    "PersistentVolumeClaim": lambda o: bool(o) and (o.get("status") or {}).get("phase") == "Bound",
    "CustomResourceDefinition": lambda o: bool(o) and condition_true(o, "Established"),
    "Namespace": lambda o: bool(o) and (o.get("status") or {}).get("phase") == "Active",
}


def _ref(obj):
    meta = obj.get("metadata") or {}
    return _name(obj.get("kind"), meta.get("namespace"), meta.get("name"))


def _name(kind, namespace, name):
    return "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)


def selector_string(match_labels):
    return ",".join("%s=%s" % (k, v) for k, v in sorted((match_labels or {}).items()))


def watch_until(client, api_version, kind, namespace, name, predicate, timeout, sleep=time.sleep):
    """Follow one object until ``predicate(obj)`` is true; returns the object.

    ``predicate`` receives ``None`` while the object does not exist, so the same
    function waits for deletion (``lambda o: o is None``). Raises ``WaitTimeout``
    when the deadline passes; the caller adds the per-pod story.
    """
    deadline = time.monotonic() + timeout
    field_selector = "metadata.name=%s" % name
    last = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout("%s: not ready after %ss" % (_name(kind, namespace, name), timeout), last=last)
        try:
            listing = client.list(api_version, kind, namespace, field_selector=field_selector)
            items = listing.get("items") or []
            last = items[0] if items else None
            if last is not None:
                last.setdefault("kind", kind)
                last.setdefault("apiVersion", api_version)
            if predicate(last):
                return last
            rv = listing["metadata"].get("resourceVersion")
            for etype, obj in client.watch(api_version, kind, namespace, resource_version=rv,
                                           field_selector=field_selector,
                                           timeout=max(1, min(remaining, 290))):
                if etype == "BOOKMARK":
                    continue
                last = None if etype == "DELETED" else obj
                if predicate(last):
                    return last
                if time.monotonic() >= deadline:
                    break
        except TransientError:
            # API server down: keep trying until the deadline.
            sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        except KubeApiError as exc:
            if exc.status in (410, None) or exc.status >= 500:
                continue
            raise


def _not_ready_lines(client, obj):
    """Why the pods of ``obj`` (the last state seen of a workload or a pod) are not ready."""
    try:
        return diagnose_pods(client, pods_of(client, obj))
    except KubeApiError:
        return []


def wait_ready(client, obj, timeout):
    """Wait for an applied object to be ready, for the kinds that have a notion of it.

    When the wait times out or ends in failure, the error's message and its
    ``not_ready`` detail say, per pod, what is not ready and why.
    """
    predicate = READY_PREDICATES.get(obj.get("kind"))
    if predicate is None:
        return obj
    meta = obj["metadata"]
    try:
        return watch_until(client, obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"],
                           predicate, timeout)
    except (WaitTimeout, WaitFailed) as exc:
        last = exc.details.get("last") or exc.details.get("job")
        if last is None and isinstance(exc, WaitFailed):
            # The predicate raised on the object it was given; read it again for its pods.
            try:
                last = client.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            except KubeApiError:
                last = None
        lines = _not_ready_lines(client, dict(last or obj, kind=obj["kind"], apiVersion=obj["apiVersion"]))
        msg = exc.msg + ("; " + "; ".join(lines) if lines else "")
        raise type(exc)(msg, **dict(exc.details, not_ready=lines))


def wait_deleted(client, api_version, kind, namespace, name, timeout):
    return watch_until(client, api_version, kind, namespace, name, lambda o: o is None, timeout)
