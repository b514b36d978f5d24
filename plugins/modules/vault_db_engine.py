#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_db_engine
short_description: Configure the Vault / OpenBao database secrets engine idempotently
version_added: 0.1.0
description:
  - Enables the database secrets engine at O(mount_point) when nothing is mounted there, unless the task only
    removes connections or roles (there is nothing to remove then).
  - Configures database connections, dynamic roles and static roles, and removes them with C(state=absent).
  - With O(state=absent), revokes every lease under O(mount_point) and disables the engine, with everything in it.
  - Reads every object first and writes only what differs, so a second identical run reports C(changed=false).
  - The connection password cannot be read back from Vault; it is written when the connection is created, and on
    every run with O(update_password=always).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.vault
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads Vault and reports what would change; nothing is written.
    support: full
  diff_mode:
    description: Returns each changed object before and after; the connection password is always masked.
    support: full
options:
  mount_point:
    description:
      - Path of the database secrets engine.
    type: str
    default: database
  state:
    description:
      - V(present) configures the engine as O(connections), O(roles) and O(static_roles) say.
      - V(absent) revokes every lease issued under O(mount_point) (Vault runs the roles' revocation statements through
        their connection) and then disables the engine, which removes its connections and roles too. The items of
        O(connections), O(roles) and O(static_roles) are not needed then, and are not looked at.
      - Revoking leases needs C(sudo) on C(sys/leases/lookup/<mount_point>/*) and C(sys/leases/revoke-prefix/<mount_point>/*).
    type: str
    choices: [present, absent]
    default: present
  revoke_leases:
    description:
      - With O(state=present), revoke the leases of a dynamic role of O(roles) with C(state=absent) before the role is
        deleted. Vault revokes a lease through the connection that issued it, so this must happen while the
        connection exists; roles are handled before the connections removed in the same task.
      - A revocation is a change; in check mode the leases are counted and nothing is revoked.
    type: bool
    default: false
  connections:
    description:
      - Database connections (C(<mount_point>/config/<name>)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the connection, used as C(db_name) by roles.
        type: str
        required: true
      state:
        description: Whether the connection should exist.
        type: str
        choices: [present, absent]
        default: present
      plugin_name:
        description: Database plugin, for example V(postgresql-database-plugin). Required when present.
        type: str
      connection_url:
        description:
          - Connection string with C({{username}}) and C({{password}}) placeholders that Vault fills in.
            In a playbook, mark it C(!unsafe) so Ansible does not template the braces.
          - Required when present.
        type: str
      username:
        description: Admin user Vault manages credentials with.
        type: str
      password:
        description:
          - Password of O(connections[].username). Write-only, see O(update_password). Never returned.
        type: str
      allowed_roles:
        description: Roles allowed to use this connection; V(*) allows all. Empty allows none.
        type: list
        elements: str
        default: []
      verify_connection:
        description: Whether Vault connects to the database to check the settings when writing them.
        type: bool
        default: true
      options:
        description:
          - Further plugin settings, for example C(max_open_connections), C(password_authentication),
            C(root_rotation_statements). Settings Vault does not return cannot be compared and count as unchanged.
        type: dict
        default: {}
  roles:
    description:
      - Dynamic roles (C(<mount_point>/roles/<name>)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the role.
        type: str
        required: true
      state:
        description: Whether the role should exist.
        type: str
        choices: [present, absent]
        default: present
      db_name:
        description: Connection to use. Defaults to the only connection of the task when there is exactly one.
        type: str
      creation_statements:
        description:
          - SQL creating the user; C({{name}}), C({{password}}), C({{expiration}}) are filled in by Vault.
            A string or a list. Required when present.
        type: raw
      revocation_statements:
        description: SQL run when a lease is revoked. Omitted means none (Vault's default).
        type: raw
      rollback_statements:
        description: SQL run when creating the user failed.
        type: raw
      renew_statements:
        description: SQL run when a lease is renewed.
        type: raw
      default_ttl:
        description: Lease duration, as seconds or a duration such as V(1h). V(0) uses the mount's default.
        type: raw
      max_ttl:
        description: Longest lifetime of a lease including renewals. V(0) uses the mount's maximum.
        type: raw
  static_roles:
    description:
      - Static roles (C(<mount_point>/static-roles/<name>)). Vault rotates the password of an existing user.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the static role.
        type: str
        required: true
      state:
        description: Whether the static role should exist.
        type: str
        choices: [present, absent]
        default: present
      db_name:
        description: Connection to use. Defaults to the only connection of the task when there is exactly one.
        type: str
      username:
        description: Existing database user whose password Vault rotates. Required when present.
        type: str
      rotation_period:
        description: How often Vault rotates the password, as seconds or a duration such as V(24h). Required when present.
        type: raw
      rotation_statements:
        description: SQL changing the password; C({{name}}) and C({{password}}) are filled in by Vault.
        type: raw
  update_password:
    description:
      - V(on_create) writes the connection password only when the connection is created.
      - V(always) writes it on every run; the connection then reports C(changed) every time.
    type: str
    choices: [always, on_create]
    default: on_create
notes:
  - The Kubernetes connection options are only used to request a ServiceAccount token with
    O(auth_method=kubernetes) and O(service_account_name).
  - The token needs C(read) on C(sys/mounts), C(create) and C(update) on C(sys/mounts/<mount_point>) when the
    engine is to be enabled, and C(create), C(read), C(update), C(delete) on the engine's C(config/*),
    C(roles/*) and C(static-roles/*) paths.
seealso:
  - module: datastore.kubernetes.vault_db_secret
"""

EXAMPLES = r"""
- name: Configure PostgreSQL credentials in Vault
  datastore.kubernetes.vault_db_engine:
    url: https://vault.example.com:8200
    mount_point: database
    connections:
      - name: app-db
        plugin_name: postgresql-database-plugin
        connection_url: !unsafe "postgresql://{{username}}:{{password}}@db-0.db.prod.svc:5432/app?sslmode=require"
        username: vault_admin
        password: "{{ vault_admin_password }}"
        allowed_roles: [app-rw, app-ro, app-migrate]
    roles:
      - name: app-rw
        creation_statements:
          - !unsafe "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
          - !unsafe "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{{name}}\";"
        revocation_statements: !unsafe "DROP ROLE IF EXISTS \"{{name}}\";"
        default_ttl: 1h
        max_ttl: 24h
    static_roles:
      - name: app-migrate
        username: app_migrate
        rotation_period: 24h

- name: Authenticate with a ServiceAccount of the cluster (TokenRequest) instead of a token
  datastore.kubernetes.vault_db_engine:
    url: https://vault.example.com:8200
    auth_method: kubernetes
    auth_role: db-admin
    service_account_name: vault-admin
    service_account_namespace: platform
    roles:
      - name: app-ro
        db_name: app-db
        creation_statements: !unsafe "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"

- name: Remove a role and its connection, revoking the credentials the role issued first
  datastore.kubernetes.vault_db_engine:
    mount_point: database
    revoke_leases: true
    roles:
      - name: app-ro
        state: absent
    connections:
      - name: app-db
        state: absent

- name: Remove the whole engine, revoking every lease under it
  datastore.kubernetes.vault_db_engine:
    mount_point: database
    state: absent
"""

RETURN = r"""
mount_point:
  description: The engine's mount point.
  returned: always
  type: str
  sample: database
mount_created:
  description: Whether the engine was (or, in check mode, would be) enabled by this run.
  returned: always
  type: bool
mount_removed:
  description: Whether the engine was (or, in check mode, would be) disabled by this run (O(state=absent)).
  returned: always
  type: bool
revoked_leases:
  description:
    - How many leases were (or, in check mode, would be) revoked, under the whole mount with O(state=absent), under
      the removed roles with O(revoke_leases=true). Each role entry of RV(roles) has its own count.
  returned: always
  type: int
  sample: 3
connections:
  description: What happened to each connection.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Connection name.
      type: str
      returned: always
    action:
      description: V(created), V(updated), V(unchanged), V(deleted) or V(absent) (nothing to delete).
      type: str
      returned: always
    changed_fields:
      description: Fields that differed from Vault (V(password) when the password was written). Only for C(state=present).
      type: list
      elements: str
      returned: when state is present
  sample: [{"name": "app-db", "action": "created", "changed_fields": ["allowed_roles", "password"]}]
roles:
  description:
    - What happened to each dynamic role, like RV(connections).
    - With O(revoke_leases=true), a removed role's entry has C(revoked_leases), the number of its leases revoked.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app-rw", "action": "unchanged", "changed_fields": []}]
static_roles:
  description: What happened to each static role, like RV(connections).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app-migrate", "action": "updated", "changed_fields": ["rotation_period"]}]
diff:
  description: Changed objects before and after, keyed by kind and name; the password shows as C(<masked, changed>).
  returned: in diff mode
  type: dict
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_db_engine
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec, vault_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import check_hvac_library, connect

STATE = {"type": "str", "choices": ["present", "absent"], "default": "present"}


def argument_spec():
    connection = {
        "name": {"type": "str", "required": True}, "state": STATE,
        "plugin_name": {"type": "str"}, "connection_url": {"type": "str"},
        "username": {"type": "str"}, "password": {"type": "str", "no_log": True},
        "allowed_roles": {"type": "list", "elements": "str", "default": []},
        "verify_connection": {"type": "bool", "default": True},
        "options": {"type": "dict", "default": {}},
    }
    role = {
        "name": {"type": "str", "required": True}, "state": STATE, "db_name": {"type": "str"},
        "creation_statements": {"type": "raw"}, "revocation_statements": {"type": "raw"},
        "rollback_statements": {"type": "raw"}, "renew_statements": {"type": "raw"},
        "default_ttl": {"type": "raw"}, "max_ttl": {"type": "raw"},
    }
    static_role = {
        "name": {"type": "str", "required": True}, "state": STATE, "db_name": {"type": "str"},
        "username": {"type": "str"}, "rotation_period": {"type": "raw"}, "rotation_statements": {"type": "raw"},
    }
    spec = kube_argspec(**vault_argspec(
        mount_point={"type": "str", "default": "database"},
        state=STATE,
        revoke_leases={"type": "bool", "default": False},
        connections={"type": "list", "elements": "dict", "default": [], "options": connection},
        roles={"type": "list", "elements": "dict", "default": [], "options": role},
        static_roles={"type": "list", "elements": "dict", "default": [], "options": static_role},
        update_password={"type": "str", "choices": ["always", "on_create"], "default": "on_create", "no_log": False},
    ))
    return spec


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_hvac_library(module)
    run_module(module, _vault_db_engine.run, connect)


if __name__ == "__main__":
    main()
