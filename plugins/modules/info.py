#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: info
short_description: Report the state of a datastore's StatefulSet
version_added: 0.1.0
description:
  - Reads a StatefulSet and its headless Service and reports the pods by ordinal with readiness and node,
    the PVCs made from the claim templates and their phase, and the Service's endpoints from its EndpointSlices.
  - Optionally reports the Vault lease recorded on credential Secrets (the annotations
    C(datastore.kubernetes/lease-id) and C(datastore.kubernetes/lease-expires), or the
    C(datastore.kubernetes/vault-lease-id) and C(datastore.kubernetes/vault-lease-expires) that
    M(datastore.kubernetes.vault_db_secret) writes). Secrets are read as metadata only; their values are never
    requested.
  - Optionally reports the datastore's own view of its health (O(health)), from commands run in its pods
    through the API server (the C(pods/exec) subresource); see RV(health).
  - Never changes anything (the health commands only read).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.ATTRIBUTES
attributes:
  check_mode:
    description: Reads only, so check mode changes nothing about what it does.
    support: full
  diff_mode:
    description: Reads only; there is never a difference to show.
    support: none
options:
  name:
    description: Name of the StatefulSet.
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    default: default
  service_name:
    description: Name of the headless Service. Defaults to the StatefulSet's C(serviceName), else O(name).
    type: str
  cluster_domain:
    description: DNS domain of the cluster, used in the returned names.
    type: str
    default: cluster.local
  vault_secret:
    description: Names of Secrets (in O(namespace)) whose lease annotations are reported in RV(leases).
    type: list
    elements: str
    default: []
  health:
    description:
      - Which datastore to ask about its health, in its own pods, for RV(health). V(none) asks nothing.
      - V(postgres) runs C(psql) on each running pod's local socket as the container's database superuser
        (C(POSTGRES_USER), default C(postgres)), as the image allows it without a password, and reads
        C(pg_is_in_recovery()), the timeline and, on the primary, C(pg_stat_replication).
      - V(cassandra) runs C(nodetool status) in the first running pod that answers.
      - V(elasticsearch) runs C(curl) in the first running pod that answers, against
        C(http://localhost:9200) (or the container's C(ES_HEALTH_URL)), for C(_cluster/health),
        the unassigned shards and, for up to five of them, C(_cluster/allocation/explain). A container
        C(ELASTIC_PASSWORD) is handed to C(curl) inside the pod, on its standard input.
      - Each command runs for at most O(request_timeout) seconds. The credentials of the run need
        C(get) and C(create) on C(pods/exec) (the API server checks C(get) for an exec over WebSocket,
        and C(create) where the newer check is switched on).
    type: str
    choices: [none, postgres, cassandra, elasticsearch]
    default: none
  container:
    description: Container of the pods in which the O(health) commands run. Defaults to the pod's default container.
    type: str
"""

EXAMPLES = r"""
- name: Report the Cassandra ring
  datastore.kubernetes.info:
    name: cassandra
    namespace: db
    vault_secret: cassandra-app-credentials
  register: ring

- name: Fail when a node is not ready
  ansible.builtin.assert:
    that: ring.ready_replicas == ring.replicas
    fail_msg: "not ready: {{ ring.pods | rejectattr('ready') | map(attribute='name') | join(', ') }}"

- name: Ask PostgreSQL which pod is the primary and whether the replicas stream
  datastore.kubernetes.info:
    name: postgres
    namespace: db
    health: postgres
  register: pg

- name: Fail unless every replica streams
  ansible.builtin.assert:
    that: pg.health.healthy
    fail_msg: "{{ pg.health.problems | join('; ') }}"

- name: Warn when the credentials expire within an hour
  ansible.builtin.debug:
    msg: "{{ item.secret }} lease expires at {{ item.lease_expires }}"
  loop: "{{ ring.leases }}"
  when: item.expires_in_seconds is not none and item.expires_in_seconds < 3600
"""

RETURN = r"""
exists:
  description: Whether the StatefulSet exists.
  returned: always
  type: bool
statefulset:
  description: The StatefulSet without C(managedFields); empty when it does not exist.
  returned: always
  type: dict
service:
  description: The headless Service without C(managedFields); empty when it does not exist.
  returned: always
  type: dict
replicas:
  description: Desired replicas (V(null) when the StatefulSet does not exist).
  returned: always
  type: int
ready_replicas:
  description: Ready replicas (V(null) when the StatefulSet does not exist).
  returned: always
  type: int
updated_replicas:
  description: Replicas on the update revision (V(null) when the StatefulSet does not exist).
  returned: always
  type: int
pods:
  description: The StatefulSet's pods, by ordinal.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Pod name., type: str, sample: cassandra-0}
    ordinal: {description: Ordinal of the pod., type: int, sample: 0}
    fqdn: {description: Stable DNS name of the pod., type: str, sample: cassandra-0.cassandra.db.svc.cluster.local}
    ready: {description: Whether the pod is ready., type: bool}
    phase: {description: Pod phase., type: str, sample: Running}
    node: {description: Node the pod runs on., type: str}
    ip: {description: Pod IP address., type: str}
    pvcs: {description: Names of the pod's PVCs., type: list, elements: str, sample: [data-cassandra-0]}
    revision: {description: Controller revision the pod runs., type: str}
    updated: {description: Whether the pod runs the StatefulSet's update revision., type: bool}
    terminating: {description: Whether the pod is being deleted., type: bool}
pvcs:
  description: PVCs made from the claim templates (V(<template>-<statefulset>-<ordinal>)), including those of removed ordinals.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: PVC name., type: str, sample: data-cassandra-0}
    phase: {description: PVC phase., type: str, sample: Bound}
    storage_class: {description: StorageClass of the PVC., type: str}
    requested: {description: Storage requested., type: str, sample: 10Gi}
    capacity: {description: Storage provisioned., type: str, sample: 10Gi}
    access_modes: {description: Access modes., type: list, elements: str}
    volume: {description: Bound PersistentVolume., type: str}
    uid: {description: UID of the PVC., type: str}
endpoints:
  description: Endpoints of the Service's EndpointSlices (C(discovery.k8s.io/v1)).
  returned: always
  type: list
  elements: dict
  contains:
    addresses: {description: Addresses of the endpoint., type: list, elements: str}
    address_type: {description: 'V(IPv4), V(IPv6) or V(FQDN).', type: str}
    hostname: {description: Hostname of the endpoint (the pod name for StatefulSet pods)., type: str}
    pod: {description: Name of the pod behind the endpoint., type: str}
    node: {description: Node of the endpoint., type: str}
    ready: {description: Whether the endpoint is ready., type: bool}
    serving: {description: Whether the endpoint is serving., type: bool}
    terminating: {description: Whether the endpoint is terminating., type: bool}
    ports: {description: 'Ports of the slice: name, port and protocol.', type: list, elements: dict}
service_fqdn:
  description: FQDN of the Service (V(null) when it does not exist).
  returned: always
  type: str
  sample: cassandra.db.svc.cluster.local
srv_names:
  description: SRV name of every named port of the Service, by port name.
  returned: always
  type: dict
  sample: {cql: _cql._tcp.cassandra.db.svc.cluster.local}
seeds:
  description: FQDNs of the first ordinals (up to three).
  returned: always
  type: list
  elements: str
leases:
  description: One entry per O(vault_secret). Never contains secret values.
  returned: always
  type: list
  elements: dict
  contains:
    secret: {description: Secret name., type: str}
    exists: {description: Whether the Secret exists., type: bool}
    lease_id: {description: Vault lease id from the annotation., type: str}
    lease_expires: {description: 'Lease expiry from the annotation, as written there.', type: str}
    expires_in_seconds: {description: Seconds until the lease expires (negative once expired)., type: int}
    expired: {description: Whether the lease has expired (V(null) when unknown)., type: bool}
    annotations: {description: "The Secret's C(datastore.kubernetes/) annotations about the lease.", type: dict}
health:
  description:
    - The datastore's health as its own tools report it (O(health)); V(null) when O(health=none) or the
      StatefulSet does not exist.
    - Keys common to every datastore are C(datastore), C(healthy) and C(problems); the others depend on it.
  returned: always
  type: dict
  contains:
    datastore: {description: 'V(postgres), V(cassandra) or V(elasticsearch).', type: str}
    healthy:
      description:
        - V(true) when nothing is wrong. PostgreSQL, every pod answers, exactly one is the primary and every
          replica streams from it; Cassandra, every node is C(UN) and every pod is in the ring;
          Elasticsearch, status C(green) with nothing relocating, initializing or unassigned.
      type: bool
    problems: {description: 'What is wrong, one sentence each.', type: list, elements: str}
    primary: {description: PostgreSQL. The pod that is not in recovery (V(null) unless exactly one)., type: str}
    pods:
      description: PostgreSQL. One entry per running pod.
      type: list
      elements: dict
      contains:
        pod: {description: Pod name., type: str}
        role: {description: 'V(primary), V(replica), or V(unknown) when the pod did not answer.', type: str}
        timeline: {description: "Timeline: of the current WAL on a primary, of the WAL receiver on a replica (else of the last restart point).", type: int}
        wal_lsn: {description: 'WAL position (current on a primary, replayed on a replica).', type: str}
        server_version: {description: PostgreSQL version., type: str}
        receiver_status: {description: "Replica. Status of its WAL receiver (V(streaming)...).", type: str}
        streaming: {description: 'Replica. Whether the primary lists it as streaming (V(null) for others).', type: bool}
        error: {description: Why the pod did not answer., type: str}
    replication:
      description: PostgreSQL. The primary's C(pg_stat_replication), one entry per connected replica.
      type: list
      elements: dict
      contains:
        pod: {description: The replica pod (matched by address; V(null) when no pod has it)., type: str}
        from: {description: The pod it streams from., type: str}
        application_name: {description: The replica's C(application_name)., type: str}
        client_addr: {description: The replica's address., type: str}
        state: {description: 'V(streaming), V(catchup), V(startup)...', type: str}
        sync_state: {description: 'V(async), V(sync), V(potential) or V(quorum).', type: str}
        sent_lsn: {description: Last WAL position sent., type: str}
        replay_lsn: {description: Last WAL position the replica replayed., type: str}
        lag_bytes: {description: Bytes of WAL the replica has not replayed yet., type: int}
        write_lag_seconds: {description: C(write_lag) in seconds (V(null) when idle)., type: float}
        flush_lag_seconds: {description: C(flush_lag) in seconds (V(null) when idle)., type: float}
        replay_lag_seconds: {description: C(replay_lag) in seconds (V(null) when idle)., type: float}
    nodes:
      description: Cassandra. The nodes of C(nodetool status).
      type: list
      elements: dict
      contains:
        address: {description: Node address., type: str}
        pod: {description: Pod with that address (V(null) when none)., type: str}
        code: {description: 'Status and state as nodetool prints them: V(UN), V(DN), V(UJ), V(UL)...', type: str}
        status: {description: 'V(up) or V(down).', type: str}
        state: {description: 'V(normal), V(leaving), V(joining) or V(moving).', type: str}
        load: {description: Load as printed (V(null) when unknown)., type: str, sample: 1.2 MiB}
        load_bytes: {description: Load in bytes., type: int}
        tokens: {description: Number of tokens., type: int}
        owns_percent: {description: Effective ownership in percent (V(null) when unknown)., type: float}
        host_id: {description: Host ID., type: str}
        rack: {description: Rack., type: str}
        datacenter: {description: Datacenter., type: str}
    source_pod: {description: Cassandra and Elasticsearch. The pod that was asked., type: str}
    status: {description: 'Elasticsearch. V(green), V(yellow) or V(red).', type: str}
    cluster: {description: Elasticsearch. The C(_cluster/health) answer., type: dict}
    unassigned:
      description: Elasticsearch. Unassigned shards, with the allocation explanation of the first five.
      type: list
      elements: dict
      contains:
        index: {description: Index., type: str}
        shard: {description: Shard number., type: int}
        primary: {description: Whether it is a primary shard., type: bool}
        reason: {description: Why it is unassigned (C(unassigned.reason))., type: str}
        explanation:
          description: >-
            From C(_cluster/allocation/explain): C(can_allocate), C(explanation), C(unassigned_reason),
            C(unassigned_details) and C(nodes) (each node's decision and the deciders that said no).
          type: dict
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _health, _info
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        service_name={"type": "str"},
        cluster_domain={"type": "str", "default": "cluster.local"},
        vault_secret={"type": "list", "elements": "str", "default": [], "no_log": False},
        health={"type": "str", "default": "none", "choices": list(_health.DATASTORES)},
        container={"type": "str"},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _info.run, connect)


if __name__ == "__main__":
    main()
