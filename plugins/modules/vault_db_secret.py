#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_db_secret
short_description: Database credentials from Vault / OpenBao in a Kubernetes Secret, with their lease managed
version_added: 0.1.0
description:
  - Reads dynamic (C(<mount_point>/creds/<role>)) or static (C(<mount_point>/static-creds/<role>)) database
    credentials and writes them into a Secret, with extra keys rendered from them (a connection URI).
  - Records the lease in the Secret's annotations (id, expiry, renewable, duration) together with a salted
    SHA-256 hash of the credentials - never the credentials or a token.
  - "On a re-run: a lease that is alive and far from its end is left alone (nothing is written, no new lease);
    within O(renew_before) of its expiry a renewable lease is renewed; new credentials are issued when the lease
    is gone, is not renewable, is within O(rotate_before) of its end or of its max TTL, the Secret's credentials
    were modified, or O(rotate=true)."
  - The lease that new credentials replace is recorded and revoked once O(revoke_grace) seconds have passed - at
    once with V(0), otherwise on the first run after that.
  - O(restart_targets) are rollout-restarted only when the credentials really changed.
  - Static credentials are rotated by Vault itself; each run follows them and O(rotate=true) asks Vault to rotate now.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.vault
attributes:
  check_mode:
    description: Issues, renews and revokes nothing and writes no Secret; reports what would happen.
    support: full
  diff_mode:
    description: Returns the Secret before and after; every value is masked.
    support: full
options:
  name:
    description: Name of the Secret.
    type: str
    required: true
  namespace:
    description: Namespace of the Secret.
    type: str
    required: true
  state:
    description:
      - V(present) keeps valid credentials in the Secret.
      - V(absent) revokes the Secret's lease and the superseded ones (see O(revoke_on_absent)), then deletes the Secret.
    type: str
    choices: [present, absent]
    default: present
  mount_point:
    description: Path of the database secrets engine.
    type: str
    default: database
  role:
    description: Vault database role to read credentials for. Required when O(state=present).
    type: str
  credential_type:
    description: V(dynamic) issues credentials with a lease; V(static) reads a static role's credentials.
    type: str
    choices: [dynamic, static]
    default: dynamic
  username_key:
    description: Secret key holding the user name.
    type: str
    default: username
  password_key:
    description: Secret key holding the password.
    type: str
    default: password
  templates:
    description:
      - Extra Secret keys rendered with Python C(str.format) from C({username}), C({password}),
        C({username_url}) and C({password_url}) (URL-encoded), C({lease_id}), C({lease_duration}) and C({expires}).
      - Literal braces are written C({{) and C(}}).
    type: dict
    default: {}
  labels:
    description: Labels of the Secret.
    type: dict
    default: {}
  annotations:
    description: Further annotations of the Secret. The C(datastore.kubernetes/vault-*) ones are reserved.
    type: dict
    default: {}
  secret_type:
    description: Type of the Secret.
    type: str
    default: Opaque
  renew_before:
    description:
      - Renew a renewable lease once less than this is left before it expires. Seconds or a duration such as V(20m).
      - Defaults to a third of the lease duration.
    type: raw
  rotate_before:
    description:
      - Issue new credentials once less than this is left before the lease's end or its max TTL (learnt from the
        role when the token may read it, from the issuing token's expiry, or from a renewal Vault capped).
      - Defaults to a sixth of the lease duration.
    type: raw
  renew_increment:
    description: Lease extension to ask for when renewing. Defaults to the lease's original duration.
    type: raw
  rotate:
    description: Issue new credentials now (for static roles, ask Vault to rotate the password now).
    type: bool
    default: false
  revoke_grace:
    description:
      - Seconds the superseded lease stays valid after new credentials were written, so consumers can switch over.
      - V(0) revokes it as soon as the Secret holds the new credentials; otherwise on the first run after the grace period.
    type: int
    default: 0
  revoke_on_absent:
    description: Whether O(state=absent) revokes the Secret's lease and its superseded leases.
    type: bool
    default: true
  restart_targets:
    description:
      - Workloads to rollout-restart when the credentials changed (not on renewal, not on a run that changes nothing).
      - The pod template gets the annotations C(datastore.kubernetes/restartedAt) and C(datastore.kubernetes/credentials-hash),
        so two rotations within one second still make two rollouts.
    type: list
    elements: dict
    default: []
    suboptions:
      kind:
        description: Kind of the workload.
        type: str
        choices: [StatefulSet, Deployment, DaemonSet]
        required: true
      name:
        description: Name of the workload.
        type: str
        required: true
      namespace:
        description: Namespace of the workload; defaults to O(namespace).
        type: str
  restart_missing:
    description:
      - What to do about O(restart_targets) that do not exist. They hold no credentials, so there is nothing to restart
        there; they are listed in RV(restart_missing) either way.
      - V(warn) warns, naming each, so that a misspelt target shows; V(ignore) says nothing (credentials issued before
        their consumers are deployed); V(fail) fails before any credential is issued or anything is written.
    type: str
    choices: [warn, ignore, fail]
    default: warn
notes:
  - "The Vault token needs: C(read) on C(<mount_point>/creds/<role>) (or C(static-creds)), C(update) on
    C(sys/leases/lookup), C(sys/leases/renew) and C(sys/leases/revoke); optionally C(read) on
    C(<mount_point>/roles/<role>) so the role's max TTL is known."
  - Vault revokes a token's leases together with the token. A token obtained by logging in that issued new
    credentials is therefore kept (RV(vault_token_kept)), and the credentials cannot outlive it - give the auth role a
    C(token_max_ttl) at least as long as the database role's C(max_ttl); the module rotates before the token expires.
  - The module owns the Secret's keys and annotations it writes (server-side apply, forced).
  - Every credential value is added to the values Ansible masks, so it shows in no output at any verbosity.
