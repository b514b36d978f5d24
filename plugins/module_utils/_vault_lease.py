# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease lifecycle of credentials kept in a Secret, as pure functions.

Nothing here talks to a server: the decisions take the time, what the Secret
records and what Vault says about the lease, and return what to do. That keeps
the whole matrix testable without Vault.
"""

from __future__ import annotations

__metaclass__ = type

import datetime
import hashlib
import hmac
import json
import re
from collections import namedtuple
from typing import Any

PREFIX = "datastore.kubernetes/"
A_SOURCE = PREFIX + "vault-source"
A_LEASE_ID = PREFIX + "vault-lease-id"
A_EXPIRES = PREFIX + "vault-lease-expires"
A_RENEWABLE = PREFIX + "vault-lease-renewable"
A_DURATION = PREFIX + "vault-lease-duration"
A_MAX_EXPIRES = PREFIX + "vault-lease-max-expires"
A_HASH = PREFIX + "vault-credentials-hash"
A_SUPERSEDED = PREFIX + "vault-superseded-leases"
A_STATIC_ROTATION = PREFIX + "vault-last-rotation"
RESERVED_ANNOTATIONS = (A_SOURCE, A_LEASE_ID, A_EXPIRES, A_RENEWABLE, A_DURATION, A_MAX_EXPIRES, A_HASH,
                        A_SUPERSEDED, A_STATIC_ROTATION)
RESTART_HASH = PREFIX + "credentials-hash"

Decision = namedtuple("Decision", "action reason")
# What the Secret recorded at the last write.
Recorded = namedtuple("Recorded", "source lease_id expires renewable duration max_expires hash superseded intact")
# What Vault says about the recorded lease now (None when Vault no longer knows it).
LeaseInfo = namedtuple("LeaseInfo", "expires renewable")
Policy = namedtuple("Policy", "renew_before rotate_before rotate")

_FRACTION = re.compile(r"\.(\d+)")


# -- time ----------------------------------------------------------------------
def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def format_time(when: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, e.g. ``2030-01-02T03:04:05Z``."""
    return when.astimezone(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime.datetime | None:
    """Parse RFC 3339 as Vault writes it (nanoseconds, ``Z`` or an offset); ``None`` when empty or invalid."""
    if not text or not isinstance(text, str):
        return None
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when


def seconds_between(later: datetime.datetime, earlier: datetime.datetime) -> int:
    return int((later - earlier).total_seconds())


# -- credential hash -------------------------------------------------------------
def credential_hash(username: str | None, password: str | None, salt: str) -> str:
    """``sha256:<salt>:<hex>`` - identifies credentials without revealing them."""
    digest = hmac.new(salt.encode("utf-8"), ("%s\0%s" % (username, password)).encode("utf-8"),
                      hashlib.sha256).hexdigest()
    return "sha256:%s:%s" % (salt, digest)


def hash_matches(recorded: str | None, username: str | None, password: str | None) -> bool:
    parts = (recorded or "").split(":")
    if len(parts) != 3 or parts[0] != "sha256":
        return False
    return hmac.compare_digest(credential_hash(username, password, parts[1]), recorded or "")


def hash_digest(recorded: str | None) -> str:
    """The hex part of a recorded hash (what workload templates carry)."""
    return (recorded or "").rsplit(":", 1)[-1]


# -- superseded leases -------------------------------------------------------------
def parse_superseded(text: str | None) -> list[dict[str, str]]:
    """``[{"lease_id", "revoke_after"}]`` from the annotation; tolerant of a damaged value."""
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("lease_id")]


def dump_superseded(entries: list[dict[str, str]]) -> str:
    return json.dumps([{"lease_id": e["lease_id"], "revoke_after": e["revoke_after"]} for e in entries],
                      separators=(",", ":"), sort_keys=True)


