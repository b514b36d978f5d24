# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Playbooks written by a test: the plays as data, the local PostgreSQL as extra vars.

A playbook is written as JSON (which YAML reads); the tests run it with the ansible-playbook they
need (this environment's, or one that only sees an installed copy of the collection).
"""

from __future__ import annotations

import json


def postgres_extra_vars(localenv):
    """The local PostgreSQL, as the extra vars ``vault_database_connection`` refers to."""
    return {"pg_host": localenv["PGHOST"], "pg_port": localenv["PGPORT"], "pg_db": localenv["PGDATABASE"],
            "pg_user": localenv["PGUSER"], "pg_password": localenv["PGPASSWORD"]}


def vault_database_connection(roles, mount="{{ mount }}"):
    """vault_database role variables: a mount for the local PostgreSQL (from ``postgres_extra_vars``)."""
    return {"vault_database_mount_point": mount,
            "vault_database_db_host": "{{ pg_host }}",
            "vault_database_db_port": "{{ pg_port | int }}",
            "vault_database_db_name": "{{ pg_db }}",
            "vault_database_db_username": "{{ pg_user }}",
            "vault_database_db_password": "{{ pg_password }}",
            "vault_database_db_sslmode": "disable",
            "vault_database_roles": [{"name": name} for name in roles]}


def include_role(name, role, **variables):
    """A task that includes one of the collection's roles with these variables."""
    return {"name": name, "ansible.builtin.include_role": {"name": "datastore.kubernetes." + role},
            "vars": variables}


def write_playbook(path, name, tasks):
    """One local play of ``tasks``, written to ``path``; returns the path as a string."""
    play = [{"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with open(str(path), "w") as handle:
        json.dump(play, handle, indent=2)
    return str(path)
