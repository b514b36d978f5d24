# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database secrets engine, configured idempotently: the work behind ``vault_db_engine``.

Every object (connection, role, static role) is read, compared field by field
with what the task asks for and written only when they differ. The admin
password cannot be read back, so it is written on creation and, with
``update_password=always``, on every run.
"""

from __future__ import annotations

__metaclass__ = type

from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, VaultError
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import MASK_CHANGED
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import VaultClient, VaultSession, parse_duration

STATEMENTS = ("creation_statements", "revocation_statements", "rollback_statements", "renew_statements")


def statements(value: Any, field: str) -> list[str]:
    """A list of SQL statements from a string or a list (omitted means none, as in Vault)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidInput(field, "must be a string or a list of strings")


UNORDERED = ("allowed_roles",)


def _same(key: str, want: Any, have: Any) -> bool:
    """Compare a wanted value with Vault's answer, which may type scalars differently."""
    if isinstance(want, list) or isinstance(have, list):
        want, have = [str(v) for v in (want or [])], [str(v) for v in (have or [])]
        # Statements run in order; a set of role names has none.
        return sorted(want) == sorted(have) if key in UNORDERED else want == have
    if isinstance(want, bool) or isinstance(have, bool):
        return str(want).lower() == str(have).lower()
    return str(want) == str(have)


class Kind:
    """How one kind of engine object is addressed, validated and compared."""

    def __init__(self, name: str, path: str, label: str) -> None:
        self.name, self.path, self.label = name, path, label


CONNECTION = Kind("connections", "config", "connection")
ROLE = Kind("roles", "roles", "role")
STATIC_ROLE = Kind("static_roles", "static-roles", "static role")


def desired_connection(item: dict[str, Any], idx: int) -> dict[str, Any]:
    field = "connections[%d]" % idx
    for key in ("plugin_name", "connection_url"):
        if not item.get(key):
            raise InvalidInput("%s.%s" % (field, key), "is required when state=present")
    want = {"plugin_name": item["plugin_name"], "connection_url": item["connection_url"],
            "allowed_roles": list(item.get("allowed_roles") or [])}
    if item.get("username") is not None:
        want["username"] = item["username"]
    for key, value in (item.get("options") or {}).items():
        if key in ("password", "name") or key in want:
            raise InvalidInput("%s.options" % field, "%s is a module option; set it there" % key)
        want[key] = value
    return want


def desired_role(item: dict[str, Any], idx: int, default_db: str | None) -> dict[str, Any]:
    field = "roles[%d]" % idx
    want = {"db_name": item.get("db_name") or default_db}
    if not want["db_name"]:
        raise InvalidInput(field + ".db_name", "is required unless the task configures exactly one connection")
    for key in STATEMENTS:
        want[key] = statements(item.get(key), "%s.%s" % (field, key))
    if not want["creation_statements"]:
        raise InvalidInput(field + ".creation_statements", "is required when state=present")
    for key in ("default_ttl", "max_ttl"):
        want[key] = parse_duration(item.get(key), "%s.%s" % (field, key)) or 0
    return want


def desired_static_role(item: dict[str, Any], idx: int, default_db: str | None) -> dict[str, Any]:
    field = "static_roles[%d]" % idx
    want = {"db_name": item.get("db_name") or default_db, "username": item.get("username"),
            "rotation_period": parse_duration(item.get("rotation_period"), field + ".rotation_period"),
            "rotation_statements": statements(item.get("rotation_statements"), field + ".rotation_statements")}
    for key in ("db_name", "username", "rotation_period"):
        if not want[key]:
            raise InvalidInput("%s.%s" % (field, key), "is required when state=present")
    return want


