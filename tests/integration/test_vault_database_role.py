"""The vault_database role's teardown, through vault_db_engine, against the local OpenBao and PostgreSQL.

The leases of the datastore's dynamic roles are revoked before the roles and the connection go
(the logins are gone from PostgreSQL), check mode changes nothing, a revocation counts as a change,
and with vault_database_disable_mount the whole mount goes.
"""

from __future__ import annotations

import json
import sys

import pytest
from testlib import unique
from testlib.playbooks import include_role, postgres_extra_vars, vault_database_connection, write_playbook
from testlib.reliability import JSON_CALLBACK, ansible_playbook
from testlib.vault import count_leases, pg_login


@pytest.fixture
def mount(vault):
    name = unique("role-db")
    yield name
    if name + "/" in vault.sys.list_mounted_secrets_engines()["data"]:
        vault.sys.disable_secrets_engine(name)


def role(localenv, tmp_path, mount, check=False, **extra):
    playbook = write_playbook(tmp_path / "play.yml", "vault_database", [
        include_role("The role", "vault_database", **vault_database_connection(["app"]))])
    variables = dict(postgres_extra_vars(localenv), ansible_python_interpreter=sys.executable, mount=mount)
    variables.update(extra)
    args = ["-i", "localhost,", "-e", json.dumps(variables), playbook] + (["--check"] if check else [])
    proc = ansible_playbook(localenv, args, extra_env=JSON_CALLBACK, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for play in run["plays"] for task in play["tasks"]
            if task["task"]["name"].endswith("Remove the datastore from the database secrets engine")]


def test_teardown_revokes_the_roles_leases_then_removes_roles_and_connection(vault, localenv, tmp_path, mount):
    role(localenv, tmp_path, mount)
    creds = vault.read("%s/creds/app" % mount)["data"]
    assert pg_login(localenv, creds["username"], creds["password"])

    (checked,) = role(localenv, tmp_path, mount, check=True, vault_database_state="absent")
    assert checked["changed"] and checked["revoked_leases"] == 1, checked
    assert count_leases(vault, mount, "app") == 1 and pg_login(localenv, creds["username"], creds["password"])

    (removed,) = role(localenv, tmp_path, mount, vault_database_state="absent")
    assert removed["changed"] and removed["revoked_leases"] == 1, removed
    assert count_leases(vault, mount, "app") == 0
    assert not pg_login(localenv, creds["username"], creds["password"])
    assert vault.read("%s/roles/app" % mount) is None and vault.read("%s/config/datastore" % mount) is None
    assert mount + "/" in vault.sys.list_mounted_secrets_engines()["data"]

    (again,) = role(localenv, tmp_path, mount, vault_database_state="absent")
    assert not again["changed"], again


def test_teardown_with_disable_mount_removes_the_mount(vault, localenv, tmp_path, mount):
    role(localenv, tmp_path, mount)
    creds = vault.read("%s/creds/app" % mount)["data"]

    (removed,) = role(localenv, tmp_path, mount, vault_database_state="absent", vault_database_disable_mount=True)
    assert removed["changed"] and removed["mount_removed"] and removed["revoked_leases"] == 1, removed
    assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"]
    assert not pg_login(localenv, creds["username"], creds["password"])
