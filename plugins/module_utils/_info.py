# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``info`` module's work: a read-only report of a datastore's StatefulSet.

Only GET and LIST requests are sent. Secrets are read as metadata only
(``PartialObjectMetadata``), so their values never reach the module.
"""

from __future__ import annotations

__metaclass__ = type

import copy
import datetime
import re
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils import _health
from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_report as report
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, NotFound
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_domain, check_dns_label, is_dns_subdomain
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault_lease import (  # the names the vault_db_secret module writes
    A_EXPIRES as VAULT_LEASE_EXPIRES,
    A_LEASE_ID as VAULT_LEASE_ID,
    PREFIX as LEASE_PREFIX,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import selector_string

LEASE_ID = LEASE_PREFIX + "lease-id"
LEASE_EXPIRES = LEASE_PREFIX + "lease-expires"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def validate(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if params.get("service_name") is not None:
        check_dns_label("service_name", params["service_name"])
    check_dns_domain("cluster_domain", params.get("cluster_domain") or "")
    for idx, secret in enumerate(params.get("vault_secret") or []):
        if not is_dns_subdomain(secret):
            raise InvalidInput("vault_secret[%d]" % idx, "%r is not a valid Secret name" % (secret,))
    if params.get("container") is not None:
        check_dns_label("container", params["container"])


def parse_time(value: object) -> datetime.datetime | None:
    """An RFC 3339 time or a Unix timestamp as an aware ``datetime`` (``None`` when unreadable)."""
    if value is None:
        return None
    text = str(value).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
    match = re.match(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$", text, re.I)
    if not match:
        return None
    base, frac, zone = match.groups()
    parsed = datetime.datetime.strptime(base.replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
    if frac:
        parsed = parsed.replace(microsecond=int((frac[1:] + "000000")[:6]))
    offset = datetime.timedelta(0)
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (parsed - offset).replace(tzinfo=datetime.timezone.utc)


def lease_entry(name: str, meta: dict[str, Any] | None, now: datetime.datetime | None = None) -> dict[str, Any]:
    """What a credential Secret's annotations say about its lease (never its values)."""
    if meta is None:
        return {"secret": name, "exists": False, "lease_id": None, "lease_expires": None,
                "expires_in_seconds": None, "expired": None, "annotations": {}}
    annotations = meta.get("annotations") or {}
    expires = annotations.get(LEASE_EXPIRES) or annotations.get(VAULT_LEASE_EXPIRES)
    when = parse_time(expires)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    remaining = int((when - now).total_seconds()) if when else None
    return {
        "secret": name,
        "exists": True,
        "lease_id": annotations.get(LEASE_ID) or annotations.get(VAULT_LEASE_ID),
        "lease_expires": expires,
        "expires_in_seconds": remaining,
        "expired": None if remaining is None else remaining <= 0,
        # Only lease annotations: nothing derived from the credentials (such as their hash) is reported.
        "annotations": {k: v for k, v in annotations.items() if k.startswith(LEASE_PREFIX) and "lease" in k},
    }


def _secret_metadata(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """GET a Secret as ``PartialObjectMetadata``: the server sends no data, only metadata."""
    try:
        obj = client.request("GET", client.path("v1", "Secret", namespace, name), headers={"Accept": METADATA_ONLY})
    except NotFound:
        return None
    # Belt and braces: keep metadata only, whatever the server sent.
    return copy.deepcopy((obj or {}).get("metadata") or {})


def pvc_entry(pvc: Obj) -> dict[str, Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    return {
        "name": pvc["metadata"]["name"],
        "phase": status.get("phase"),
        "storage_class": spec.get("storageClassName"),
        "requested": ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        "capacity": (status.get("capacity") or {}).get("storage"),
        "access_modes": spec.get("accessModes") or [],
        "volume": spec.get("volumeName"),
        "uid": pvc["metadata"].get("uid"),
    }


def endpoint_entries(slices: list[Obj]) -> list[dict[str, Any]]:
    """Every endpoint of the Service's EndpointSlices, by hostname then address."""
    out = []
    for piece in slices:
        ports = [{"name": p.get("name"), "port": p.get("port"), "protocol": p.get("protocol")}
                 for p in piece.get("ports") or []]
        for endpoint in piece.get("endpoints") or []:
            cond = endpoint.get("conditions") or {}
            out.append({
                "addresses": endpoint.get("addresses") or [],
                "address_type": piece.get("addressType"),
                "hostname": endpoint.get("hostname"),
                "pod": (endpoint.get("targetRef") or {}).get("name"),
                "node": endpoint.get("nodeName"),
                "ready": cond.get("ready") is not False,
                "serving": cond.get("serving") is not False,
                "terminating": bool(cond.get("terminating")),
                "ports": ports,
            })
    return sorted(out, key=lambda e: (e["hostname"] or "", e["addresses"]))


def _strip(obj: Obj | None) -> Obj:
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def run(task: Task, client: KubeClient) -> Result:
    """The ``info`` module's work."""
    params = task.params
    validate(params)
    ns, name, domain = params["namespace"], params["name"], params["cluster_domain"]
    sts = client.get("apps/v1", "StatefulSet", name, ns)
    svc_name = params.get("service_name") or ((sts or {}).get("spec") or {}).get("serviceName") or name
    svc = client.get("v1", "Service", svc_name, ns)
    pods: list[Obj] = []
    pvcs: list[Obj] = []
    if sts:
        selector = selector_string(((sts["spec"].get("selector") or {}).get("matchLabels")))
        if selector:
            pods = client.list("v1", "Pod", ns, label_selector=selector).get("items") or []
        templates = report.template_names(sts)
        if templates:
            pvcs = report.claims_of(client.list("v1", "PersistentVolumeClaim", ns).get("items") or [], name,
                                    templates)
    slices: list[Obj] = []
    if svc:
        slices = client.list("discovery.k8s.io/v1", "EndpointSlice", ns,
                             label_selector="%s=%s" % (SERVICE_NAME_LABEL, svc_name)).get("items") or []
    now = datetime.datetime.now(datetime.timezone.utc)
    leases = [lease_entry(secret, _secret_metadata(client, ns, secret), now)
              for secret in params.get("vault_secret") or []]
    spec, status = (sts or {}).get("spec") or {}, (sts or {}).get("status") or {}
    return {
        "changed": False,
        "exists": sts is not None,
        "statefulset": _strip(sts),
        "service": _strip(svc),
        "replicas": spec.get("replicas"),
        "ready_replicas": status.get("readyReplicas", 0) if sts else None,
        "updated_replicas": status.get("updatedReplicas", 0) if sts else None,
        "pods": report.pod_entries(pods, sts, domain) if sts else [],
        "pvcs": [pvc_entry(p) for p in pvcs],
        "endpoints": endpoint_entries(slices),
        "service_fqdn": report.service_fqdn(svc_name, ns, domain) if svc else None,
        "srv_names": report.srv_names((svc or {}).get("spec", {}).get("ports"), svc_name, ns, domain) if svc else {},
        "seeds": report.seeds(sts, domain) if sts else [],
        "leases": leases,
        "health": _health.collect(client, params.get("health"), ns, pods, params.get("container"),
                                  client.request_timeout) if sts else None,
    }
