# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database credentials from Vault into a Secret: the work behind ``vault_db_secret``.

The Secret is the only state: its annotations record the lease, the superseded
leases still to revoke and a salted hash of the credentials. Each run reads the
Secret, asks Vault about the lease, decides with ``_vault_lease`` and writes
only when something changed. New credentials are never left behind: if the
Secret cannot be written, the lease just issued is revoked before failing.
"""

from __future__ import annotations

__metaclass__ = type

import base64
import datetime
import secrets as _secrets
import string
from typing import Any, Dict
from urllib.parse import quote

from ansible_collections.datastore.kubernetes.plugins.module_utils import _rollout
from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_lease as L
from ansible_collections.datastore.kubernetes.plugins.module_utils._apply import apply_object, make_diff
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    DatastoreError,
    InvalidInput,
    VaultError,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import VaultClient, VaultSession, parse_duration

# What one run knows about the credentials: the decision, the credentials, the lease, the leases to revoke.
State = Dict[str, Any]

TEMPLATE_FIELDS = ("username", "password", "username_url", "password_url", "lease_id", "lease_duration", "expires")
PLACEHOLDER = "(issued by Vault when not in check mode)"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _fields(username: str, password: str, lease: dict[str, Any]) -> dict[str, Any]:
    return {"username": username, "password": password, "username_url": quote(username, safe=""),
            "password_url": quote(password, safe=""), "lease_id": lease.get("lease_id") or "",
            "lease_duration": lease.get("duration") or 0, "expires": lease.get("expires") or ""}


def render_templates(templates: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, str]:
    """Extra Secret keys rendered with ``str.format``; errors name the key but never the values."""
    out = {}
    for key, template in (templates or {}).items():
        try:
            out[key] = str(template).format(**fields)
        except KeyError as exc:
            raise InvalidInput("templates", "%s: unknown field {%s}; use %s" % (key, exc.args[0], ", ".join(
                "{%s}" % f for f in TEMPLATE_FIELDS)))
        except (ValueError, IndexError, AttributeError) as exc:
            raise InvalidInput("templates", "%s: not a valid format string (%s)" % (key, exc.__class__.__name__))
    return out


def validate(params: Params) -> None:
    """Everything that can be checked before Vault or the cluster is asked anything."""
    keys = [params["username_key"], params["password_key"]] + list((params.get("templates") or {}).keys())
    if len(set(keys)) != len(keys):
        raise InvalidInput("templates", "Secret keys must be distinct: username_key, password_key and the "
                                        "template keys share a name")
    allowed = set(string.ascii_letters + string.digits + "-._")
    for key in keys:
        if not key or set(key) - allowed:
            raise InvalidInput("templates", "%r is not a valid Secret key (letters, digits, '-', '_', '.')" % key)
    render_templates(params.get("templates"), _fields("u", "p", {}))
    for key in params.get("annotations") or {}:
        if key in L.RESERVED_ANNOTATIONS:
            raise InvalidInput("annotations", "%s is set by this module" % key)
    for field in ("renew_before", "rotate_before", "renew_increment"):
        parse_duration(params.get(field), field)
    if params.get("revoke_grace") is not None and params["revoke_grace"] < 0:
        raise InvalidInput("revoke_grace", "must not be negative")
    for idx, target in enumerate(params.get("restart_targets") or []):
        if not target.get("name"):
            raise InvalidInput("restart_targets[%d].name" % idx, "is required")


class SecretRun:
    """One run of ``vault_db_secret``."""

    def __init__(self, task: Task, kube: KubeClient) -> None:
        self.task = task
        self.p = task.params
        self.check = task.check_mode
        self.now = L.utcnow()
        self.kube = kube
        self.session = VaultSession(self.p, kube_client_factory=lambda: self.kube)
        self.keep_token = False
        self.mount = self.p["mount_point"].strip("/")
        kind = "static-creds" if self.p["credential_type"] == "static" else "creds"
        self.source = "%s/%s/%s" % (self.mount, kind, self.p["role"])
        self.result: Result = {"changed": False, "revoked_leases": [], "restarted": [], "vault_token_kept": False}

    # -- plumbing ----------------------------------------------------------------
    @property
    def vault(self) -> VaultClient:
        return self.session.client

    def close(self) -> None:
        if self.session.auth is not None:
            warning = self.session.close(keep=self.keep_token)
            self.result["vault_token_kept"] = self.session.token_kept
            if warning:
                self.task.warn(warning)

    def hide(self, *values: str | None) -> None:
        """Keep values out of every output (Ansible masks no_log values) and out of errors."""
        for value in values:
            if value:
                self.task.hide(value)
                self.session.protect(value)

    def secret_name(self) -> str:
        return "Secret %s/%s" % (self.p["namespace"], self.p["name"])

    # -- entry points --------------------------------------------------------------
    def run(self) -> Result:
        validate(self.p)
        live = self.kube.get("v1", "Secret", self.p["name"], self.p["namespace"])
        try:
            if self.p["state"] == "absent":
                self.absent(live)
            else:
                self.present(live)
        finally:
            self.close()
        return self.result

    def held_credentials(self, live: Obj | None) -> tuple[str | None, str | None]:
        data = (live or {}).get("data") or {}
        username, password = _unb64(data.get(self.p["username_key"])), _unb64(data.get(self.p["password_key"]))
        self.hide(password)
        return username, password

    def absent(self, live: Obj | None) -> None:
        self.result.update(action="absent", reason="no_secret")
        if live is None:
            return
        annotations = live["metadata"].get("annotations") or {}
        superseded = L.parse_superseded(annotations.get(L.A_SUPERSEDED))
        leases: list[Any] = [annotations.get(L.A_LEASE_ID)] + [entry["lease_id"] for entry in superseded]
        leases = [lease for lease in leases if lease]
        if self.p["revoke_on_absent"] and not self.check:
            # Revoke first: once the Secret is gone nothing records which leases to revoke.
            for lease in leases:
                self.vault.revoke_lease(lease)
        if self.p["revoke_on_absent"]:
            self.result["revoked_leases"] = leases
        if not self.check:
            self.kube.delete("v1", "Secret", self.p["name"], self.p["namespace"])
        self.result.update(changed=True, action="deleted", reason="state_absent")
        if self.task.diff:
            self.result["diff"] = make_diff(live, None)

    def present(self, live: Obj | None) -> None:
        targets = self.restart_targets()
        username, password = self.held_credentials(live)
        recorded = L.recorded_state((live or {}).get("metadata", {}).get("annotations"), username, password)
        if self.p["credential_type"] == "static":
            state = self.static_credentials(recorded)
        else:
            state = self.dynamic_credentials(recorded, username, password)
        state["recorded"] = recorded
        self.write(live, state)
        self.restart(targets, recorded, state)

    # -- dynamic credentials -------------------------------------------------------
    def policy(self) -> L.Policy:
        return L.Policy(parse_duration(self.p.get("renew_before"), "renew_before"),
                        parse_duration(self.p.get("rotate_before"), "rotate_before"), bool(self.p["rotate"]))

    def dynamic_credentials(self, recorded: Any, username: str | None, password: str | None) -> State:
        superseded = list(recorded.superseded) if recorded else []
        due, pending = L.split_superseded(superseded, self.now)
        revoked = self.revoke_due(due)
        # Leases whose revocation failed stay recorded for the next run.
        pending += [e for e in due if e["lease_id"] not in revoked]
        lookup = None
        if recorded and recorded.lease_id and recorded.source == self.source and recorded.intact:
            lookup = self.vault.lookup_lease(recorded.lease_id)
        decision = L.decide_dynamic(self.now, self.source, recorded, L.lease_info(lookup), self.policy())
        state: State = {"decision": decision, "superseded": pending, "revoke_after_write": [], "minted": None}
        if decision.action in ("keep", "renew"):
            state["lease"] = {"lease_id": recorded.lease_id, "expires": L.format_time(recorded.expires)
                              if recorded.expires else "", "renewable": recorded.renewable,
                              "duration": recorded.duration,
                              "max_expires": L.format_time(recorded.max_expires) if recorded.max_expires else ""}
            state["credentials"] = (username, password)
            state["hash"] = recorded.hash
        if decision.action == "renew":
            decision = self.renew(state, recorded)
        if decision.action in ("issue", "rotate"):
            state["decision"] = decision
            self.issue(state)
            old = recorded.lease_id if recorded else None
            if old and decision.action == "rotate" and decision.reason != "lease_gone":
                self.supersede(state, old)
        return state

    def revoke_due(self, due: list[dict[str, str]]) -> list[str]:
        revoked = []
        for entry in due:
            if self.check:
                revoked.append(entry["lease_id"])
                continue
            try:
                self.vault.revoke_lease(entry["lease_id"])
                revoked.append(entry["lease_id"])
            except VaultError as exc:
                self.task.warn("superseded lease %s not revoked yet: %s" % (entry["lease_id"], exc.msg))
        self.result["revoked_leases"].extend(revoked)
        return revoked

    def supersede(self, state: State, old_lease: str) -> None:
        grace = self.p["revoke_grace"]
        if grace == 0:
            state["revoke_after_write"].append(old_lease)
        else:
            when = self.now + datetime.timedelta(seconds=grace)
            state["superseded"].append({"lease_id": old_lease, "revoke_after": L.format_time(when)})

    def renew(self, state: State, recorded: L.Recorded) -> L.Decision:
        lease = state["lease"]
        if self.check:
            return L.Decision("renew", "renew_window")
        increment = parse_duration(self.p.get("renew_increment"), "renew_increment") or recorded.duration
        answer = self.vault.renew_lease(recorded.lease_id, increment=increment) or {}
        granted = answer.get("lease_duration")
        if granted is None:
            raise VaultError("renew lease %s: Vault's answer has no lease_duration" % recorded.lease_id)
        expires = self.now + datetime.timedelta(seconds=granted)
        max_expires = recorded.max_expires
        if L.renewal_capped(increment, granted):
            max_expires = min(expires, max_expires) if max_expires else expires
        lease.update(expires=L.format_time(expires), renewable=bool(answer.get("renewable")),
                     max_expires=L.format_time(max_expires) if max_expires else "")
        return L.after_renewal(self.now, expires, max_expires, self.policy(), recorded.duration)

    def issue(self, state: State) -> None:
        """Mint new credentials (or, in check mode, only say so)."""
        if self.check:
            state.update(credentials=(PLACEHOLDER, PLACEHOLDER), hash=None,
                         lease={"lease_id": "", "expires": "", "renewable": False, "duration": 0, "max_expires": ""})
            return
        answer = self.vault.read(self.source, what="issue credentials from %s" % self.source)
        if not answer or not (answer.get("data") or {}).get("password"):
            raise VaultError("issue credentials from %s: Vault returned no credentials" % self.source)
        data = answer["data"]
        self.hide(data["password"])
        state["minted"] = answer.get("lease_id")
        # From here on this run owns a lease; the login token that issued it must outlive the run.
        self.keep_token = True
        state["credentials"] = (data["username"], data["password"])
        state["hash"] = L.credential_hash(data["username"], data["password"], _secrets.token_hex(8))
        duration = int(answer.get("lease_duration") or 0)
        state["lease"] = {"lease_id": answer.get("lease_id"), "renewable": bool(answer.get("renewable")),
                          "duration": duration,
                          "expires": L.format_time(self.now + datetime.timedelta(seconds=duration)),
                          "max_expires": self.hard_end()}

    def hard_end(self) -> str:
        """The time no renewal can pass: the role's max TTL or the issuing token's expiry, if known."""
        ends = []
        role = self.try_read("%s/roles/%s" % (self.mount, self.p["role"]))
        max_ttl = int(((role or {}).get("data") or {}).get("max_ttl") or 0)
        if max_ttl:
            ends.append(self.now + datetime.timedelta(seconds=max_ttl))
        token = self.vault.token_info()
        token_end = L.parse_time(token.get("expire_time")) if token.get("ttl") else None
        if token_end:
            ends.append(token_end)
        return L.format_time(min(ends)) if ends else ""

    def try_read(self, path: str) -> Any:
        """Read something optional; a consumer policy may well not allow it."""
        try:
            return self.vault.read(path)
        except VaultError:
            return None

    # -- static credentials ------------------------------------------------------------
    def static_credentials(self, recorded: Any) -> State:
        rotate = bool(self.p["rotate"])
        if rotate and not self.check:
            self.vault.write("%s/rotate-role/%s" % (self.mount, self.p["role"]), {},
                             what="rotate static role %s at %s" % (self.p["role"], self.mount))
        answer = self.vault.read(self.source, what="read static credentials from %s" % self.source)
        data = (answer or {}).get("data") or {}
        if not data.get("password"):
            raise VaultError("read static credentials from %s: Vault returned none" % self.source)
        self.hide(data["password"])
        username, password = data["username"], data["password"]
        decision = L.decide_static(recorded, self.source, username, password, rotate)
        if decision.action == "rotate" and self.check:
            username = password = PLACEHOLDER
        period = int(data.get("rotation_period") or 0)
        last = L.parse_time(data.get("last_vault_rotation"))
        if last and period:
            expires = last + datetime.timedelta(seconds=period)
        else:
            expires = self.now + datetime.timedelta(seconds=int(data.get("ttl") or 0))
        keep = decision.action == "keep"
        return {"decision": decision, "credentials": (username, password), "superseded": [],
                "hash": recorded.hash if keep else L.credential_hash(username, password, _secrets.token_hex(8)),
                "lease": {"lease_id": "", "expires": L.format_time(expires), "renewable": False,
                          "duration": period, "max_expires": "",
                          "last_rotation": L.format_time(last) if last else ""},
                "revoke_after_write": [], "minted": None}

    # -- the Secret ------------------------------------------------------------------
    def desired_secret(self, state: State) -> Obj:
        username, password = state["credentials"]
        lease = state["lease"]
        data = {self.p["username_key"]: username, self.p["password_key"]: password}
        rendered = render_templates(self.p.get("templates"), _fields(username, password, lease))
        self.hide(*[v for v in rendered.values() if password in v])
        data.update(rendered)
        annotations = dict(self.p.get("annotations") or {})
        annotations.update({L.A_SOURCE: self.source, L.A_EXPIRES: lease["expires"],
                            L.A_RENEWABLE: "true" if lease["renewable"] else "false",
                            L.A_DURATION: str(lease["duration"])})
        optional = {L.A_LEASE_ID: lease.get("lease_id"), L.A_MAX_EXPIRES: lease.get("max_expires"),
                    L.A_HASH: state.get("hash"), L.A_STATIC_ROTATION: lease.get("last_rotation"),
                    L.A_SUPERSEDED: L.dump_superseded(state["superseded"]) if state["superseded"] else None}
        annotations.update({k: v for k, v in optional.items() if v})
        meta = {"name": self.p["name"], "namespace": self.p["namespace"], "annotations": annotations}
        if self.p.get("labels"):
            meta["labels"] = dict(self.p["labels"])
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": self.p["secret_type"],
                "data": {k: _b64(v) for k, v in data.items()}}

    @staticmethod
    def matches(live: Obj | None, desired: Obj) -> bool:
        if live is None:
            return False
        meta, want = live.get("metadata") or {}, desired["metadata"]
        return (live.get("data") or {}) == desired["data"] and live.get("type") == desired["type"] \
            and (meta.get("labels") or {}) == want.get("labels", {}) \
            and all((meta.get("annotations") or {}).get(k) == v for k, v in want["annotations"].items()) \
            and not (set(meta.get("annotations") or {}) & set(L.RESERVED_ANNOTATIONS)) - set(want["annotations"])

    def write(self, live: Obj | None, state: State) -> None:
        decision = state["decision"]
        desired = self.desired_secret(state)
        # In check mode nothing is minted or renewed, so the comparison alone cannot see these.
        changed = decision.action in ("issue", "rotate", "renew", "update") or not self.matches(live, desired)
        after = live
        if changed:
            try:
                after = apply_object(self.kube, desired, check_mode=self.check, force=True).after
            except Exception as exc:  # whatever broke the write, the new lease must not be orphaned
                self.undo_mint(state, exc)
                raise
            if self.check and decision.action in ("issue", "rotate"):
                after = desired
        self.revoke_superseded_now(state)
        lease = state["lease"]
        self.result.update(
            changed=changed, action=_ACTIONS.get(decision.action, decision.action) if changed else "unchanged",
            reason=decision.reason, username=None if self.check and decision.action in ("issue", "rotate")
            else state["credentials"][0],
            secret={"name": self.p["name"], "namespace": self.p["namespace"], "keys": sorted(desired["data"])},
            lease={"lease_id": lease.get("lease_id") or None, "expires": lease.get("expires") or None,
                   "renewable": bool(lease.get("renewable")), "duration": lease.get("duration") or 0,
                   "max_expires": lease.get("max_expires") or None},
            superseded_leases=list(state["superseded"]))
        if self.task.diff:
            self.result["diff"] = make_diff(live, after)

    def undo_mint(self, state: State, exc: Exception) -> None:
        """The Secret could not take the new credentials: revoke them so no lease is orphaned."""
        if not state.get("minted"):
            return
        try:
            self.vault.revoke_lease(state["minted"])
        except VaultError as revoke_exc:
            if isinstance(exc, DatastoreError):
                exc.msg += "; the lease just issued (%s) could not be revoked either: %s" % (state["minted"],
                                                                                             revoke_exc.msg)
            return
        self.keep_token = False
        if isinstance(exc, DatastoreError):
            exc.msg = "%s: cannot write the new credentials (%s); the lease just issued was revoked" % (
                self.secret_name(), exc.msg)
            exc.args = (exc.msg,)

    def revoke_superseded_now(self, state: State) -> None:
        """revoke_grace=0: the old lease goes as soon as the Secret holds the new credentials."""
        for lease_id in state["revoke_after_write"]:
            if self.check:
                self.result["revoked_leases"].append(lease_id)
                continue
            try:
                self.vault.revoke_lease(lease_id)
                self.result["revoked_leases"].append(lease_id)
            except VaultError as exc:
                # Record it so the next run retries instead of forgetting the lease.
                state["superseded"].append({"lease_id": lease_id, "revoke_after": L.format_time(self.now)})
                self.kube.patch("v1", "Secret", self.p["name"], self.p["namespace"], {"metadata": {"annotations": {
                    L.A_SUPERSEDED: L.dump_superseded(state["superseded"])}}})
                self.task.warn("superseded lease %s not revoked yet: %s" % (lease_id, exc.msg))

    # -- consumers ---------------------------------------------------------------------
    def restart_targets(self) -> list[Obj]:
        """Look every target up before any credential is issued.

        A target that does not exist holds no credentials, so there is nothing to
        restart: the Secret is often written before its consumers are deployed.
        It is reported in ``restart_missing``; O(restart_missing) says whether it
        also warns (so that a typo shows), says nothing, or fails the task here,
        before anything is issued or written.
        """
        found, missing = _rollout.find_workloads(self.kube, self.p.get("restart_targets"), self.p["namespace"])
        if missing:
            mode = self.p["restart_missing"]
            if mode == "fail":
                raise InvalidInput("restart_targets", "%s not found; deploy them first, correct the names, or set "
                                   "restart_missing=warn or ignore" % ", ".join(missing))
            self.result["restart_missing"] = missing
            if mode == "warn":
                for ref in missing:
                    self.task.warn("restart target %s does not exist; nothing to restart there" % ref)
        return found

    def restart(self, targets: list[Obj], recorded: L.Recorded | None, state: State) -> None:
        """Roll consumers only when the credentials they hold really changed."""
        if not targets:
            return
        decision = state["decision"]
        changed_creds = recorded is not None and decision.action in ("issue", "rotate", "update")
        digest = L.hash_digest(state.get("hash")) if state.get("hash") else "pending"
        for obj in targets:
            held = _rollout.template_annotations(obj)
            # A target that carries an older hash missed a restart (a failed earlier run): catch up.
            stale = L.RESTART_HASH in held and held[L.RESTART_HASH] != digest
            if not (changed_creds or stale):
                continue
            self.result["restarted"].append(_rollout.restart(self.kube, obj, {L.RESTART_HASH: digest},
                                                             check_mode=self.check,
                                                             reason="after the credentials changed"))
            self.result["changed"] = True


_ACTIONS = {"issue": "issued", "rotate": "rotated", "renew": "renewed", "update": "updated", "keep": "updated"}


def run(task: Task, kube: KubeClient) -> Result:
    """The ``vault_db_secret`` module's work: the Secret through ``kube``, Vault through a session of its own."""
    return SecretRun(task, kube).run()
