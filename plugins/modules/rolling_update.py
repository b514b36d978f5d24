#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: rolling_update
short_description: Restart or upgrade a datastore's StatefulSet one pod at a time, gated on the datastore's health
version_added: 0.1.0
description:
  - Replaces the pods of a StatefulSet one at a time, highest ordinal first and the primary last, and before
    it moves on waits until the datastore itself says the replaced pod is back (O(engine)).
  - What changes is the pod template, in one write - O(image), O(resources), O(template_annotations), a hash of
    O(config_maps) (a ConfigMap content change rolls the pods), a restart mark (O(restart)) - or nothing, when
    an earlier run was interrupted and pods are still on an old revision; the module goes on from there.
  - For the run the StatefulSet's update strategy is C(OnDelete), so that only the pods this module deletes
    are replaced; the strategy it had is saved in the annotation C(datastore.kubernetes/rollout-saved-strategy)
    and given back at the end. (A lowered C(partition) would let the controller replace the next pod as soon
    as one is ready, before the datastore's gate.)
  - A pod not ready on an old revision is stuck (the controller waits on it forever with C(OrderedReady)); with
    O(delete_stuck_pods) it is replaced first, else the module fails before it writes anything.
  - Before the first pod the datastore must pass the gate, so nothing is written while it is unhealthy.
  - Check mode returns the plan (RV(plan)) and writes nothing.
  - This is a module, not a role, because the gate is a loop over the datastore's answers between Kubernetes
    writes, and an interrupted run must be resumable from the cluster's state; commands in pods go through
    the API server's C(pods/exec), the credentials of the run need C(get) and C(create) on C(pods/exec).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
attributes:
  check_mode:
    description: Reads the StatefulSet, its pods and the datastore's health and returns the plan; writes nothing.
    support: full
  diff_mode:
    description: Returns the pod template fields that change (image, resources, annotations).
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
  engine:
    description:
      - The datastore in the pods, which decides the gate and which pod is the primary.
      - V(postgres) runs C(psql) on the pods' local socket (as the container's C(POSTGRES_USER), else
        C(postgres)). The primary is the first member, by ordinal, not in recovery; it is replaced last. The
        gate asks the primary alone; it is not in recovery, and its C(pg_stat_replication) lists every other
        member (matched by pod address) as C(streaming) with a replay lag of at most O(max_lag_bytes).
      - V(elasticsearch) asks the node's HTTP API inside a ready pod (C(curl), else bash's C(/dev/tcp); the
        container's C(ELASTIC_PASSWORD), if any, goes to curl on its standard input). The "primary" is the elected
        master, replaced last. The gate - every pod of the StatefulSet joined the cluster (C(_cat/nodes), node names
        are pod names) and cluster health C(green) (see O(allow_yellow)) - must pass before the first pod and after
        each. See O(disable_allocation).
      - V(cassandra) runs C(nodetool status) in the pods. There is no primary; the seeds are the first ordinals
        (the cassandra role's), so the highest-first order replaces them last, and nothing else is special about
        them. The gate - every node C(UN) (up and normal, none joining, leaving or moving) and every pod's address
        in the ring, as each pod of the StatefulSet sees it (highest ordinal asked first) - must pass before the
        first pod and after each. See O(drain).
      - V(none) gates on pod readiness alone.
    type: str
    choices: [postgres, elasticsearch, cassandra, none]
    default: postgres
  container:
    description: Container whose O(image) and O(resources) change and in which the health commands run. Defaults to the first container.
    type: str
  image:
    description: New image of O(container).
    type: str
  resources:
    description: New C(resources) (C(requests), C(limits)) of O(container).
    type: dict
  template_annotations:
    description: Annotations set on the pod template (a new value rolls the pods).
    type: dict
    default: {}
  config_maps:
    description:
      - ConfigMaps (in O(namespace)) whose content the pods read; a hash of their data is set on the pod template
        as C(datastore.kubernetes/config-hash), so a content change rolls the pods and no change does not.
    type: list
    elements: str
    default: []
  restart:
    description: Replace every pod even when nothing else changes (sets C(datastore.kubernetes/restartedAt)). Never idempotent.
    type: bool
    default: false
  max_lag_bytes:
    description: The largest replay lag, in bytes of WAL, a PostgreSQL replica may have for the gate to pass.
    type: int
    default: 16777216
  switchover_to:
    description:
      - With O(engine=postgres), the pod to make the primary right before the primary's own pod would be replaced (the
        steps of M(datastore.kubernetes.switchover), its gate bounded by O(max_lag_bytes) and each step by
        O(gate_timeout)). The old primary's pod is then replaced as a replica, and writers lose only the switchover's
        downtime instead of the primary's restart. Ignored when the primary is not to be replaced or already is that
        pod; a run after an interrupted switchover finishes it with M(datastore.kubernetes.switchover).
    type: str
  gate_timeout:
    description: Seconds the gate may take after each pod (and before the first) before the run stops, leaving the rest for the next run.
    type: int
    default: 300
  pod_timeout:
    description: Seconds a replaced pod may take to be Ready on the new revision.
    type: int
    default: 600
  delete_stuck_pods:
    description: Replace pods that are not ready on an old revision first, instead of failing.
    type: bool
    default: false
  disable_allocation:
    description:
      - With O(engine=elasticsearch), right before each pod is deleted the persistent cluster setting
        C(cluster.routing.allocation.enable) is set to V(primaries), and reset (to its default, V(all)) once the
        replaced pod is Ready again, before the gate - the Elasticsearch rolling-restart procedure. Meanwhile the
        stopped node's replicas are not rebuilt on the other nodes; its own copies are recovered when it is back.
      - A V(primaries) left by an interrupted run is reset at the start of the next run (RV(plan.resume)).
      - V(false) leaves allocation alone; the cluster then starts copying the stopped node's shards elsewhere once
        C(index.unassigned.node_left.delayed_timeout) (1 minute by default) has passed.
    type: bool
    default: true
  allow_yellow:
    description:
      - With O(engine=elasticsearch), the gate also passes on a C(yellow) cluster with no shard relocating or
        initializing (a replica that cannot be placed, such as an index with more replicas than nodes). A C(green)
        cluster is asked for otherwise. With V(true) the next pod may be stopped while one of its shards has no
        other copy, so searches on that shard fail meanwhile.
    type: bool
    default: false
  drain:
    description:
      - With O(engine=cassandra), C(nodetool drain) runs in a Ready pod right before it is deleted (within
        O(pod_timeout)) - its memtables are flushed and it stops serving clients and gossip, so the other nodes mark it
        down at once instead of after a failure-detection delay. A pod that is not Ready is deleted without it.
      - A failed drain stops the run before the pod is deleted; the next run goes on from there.
      - A pod whose Cassandra container has a C(preStop) hook that runs C(nodetool drain) (the cassandra role's
        does) is drained by that hook as it stops, before the container is told to stop; the run does not drain it
        a second time.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Upgrade PostgreSQL one pod at a time, replicas first, each streaming again before the next
  datastore.kubernetes.rolling_update:
    name: postgres
    namespace: db
    image: docker.io/library/postgres:17.6
    max_lag_bytes: 1048576

