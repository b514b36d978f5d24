#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: resource
short_description: Server-side apply any Kubernetes manifests and wait for them
version_added: 0.1.0
description:
  - Applies one or many manifests with server-side apply (field manager C(datastore.kubernetes)), in the order given,
    or deletes them.
  - Namespaces and CustomResourceDefinitions are applied alone and before everything that follows them; the objects between
    them go out concurrently (O(concurrency)) over one connection pool. Objects of a kind defined by a CRD of the same input
    are applied once that CRD is established.
  - Every manifest is parsed and checked before the first write. A document that is not a mapping, lacks C(apiVersion),
    C(kind) or C(metadata.name), has a kind the cluster does not serve, or repeats an earlier object fails the task
    with a message naming the document (C(definition[2]), C(src document 3); counted from 0), and nothing is written.
  - With O(wait=true), waits until Deployments, DaemonSets and StatefulSets have rolled out, Jobs have completed,
    Pods are ready, PersistentVolumeClaims are C(Bound), CRDs are C(Established) and Namespaces are C(Active);
    all waits run at the same time against one deadline. Other kinds are not waited for.
  - Returns one summary per object (never the content of a Secret) and, in diff mode, a diff per changed object
    with Secret values masked.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.WAIT
  - datastore.kubernetes.kube.ATTRIBUTES
options:
  definition:
    description:
      - The manifests, as a mapping, a list of mappings, or YAML text that may hold several documents separated by C(---).
      - Documents of C(kind=List) are unpacked; empty documents are skipped.
      - Mutually exclusive with O(src).
    type: raw
  src:
    description:
      - Path of a YAML file with one or more documents, read on the host that runs the module.
      - Mutually exclusive with O(definition).
    type: path
  namespace:
    description:
      - Namespace for namespaced objects whose manifest has no C(metadata.namespace).
      - Ignored for cluster-scoped objects.
    type: str
  state:
    description:
      - V(present) applies the manifests, V(absent) deletes the objects they name.
      - Deletion goes in reverse order, Namespaces and CRDs last.
    type: str
    choices: [present, absent]
    default: present
  force_conflicts:
    description:
      - Take over fields another field manager owns instead of failing with a conflict.
    type: bool
    default: false
  propagation_policy:
    description:
      - How dependents are deleted with O(state=absent). V(Foreground) deletes them before the owner,
        V(Background) after it, V(Orphan) leaves them in place.
    type: str
    choices: [Foreground, Background, Orphan]
    default: Background
  concurrency:
    description:
      - How many objects are applied, deleted or waited for at the same time.
    type: int
    default: 8
notes:
  - A second run with the same manifests reports C(changed=false) and the API server writes nothing
    (every C(resourceVersion) stays the same).
  - In check mode, objects that would go into a Namespace, or be of a kind, that the same input creates cannot be dry-run;
    they are reported as to be created.
seealso:
  - module: datastore.kubernetes.configmap
  - name: Server-side apply
    description: How the API server merges applied configuration and tracks field ownership.
    link: https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

EXAMPLES = r"""
- name: A namespace and a PodDisruptionBudget in it
  datastore.kubernetes.resource:
    definition: |
      apiVersion: v1
      kind: Namespace
      metadata:
        name: db
      ---
      apiVersion: policy/v1
      kind: PodDisruptionBudget
      metadata:
        name: cassandra
        namespace: db
      spec:
        maxUnavailable: 1
        selector:
          matchLabels:
            app: cassandra

- name: Every manifest of a file, into the namespace db unless a manifest says otherwise
  datastore.kubernetes.resource:
    src: manifests/network-policies.yaml
    namespace: db

- name: A Deployment from a template, waiting for its rollout
  datastore.kubernetes.resource:
    definition: "{{ lookup('ansible.builtin.template', 'exporter-deployment.yaml.j2') }}"
    namespace: monitoring
    wait: true
    wait_timeout: 600

- name: Objects built in a play
  datastore.kubernetes.resource:
    namespace: db
    definition:
      - apiVersion: v1
        kind: PersistentVolumeClaim
        metadata:
          name: backups
        spec:
          accessModes: [ReadWriteOnce]
          resources:
            requests:
              storage: 10Gi
      - apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: backup
  register: applied

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ applied.counts }}"

- name: Remove the objects of a file and wait until they are gone
  datastore.kubernetes.resource:
    src: manifests/network-policies.yaml
    namespace: db
    state: absent
    propagation_policy: Foreground
"""

RETURN = r"""
objects:
  description:
    - One entry per manifest, in input order. Never holds C(data) of any object.
  returned: always
  type: list
  elements: dict
  contains:
    apiVersion:
      description: API version of the object.
      type: str
      sample: apps/v1
    kind:
      description: Kind of the object.
      type: str
      sample: Deployment
    namespace:
      description: Namespace of the object; V(null) for cluster-scoped objects.
      type: str
      sample: db
    name:
      description: Name of the object.
      type: str
      sample: exporter
    changed:
      description: Whether the object was (or, in check mode, would be) created, changed or deleted.
      type: bool
    created:
      description: Whether the object did not exist before.
      returned: when O(state=present)
      type: bool
    deleted:
      description: Whether the object was (or would be) deleted.
      returned: when O(state=absent)
      type: bool
    resourceVersion:
      description: The object's C(resourceVersion) after the task; V(null) in check mode for an object that does not exist
        yet and after deletion.
      type: str
      sample: "48213"
    uid:
      description: The object's C(uid); V(null) when the object does not exist yet.
      type: str
      sample: 0d7c7b1e-6f1a-4a4e-9a53-1f4cf1c2d7a9
counts:
  description: How many objects were created, changed (existing and modified), left unchanged, and deleted.
  returned: always
  type: dict
  contains:
    created:
      description: Objects created.
      type: int
    changed:
      description: Existing objects that were modified.
      type: int
    unchanged:
      description: Objects left as they were (with O(state=absent), objects that were already gone).
      type: int
    deleted:
      description: Objects deleted.
      type: int
  sample: {created: 2, changed: 1, unchanged: 97, deleted: 0}
not_ready:
  description: One line per pod that is not ready and why (the scheduler's reason, image pull errors, crash loops with
    the last log lines, failing probes and other Warning events, a node that is not ready).
  returned: on failure, when a wait timed out or failed
  type: list
  elements: str
  sample: ["pod web-7d9f-x2x: container web waiting: ImagePullBackOff (Back-off pulling image \"web:9\")"]
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _resource
from ansible_collections.datastore.kubernetes.plugins.module_utils._common import WAIT_ARGSPEC, kube_argspec, new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, kube_client


def argument_spec():
    return kube_argspec(
        definition={"type": "raw"},
        src={"type": "path"},
        namespace={"type": "str"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        force_conflicts={"type": "bool", "default": False},
        propagation_policy={"type": "str", "choices": ["Foreground", "Background", "Orphan"], "default": "Background"},
        concurrency={"type": "int", "default": 8},
        **WAIT_ARGSPEC
    )


def work(module):
    params = dict(module.params)
    # Ansible echoes module.params back as the task's invocation: keep Secret values out of it.
    module.params["definition"] = _resource.masked_definition(params["definition"])
    if params["concurrency"] < 1:
        raise InvalidInput("concurrency", "must be at least 1")
    client = kube_client(params)
    return _resource.run(client, params, check_mode=module.check_mode, diff=module._diff)


def main():
    module = new_module(argument_spec(), supports_check_mode=True,
                        mutually_exclusive=[("definition", "src")], required_one_of=[("definition", "src")])
    check_kubernetes_library(module)
    run_module(module, work)


if __name__ == "__main__":
    main()
