"""vault_db_engine against the local OpenBao and PostgreSQL; hvac and psycopg2 check the effects."""

from __future__ import annotations

import hvac.exceptions
import pytest

from testlib import unique
from testlib.vault import (
    CREATE_SQL,
    OutputScanner,
    connection_url,
    count_leases,
    pg_admin,
    pg_login,
)


@pytest.fixture
def mount(vault):
    name = unique("database")
    try:
        yield name
    finally:
        try:
            vault.sys.disable_secrets_engine(name)
        except hvac.exceptions.VaultError:
            pass


@pytest.fixture
def static_user(localenv):
    """A PostgreSQL user for a static role to manage."""
    name = unique("static").replace("-", "_")
    conn = pg_admin(localenv)
    with conn.cursor() as cur:
        cur.execute('CREATE ROLE "%s" WITH LOGIN PASSWORD %%s' % name, ("initial-" + name,))
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute('DROP ROLE IF EXISTS "%s"' % name)
        conn.close()


@pytest.fixture
def run(run_module, localenv):
    scanner = OutputScanner(run_module, secrets=[localenv["PGPASSWORD"], localenv["VAULT_TOKEN"]])
    yield scanner
    scanner.assert_clean()


def engine_params(localenv, mount, **over):
    params = {
        "mount_point": mount,
        "connections": [{
            "name": "pg", "plugin_name": "postgresql-database-plugin", "connection_url": connection_url(localenv),
            "username": localenv["PGUSER"], "password": localenv["PGPASSWORD"], "allowed_roles": ["app", "migrate"],
        }],
        "roles": [{"name": "app", "creation_statements": list(CREATE_SQL[:1]), "default_ttl": "1h", "max_ttl": "24h"}],
    }
    params.update(over)
    return params


def test_create_then_second_run_unchanged(run, vault, mount, localenv):
    params = engine_params(localenv, mount)

    checked = run("vault_db_engine", params, check=True)
    assert checked["changed"] and checked["mount_created"], checked
    assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"], "check mode enabled the engine"

    first = run("vault_db_engine", params)
    assert first["changed"], first
    assert first["connections"][0]["action"] == "created"
    assert first["roles"][0]["action"] == "created"
    assert first["diff"]["after"]["connections"]["pg"]["password"] == "<masked, changed>"
    config = vault.read("%s/config/pg" % mount)["data"]
    assert config["connection_details"]["username"] == localenv["PGUSER"]
    assert sorted(config["allowed_roles"]) == ["app", "migrate"]
    role = vault.read("%s/roles/app" % mount)["data"]
    assert role["default_ttl"] == 3600 and role["max_ttl"] == 86400

    # The engine really works: the role issues credentials PostgreSQL accepts.
    creds = vault.read("%s/creds/app" % mount)
    run.add(creds["data"]["password"])
    assert pg_login(localenv, creds["data"]["username"], creds["data"]["password"])
    vault.sys.revoke_lease(creds["lease_id"])

    second = run("vault_db_engine", params)
    assert not second["changed"], second
    assert [c["action"] for c in second["connections"]] == ["unchanged"]
    assert [r["action"] for r in second["roles"]] == ["unchanged"]
    assert "diff" not in second or not second["diff"]["after"]


def test_changes_are_detected_field_by_field(run, vault, mount, localenv):
    run("vault_db_engine", engine_params(localenv, mount))
    changed = engine_params(localenv, mount)
    changed["roles"][0]["default_ttl"] = 1800
    result = run("vault_db_engine", changed)
    assert result["changed"]
    assert result["roles"][0] == {"name": "app", "action": "updated", "changed_fields": ["default_ttl"]}
    assert result["connections"][0]["action"] == "unchanged"
    assert vault.read("%s/roles/app" % mount)["data"]["default_ttl"] == 1800

    # The password is write-only: only update_password=always writes (and reports) it.
    always = run("vault_db_engine", dict(changed, update_password="always"))
    assert always["changed"] and always["connections"][0]["changed_fields"] == ["password"]
    assert not run("vault_db_engine", changed)["changed"]


def test_check_mode_writes_nothing_on_existing_engine(run, vault, mount, localenv):
    run("vault_db_engine", engine_params(localenv, mount))
    changed = engine_params(localenv, mount)
    changed["roles"][0]["max_ttl"] = "2h"
    result = run("vault_db_engine", changed, check=True)
    assert result["changed"] and result["roles"][0]["changed_fields"] == ["max_ttl"]
    assert vault.read("%s/roles/app" % mount)["data"]["max_ttl"] == 86400


