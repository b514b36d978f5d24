#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: elasticsearch_snapshot
short_description: Elasticsearch snapshot repository, lifecycle policy, snapshots and restores
version_added: 0.1.0
description:
  - Speaks to the HTTP API of a ready pod of an Elasticsearch StatefulSet through the API server's C(pods/exec)
    (the request runs in the pod; no route to the pods is needed).
  - O(action=apply) registers the snapshot repository O(repository) and, with O(policy), sets a snapshot lifecycle
    (SLM) policy that takes snapshots on a schedule and removes old ones. Each is read first and written only when
    it differs, so a second run reports no change.
  - O(action=snapshot) does what V(apply) does, then takes a snapshot now and waits until it ends; anything but
    C(SUCCESS) fails the task.
  - O(action=list) returns the repository's snapshots.
  - O(action=restore) restores the chosen O(indices) of a snapshot (the newest successful one unless
    O(snapshot) names one), under other names with O(rename_pattern). An open index of a target name is not
    overwritten unless O(replace_open) (it is then closed and replaced). The cluster's global state is never
    restored.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads the repository, the policy, the snapshots and the indices, and reports what would change; writes nothing.
    support: full
  diff_mode:
    description: The repository and the policy before and after.
    support: full
options:
  name:
    description: Name of the Elasticsearch StatefulSet.
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    default: default
  container:
    description: Container whose HTTP API is asked (at C(localhost:9200)). Defaults to the pod's default container.
    type: str
  action:
    description: What to do (see the description).
    type: str
    choices: [apply, snapshot, list, restore]
    default: apply
  repository:
    description: Name of the snapshot repository.
    type: str
    required: true
  repository_type:
    description:
      - Type of the repository. V(fs) is a directory under C(path.repo) on a volume every node mounts; V(s3) needs
        the cluster's C(repository-s3) module and its keys in the keystore.
    type: str
    default: fs
  repository_settings:
    description:
      - 'The repository''s settings, such as C({location: backups/search}) for V(fs) or C({bucket, base_path}) for
        V(s3). Values are compared as the strings Elasticsearch reports.'
    type: dict
    default: {}
  register:
    description: With O(action=restore), register the repository first (into a fresh cluster). The policy is not set.
    type: bool
    default: true
  policy:
    description:
      - A snapshot lifecycle policy for O(repository) (O(action=apply) and O(action=snapshot)); omitted, no policy
        is touched. The cluster must have snapshot lifecycle management (the C(x-pack-slm) module); if it has not,
        the task fails before anything is written.
    type: dict
    suboptions:
      id:
        description: The policy's id.
        type: str
        required: true
      schedule:
        description: Elasticsearch cron expression, seconds first (C(0 30 1 * * ?) is 01:30 every day).
        type: str
        required: true
      snapshot_name:
        description: Name of the snapshots it takes (date math allowed).
        type: str
        default: <snap-{now/m}>
      indices:
        description: Indices (names or patterns) in its snapshots.
        type: list
        elements: str
        default: ['*']
      include_global_state:
        description: Whether its snapshots hold the cluster's global state.
        type: bool
        default: false
      expire_after:
        description: Retention - snapshots older than this (C(30d)) are removed.
        type: str
      min_count:
        description: Retention - at least this many are always kept.
        type: int
      max_count:
        description: Retention - at most this many are kept.
        type: int
  snapshot:
    description:
      - O(action=snapshot) - the new snapshot's name (default C(snap-<UTC time>)).
      - O(action=restore) - the snapshot to restore (default the newest successful one).
    type: str
  indices:
    description:
      - O(action=snapshot) - the indices in the snapshot (names or patterns; default all).
      - O(action=restore) - the indices to restore (names or patterns matched against the snapshot's); required.
    type: list
    elements: str
    default: []
  rename_pattern:
    description: O(action=restore) - a regular expression matched against each restored index's name.
    type: str
  rename_replacement:
    description: O(action=restore) - the name it is restored as (C($1) for the pattern's first group).
    type: str
  replace_open:
    description: O(action=restore) - close open indices of the target names and restore over them; V(false) refuses.
    type: bool
    default: false
  wait_timeout:
    description: Seconds a snapshot or a restore may take.
    type: int
    default: 1800
"""

EXAMPLES = r"""
- name: Register a shared-filesystem repository and a nightly policy that keeps two weeks
  datastore.kubernetes.elasticsearch_snapshot:
    name: elasticsearch
    namespace: search
    repository: backups
    repository_settings: {location: search/elasticsearch}
    policy:
      id: nightly
      schedule: "0 30 1 * * ?"
      expire_after: 14d
      min_count: 3

- name: Take a snapshot now
  datastore.kubernetes.elasticsearch_snapshot:
    name: elasticsearch
    namespace: search
    action: snapshot
    repository: backups
    repository_settings: {location: search/elasticsearch}

- name: Restore two indices of the newest snapshot beside the live ones
  datastore.kubernetes.elasticsearch_snapshot:
    name: elasticsearch
    namespace: search
    action: restore
    repository: backups
    repository_settings: {location: search/elasticsearch}
    indices: [orders, customers]
    rename_pattern: "(.+)"
    rename_replacement: "restored-$1"
"""

RETURN = r"""
pod:
  description: The pod whose API was asked.
  returned: always
  type: str
repository:
  description: The repository as wanted (type and settings).
  returned: with O(action=apply), O(action=snapshot), O(action=restore) and O(register)
  type: dict
repository_registered:
  description: Whether the repository was registered before the task.
  returned: with O(action=apply), O(action=snapshot), O(action=restore) and O(register)
  type: bool
policy:
  description: The lifecycle policy as wanted (null without O(policy)).
  returned: with O(action=apply) and O(action=snapshot)
  type: dict
snapshot:
  description: The snapshot taken (name, state, indices, start and end time, duration, shards, failures).
  returned: with O(action=snapshot)
  type: dict
snapshots:
  description: The repository's snapshots, oldest first, as in RV(snapshot).
  returned: with O(action=list)
  type: list
  elements: dict
restore:
  description: The snapshot restored, C(indices) (name in the snapshot to name restored as), C(closed) (open indices replaced) and C(shards).
  returned: with O(action=restore)
  type: dict
"""

from ansible_collections.datastore.kubernetes.plugins.module_utils import _es_snapshot
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        container={"type": "str"},
        action={"type": "str", "default": "apply", "choices": list(_es_snapshot.ACTIONS)},
        repository={"type": "str", "required": True},
        repository_type={"type": "str", "default": "fs"},
        repository_settings={"type": "dict", "default": {}},
        register={"type": "bool", "default": True},
        policy={"type": "dict", "options": {
            "id": {"type": "str", "required": True},
            "schedule": {"type": "str", "required": True},
            "snapshot_name": {"type": "str", "default": "<snap-{now/m}>"},
            "indices": {"type": "list", "elements": "str", "default": ["*"]},
            "include_global_state": {"type": "bool", "default": False},
            "expire_after": {"type": "str"},
            "min_count": {"type": "int"},
            "max_count": {"type": "int"},
        }},
        snapshot={"type": "str"},
        indices={"type": "list", "elements": "str", "default": []},
        rename_pattern={"type": "str"},
        rename_replacement={"type": "str"},
        replace_open={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 1800},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _es_snapshot.run, connect)


if __name__ == "__main__":
    main()