- name: Restart Elasticsearch one node at a time, each back and the cluster green before the next
  datastore.kubernetes.rolling_update:
    name: elasticsearch
    namespace: search
    engine: elasticsearch
    restart: true

- name: Restart Cassandra one node at a time, each drained first and every node UN again before the next
  datastore.kubernetes.rolling_update:
    name: cassandra
    namespace: ring
    engine: cassandra
    container: cassandra
    restart: true

- name: Roll the pods when the configuration ConfigMap changed (no change, no restart)
  datastore.kubernetes.rolling_update:
    name: postgres
    namespace: db
    config_maps: [postgres-config]

- name: Show the plan of a restart
  datastore.kubernetes.rolling_update:
    name: postgres
    namespace: db
    restart: true
  check_mode: true
  register: rollout_plan
"""

RETURN = r"""
plan:
  description: What the run does (or, in check mode, would do).
  returned: always
  type: dict
  contains:
    pods: {description: 'Pods to replace, in order: stuck ones first, then highest ordinal first, the primary last.', type: list, elements: str}
    stuck: {description: Pods not ready on an old revision., type: list, elements: str}
    primary: {description: The primary (V(null) without one)., type: str}
    gates: {description: What must hold before the next pod., type: list, elements: str}
    template: {description: The pod template fields that change., type: dict}
    resume:
      description: 'What an interrupted run left in the datastore, undone first (Elasticsearch: allocation left at V(primaries)).'
      type: list
      elements: str
    switchover: {description: 'The pod switched over to before the primary is replaced (O(switchover_to)), else V(null).', type: str}
