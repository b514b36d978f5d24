# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``statefulset`` module's work: a StatefulSet and its headless Service as one unit.

Order of a run: check the input, read the live objects, refuse (or plan a recreate
for) immutable changes, dry-run every write so the API server validates it, and
only then write. Nothing is written when any of that fails.
"""

from __future__ import annotations

__metaclass__ = type

import copy
from typing import Any, cast

from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_report as report
from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_spec as spec
from ansible_collections.datastore.kubernetes.plugins.module_utils._apply import (
    ApplyResult,
    apply_object,
    dry_run_create,
    make_diff,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    ImmutableField,
    KubeApiError,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import (
    selector_string,
    wait_deleted,
    wait_ready,
)

STS = ("apps/v1", "StatefulSet")
SVC = ("v1", "Service")
PVC = ("v1", "PersistentVolumeClaim")
RECREATE_HINT = "set on_immutable=recreate to recreate it keeping pods and PVCs"


def _ref(kind: str, namespace: str, name: str) -> str:
    return "%s %s/%s" % (kind, namespace, name)


def _strip(obj: Obj | None) -> Obj:
    """An object for the result: as the server holds it, without managedFields."""
    if obj is None:
        return {}
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def run(task: Task, client: KubeClient) -> Result:
    """The ``statefulset`` module's work."""
    params = task.params
    spec.validate(params)
    if params["state"] == "absent":
        return _absent(task, client, params)
    sts = spec.build_statefulset(params)
    svc = spec.build_service(params, sts)
    return _present(task, client, params, sts, svc)


# -- present ---------------------------------------------------------------------------
def _immutable(params: Params, sts: Obj, svc: Obj, live: Obj | None,
               live_svc: Obj | None) -> tuple[list[tuple[str, str]], bool]:
    """What must be recreated: ``(sts_changes, service_recreate)``; fails when that is not allowed."""
    ns, name = params["namespace"], params["name"]
    changes = spec.immutable_changes(live, sts) if live else []
    svc_recreate = live_svc is not None and (live_svc.get("spec") or {}).get("clusterIP") != "None"
    if params["on_immutable"] == "fail":
        if changes:
            details = changes[0][1] if len(changes) == 1 else "; ".join("%s: %s" % c for c in changes)
            raise ImmutableField("%s: %s cannot change in place (%s); %s" % (
                _ref("StatefulSet", ns, name), ", ".join(c[0] for c in changes), details, RECREATE_HINT),
                fields=[c[0] for c in changes])
        if svc_recreate:
            raise ImmutableField("%s: clusterIP cannot change in place (it is %s; a headless Service needs None); "
                                 "set on_immutable=recreate to recreate the Service"
                                 % (_ref("Service", ns, svc["metadata"]["name"]),
                                    cast(Obj, live_svc)["spec"].get("clusterIP")), fields=["clusterIP"])
    return changes, svc_recreate


