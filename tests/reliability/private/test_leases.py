"""After everything else in this session: every live database lease belongs to a Secret that exists.

A lease counts as owned when a Secret records it, as its current lease or as a
superseded one still waiting for revocation (the annotations of _vault_lease.py).
Runs last (see conftest.py), against the private environment only: the shared one
has other people's runs in flight.
"""

from __future__ import annotations

import hvac.exceptions
from kubernetes import client as k8s

from testlib.reliability import record
from testlib.vault import root_client

from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_lease as L


def listed(vault, path):
    try:
        return (vault.adapter.list(path) or {}).get("data", {}).get("keys") or []
    except hvac.exceptions.InvalidPath:
        return []


def live_leases(vault):
    """``{lease_id}`` under ``<mount>/creds/`` of every database mount."""
    leases = set()
    mounts = vault.sys.list_mounted_secrets_engines()["data"]
    for mount, info in mounts.items():
        if not isinstance(info, dict) or info.get("type") != "database":
            continue
        for role in listed(vault, "sys/leases/lookup/%screds/" % mount):
            for lease in listed(vault, "sys/leases/lookup/%screds/%s" % (mount, role)):
                leases.add("%screds/%s%s" % (mount, role, lease))
    return leases


def owned_leases(kube):
    owned = {}
    for secret in k8s.CoreV1Api(kube).list_secret_for_all_namespaces().items:
        annotations = secret.metadata.annotations or {}
        ref = "%s/%s" % (secret.metadata.namespace, secret.metadata.name)
        if annotations.get(L.A_LEASE_ID):
            owned[annotations[L.A_LEASE_ID]] = ref
        for entry in L.parse_superseded(annotations.get(L.A_SUPERSEDED)):
            owned[entry["lease_id"]] = ref
    return owned


def test_no_orphaned_lease(localenv, kube):
    vault = root_client(localenv)
    live, owned = live_leases(vault), owned_leases(kube)
    orphaned = sorted(live - set(owned))
    record("leases", {"alive": len(live), "owned_by_secret": len(live & set(owned)), "orphaned": len(orphaned)})
    assert not orphaned, "leases alive in Vault that no Secret records: %s" % orphaned[:20]
