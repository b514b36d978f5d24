#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: scale_down
short_description: Remove the highest pods of a datastore's StatefulSet safely
version_added: 0.1.0
description:
  - Lowers a StatefulSet's C(replicas) to O(replicas), waits until the pods above it are gone, then cleans up
    after them in the datastore, and deletes their PersistentVolumeClaims when asked.
  - With O(engine=postgres) the PostgreSQL primary is never removed; O(replicas=0), or a target that would remove
    the pod the datastore names as its primary, is refused before anything is written, with the reason. The
    removed replicas' replication slots are dropped on the primary (a slot left behind keeps WAL forever).
  - With O(engine=elasticsearch), before C(replicas) is lowered the leaving nodes are excluded from shard
    allocation (C(cluster.routing.allocation.exclude._name), names of other nodes already there are kept), the
    master-eligible ones among them get voting-configuration exclusions, and the module waits until they hold no
    shard and every shard is assigned and started. Once their pods are gone it takes their names out of the
    allocation exclusion again and clears the voting-configuration exclusions. Refused before anything is written,
    with the reason - no master-eligible node would remain (O(replicas=0) among them); an index's
    C(number_of_replicas) + 1 (the floor of C(auto_expand_replicas)) or its C(index.write.wait_for_active_shards)
    is more than the data nodes that remain; the cluster is C(red).
  - With O(engine=cassandra) the leaving nodes (the highest ordinals) are decommissioned one at a time
    (C(nodetool decommission) in the leaving pod, which streams its ranges to the nodes that stay), each confirmed
    gone from the ring (its host id) as every pod that stays sees it, and only then is C(replicas) lowered. Refused
    before anything is written, with the reason - O(replicas=0); a keyspace whose replication factor
    (SimpleStrategy's C(replication_factor), NetworkTopologyStrategy's count for a data center) is more than the
    nodes that stay (in that data center), read with C(cqlsh) from C(system_schema.keyspaces) (C(system_auth),
    C(system_distributed) and C(system_traces) count only above Cassandra's defaults 1, 3 and 2); a node that is
    not C(UN) (a leaving node may be C(UL) - an interrupted run's decommission, waited for); a pod that stays without
    the free space (C(df) of its data volume) for its share (an equal part) of the load (C(nodetool status)) of the
    leaving nodes.
  - With O(engine=cassandra), before the first decommission (and again once the pods are gone) the module clears
    stale gossip. A pod restarted on Kubernetes usually comes back at a new address with the same host id; the
    state of its old address (C(NORMAL) or C(shutdown)) can linger in gossip for minutes. Once the node
    holding that host id has left, nothing contests the old address, and it comes back in the ring as a C(DN)
    node that owns the tokens. So every address that no pod has, whose host id is up at a pod's address (or
    belongs to a node that left), and whose state is not one Cassandra expires by itself, is marked as left
    with C(nodetool assassinate). The command runs in a pod that no longer gossips about that address; there
    it acts at once. In a pod that still knows the address, Cassandra would first hold that pod's gossip for
    its ring delay (30 s), long enough for its peers to think it down. The run waits for such a pod (every node
    forgets the address by itself sooner or later), up to O(decommission_timeout). A ring of one pod is used
    as it is. The addresses are in RV(plan.cassandra.clear_stale), the ones cleared in RV(stale_cleared).
  - An interrupted run leaves pods, slots, claims or Elasticsearch exclusions above the target; the next run with
    the same O(replicas) finds them and finishes.
  - Check mode returns the plan (RV(plan)) and writes nothing. Commands in pods go through the API server's
    C(pods/exec).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads the StatefulSet, its pods, claims and the datastore and returns the plan; writes nothing.
    support: full
  diff_mode:
    description: Returns C(replicas) before and after.
    support: full
options:
  name:
    description: Name of the StatefulSet.
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    default: default
  replicas:
    description: The number of pods to keep (ordinals C(0) to O(replicas) - 1). Not more than the StatefulSet has.
    type: int
    required: true
  engine:
    description:
      - The datastore in the pods. V(postgres) finds the primary by asking the ready pods in ordinal order (the first not in recovery),
        refuses to remove it, and drops the removed replicas' replication slots (named as the postgres role's
        start-up script names them, the pod name with other characters than C([a-z0-9_]) as C(_)).
      - V(elasticsearch) asks the HTTP API of a pod that stays (through C(pods/exec)) and moves the data off the
        leaving nodes first; node names are pod names.
      - V(cassandra) asks a ready pod that stays (C(nodetool status), C(cqlsh) on the pod's own CQL port, so the
        ring must accept it without credentials) and decommissions the leaving nodes; a rerun finds a node already
        leaving (C(UL)) and waits for it, and one already gone from the ring is done.
      - V(none) only lowers C(replicas) and handles the claims.
    type: str
    choices: [postgres, elasticsearch, cassandra, none]
    default: postgres
  container:
    description: Container in which the datastore's commands run. Defaults to the pod's default container.
    type: str
  delete_pvcs:
    description: Delete the removed pods' PersistentVolumeClaims (their data). V(false) keeps them for a later scale-up.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for each pod to be gone, each slot to be released, and the leaving Elasticsearch nodes to be drained.
    type: int
    default: 300
  decommission_timeout:
    description: Seconds each Cassandra node may take to decommission (stream its data away and leave the ring).
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Go from three PostgreSQL pods to two, dropping postgres-2's slot and its data
  datastore.kubernetes.scale_down:
    name: postgres
    namespace: db
    replicas: 2
    delete_pvcs: true