def _plan_expansion(client: KubeClient, task: Task, live: Obj, sts: Obj) -> list[tuple[str, str | None]]:
    """PVCs to grow after a recreate, checked before anything is written: ``[(pvc, size)]``."""
    growth = spec.storage_growth(live, sts)
    if not growth:
        return []
    ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
    pvcs = client.list(*PVC, namespace=ns).get("items") or []
    plans, classes = [], {}
    for tmpl, (old_text, new_text, old, new) in sorted(growth.items()):
        if new < old:
            task.warn("%s: claim template %s shrinks from %s to %s; existing PVCs keep their size (a PVC cannot "
                      "shrink)" % (_ref("StatefulSet", ns, name), tmpl, old_text, new_text))
            continue
        for pvc in report.claims_of(pvcs, name, [tmpl]):
            pvc_spec = pvc.get("spec") or {}
            current = ((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage")
            if current is not None and spec.parse_quantity(current) >= new:
                continue
            sc_name = pvc_spec.get("storageClassName")
            if sc_name not in classes:
                classes[sc_name] = client.get("storage.k8s.io/v1", "StorageClass", sc_name) if sc_name else None
            if not (classes[sc_name] or {}).get("allowVolumeExpansion"):
                raise ImmutableField(
                    "%s: claim template %s grows from %s to %s, but PVC %s uses StorageClass %s, which does not "
                    "allow volume expansion (allowVolumeExpansion is not true); nothing was changed. Use a "
                    "StorageClass that allows expansion, or keep the size"
                    % (_ref("StatefulSet", ns, name), tmpl, old_text, new_text, pvc["metadata"]["name"],
                       sc_name or "(none)"), fields=["volumeClaimTemplates"])
            plans.append((pvc["metadata"]["name"], new_text))
    return plans


def _dry_run_create(client: KubeClient, obj: Obj) -> Obj:
    """Validate a whole new object with the API server under a scratch name (nothing is stored)."""
    scratch = copy.deepcopy(obj)
    scratch["metadata"]["name"] = (obj["metadata"]["name"][:50] + "-dry-run-check")
    try:
        out = dry_run_create(client, scratch)
    except KubeApiError as exc:
        raise KubeApiError("%s: %s" % (_ref(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]),
                                       exc.msg.replace(scratch["metadata"]["name"], obj["metadata"]["name"])),
                           status=exc.status, reason=exc.reason, causes=exc.causes)
    out["metadata"]["name"] = obj["metadata"]["name"]
    return out


def _apply_planned(client: KubeClient, obj: Obj, dry: ApplyResult, live: Obj | None, recreate: bool,
                   check_mode: bool, force: bool, timeout: float, propagation: str) -> ApplyResult:
    """Write one object as its dry run said; ``ApplyResult`` of what happened (or would)."""
    if recreate:
        if check_mode:
            return ApplyResult(live, dry.after, True)
        meta = cast(Obj, live)["metadata"]
        client.delete(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"], propagation=propagation,
                      preconditions={"uid": meta["uid"]})
        wait_deleted(client, obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], timeout)
        return ApplyResult(live, apply_object(client, obj, force=force).after, True)
    if check_mode or not dry.changed:
        return dry
    result = apply_object(client, obj, force=force)
    return ApplyResult(live, result.after, result.changed)


def _dry_run(client: KubeClient, obj: Obj, force: bool) -> ApplyResult:
    try:
        return apply_object(client, obj, check_mode=True, force=force)
    except ImmutableField as exc:
        raise ImmutableField("%s; %s" % (exc.msg, RECREATE_HINT if obj["kind"] == "StatefulSet" else
                                         "set on_immutable=recreate to recreate it"), fields=exc.fields)


