#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: statefulset
short_description: Apply a StatefulSet and its headless Service as one unit
version_added: 0.1.0
description:
  - Applies a StatefulSet together with the headless Service (C(clusterIP) V(None)) that gives each pod a stable
    DNS name, with server-side apply. Options cover the common case; O(definition) is merged over the generated
    StatefulSet for everything else.
  - Waits until the rollout is complete and ready, including partitioned rollouts (done when the pods at or above
    the partition are updated and ready) and O(update_strategy.type=OnDelete) (done when every replica is ready;
    pods still on the previous revision are returned in RV(outdated_pods)).
  - Returns each pod's stable DNS name, the Service's FQDN, the SRV name of every named port and a seed list.
  - A change to a field the API server cannot change in place (C(volumeClaimTemplates), C(serviceName),
    C(selector), C(podManagementPolicy)) is found before anything is written. It fails, or with
    O(on_immutable=recreate) the StatefulSet is deleted with orphan propagation (pods and PVCs stay) and created
    again; existing PVCs are expanded when a claim template's storage grew.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.WAIT
  - datastore.kubernetes.kube.ATTRIBUTES
  - datastore.kubernetes.pod
options:
  name:
    description: Name of the StatefulSet, a DNS-1123 label of at most 52 characters. Pods are V(<name>-<ordinal>).
    type: str
    required: true
  namespace:
    description: Namespace of the StatefulSet and the Service.
    type: str
    default: default
  state:
    description:
      - V(present) applies the StatefulSet and the Service.
      - V(absent) deletes both; PVCs are kept unless O(delete_pvcs=true).
    type: str
    choices: [present, absent]
    default: present
  replicas:
    description: Number of pods. Defaults to the one in O(definition), else V(1).
    type: int
  volume_claim_templates:
    description: Claim templates; each pod gets a PVC V(<name>-<statefulset>-<ordinal>) from each.
    type: list
    elements: dict
    suboptions:
      name:
        description: Template name, also the name of the pod volume.
        type: str
        required: true
      size:
        description: Storage request, for example V(10Gi).
        type: str
        required: true
      storage_class:
        description: StorageClass of the claims. The cluster's default class when unset.
        type: str
      access_modes:
        description: Access modes of the claims.
        type: list
        elements: str
        default: [ReadWriteOnce]
      mount_path:
        description: Where the main container mounts the volume.
        type: str
  pod_management_policy:
    description:
      - V(OrderedReady) starts ordinal 0 and waits for it to be ready before ordinal 1, and so on.
      - V(Parallel) starts all pods at once. Cannot change in place.
    type: str
    choices: [OrderedReady, Parallel]
    default: OrderedReady
  update_strategy:
    description: How pods are replaced when the pod template changes.
    type: dict
    suboptions:
      type:
        description: V(RollingUpdate) replaces pods from the highest ordinal down; V(OnDelete) only when a pod is deleted.
        type: str
        choices: [RollingUpdate, OnDelete]
        default: RollingUpdate
      partition:
        description: Only pods with an ordinal at or above this are updated. Not with V(OnDelete).
        type: int
  labels:
    description: Labels of the StatefulSet and its pods. Values must be strings.
    type: dict
  annotations:
    description: Annotations of the StatefulSet. Values must be strings.
    type: dict
  service:
    description: The headless Service.
    type: dict
    suboptions:
      name:
        description: Service name (the StatefulSet's C(serviceName)). Defaults to O(name). Cannot change in place.
        type: str
      publish_not_ready_addresses:
        description: Publish DNS records of pods before they are ready, so peers find each other (seed discovery).
        type: bool
        default: false
      labels:
        description: Extra labels of the Service.
        type: dict
      annotations:
        description: Annotations of the Service.
        type: dict
  definition:
    description:
      - A StatefulSet manifest merged over the generated one. Mappings merge key by key; lists of named items
        (containers, env, volumes, claim templates) merge by name; anything else replaces the generated value.
      - Without O(image), the manifest's containers are used instead of a generated main container.
      - A C(spec.selector) here replaces the generated one.
    type: dict
  cluster_domain:
    description: DNS domain of the cluster, used in the returned names.
    type: str
    default: cluster.local
  seed_count:
    description: How many ordinals (from the first) make the seed list RV(seeds). Defaults to the smaller of 3 and the replicas.
    type: int
  on_immutable:
    description:
      - What to do when a field that cannot change in place changed.
      - V(fail) fails before anything is written, naming the field.
      - V(recreate) deletes the StatefulSet with orphan propagation (pods and PVCs stay), waits until it is gone and
        creates it again; the new StatefulSet adopts the pods. When a claim template's storage grew, existing PVCs
        are patched to the new size; if their StorageClass does not allow volume expansion it fails before writing.
    type: str
    choices: [fail, recreate]
    default: fail
  delete_pvcs:
    description: With O(state=absent), also delete the PVCs made from the claim templates.
    type: bool
    default: false
  force:
    description: Take over fields another field manager owns instead of failing with a conflict.
    type: bool
    default: false
notes:
  - Pods get the label C(datastore.kubernetes/statefulset=<name>), which the StatefulSet and the Service select on.
"""

EXAMPLES = r"""
- name: Cassandra ring of three with 10Gi per node
  datastore.kubernetes.statefulset:
    name: cassandra
    namespace: db
    image: cassandra:5.0
    replicas: 3
    ports:
      - {name: cql, container_port: 9042}
      - {name: intra, container_port: 7000}
    env: {CASSANDRA_CLUSTER_NAME: ring, MAX_HEAP_SIZE: 512M, HEAP_NEWSIZE: 100M}
    volume_claim_templates:
      - {name: data, size: 10Gi, storage_class: standard, mount_path: /var/lib/cassandra}
    readiness_probe: {tcpSocket: {port: 9042}, periodSeconds: 10}
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
    service: {publish_not_ready_addresses: true}
  register: ring

- name: Show the seed list
  ansible.builtin.debug:
    msg: "CASSANDRA_SEEDS={{ ring.seeds | join(',') }}"

- name: Roll a new image to ordinal 2 only (canary)
  datastore.kubernetes.statefulset:
    name: cassandra
    namespace: db
    image: cassandra:5.0.1
    replicas: 3
    ports:
      - {name: cql, container_port: 9042}
    volume_claim_templates:
      - {name: data, size: 10Gi, storage_class: standard, mount_path: /var/lib/cassandra}
    update_strategy: {partition: 2}

- name: Grow the volumes, recreating the StatefulSet (pods and PVCs are kept)
  datastore.kubernetes.statefulset:
    name: cassandra
    namespace: db
    image: cassandra:5.0
    replicas: 3
    ports:
      - {name: cql, container_port: 9042}
    volume_claim_templates:
      - {name: data, size: 20Gi, storage_class: standard, mount_path: /var/lib/cassandra}
    on_immutable: recreate

- name: Anything else through definition
  datastore.kubernetes.statefulset:
    name: postgres
    namespace: db
    image: postgres:17
    definition:
      spec:
        template:
          spec:
            terminationGracePeriodSeconds: 60
            securityContext: {runAsNonRoot: true, fsGroup: 999}

- name: Remove it, keeping the data
  datastore.kubernetes.statefulset:
    name: cassandra
    namespace: db
    state: absent
"""

RETURN = r"""
statefulset:
  description: The StatefulSet as the API server holds it (or would, in check mode), without C(managedFields).
  returned: always
  type: dict
service:
  description: The headless Service as the API server holds it (or would, in check mode), without C(managedFields).
  returned: always
  type: dict
pods:
  description: The StatefulSet's pods, by ordinal.
  returned: when O(state=present)
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
service_fqdn:
  description: FQDN of the headless Service.
  returned: when O(state=present)
  type: str
  sample: cassandra.db.svc.cluster.local
srv_names:
  description: SRV name of every named port of the Service, by port name.
  returned: when O(state=present)
  type: dict
  sample: {cql: _cql._tcp.cassandra.db.svc.cluster.local}
seeds:
  description: FQDNs of the first O(seed_count) ordinals.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [cassandra-0.cassandra.db.svc.cluster.local, cassandra-1.cassandra.db.svc.cluster.local]
outdated_pods:
  description: Pods not on the update revision (below the partition, or not yet deleted with V(OnDelete)).
  returned: when O(state=present)
  type: list
  elements: str
partition:
  description: The rollout partition in effect (V(0) when none).
  returned: when O(state=present)
  type: int
recreated:
  description: Whether the StatefulSet was (or, in check mode, would be) deleted and created again.
  returned: when O(state=present)
  type: bool
immutable_changes:
  description: The changes that cannot be made in place and made it recreate.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["volumeClaimTemplates: data: storage 1Gi -> 2Gi"]
expanded_pvcs:
  description: PVCs whose storage request was (or would be) raised.
  returned: when O(state=present)
  type: list
  elements: str
deleted_pvcs:
  description: PVCs deleted (or to be deleted, in check mode) with O(delete_pvcs=true).
  returned: when O(state=absent)
  type: list
  elements: str
kept_pvcs:
  description: PVCs of the StatefulSet left in place.
  returned: when O(state=absent)
  type: list
  elements: str
not_ready:
  description: One line per pod that is not ready and why (the scheduler's reason, image pull errors, crash loops with
    the last log lines, failing probes and other Warning events, a node that is not ready).
  returned: on failure, when the wait timed out
  type: list
  elements: str
  sample: ["pod db-3: Unschedulable: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."]
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import WAIT_ARGSPEC, kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect


def argument_spec():
    # The pod template options (image to sidecars, and the pod-level ones from termination_grace_period on)
    # are documented in doc_fragments/pod.py.
    strings, mapping, mappings = {"type": "list", "elements": "str"}, {"type": "dict"}, {"type": "list", "elements": "dict"}
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "default"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        image={"type": "str"},
        image_pull_policy={"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
        command=strings, args=strings,
        replicas={"type": "int"},
        ports={"type": "list", "elements": "dict", "options": {
            "name": {"type": "str", "required": True}, "container_port": {"type": "int", "required": True},
            "protocol": {"type": "str", "choices": ["TCP", "UDP", "SCTP"], "default": "TCP"}}},
        env={"type": "raw"},
        env_from={"type": "list", "elements": "dict", "options": {
            "config_map": {"type": "str"}, "secret": {"type": "str", "no_log": False}, "prefix": {"type": "str"},
            "optional": {"type": "bool"}}},
        volume_claim_templates={"type": "list", "elements": "dict", "options": {
            "name": {"type": "str", "required": True}, "size": {"type": "str", "required": True},
            "storage_class": {"type": "str"}, "mount_path": {"type": "str"},
            "access_modes": {"type": "list", "elements": "str", "default": ["ReadWriteOnce"]}}},
        volumes=mappings, volume_mounts=mappings,
        pod_management_policy={"type": "str", "choices": ["OrderedReady", "Parallel"], "default": "OrderedReady"},
        update_strategy={"type": "dict", "options": {
            "type": {"type": "str", "choices": ["RollingUpdate", "OnDelete"], "default": "RollingUpdate"},
            "partition": {"type": "int"}}},
        readiness_probe=mapping, liveness_probe=mapping, startup_probe=mapping, resources=mapping,
        init_containers=mappings, sidecars=mappings,
        labels=mapping, annotations=mapping, pod_annotations=mapping,
        termination_grace_period={"type": "int"},
        pre_stop={"type": "dict", "options": {"command": strings, "sleep": {"type": "int"}},
                  "mutually_exclusive": [["command", "sleep"]], "required_one_of": [["command", "sleep"]]},
        anti_affinity={"type": "str", "choices": ["none", "preferred", "required"]},
        anti_affinity_topology_key={"type": "str", "default": "kubernetes.io/hostname", "no_log": False},
        security_context={"type": "dict", "options": {
            "run_as_user": {"type": "int"}, "run_as_group": {"type": "int"}, "fs_group": {"type": "int"},
            "read_only_root_filesystem": {"type": "bool", "default": True}}},
        node_selector=mapping, tolerations=mappings,
        enable_service_links={"type": "bool"}, automount_service_account_token={"type": "bool"},
        service={"type": "dict", "options": {
            "name": {"type": "str"}, "publish_not_ready_addresses": {"type": "bool", "default": False},
            "labels": {"type": "dict"}, "annotations": {"type": "dict"}}},
        definition=mapping,
        cluster_domain={"type": "str", "default": "cluster.local"},
        seed_count={"type": "int"},
        on_immutable={"type": "str", "choices": ["fail", "recreate"], "default": "fail"},
        delete_pvcs={"type": "bool", "default": False},
        force={"type": "bool", "default": False},
        **WAIT_ARGSPEC
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _statefulset.run, connect)


if __name__ == "__main__":
    main()
