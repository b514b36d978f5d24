"""Unit tests of the info module's pure logic: leases, PVCs, endpoints, input checks."""

from __future__ import annotations

import datetime

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _info as info
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.modules.info import argument_spec

UTC = datetime.timezone.utc
NOW = datetime.datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def params(**over):
    base = option_defaults(argument_spec())
    base.update({"name": "cassandra", "namespace": "db"})
    base.update(over)
    return base


@pytest.mark.parametrize("text,expected", [
    ("2030-01-01T13:00:00Z", datetime.datetime(2030, 1, 1, 13, tzinfo=UTC)),
    ("2030-01-01T13:00:00.123456789Z", datetime.datetime(2030, 1, 1, 13, 0, 0, 123456, tzinfo=UTC)),
    ("2030-01-01T14:30:00+01:30", datetime.datetime(2030, 1, 1, 13, tzinfo=UTC)),
    ("2030-01-01T13:00:00", datetime.datetime(2030, 1, 1, 13, tzinfo=UTC)),
    ("1893502800", datetime.datetime(2030, 1, 1, 13, tzinfo=UTC)),
    ("next tuesday", None),
    (None, None),
])
def test_parse_time(text, expected):
    assert info.parse_time(text) == expected


def test_lease_entry_reports_annotations_only():
    meta = {"name": "creds", "annotations": {
        info.LEASE_ID: "database/creds/app/abc", info.LEASE_EXPIRES: "2030-01-01T13:00:00Z",
        "datastore.kubernetes/lease-renewable": "true", "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "datastore.kubernetes/vault-credentials-hash": "abc"}}
    entry = info.lease_entry("creds", meta, NOW)
    assert entry == {"secret": "creds", "exists": True, "lease_id": "database/creds/app/abc",
                     "lease_expires": "2030-01-01T13:00:00Z", "expires_in_seconds": 3600, "expired": False,
                     "annotations": {info.LEASE_ID: "database/creds/app/abc",
                                     info.LEASE_EXPIRES: "2030-01-01T13:00:00Z",
                                     "datastore.kubernetes/lease-renewable": "true"}}


def test_lease_entry_expired_missing_and_unknown():
    expired = info.lease_entry("c", {"annotations": {info.LEASE_EXPIRES: "2030-01-01T11:00:00Z"}}, NOW)
    assert expired["expired"] is True and expired["expires_in_seconds"] == -3600
    unknown = info.lease_entry("c", {"annotations": {}}, NOW)
    assert unknown["expired"] is None and unknown["lease_id"] is None
    missing = info.lease_entry("c", None, NOW)
    assert missing["exists"] is False


def test_pvc_entry():
    pvc = {"metadata": {"name": "data-cassandra-0", "uid": "u1"},
           "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"], "volumeName": "pv1",
                    "resources": {"requests": {"storage": "1Gi"}}},
           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    assert info.pvc_entry(pvc) == {"name": "data-cassandra-0", "phase": "Bound", "storage_class": "standard",
                                   "requested": "1Gi", "capacity": "1Gi", "access_modes": ["ReadWriteOnce"],
                                   "volume": "pv1", "uid": "u1"}


def test_endpoint_entries():
    slices = [{"addressType": "IPv4", "ports": [{"name": "cql", "port": 9042, "protocol": "TCP"}],
               "endpoints": [
                   {"addresses": ["10.0.0.2"], "hostname": "cassandra-1", "nodeName": "n2",
                    "targetRef": {"kind": "Pod", "name": "cassandra-1"},
                    "conditions": {"ready": False, "serving": False, "terminating": False}},
                   {"addresses": ["10.0.0.1"], "hostname": "cassandra-0", "nodeName": "n1",
                    "targetRef": {"kind": "Pod", "name": "cassandra-0"}, "conditions": {"ready": True}}]}]
    first, second = info.endpoint_entries(slices)
    assert first["hostname"] == "cassandra-0" and first["ready"] and first["serving"]
    assert first["ports"] == [{"name": "cql", "port": 9042, "protocol": "TCP"}]
    assert second["pod"] == "cassandra-1" and second["ready"] is False and second["node"] == "n2"


@pytest.mark.parametrize("over,field", [
    ({"name": "Bad_Name"}, "name"),
    ({"namespace": "-x"}, "namespace"),
    ({"service_name": "a.b"}, "service_name"),
    ({"vault_secret": ["ok", "Not OK"]}, "vault_secret[1]"),
    ({"cluster_domain": "bad_domain"}, "cluster_domain"),
])
def test_validate(over, field):
    with pytest.raises(InvalidInput) as exc:
        info.validate(params(**over))
    assert exc.value.field == field


def test_validate_ok():
    info.validate(params(vault_secret=["cassandra-app-credentials"], service_name="peers"))


def test_lease_entry_reads_the_vault_db_secret_names():
    meta = {"annotations": {info.VAULT_LEASE_ID: "database/creds/app/def",
                            info.VAULT_LEASE_EXPIRES: "2030-01-01T12:00:30Z"}}
    entry = info.lease_entry("c", meta, NOW)
    assert entry["lease_id"] == "database/creds/app/def" and entry["expires_in_seconds"] == 30