def _present(task: Task, client: KubeClient, params: Params, sts: Obj, svc: Obj) -> Result:
    ns, name, check, force = params["namespace"], params["name"], task.check_mode, params["force"]
    # Any: when it is None, the changes that need it (immutable ones, a strategy reset) are none.
    live: Any = client.get(*STS, name=name, namespace=ns)
    live_svc = client.get(*SVC, name=svc["metadata"]["name"], namespace=ns)
    changes, svc_recreate = _immutable(params, sts, svc, live, live_svc)
    expansions = _plan_expansion(client, task, live, sts) if changes else []

    # Every write is dry-run first, so the API server's own validation fails the run before anything is stored.
    if svc_recreate:
        dry_svc = ApplyResult(live_svc, _dry_run_create(client, svc), True)
    else:
        dry_svc = _dry_run(client, svc, force)
    reset = bool(live) and not changes and _needs_strategy_reset(live, sts)
    if changes:
        dry_sts = ApplyResult(live, _dry_run_create(client, sts), True)
    else:
        try:
            dry_sts = _dry_run(client, _with_live_strategy(sts, live) if reset else sts, force)
        except ImmutableField:
            # The server knows of an immutable change the local comparison missed.
            if params["on_immutable"] == "fail":
                raise
            changes, reset = [("spec", "refused by the API server")], False
            expansions = _plan_expansion(client, task, live, sts)
            dry_sts = ApplyResult(live, _dry_run_create(client, sts), True)
    if reset:
        _reset_strategy(client, live, dry_run=True)
        dry_sts.after["spec"]["updateStrategy"] = copy.deepcopy(sts["spec"]["updateStrategy"])
        dry_sts = ApplyResult(live, dry_sts.after, True)

    timeout = params["wait_timeout"]
    svc_res = _apply_planned(client, svc, dry_svc, live_svc, svc_recreate, check, force, timeout, "Background")
    if reset and not check:
        _reset_strategy(client, live)
    sts_res = _apply_planned(client, sts, dry_sts, live, bool(changes), check, force, timeout, "Orphan")
    if reset:
        sts_res.changed = True
    expanded = []
    for pvc_name, size in expansions:
        if not check:
            client.patch(*PVC, name=pvc_name, namespace=ns,
                         patch={"spec": {"resources": {"requests": {"storage": size}}}})
        expanded.append(pvc_name)

    current = sts_res.after
    if params["wait"] and not check:
        current = _wait(client, current, timeout)
    result = _report(client, params, current, svc_res.after, check)
    result.update({
        "changed": bool(svc_res.changed or sts_res.changed or expanded),
        "recreated": bool(changes),
        "immutable_changes": ["%s: %s" % c for c in changes],
        "expanded_pvcs": expanded,
    })
    if svc_recreate:
        result["immutable_changes"].append("Service clusterIP: %s -> None" % cast(Obj, live_svc)["spec"].get("clusterIP"))
    if task.diff:
        result["diff"] = [dict(make_diff(r.before, r.after), before_header=_ref(o["kind"], ns, o["metadata"]["name"]),
                               after_header=_ref(o["kind"], ns, o["metadata"]["name"]))
                          for r, o in ((sts_res, sts), (svc_res, svc))]
    if live and live_svc is None and live.get("spec", {}).get("serviceName") not in (None, svc["metadata"]["name"]):
        task.warn("Service %s/%s is no longer used by %s; delete it if nothing else needs it"
                  % (ns, live["spec"]["serviceName"], _ref("StatefulSet", ns, name)))
    if result["outdated_pods"] and _strategy(current) == "OnDelete":
        task.warn("%s: pods %s still run the previous revision; with update_strategy OnDelete they are updated "
                  "only when deleted" % (_ref("StatefulSet", ns, name), ", ".join(result["outdated_pods"])))
    return result