switchover:
  description: The switchover's steps done (the module M(datastore.kubernetes.switchover)'s RV(datastore.kubernetes.switchover#module:done)).
  returned: when a switchover ran
  type: list
  elements: dict
pods:
  description: The pods replaced, in order.
  returned: always
  type: list
  elements: dict
  contains:
    pod: {description: Pod name., type: str}
    before_seconds: {description: 'The engine''s work before the delete (O(engine=cassandra) with O(drain) - C(nodetool drain)).', type: float}
    ready_seconds: {description: From the delete to the successor Ready on the new revision., type: float}
    gate_seconds: {description: From Ready until the gate passed., type: float}
stuck_deleted:
  description: Stuck pods that were replaced.
  returned: always
  type: list
  elements: str
update_revision:
  description: The StatefulSet's revision every pod now runs.
  returned: when pods were replaced
  type: str
health:
  description: What the datastore said when the last gate passed.
  returned: when pods were replaced and O(engine) is not V(none)
  type: dict
  contains:
    primary: {description: The primary pod (V(postgres))., type: str}
    status: {description: 'Cluster health (V(elasticsearch)): V(green), V(yellow), V(red).', type: str}
    nodes:
      description:
        - Nodes in the cluster (V(elasticsearch)), names.
        - 'The ring (V(cassandra)): per node C(pod), C(address), C(code) (V(UN)), C(load), C(owns_percent), C(host_id),
          C(datacenter), C(rack).'
      type: list
      elements: raw
    master: {description: The elected master (V(elasticsearch))., type: str}
    source_pod: {description: The pod asked (V(elasticsearch))., type: str}
    asked: {description: 'The pods whose view of the ring was asked, in order (V(cassandra)).', type: list, elements: str}
    cluster: {description: 'Shard counts of C(_cluster/health) (V(elasticsearch)).', type: dict}
    healthy: {description: Whether the gate passed., type: bool}
    problems: {description: Why not (empty when it passed)., type: list, elements: str}
    timeline: {description: The primary's timeline (V(postgres))., type: int}
    replication:
      description: The primary's C(pg_stat_replication) rows (V(postgres)).
      type: list
      elements: dict
      contains:
        pod: {description: The replica pod (by address)., type: str}
        state: {description: 'V(streaming), V(catchup)...', type: str}
        lag_bytes: {description: Bytes of WAL not replayed yet., type: int}
"""

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        engine={"type": "str", "default": "postgres", "choices": list(_day2.ENGINES)},
        container={"type": "str"},
        image={"type": "str"},
        resources={"type": "dict"},
        template_annotations={"type": "dict", "default": {}},
        config_maps={"type": "list", "elements": "str", "default": []},
        restart={"type": "bool", "default": False},
        max_lag_bytes={"type": "int", "default": 16777216},
        switchover_to={"type": "str"},
        gate_timeout={"type": "int", "default": 300},
        pod_timeout={"type": "int", "default": 600},
        delete_stuck_pods={"type": "bool", "default": False},
        disable_allocation={"type": "bool", "default": True},
        allow_yellow={"type": "bool", "default": False},
        drain={"type": "bool", "default": True},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _day2.run_rolling_update, connect)


if __name__ == "__main__":
    main()