def split_superseded(entries: list[dict[str, str]],
                     now: datetime.datetime) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(due, pending)``: leases whose grace period is over, and the others."""
    due: list[dict[str, str]] = []
    pending: list[dict[str, str]] = []
    for entry in entries:
        when = parse_time(entry.get("revoke_after"))
        (due if when is None or when <= now else pending).append(entry)
    return due, pending


# -- reading the Secret -------------------------------------------------------------
def recorded_state(annotations: dict[str, str] | None, username: str | None, password: str | None) -> Recorded | None:
    """``Recorded`` from a Secret's annotations and the credentials it holds (``None`` without a record)."""
    ann = annotations or {}
    if A_SOURCE not in ann:
        return None
    try:
        duration = int(ann.get(A_DURATION) or 0)
    except ValueError:
        duration = 0
    intact = username is not None and password is not None and hash_matches(ann.get(A_HASH), username, password)
    return Recorded(source=ann.get(A_SOURCE), lease_id=ann.get(A_LEASE_ID) or None,
                    expires=parse_time(ann.get(A_EXPIRES)), renewable=ann.get(A_RENEWABLE) == "true",
                    duration=duration, max_expires=parse_time(ann.get(A_MAX_EXPIRES)), hash=ann.get(A_HASH),
                    superseded=parse_superseded(ann.get(A_SUPERSEDED)), intact=intact)


def lease_info(lookup: dict[str, Any] | None) -> LeaseInfo | None:
    """``LeaseInfo`` from ``sys/leases/lookup`` data (``None`` stays ``None``: the lease is gone)."""
    if lookup is None:
        return None
    return LeaseInfo(expires=parse_time(lookup.get("expire_time")), renewable=bool(lookup.get("renewable")))


# -- decisions ----------------------------------------------------------------------
def thresholds(policy: Policy, duration: int) -> tuple[int, int]:
    """``(renew_before, rotate_before)`` in seconds; defaults are a third and a sixth of the lease duration."""
    renew = policy.renew_before if policy.renew_before is not None else duration // 3
    rotate = policy.rotate_before if policy.rotate_before is not None else duration // 6
    return renew, rotate


def decide_dynamic(now: datetime.datetime, source: str, recorded: Recorded | None, lease: LeaseInfo | None,
                   policy: Policy) -> Decision:
    """What to do with the dynamic credentials a Secret holds.

    The order matters: anything that makes the held credentials unusable or
    unwanted comes first, then the hard end of the lease (its max TTL, or the
    issuing token's expiry, which no renewal can pass), and only then renewal -
    renewing keeps consumers on the same credentials, so it is preferred to
    rotating whenever it can still buy time.
    """
    if recorded is None or not recorded.lease_id:
        return Decision("issue", "no_credentials")
    if recorded.source != source:
        return Decision("rotate", "source_changed")
    if not recorded.intact:
        return Decision("rotate", "secret_modified")
    if policy.rotate:
        return Decision("rotate", "requested")
    if lease is None or lease.expires is None or lease.expires <= now:
        return Decision("rotate", "lease_gone")
    renew_before, rotate_before = thresholds(policy, recorded.duration)
    if seconds_between(lease.expires, now) <= rotate_before:
        return Decision("rotate", "near_expiry")
    if recorded.max_expires is not None and seconds_between(recorded.max_expires, now) <= rotate_before:
        return Decision("rotate", "near_max_ttl")
    if seconds_between(lease.expires, now) <= renew_before:
        if lease.renewable:
            return Decision("renew", "renew_window")
        return Decision("rotate", "not_renewable")
    return Decision("keep", "lease_valid")


def after_renewal(now: datetime.datetime, new_expires: datetime.datetime, max_expires: datetime.datetime | None,
                  policy: Policy, duration: int) -> Decision:
    """Whether a renewed lease is still worth keeping, or its max TTL forces a rotation now."""
    rotate_before = thresholds(policy, duration)[1]
    end = min(new_expires, max_expires) if max_expires else new_expires
    if seconds_between(end, now) <= rotate_before:
        return Decision("rotate", "near_max_ttl")
    return Decision("renew", "renew_window")


def renewal_capped(requested: int | None, granted: int | None) -> bool:
    """Vault grants less than asked only when the lease hit its max TTL."""
    if not requested or granted is None:
        return False
    return granted < requested


def decide_static(recorded: Recorded | None, source: str, username: str, password: str, rotate: bool) -> Decision:
    """Static credentials are rotated by Vault itself; the Secret follows them."""
    if rotate:
        return Decision("rotate", "requested")
    if recorded is None:
        return Decision("issue", "no_credentials")
    if recorded.source != source:
        return Decision("update", "source_changed")
    if not recorded.intact or not hash_matches(recorded.hash, username, password):
        return Decision("update", "vault_rotated")
    return Decision("keep", "unchanged")