def test_static_role_and_absent(run, vault, mount, localenv, static_user):
    params = engine_params(localenv, mount, static_roles=[
        {"name": "migrate", "username": static_user, "rotation_period": "24h"}])
    first = run("vault_db_engine", params)
    assert first["static_roles"][0]["action"] == "created"
    static = vault.read("%s/static-creds/migrate" % mount)["data"]
    run.add(static["password"])
    assert static["username"] == static_user
    assert pg_login(localenv, static_user, static["password"])
    assert not run("vault_db_engine", params)["changed"]

    gone = dict(params, roles=[{"name": "app", "state": "absent"}],
                static_roles=[{"name": "migrate", "state": "absent"}],
                connections=[dict(params["connections"][0], state="absent")])
    removed = run("vault_db_engine", gone)
    assert removed["changed"]
    assert [r["action"] for r in removed["roles"] + removed["static_roles"] + removed["connections"]] == [
        "deleted", "deleted", "deleted"]
    assert vault.read("%s/roles/app" % mount) is None
    assert vault.read("%s/config/pg" % mount) is None
    again = run("vault_db_engine", gone)
    assert not again["changed"]
    assert again["roles"][0]["action"] == "absent"


def issue(vault, run, mount, role="app"):
    """Credentials of ``role`` read straight from Vault (a lease, as a consumer would hold)."""
    creds = vault.read("%s/creds/%s" % (mount, role))
    run.add(creds["data"]["password"])
    return creds["data"]["username"], creds["data"]["password"]


def test_revoke_leases_before_a_role_is_removed(run, vault, mount, localenv):
    params = engine_params(localenv, mount)
    run("vault_db_engine", params)
    logins = [issue(vault, run, mount) for _unused in range(2)]
    assert all(pg_login(localenv, *login) for login in logins)
    gone = dict(params, revoke_leases=True, roles=[{"name": "app", "state": "absent"}],
                connections=[dict(params["connections"][0], state="absent")])

    checked = run("vault_db_engine", gone, check=True)
    assert checked["changed"] and checked["revoked_leases"] == 2, checked
    assert checked["roles"][0]["revoked_leases"] == 2
    assert count_leases(vault, mount, "app") == 2, "check mode revoked leases"
    assert all(pg_login(localenv, *login) for login in logins), "check mode dropped a login"

    removed = run("vault_db_engine", gone)
    assert removed["changed"] and removed["revoked_leases"] == 2, removed
    assert count_leases(vault, mount, "app") == 0
    # Vault revoked them through the connection before it went: PostgreSQL has dropped the logins.
    assert not any(pg_login(localenv, *login) for login in logins)
    assert vault.read("%s/roles/app" % mount) is None and vault.read("%s/config/pg" % mount) is None
    assert mount + "/" in vault.sys.list_mounted_secrets_engines()["data"], "the mount itself stays"

    again = run("vault_db_engine", gone)
    assert not again["changed"] and again["revoked_leases"] == 0, again


def test_state_absent_revokes_every_lease_and_disables_the_mount(run, vault, mount, localenv):
    run("vault_db_engine", engine_params(localenv, mount))
    login = issue(vault, run, mount)
    absent = {"mount_point": mount, "state": "absent"}

    checked = run("vault_db_engine", absent, check=True)
    assert checked["changed"] and checked["mount_removed"] and checked["revoked_leases"] == 1, checked
    assert mount + "/" in vault.sys.list_mounted_secrets_engines()["data"], "check mode disabled the mount"
    assert pg_login(localenv, *login), "check mode revoked the lease"

    removed = run("vault_db_engine", absent)
    assert removed["changed"] and removed["mount_removed"] and removed["revoked_leases"] == 1, removed
    assert removed["diff"]["before"]["mount"] == {"path": mount, "type": "database"}
    assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"]
    assert not pg_login(localenv, *login)

    again = run("vault_db_engine", absent)
    assert not again["changed"] and not again["mount_removed"], again


def test_removing_from_a_missing_mount_does_not_enable_it(run, vault, mount, localenv):
    gone = {"mount_point": mount, "roles": [{"name": "app", "state": "absent"}],
            "connections": [{"name": "pg", "state": "absent"}], "revoke_leases": True}
    result = run("vault_db_engine", gone)
    assert not result["changed"] and not result["mount_created"], result
    assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"]


def test_bad_input_and_unreachable_vault_fail_clearly(run, mount, localenv):
    bad = engine_params(localenv, mount, roles=[{"name": "x", "db_name": "pg"}])
    result = run("vault_db_engine", bad)
    assert result["failed"] and "roles[0].creation_statements" in result["msg"]

    down = run("vault_db_engine", dict(engine_params(localenv, mount), url="http://127.0.0.1:9", vault_retries=0))
    assert down["failed"]
    assert "cannot reach Vault at http://127.0.0.1:9" in down["msg"]


def test_wrong_mount_type_is_refused(run, vault, localenv):
    name = unique("kv")
    vault.sys.enable_secrets_engine("kv", path=name, options={"version": "1"})
    try:
        result = run("vault_db_engine", engine_params(localenv, name))
        assert result["failed"] and "holds a kv secrets engine" in result["msg"]
    finally:
        vault.sys.disable_secrets_engine(name)
