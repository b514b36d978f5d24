#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: switchover
short_description: Switch a PostgreSQL StatefulSet of the postgres role over to another primary
version_added: 0.1.0
description:
  - The primary of the postgres role's StatefulSet is the pod the ConfigMap C(<name>-primary) names (key C(primary));
    the role's start-up script reads it whenever a container starts, and the role reads it before it applies the
    primary's Service and the StatefulSet.
  - Without O(to), makes sure that record exists (created naming C(<name>-0) when it is missing) and returns it in
    RV(primary); the postgres role runs it so.
  - With O(to), a planned switchover to that pod. Before anything is written, the gate - O(to) is a hot standby
    streaming from the primary with a replay lag of at most O(max_lag_bytes). Then the record names O(to) and the
    primary's Service selects it; the old primary stops (a fast shutdown, its shutdown checkpoint streamed to the
    standbys); once O(to) has received and replayed that checkpoint it is promoted (C(pg_promote())), on a new
    timeline. A replication slot is made on it for each other member; the old primary's container starts again as a
    standby of O(to) (no rewind needed, its last record being the checkpoint O(to) replayed), each other replica is
    restarted to follow O(to), and the inactive slots left on the old primary are dropped.
  - Each step looks at the cluster first (the record, the Service, the members that answer as primaries, who streams
    from whom), so a run stopped anywhere - between the promotion and the Service move included - is finished by the
    next run with the same O(to). A run where O(to) is the primary and every member streams from it changes nothing.
  - Check mode returns the plan (RV(plan)) and writes nothing. Commands in pods go through the API server's
    C(pods/exec).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads the StatefulSet, its pods, the record and the Service, asks the servers and returns the plan.
    support: full
  diff_mode:
    description: Returns the primary (and the pod the Service selects) before and after.
    support: full
options:
  name:
    description: Name of the StatefulSet (the postgres role's C(postgres_name)).
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    default: default
  to:
    description:
      - The pod to make the primary, C(<name>-<ordinal>). Omitted, the module only makes sure the record exists.
    type: str
  service:
    description: The primary's Service, whose selector follows the primary. Defaults to C(<name>-primary).
    type: str
  labels:
    description: Labels of the record's ConfigMap when the module creates it.
    type: dict
    default: {}
  container:
    description: Container in which PostgreSQL's commands run. Defaults to the pod's default container.
    type: str
  max_lag_bytes:
    description: The gate's bound on O(to)'s replay lag behind the primary, in bytes.
    type: int
    default: 16777216
  timeout:
    description: Seconds to wait for each step (the old primary stopping, the replay, each member following).
    type: int
    default: 300
  reclone:
    description:
      - What to do with a member that does not stream from O(to) once it was restarted to follow it - a server
        whose timeline forked off before its position (it was promoted on its own, or wrote after the fork), which
        PostgreSQL refuses to follow. A standby whose last checkpoint is on a later timeline than O(to) writes is
        known as such at once; any other member not streaming within O(timeout) is treated the same.
      - V(false) stops the run there, with the reason.
      - V(true) clones it anew. The postgres role's mark C(.datastore-reclone) goes into its volume, beside the
        data directory; then its pod is deleted. The role's clone step, which runs when the pod is made again,
        removes the member's data and copies the primary (C(pg_basebackup) through its replication slot).
        Only a member that answers as a standby is cloned, and only while O(to) answers as the primary. The
        transactions only that member had are gone; the run waits, up to O(timeout), until it streams.
    type: bool
    default: false
notes:
  - The servers are asked as in M(datastore.kubernetes.rolling_update) (C(psql) on the pod's local socket as the
    container's C(PGUSER)); the credentials of the run need C(get) and C(create) on C(pods/exec), C(patch) on the
    Service and the ConfigMap.
  - Write downtime, measured by a client writing through the primary's Service, is in C(docs/day2.md).
"""

EXAMPLES = r"""
- name: Show what a switchover to postgres-1 would do
  datastore.kubernetes.switchover:
    name: postgres
    namespace: db
    to: postgres-1
  check_mode: true

- name: Make postgres-1 the primary
  datastore.kubernetes.switchover:
    name: postgres
    namespace: db
    to: postgres-1

- name: Read the recorded primary (created as postgres-0 when missing)
  datastore.kubernetes.switchover:
    name: postgres
    namespace: db
  register: record
"""

RETURN = r"""
primary:
  description: The primary the record names after the run (without O(to)) or O(to).
  returned: always
  type: str
  sample: postgres-1
record:
  description: Name of the record's ConfigMap.
  returned: without O(to)
  type: str
  sample: postgres-primary
plan:
  description: What the run does (in check mode, would do).
  returned: with O(to)
  type: dict
  contains:
    from: {description: The primary before., type: str}
    to: {description: The new primary., type: str}
    record: {description: The pod the record named before the run., type: str}
    service: {description: The pod the primary's Service selected before the run., type: str}
    primaries: {description: Members that answered as primaries., type: list, elements: str}
    following: {description: Members already streaming from O(to)., type: list, elements: str}
    steps:
      description: 'The steps still to do, in order (gate, record, service, stop <pod>, promote, slots, follow <pod>, drop stale slots).'
      type: list
      elements: str
    descriptions: {description: One sentence per step., type: list, elements: str}
    changed: {description: Whether anything is to do., type: bool}
done:
  description: The steps done, each with C(seconds) since the first write (and C(final_lsn), C(replayed_lsn), C(slots)).
  returned: with O(to)
  type: list
  elements: dict
recloned:
  description: Members cloned anew from O(to) (O(reclone)).
  returned: with O(to)
  type: list
  elements: str
timeline:
  description: The new primary's timeline after the run.
  returned: when the switchover ran
  type: int
"""

from ansible_collections.datastore.kubernetes.plugins.module_utils import _switchover
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        to={"type": "str"},
        service={"type": "str"},
        labels={"type": "dict", "default": {}},
        container={"type": "str"},
        max_lag_bytes={"type": "int", "default": 16777216},
        timeout={"type": "int", "default": 300},
        reclone={"type": "bool", "default": False},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _switchover.run_switchover, connect)


if __name__ == "__main__":
    main()
