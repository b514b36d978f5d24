#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: cassandra_snapshot
short_description: Take or clear a tagged snapshot on every node of a Cassandra ring
version_added: 0.1.0
description:
  - With O(state=present), runs C(nodetool snapshot -t) O(tag) in every pod of the StatefulSet at the same moment
    (one thread per pod, through the API server's C(pods/exec); C(nodetool) reaches only the node's own JMX port).
    After its snapshot each node writes the ring's schema (C(DESCRIBE SCHEMA) by C(cqlsh) on its own CQL port) to
    C(<data_directory>/snapshot-schema/<tag>.cql), beside the snapshot's files on the node's volume.
  - Every pod the StatefulSet should have must be running and ready; otherwise nothing is done and the task fails
    naming the missing ones. A node that already holds a snapshot of O(tag) is left as it is.
  - With O(state=absent), runs C(nodetool clearsnapshot -t) O(tag) and removes the schema file, in every ready pod.
  - Check mode returns the pods it would ask and runs nothing.
  - C(cqlsh) logs in without credentials (the cassandra role's C(AllowAllAuthenticator)).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads the StatefulSet and its pods and returns them; runs no command.
    support: full
  diff_mode:
    description: Nothing to show a difference of; the snapshot's files are the change.
    support: none
options:
  name:
    description: Name of the Cassandra StatefulSet.
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    default: default
  tag:
    description: Name of the snapshot (C(nodetool -t)); letters, digits, C(.), C(_) and C(-), at most 100.
    type: str
    required: true
  state:
    description: V(present) takes the snapshot; V(absent) clears it.
    type: str
    choices: [present, absent]
    default: present
  data_directory:
    description: The node's volume (the parent of its C(data) directory), as the cassandra role mounts it.
    type: str
    default: /var/lib/cassandra
  container:
    description: Container in which the commands run. Defaults to the pod's default container.
    type: str
  timeout:
    description: Seconds each node's command may take.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Snapshot every node of the ring under one tag
  datastore.kubernetes.cassandra_snapshot:
    name: cassandra
    namespace: db
    tag: "20261127T170000Z"

- name: Clear that snapshot once it is shipped
  datastore.kubernetes.cassandra_snapshot:
    name: cassandra
    namespace: db
    tag: "20261127T170000Z"
    state: absent
"""

RETURN = r"""
tag:
  description: The snapshot's tag.
  returned: always
  type: str
pods:
  description: The pods asked, by ordinal.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The pod., type: str}
    node: {description: The Kubernetes node it runs on., type: str}
    ip: {description: The pod's address., type: str}
    ready: {description: Whether the pod is ready., type: bool}
    outcome:
      description: V(taken), V(exists), V(cleared) or V(absent); not returned in check mode.
      type: str
"""

from ansible_collections.datastore.kubernetes.plugins.module_utils import _cassandra_snapshot
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        tag={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        data_directory={"type": "str", "default": "/var/lib/cassandra"},
        container={"type": "str"},
        timeout={"type": "int", "default": 300},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _cassandra_snapshot.run, connect)


if __name__ == "__main__":
    main()
