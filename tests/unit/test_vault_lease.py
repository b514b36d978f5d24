"""The lease decision matrix of vault_db_secret, as pure functions."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_lease as L

NOW = datetime.datetime(2030, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
SOURCE = "database/creds/app"
HASH = L.credential_hash("u", "p", "salt1234")


def at(seconds):
    return NOW + datetime.timedelta(seconds=seconds)


def recorded(**over):
    values = dict(source=SOURCE, lease_id="database/creds/app/abc", expires=at(3000), renewable=True,
                  duration=3600, max_expires=None, hash=HASH, superseded=[], intact=True)
    values.update(over)
    return L.Recorded(**values)


def policy(renew_before=None, rotate_before=None, rotate=False):
    return L.Policy(renew_before, rotate_before, rotate)


def lease(expires_in=3000, renewable=True):
    return L.LeaseInfo(expires=at(expires_in), renewable=renewable)


# (row, recorded, lease, policy) -> (action, reason); defaults: renew at 1/3 (1200 s), rotate at 1/6 (600 s).
MATRIX = [
    ("no Secret", None, None, policy(), ("issue", "no_credentials")),
    ("Secret without a lease", recorded(lease_id=None), None, policy(), ("issue", "no_credentials")),
    ("other role or mount", recorded(source="database/creds/other"), lease(), policy(), ("rotate", "source_changed")),
    ("credentials edited", recorded(intact=False), lease(), policy(), ("rotate", "secret_modified")),
    ("rotate requested", recorded(), lease(), policy(rotate=True), ("rotate", "requested")),
    ("lease revoked or expired", recorded(), None, policy(), ("rotate", "lease_gone")),
    ("lease past its expiry", recorded(), lease(expires_in=-5), policy(), ("rotate", "lease_gone")),
    ("alive, far from expiry", recorded(), lease(3000), policy(), ("keep", "lease_valid")),
    ("inside renew window", recorded(), lease(1000), policy(), ("renew", "renew_window")),
    ("inside renew window, not renewable", recorded(), lease(1000, renewable=False), policy(),
     ("rotate", "not_renewable")),
    ("inside rotate window", recorded(), lease(500), policy(), ("rotate", "near_expiry")),
    ("near max TTL", recorded(max_expires=at(550)), lease(3000), policy(), ("rotate", "near_max_ttl")),
    ("max TTL far", recorded(max_expires=at(5000)), lease(3000), policy(), ("keep", "lease_valid")),
    ("explicit renew_before", recorded(), lease(3000), policy(renew_before=3500), ("renew", "renew_window")),
    ("explicit rotate_before", recorded(), lease(3000), policy(rotate_before=3100), ("rotate", "near_expiry")),
    ("not renewable but far", recorded(renewable=False), lease(3000, renewable=False), policy(),
     ("keep", "lease_valid")),
]


@pytest.mark.parametrize("row,rec,info,pol,expected", MATRIX, ids=[m[0] for m in MATRIX])
def test_decide_dynamic(row, rec, info, pol, expected):
    assert tuple(L.decide_dynamic(NOW, SOURCE, rec, info, pol)) == expected


def test_after_renewal_capped_by_max_ttl_rotates():
    assert L.after_renewal(NOW, at(400), at(400), policy(), 3600) == ("rotate", "near_max_ttl")
    assert L.after_renewal(NOW, at(3600), None, policy(), 3600) == ("renew", "renew_window")
    assert L.after_renewal(NOW, at(3600), at(500), policy(), 3600) == ("rotate", "near_max_ttl")


def test_renewal_capped():
    assert L.renewal_capped(3600, 1200)
    assert not L.renewal_capped(3600, 3600)
    assert not L.renewal_capped(0, 10)


def test_decide_static():
    rec = recorded(source="database/static-creds/app", lease_id=None)
    src = "database/static-creds/app"
    assert L.decide_static(None, src, "u", "p", False) == ("issue", "no_credentials")
    assert L.decide_static(rec, src, "u", "p", False) == ("keep", "unchanged")
    assert L.decide_static(rec, src, "u", "p2", False) == ("update", "vault_rotated")
    assert L.decide_static(rec, src, "u", "p", True) == ("rotate", "requested")
    assert L.decide_static(rec, "database/static-creds/other", "u", "p", False) == ("update", "source_changed")


def test_credential_hash_is_salted_and_verifiable():
    one = L.credential_hash("u", "secret-password", "aaaa")
    two = L.credential_hash("u", "secret-password", "bbbb")
    assert one != two
    assert "secret-password" not in one
    assert L.hash_matches(one, "u", "secret-password")
    assert not L.hash_matches(one, "u", "other")
    assert not L.hash_matches("garbage", "u", "secret-password")
    assert L.hash_digest(one) == one.split(":")[2]


def test_superseded_split_and_roundtrip():
    entries = [{"lease_id": "a", "revoke_after": L.format_time(at(-1))},
               {"lease_id": "b", "revoke_after": L.format_time(at(60))},
               {"lease_id": "c", "revoke_after": "not a time"}]
    due, pending = L.split_superseded(entries, NOW)
    assert [e["lease_id"] for e in due] == ["a", "c"]
    assert [e["lease_id"] for e in pending] == ["b"]
    assert L.parse_superseded(L.dump_superseded(entries)) == entries
    assert L.parse_superseded("{broken") == []


def test_parse_time_vault_formats():
    assert L.parse_time("2030-01-01T12:00:00.123456789Z") == NOW.replace(microsecond=123456)
    assert L.parse_time("2030-01-01T13:00:00+01:00") == NOW
    assert L.parse_time("") is None
    assert L.format_time(NOW) == "2030-01-01T12:00:00Z"


def test_recorded_state_reads_annotations():
    ann = {L.A_SOURCE: SOURCE, L.A_LEASE_ID: "x", L.A_EXPIRES: "2030-01-01T13:00:00Z", L.A_RENEWABLE: "true",
           L.A_DURATION: "3600", L.A_HASH: HASH}
    rec = L.recorded_state(ann, "u", "p")
    assert rec.intact and rec.renewable and rec.duration == 3600 and rec.expires == at(3600)
    assert not L.recorded_state(ann, "u", "changed").intact
    assert L.recorded_state({}, "u", "p") is None