seealso:
  - module: datastore.kubernetes.vault_db_engine
"""

EXAMPLES = r"""
- name: Dynamic PostgreSQL credentials for the app, with a connection URI
  datastore.kubernetes.vault_db_secret:
    url: https://vault.example.com:8200
    auth_method: kubernetes
    auth_role: app-creds
    service_account_name: app
    namespace: prod
    name: app-db-credentials
    mount_point: database
    role: app-rw
    templates:
      uri: "postgresql://{username_url}:{password_url}@db-0.db.prod.svc:5432/app"
    renew_before: 20m
    revoke_grace: 300
    restart_targets:
      - kind: Deployment
        name: app
  register: creds

- name: Show when the lease ends
  ansible.builtin.debug:
    msg: "{{ creds.username }} valid until {{ creds.lease.expires }}"

- name: Rotate now (the old lease is revoked by the first run after revoke_grace)
  datastore.kubernetes.vault_db_secret:
    namespace: prod
    name: app-db-credentials
    role: app-rw
    rotate: true
    revoke_grace: 300

- name: Static role credentials, followed when Vault rotates them
  datastore.kubernetes.vault_db_secret:
    namespace: prod
    name: migrate-db-credentials
    role: app-migrate
    credential_type: static

- name: Remove the Secret and revoke its leases
  datastore.kubernetes.vault_db_secret:
    namespace: prod
    name: app-db-credentials
    state: absent
"""

RETURN = r"""
action:
  description: V(issued), V(rotated), V(renewed), V(updated) (Secret re-rendered or static credentials followed),
    V(unchanged), V(deleted) or V(absent).
  returned: always
  type: str
  sample: renewed
reason:
  description: Why, for example V(no_credentials), V(lease_valid), V(renew_window), V(near_expiry), V(near_max_ttl),
    V(not_renewable), V(lease_gone), V(secret_modified), V(requested), V(vault_rotated), V(state_absent).
  returned: always
  type: str
  sample: lease_valid
username:
  description: User name of the credentials in the Secret (the password is never returned). None in check mode for new credentials.
  returned: when state is present
  type: str
  sample: v-approle-app-rw-x7Hq2
secret:
  description: The Secret and the keys it holds (no values).
  returned: when state is present
  type: dict
  sample: {"name": "app-db-credentials", "namespace": "prod", "keys": ["password", "uri", "username"]}
lease:
  description: The lease now recorded in the Secret.
  returned: when state is present
  type: dict
  contains:
    lease_id:
      description: Lease ID (none for static credentials).
      type: str
    expires:
      description: RFC 3339 time the lease expires (for static credentials, the next rotation).
      type: str
    renewable:
      description: Whether the lease can be renewed.
      type: bool
    duration:
      description: Lease duration in seconds (rotation period for static credentials).
      type: int
    max_expires:
      description: RFC 3339 time no renewal can pass, when known.
      type: str
  sample: {"lease_id": "database/creds/app-rw/2x8k", "expires": "2030-01-01T10:00:00Z", "renewable": true,
           "duration": 3600, "max_expires": "2030-01-02T09:00:00Z"}
superseded_leases:
  description: Replaced leases waiting for their grace period, with the time they will be revoked.
  returned: when state is present
  type: list
  elements: dict
  sample: [{"lease_id": "database/creds/app-rw/1abc", "revoke_after": "2030-01-01T09:05:00Z"}]
revoked_leases:
  description: Leases revoked by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
restarted:
  description: Workloads rollout-restarted (or that would be, in check mode) because the credentials changed.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "app", "namespace": "prod"}]
restart_missing:
  description:
    - O(restart_targets) that do not exist (yet). They hold no credentials, so nothing is restarted there;
      with O(restart_missing=warn) a warning names each one so that a misspelt target shows.
  returned: when a restart target does not exist
  type: list
  elements: str
  sample: ["Deployment prod/app"]
vault_token_kept:
  description: Whether the token obtained by login was kept, because of O(keep_token) or because it issued the new lease.
  returned: always
  type: bool
diff:
  description: The Secret before and after, values masked.
  returned: in diff mode
  type: dict
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _vault_db_secret
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec, vault_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._vault import check_hvac_library


def argument_spec():
    target = {
        "kind": {"type": "str", "required": True, "choices": ["StatefulSet", "Deployment", "DaemonSet"]},
        "name": {"type": "str", "required": True},
        "namespace": {"type": "str"},
    }
    return kube_argspec(**vault_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        mount_point={"type": "str", "default": "database"},
        role={"type": "str"},
        credential_type={"type": "str", "choices": ["dynamic", "static"], "default": "dynamic"},
        username_key={"type": "str", "default": "username", "no_log": False},
        password_key={"type": "str", "default": "password", "no_log": False},
        templates={"type": "dict", "default": {}},
        labels={"type": "dict", "default": {}},
        annotations={"type": "dict", "default": {}},
        secret_type={"type": "str", "default": "Opaque"},
        renew_before={"type": "raw"},
        rotate_before={"type": "raw"},
        renew_increment={"type": "raw"},
        rotate={"type": "bool", "default": False},
        revoke_grace={"type": "int", "default": 0},
        revoke_on_absent={"type": "bool", "default": True},
        restart_targets={"type": "list", "elements": "dict", "default": [], "options": target},
        restart_missing={"type": "str", "choices": ["warn", "ignore", "fail"], "default": "warn"},
    ))


def main():
    module = new_module(argument_spec(), supports_check_mode=True,
                        required_if=[("state", "present", ["role"])])
    check_kubernetes_library(module)
    check_hvac_library(module)
    run_module(module, _vault_db_secret.run, connect)


if __name__ == "__main__":
    main()
