# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a StatefulSet looks like from the outside: DNS names, seeds, pods by ordinal, claims.

Shared by the ``statefulset`` and ``info`` modules; pure functions over API objects.
"""

from __future__ import annotations

__metaclass__ = type

import re
from typing import Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import condition_true

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def service_fqdn(service: str, namespace: str, domain: str) -> str:
    return "%s.%s.svc.%s" % (service, namespace, domain)


def pod_fqdn(pod: str, service: str, namespace: str, domain: str) -> str:
    """The stable name a StatefulSet pod gets through its headless Service."""
    return "%s.%s" % (pod, service_fqdn(service, namespace, domain))


def srv_names(ports: list[dict[str, Any]] | None, service: str, namespace: str, domain: str) -> dict[str, str]:
    """``{port name: SRV name}`` for every named port of the Service."""
    return {p["name"]: "_%s._%s.%s" % (p["name"], (p.get("protocol") or "TCP").lower(),
                                       service_fqdn(service, namespace, domain))
            for p in ports or [] if p.get("name")}


def ordinal_start(sts: Obj) -> int:
    return (((sts.get("spec") or {}).get("ordinals") or {}).get("start")) or 0


def seeds(sts: Obj, domain: str, count: int | None = None) -> list[str]:
    """FQDNs of the first ``count`` ordinals (default ``min(3, replicas)``), pods existing or not."""
    spec = sts.get("spec") or {}
    replicas = spec.get("replicas", 1)
    count = min(3, replicas) if count is None else min(count, replicas)
    name, namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
    start = ordinal_start(sts)
    return [pod_fqdn("%s-%d" % (name, start + n), spec.get("serviceName") or name, namespace, domain)
            for n in range(count)]


def pod_ordinal(pod: Obj, sts_name: str) -> int | None:
    """The pod's ordinal, or ``None`` when the pod is not a StatefulSet pod of ``sts_name``."""
    meta = pod.get("metadata") or {}
    match = re.match(r"^%s-(\d+)$" % re.escape(sts_name), meta.get("name") or "")
    if not match:
        return None
    index = (meta.get("labels") or {}).get(POD_INDEX_LABEL)
    return int(index) if index and index.isdigit() else int(match.group(1))


def pod_ready(pod: Obj) -> bool:
    return condition_true(pod, "Ready")


def claim_names(pod: Obj, templates: Iterable[str]) -> list[str]:
    """PVC names of a pod: from its volumes, else as the controller names them (<template>-<pod>)."""
    volumes = (pod.get("spec") or {}).get("volumes") or []
    names = [v["persistentVolumeClaim"]["claimName"] for v in volumes if v.get("persistentVolumeClaim")]
    if names:
        return names
    return ["%s-%s" % (t, pod["metadata"]["name"]) for t in templates]


def template_names(sts: Obj) -> list[Any]:
    return [(t.get("metadata") or {}).get("name") for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []]


def pod_entries(pods: list[Obj], sts: Obj, domain: str) -> list[dict[str, Any]]:
    """One entry per pod of the StatefulSet, by ordinal."""
    name, namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    service = spec.get("serviceName") or name
    update_revision = status.get("updateRevision")
    templates = template_names(sts)
    out = []
    for pod in pods:
        ordinal = pod_ordinal(pod, name)
        if ordinal is None:
            continue
        meta = pod["metadata"]
        revision = (meta.get("labels") or {}).get(REVISION_LABEL)
        out.append({
            "name": meta["name"],
            "ordinal": ordinal,
            "fqdn": pod_fqdn(meta["name"], service, namespace, domain),
            "ready": pod_ready(pod),
            "phase": (pod.get("status") or {}).get("phase"),
            "node": (pod.get("spec") or {}).get("nodeName"),
            "ip": (pod.get("status") or {}).get("podIP"),
            "pvcs": claim_names(pod, templates),
            "revision": revision,
            "updated": bool(update_revision) and revision == update_revision,
            "terminating": bool(meta.get("deletionTimestamp")),
        })
    return sorted(out, key=lambda e: e["ordinal"])


def claims_of(pvcs: list[Obj], sts_name: str, templates: Iterable[str]) -> list[Obj]:
    """PVCs made from the StatefulSet's claim templates (``<template>-<sts>-<ordinal>``), by name."""
    patterns = [re.compile(r"^%s-%s-(\d+)$" % (re.escape(t), re.escape(sts_name))) for t in templates if t]
    return sorted((p for p in pvcs if any(pat.match(p["metadata"]["name"]) for pat in patterns)),
                  key=lambda p: p["metadata"]["name"])
