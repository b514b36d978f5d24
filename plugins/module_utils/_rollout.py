# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling restarts of workloads, the way ``kubectl rollout restart`` does them.

A new annotation on the pod template makes the workload's controller replace every pod in
its own order (a StatefulSet from the highest ordinal down, each one ready before the next).
``vault_db_secret`` restarts the consumers of credentials that changed; day-2 operations
(rolling restarts and upgrades gated on a datastore's health) restart the same way.
"""

from __future__ import annotations

__metaclass__ = type

import datetime
from typing import TYPE_CHECKING, Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import KubeApiError
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

if TYPE_CHECKING:
    from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient  # pragma: no cover

WORKLOAD_API = "apps/v1"
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")
RESTARTED_AT = "datastore.kubernetes/restartedAt"


def workload_ref(kind: str, namespace: str, name: str) -> str:
    return "%s %s/%s" % (kind, namespace, name)


def find_workloads(client: KubeClient, targets: Iterable[dict[str, Any]] | None,
                   default_namespace: str) -> tuple[list[Obj], list[str]]:
    """``(found, missing)``: the live workloads ``targets`` name, and ``Kind namespace/name`` of those that do not exist.

    A target is a mapping with ``kind``, ``name`` and optionally ``namespace`` (else ``default_namespace``).
    """
    found, missing = [], []
    for target in targets or []:
        namespace = target.get("namespace") or default_namespace
        obj = client.get(WORKLOAD_API, target["kind"], target["name"], namespace)
        if obj is None:
            missing.append(workload_ref(target["kind"], namespace, target["name"]))
        else:
            found.append(obj)
    return found, missing


def template_annotations(obj: Obj) -> dict[str, str]:
    """The annotations of a workload's pod template."""
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}


def restart(client: KubeClient, obj: Obj, annotations: dict[str, str] | None = None, check_mode: bool = False,
            reason: str = "") -> dict[str, str]:
    """Roll ``obj``'s pods; returns its ``kind``, ``name`` and ``namespace``.

    The pod template gets ``RESTARTED_AT`` (now) and ``annotations``, which can record why it
    restarted so that a later run can tell whether a restart was missed. ``reason`` completes the
    error message ("rollout restart failed <reason>: ...").
    """
    meta = obj["metadata"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    template = {RESTARTED_AT: now}
    template.update(annotations or {})
    if not check_mode:
        try:
            client.patch(WORKLOAD_API, obj["kind"], meta["name"], meta["namespace"],
                         {"spec": {"template": {"metadata": {"annotations": template}}}})
        except KubeApiError as exc:
            raise KubeApiError("%s: rollout restart failed%s: %s" % (
                workload_ref(obj["kind"], meta["namespace"], meta["name"]), " " + reason if reason else "", exc.msg),
                status=exc.status)
    return {"kind": obj["kind"], "name": meta["name"], "namespace": meta["namespace"]}