def _strategy(sts: Obj | None) -> str:
    return (((sts or {}).get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"


def _needs_strategy_reset(live: Obj, sts: Obj) -> bool:
    """Switching to OnDelete: the server-defaulted ``rollingUpdate`` would make the apply invalid."""
    return _strategy(sts) == "OnDelete" and bool(((live.get("spec") or {}).get("updateStrategy") or {})
                                                 .get("rollingUpdate"))


def _with_live_strategy(sts: Obj, live: Obj) -> Obj:
    """``sts`` with the live update strategy, so a dry run validates everything but the switch."""
    probe = copy.deepcopy(sts)
    probe["spec"]["updateStrategy"] = copy.deepcopy(live["spec"]["updateStrategy"])
    return probe


def _reset_strategy(client: KubeClient, live: Obj, dry_run: bool = False) -> None:
    """Switch to OnDelete dropping ``rollingUpdate``, which server-side apply cannot remove (it was defaulted)."""
    meta = live["metadata"]
    client.patch(*STS, name=meta["name"], namespace=meta["namespace"], dry_run=dry_run,
                 patch={"metadata": {"resourceVersion": meta["resourceVersion"]},
                        "spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}})


def _wait(client: KubeClient, sts: Obj, timeout: float) -> Obj:
    try:
        return wait_ready(client, sts, timeout)
    except WaitTimeout as exc:
        meta = sts["metadata"]
        latest = client.get(*STS, name=meta["name"], namespace=meta["namespace"]) or sts
        status, replicas = latest.get("status") or {}, (latest.get("spec") or {}).get("replicas", 1)
        summary = "ready %s/%s, updated %s/%s" % (status.get("readyReplicas", 0), replicas,
                                                  status.get("updatedReplicas", 0), replicas)
        head, sep, tail = exc.msg.partition("; ")
        raise WaitTimeout("%s (%s)%s%s" % (head, summary, sep, tail), not_ready=exc.details.get("not_ready"))


def _report(client: KubeClient, params: Params, sts: Obj, svc: Obj, check: bool) -> Result:
    """The result keys that describe the StatefulSet: pods, DNS names, seeds."""
    ns, domain = params["namespace"], params["cluster_domain"]
    svc_name = sts["spec"].get("serviceName") or params["name"]
    pods: list[Obj] = []
    if sts.get("metadata", {}).get("uid") and not (check and not sts.get("status")):
        selector = selector_string(sts["spec"]["selector"].get("matchLabels"))
        pods = client.list("v1", "Pod", ns, label_selector=selector).get("items") or []
    entries = report.pod_entries(pods, sts, domain)
    partition = ((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
    return {
        "statefulset": _strip(sts),
        "service": _strip(svc),
        "pods": entries,
        "service_fqdn": report.service_fqdn(svc_name, ns, domain),
        "srv_names": report.srv_names((svc.get("spec") or {}).get("ports"), svc_name, ns, domain),
        "seeds": report.seeds(sts, domain, params.get("seed_count")),
        "outdated_pods": [e["name"] for e in entries if e["revision"] and not e["updated"]],
        "partition": partition,
    }


# -- absent ----------------------------------------------------------------------------
def _absent(task: Task, client: KubeClient, params: Params) -> Result:
    ns, name, check = params["namespace"], params["name"], task.check_mode
    live = client.get(*STS, name=name, namespace=ns)
    svc_name = ((live or {}).get("spec") or {}).get("serviceName") or spec.service_name(params)
    live_svc = client.get(*SVC, name=svc_name, namespace=ns)
    if live:
        templates = report.template_names(live)
    else:
        templates = [t["name"] for t in params.get("volume_claim_templates") or []]
    pvcs = report.claims_of(client.list(*PVC, namespace=ns).get("items") or [], name, templates)
    pods: list[Obj] = []
    if live:
        selector = selector_string(live["spec"]["selector"].get("matchLabels"))
        pods = [p for p in client.list("v1", "Pod", ns, label_selector=selector).get("items") or []
                if report.pod_ordinal(p, name) is not None]
    if not check:
        if live:
            client.delete(*STS, name=name, namespace=ns, propagation="Background")
        if live_svc:
            client.delete(*SVC, name=svc_name, namespace=ns)
        if params["delete_pvcs"]:
            for pvc in pvcs:
                client.delete(*PVC, name=pvc["metadata"]["name"], namespace=ns)
        if params["wait"]:
            timeout = params["wait_timeout"]
            if live:
                wait_deleted(client, *STS, namespace=ns, name=name, timeout=timeout)
            for pod in pods:
                wait_deleted(client, "v1", "Pod", ns, pod["metadata"]["name"], timeout)
            for pvc in pvcs if params["delete_pvcs"] else []:
                wait_deleted(client, *PVC, namespace=ns, name=pvc["metadata"]["name"], timeout=timeout)
    pvc_names = [p["metadata"]["name"] for p in pvcs]
    result = {
        "changed": bool(live or live_svc or (params["delete_pvcs"] and pvcs)),
        "statefulset": _strip(live),
        "service": _strip(live_svc),
        "deleted_pvcs": pvc_names if params["delete_pvcs"] else [],
        "kept_pvcs": [] if params["delete_pvcs"] else pvc_names,
    }
    if task.diff:
        result["diff"] = [dict(make_diff(obj, None), before_header=_ref(kind, ns, obj_name), after_header="absent")
                          for kind, obj_name, obj in (("StatefulSet", name, live), ("Service", svc_name, live_svc))
                          if obj]
    return result
