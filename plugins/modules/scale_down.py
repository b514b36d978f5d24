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
  - An interrupted run leaves pods, slots or claims above the target; the next run with the same O(replicas)
    finds them and finishes.
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
      - V(none) only lowers C(replicas) and handles the claims.
    type: str
    choices: [postgres, none]
    default: postgres
  container:
    description: Container in which the PostgreSQL commands run. Defaults to the pod's default container.
    type: str
  delete_pvcs:
    description: Delete the removed pods' PersistentVolumeClaims (their data). V(false) keeps them for a later scale-up.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for each pod to be gone and each slot to be released.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Go from three PostgreSQL pods to two, dropping postgres-2's slot and its data
  datastore.kubernetes.scale_down:
    name: postgres
    namespace: db
    replicas: 2
    delete_pvcs: true
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
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _day2.run_scale_down, connect)


if __name__ == "__main__":
    main()