def live_view(kind: Kind, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Vault's answer flattened to the fields the task can set."""
    if data is None:
        return None
    if kind is CONNECTION:
        view = dict(data.get("connection_details") or {})
        view.update({k: v for k, v in data.items() if k != "connection_details"})
        view.pop("password", None)
        return view
    return dict(data)


class EngineRun:
    """One run of ``vault_db_engine``."""

    def __init__(self, task: Task, session: VaultSession) -> None:
        self.task = task
        self.p = task.params
        self.check = task.check_mode
        self.session = session
        self.mount = self.p["mount_point"].strip("/")
        self.mount_exists = True
        self.result: Result = {"changed": False, "mount_point": self.mount, "mount_created": False,
                               "mount_removed": False, "revoked_leases": 0, "connections": [], "roles": [],
                               "static_roles": []}
        self.diff: dict[str, dict[str, Any]] = {"before": {}, "after": {}}

    @property
    def vault(self) -> VaultClient:
        """Vault, logged in on first use."""
        return self.session.client

    def plan(self) -> list[tuple[Kind, dict[str, Any], dict[str, Any] | None]]:
        """Validate every item and build what Vault should hold, before anything is sent."""
        conns = self.p.get("connections") or []
        present = [c["name"] for c in conns if c["state"] == "present"]
        default_db = present[0] if len(present) == 1 else None
        builders = ((CONNECTION, conns, desired_connection),
                    (ROLE, self.p.get("roles") or [], lambda i, n: desired_role(i, n, default_db)),
                    (STATIC_ROLE, self.p.get("static_roles") or [], lambda i, n: desired_static_role(i, n, default_db)))
        plan = []
        for kind, items, build in builders:
            names = [i["name"] for i in items]
            if len(set(names)) != len(names):
                raise InvalidInput(kind.name, "names must be unique")
            for idx, item in enumerate(items):
                want = build(item, idx) if item["state"] == "present" else None
                plan.append((kind, item, want))
        # Connections before the roles that use them; roles removed before their connection.
        first = [x for x in plan if x[0] is CONNECTION and x[2] is not None]
        last = [x for x in plan if x[0] is CONNECTION and x[2] is None]
        return first + [x for x in plan if x[0] is not CONNECTION] + last

    def run(self) -> Result:
        plan = self.plan() if self.p.get("state") != "absent" else []
        for item in self.p.get("connections") or []:
            if item.get("password"):
                self.task.hide(item["password"])
                self.session.protect(item["password"])
        try:
            if self.p.get("state") == "absent":
                self.remove_mount()
            else:
                # A task that only removes things does not enable the engine it would remove them from.
                self.ensure_mount(not plan or any(want is not None for _kind, _item, want in plan))
                for kind, item, want in plan:
                    self.reconcile(kind, item, want)
        finally:
            warning = self.session.close()
            if warning:
                self.task.warn(warning)
        if self.task.diff:
            self.result["diff"] = self.diff
        return self.result

    def database_mount(self) -> dict[str, Any] | None:
        """The engine mounted at ``mount_point`` (``None`` when nothing is); anything but a database engine is refused."""
        mount = self.vault.secrets_mount(self.mount)
        if mount is not None and mount.get("type") != "database":
            raise VaultError("mount_point %s holds a %s secrets engine, not database; choose another mount_point"
                             % (self.mount, mount.get("type")))
        return mount

    def ensure_mount(self, needed: bool) -> None:
        """Enable the engine when it is missing and ``needed``."""
        if self.database_mount() is not None:
            return
        self.mount_exists = False
        if not needed:
            return
        self.result.update(changed=True, mount_created=True)
        self.diff["before"]["mount"] = None
        self.diff["after"]["mount"] = {"path": self.mount, "type": "database"}
        if not self.check:
            self.vault.enable_secrets_mount(self.mount, "database")
            self.mount_exists = True

    def remove_mount(self) -> None:
        """state=absent: every lease under the mount revoked (while the connections exist), then the mount disabled."""
        if self.database_mount() is None:
            return
        prefix = self.mount + "/"
        leases = self.vault.count_leases(prefix)
        self.result.update(changed=True, mount_removed=True, revoked_leases=leases)
        self.diff["before"]["mount"] = {"path": self.mount, "type": "database"}
        self.diff["after"]["mount"] = None
        if self.check:
            return
        if leases:
            self.vault.revoke_prefix(prefix)
        self.vault.disable_secrets_mount(self.mount)

    def revoke_role_leases(self, name: str, entry: dict[str, Any]) -> None:
        """revoke_leases: the leases of a dynamic role being removed go first, while its connection exists."""
        prefix = "%s/creds/%s/" % (self.mount, name)
        leases = self.vault.count_leases(prefix)
        entry["revoked_leases"] = leases
        if not leases:
            return
        self.result["changed"] = True
        self.result["revoked_leases"] += leases
        if not self.check:
            self.vault.revoke_prefix(prefix)

    def path(self, kind: Kind, name: str) -> str:
        return "%s/%s/%s" % (self.mount, kind.path, name)

    def reconcile(self, kind: Kind, item: dict[str, Any], want: dict[str, Any] | None) -> None:
        name = item["name"]
        what = "%s %s at %s" % (kind.label, name, self.mount)
        live = None
        if self.mount_exists:
            answer = self.vault.read(self.path(kind, name), what="read " + what)
            live = live_view(kind, (answer or {}).get("data")) if answer else None
        entry: dict[str, Any] = {"name": name}
        if want is None:
            if kind is ROLE and self.p.get("revoke_leases") and self.mount_exists:
                self.revoke_role_leases(name, entry)
            entry["action"] = "deleted" if live is not None else "absent"
            if live is not None and not self.check:
                self.vault.delete(self.path(kind, name), what="delete " + what)
        else:
            # Options Vault does not read back (write-only ones) cannot be compared; they count as equal.
            unreadable = set(item.get("options") or {}) - set(live or {}) if kind is CONNECTION else set()
            diffs = sorted(k for k, v in want.items()
                           if live is None or (k not in unreadable and not _same(k, v, live.get(k))))
            send_password = kind is CONNECTION and bool(item.get("password")) and (
                live is None or self.p["update_password"] == "always")
            if send_password:
                diffs.append("password")
            entry["action"] = "created" if live is None else ("updated" if diffs else "unchanged")
            entry["changed_fields"] = diffs
            if diffs and not self.check:
                self.vault.write(self.path(kind, name), self.payload(kind, item, want, send_password),
                                 what="write " + what)
            want = dict(want, password=MASK_CHANGED) if send_password else want
        if entry["action"] in ("created", "updated", "deleted"):
            self.result["changed"] = True
            self.diff["before"].setdefault(kind.name, {})[name] = live
            self.diff["after"].setdefault(kind.name, {})[name] = want
        self.result[kind.name].append(entry)

    def payload(self, kind: Kind, item: dict[str, Any], want: dict[str, Any], send_password: bool) -> dict[str, Any]:
        body = dict(want)
        if kind is CONNECTION:
            body["verify_connection"] = item.get("verify_connection", True)
            if send_password:
                body["password"] = item["password"]
        return body


def run(task: Task, session: VaultSession) -> Result:
    """The ``vault_db_engine`` module's work; ``session`` is a ``_vault.VaultSession``."""
    return EngineRun(task, session).run()