- name: Go from three Cassandra nodes to two, cassandra-2 decommissioned first (refused while a keyspace has RF 3)
  datastore.kubernetes.scale_down:
    name: cassandra
    namespace: ring
    engine: cassandra
    container: cassandra
    replicas: 2
    delete_pvcs: true

- name: Go from three Elasticsearch nodes to two, the shards of elasticsearch-2 moved off it first
  datastore.kubernetes.scale_down:
    name: elasticsearch
    namespace: search
    engine: elasticsearch
    replicas: 2
"""

RETURN = r"""
plan:
  description: What the run does (or, in check mode, would do).
  returned: always
  type: dict
  contains:
    from: {description: C(replicas) before., type: int}
    to: {description: C(replicas) after., type: int}
    remove: {description: 'Pods removed, highest first.', type: list, elements: str}
    primary: {description: The PostgreSQL primary., type: str}
    slots: {description: Replication slots of removed pods still on the primary., type: list, elements: str}
    claims: {description: Claims to delete (with O(delete_pvcs))., type: list, elements: str}
    elasticsearch:
      description: The Elasticsearch part (O(engine=elasticsearch)).
      type: dict
      contains:
        exclude: {description: Nodes excluded from shard allocation and drained., type: list, elements: str}
        voting_exclusions: {description: Master-eligible leaving nodes given a voting-configuration exclusion., type: list, elements: str}
        remaining_master_eligible: {description: Master-eligible nodes that stay., type: int}
        remaining_data_nodes: {description: Data nodes that stay., type: int}
        clear_exclusions: {description: Names taken out of the exclusions at the end (also those an interrupted run left)., type: list, elements: str}
    cassandra:
      description: The Cassandra part (O(engine=cassandra)).
      type: dict
      contains:
        decommission:
          description: 'Leaving nodes, highest first: C(pod), C(host_id), C(state) (V(UN); V(UL) when already leaving), C(load_bytes).'
          type: list
          elements: dict
        asked: {description: The pod that stays whose view of the ring is asked., type: str}
        load_moving_bytes: {description: The load of the leaving nodes., type: int}
        share_bytes: {description: The part of it each staying pod must have free., type: int}
        free_bytes: {description: Free bytes of each staying pod's data volume., type: dict}
        force_for:
          description:
            - System keyspaces at Cassandra's default replication factor with more replicas than nodes would stay
              (C(system_distributed) going below 3 nodes, C(system_traces) below 2). Cassandra's own decommission
              refuses to go on for them; it is run with C(--force) then, for them alone (every other keyspace was
              checked first).
          type: list
          elements: str
        clear_stale:
          description: 'Stale addresses in the ring''s gossip, to be marked as left before the decommission - C(address), C(host_id), C(status), C(reason).'
          type: list
          elements: dict
decommissioned:
  description: Cassandra nodes decommissioned (or found leaving and waited for) - C(pod), C(host_id), C(load_bytes), C(seconds).
  returned: with O(engine=cassandra) and nodes leaving
  type: list
  elements: dict
stale_cleared:
  description: 'Stale addresses marked as left (C(nodetool assassinate)) - C(address), C(host_id), C(status), C(by) (the pod it ran in).'
  returned: with O(engine=cassandra) and nodes leaving
  type: list
  elements: dict
removed:
  description: Pods that are gone.
  returned: always
  type: list
  elements: str
slots_dropped:
  description: Replication slots dropped on the primary.
  returned: always
  type: list
  elements: str
claims_deleted:
  description: PersistentVolumeClaims deleted.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        replicas={"type": "int", "required": True},
        engine={"type": "str", "default": "postgres", "choices": list(_day2.ENGINES)},
        container={"type": "str"},
        delete_pvcs={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 300},
        decommission_timeout={"type": "int", "default": 3600},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _day2.run_scale_down, connect)


if __name__ == "__main__":
    main()
