#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: job
short_description: Run a Kubernetes Job to completion and report how its pods ended
version_added: 0.1.0
description:
  - Creates a Job from a full O(definition) or from common options (image, command, a script from a ConfigMap,
    environment from Secrets and ConfigMaps, parallel and indexed completions), waits until it is C(Complete)
    B(or) C(Failed), and returns per pod the exit code, the reason and the tail of its log.
  - A failed Job fails the task with a message naming the failed pods, their exit codes, reasons and log tails.
  - Jobs are immutable, so a Job is never updated in place. The requested spec is hashed into the annotation
    C(datastore.kubernetes/spec-hash); see O(rerun) for when an existing Job is deleted and created again.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.WAIT
  - datastore.kubernetes.kube.ATTRIBUTES
options:
  name:
    description:
      - Name of the Job. Required unless O(definition) has C(metadata.name).
    type: str
  namespace:
    description:
      - Namespace of the Job. Required unless O(definition) has C(metadata.namespace).
    type: str
  state:
    description:
      - V(present) runs the Job; V(absent) deletes the Job and its pods.
    type: str
    choices: [present, absent]
    default: present
  definition:
    description:
      - A complete C(batch/v1) Job manifest. Mutually exclusive with the options that build one
        (O(image), O(command), O(args), O(script_configmap), O(env), O(env_from_secrets), O(env_from_configmaps)).
      - O(labels) and O(pod_annotations) are merged into it.
    type: dict
  image:
    description:
      - Container image of the Job's single container (named C(main)). Required unless O(definition) is set.
    type: str
  command:
    description:
      - Entrypoint of the container. Mutually exclusive with O(script_configmap).
    type: list
    elements: str
  args:
    description:
      - Arguments to the entrypoint (or to the script of O(script_configmap)).
    type: list
    elements: str
  script_configmap:
    description:
      - Run a script kept in a ConfigMap key. The key is mounted read-only and executable at
        O(script_configmap.mount_path)/O(script_configmap.key) and becomes the container command.
    type: dict
    suboptions:
      name:
        description: Name of the ConfigMap.
        type: str
        required: true
      key:
        description: Key of the ConfigMap that holds the script.
        type: str
        required: true
      mount_path:
        description: Directory the script is mounted in.
        type: str
        default: /opt/job
      interpreter:
        description:
          - Program that runs the script, for example V(/bin/sh) or V(python3).
          - Set to an empty string to execute the script itself (it needs a shebang line).
        type: str
        default: /bin/sh
  env:
    description:
      - Environment variables. A string value is set literally; a dictionary value is a C(valueFrom) source,
        for example a C(secretKeyRef) naming a Secret and one of its keys (see the examples).
    type: dict
  env_from_secrets:
    description:
      - Secrets whose keys all become environment variables (C(envFrom)), for example credentials written
        by M(datastore.kubernetes.vault_db_secret).
    type: list
    elements: str
  env_from_configmaps:
    description:
      - ConfigMaps whose keys all become environment variables (C(envFrom)).
    type: list
    elements: str
  resources:
    description:
      - Container resource requests and limits, as in the Kubernetes API.
    type: dict
  service_account:
    description:
      - ServiceAccount the pods run as.
    type: str
  restart_policy:
    description:
      - Pod restart policy. With V(Never) every retry is a new pod, so every failed attempt stays visible.
    type: str
    choices: [Never, OnFailure]
    default: Never
  completions:
    description:
      - Number of pods that must succeed.
    type: int
  parallelism:
    description:
      - Number of pods that may run at the same time.
    type: int
  completion_mode:
    description:
      - V(Indexed) gives each pod a completion index (environment variable C(JOB_COMPLETION_INDEX)),
        so parallel pods can each load their own share. Needs O(completions).
    type: str
    choices: [NonIndexed, Indexed]
  backoff_limit:
    description:
      - Retries before the Job is marked failed. The Kubernetes default is 6.
    type: int
  active_deadline_seconds:
    description:
      - Seconds the Job may run before it is failed with reason C(DeadlineExceeded).
    type: int
  ttl_seconds_after_finished:
    description:
      - Seconds after which the finished Job and its pods are deleted by the cluster.
      - With a TTL, the next run finds no Job and runs it again even if nothing changed.
    type: int
  labels:
    description:
      - Labels of the Job and of its pods.
    type: dict
  pod_annotations:
    description:
      - Annotations of the pods.
    type: dict
  rerun:
    description:
      - What to do when a Job of this name already exists.
      - V(on_change) leaves a Job whose spec hash matches alone (C(changed=false)) and deletes and recreates it
        when the requested spec differs.
      - V(never) leaves any existing Job alone, with a warning when its spec differs.
      - V(always) deletes and recreates it on every run.
      - An existing Job that failed with the same spec is not run again unless O(rerun=always); the task fails
        again with its recorded failure.
      - Deletion uses background propagation and waits until the old Job is gone.
    type: str
    choices: [never, on_change, always]
    default: on_change
  log_lines:
    description:
      - How many lines of each pod's log to return. V(0) skips reading logs.
      - Logs are best effort; a node that keeps none returns an empty list.
    type: int
    default: 20
notes:
  - With O(wait=false) the task returns as soon as the Job is created, and a failure is not reported.
  - In check mode the Job is created with a server-side dry run (validated, not stored); nothing is deleted.
seealso:
  - module: datastore.kubernetes.configmap
  - module: datastore.kubernetes.vault_db_secret
"""

EXAMPLES = r"""
- name: Load the schema with a script kept in a ConfigMap, credentials from a Secret
  datastore.kubernetes.job:
    name: load-schema
    namespace: db
    image: postgres:17
    script_configmap:
      name: dataload-scripts
      key: schema.sh
    env:
      PGHOST: postgres-0.postgres.db.svc.cluster.local
      PGPASSWORD:
        secretKeyRef:
          name: app-db-credentials
          key: password
    env_from_secrets:
      - app-db-credentials
    backoff_limit: 0
    wait_timeout: 900
  register: load

- name: Show the loader's last lines
  ansible.builtin.debug:
    msg: "{{ load.pods[0].log }}"

- name: Load 3 shards in parallel, each pod its own index
  datastore.kubernetes.job:
    name: load-shards
    namespace: db
    image: busybox:1.36
    command: [sh, -c, 'echo "loading shard $JOB_COMPLETION_INDEX"']
    completions: 3
    parallelism: 3
    completion_mode: Indexed

- name: Run a Job from a full manifest, every time the play runs
  datastore.kubernetes.job:
    rerun: always
    definition:
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: reindex
        namespace: search
      spec:
        backoffLimit: 1
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: reindex
                image: curlimages/curl:8.10.1
                args: [-fsS, -XPOST, 'http://elasticsearch:9200/_reindex']

- name: Remove the Job and its pods
  datastore.kubernetes.job:
    name: load-schema
    namespace: db
    state: absent
"""

RETURN = r"""
name:
  description: Name of the Job.
  returned: always
  type: str
  sample: load-schema
namespace:
  description: Namespace of the Job.
  returned: always
  type: str
  sample: db
spec_hash:
  description: Digest of the requested spec, stored in the annotation C(datastore.kubernetes/spec-hash).
  returned: when O(state=present)
  type: str
  sample: 5d41402abc4b2a76b9719d911017c592
recreated:
  description: Whether an existing Job was deleted and created again.
  returned: when the Job was created
  type: bool
  sample: false
uid:
  description: UID of the Job; it differs after a recreate.
  returned: when O(state=present)
  type: str
  sample: 0b6e9a0c-8f7a-4b8e-9a38-0b8f8e1f4c7d
status:
  description:
    - V(Complete), V(Failed), V(Running) (not finished, or not waited for), V(Suspended),
      or V(Pending) in check mode for a Job that would be created.
  returned: when O(state=present)
  type: str
  sample: Complete
counts:
  description: How many of the Job's pods succeeded, failed and are still running.
  returned: when O(state=present)
  type: dict
  contains:
    succeeded:
      description: Pods that succeeded.
      type: int
    failed:
      description: Pods that failed (retries included).
      type: int
    active:
      description: Pods still running.
      type: int
  sample: {"succeeded": 3, "failed": 0, "active": 0}
completed_indexes:
  description: Completed indexes of an V(Indexed) Job, in the API's compressed form.
  returned: when O(state=present)
  type: str
  sample: "0-2"
pods:
  description: The Job's pods, oldest first.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    name:
      description: Pod name.
      type: str
    completion_index:
      description: Completion index of the pod (V(Indexed) Jobs), else V(null).
      type: int
    phase:
      description: Pod phase.
      type: str
    exit_code:
      description: Exit code of the main container once terminated.
      type: int
    reason:
      description: Termination (or waiting) reason, for example V(Completed) or V(Error).
      type: str
    log:
      description: Last O(log_lines) lines of the pod's log (best effort; empty when the node keeps none).
      type: list
      elements: str
  sample:
    - name: load-shards-0-abcde
      completion_index: 0
      phase: Succeeded
      exit_code: 0
      reason: Completed
      log: ["loading shard 0"]
diff:
  description: The Job before and after, in diff mode.
  returned: when changed and in diff mode
  type: dict
not_ready:
  description: One line per pod that is not ready and why (the scheduler's reason, image pull errors, crash loops with
    the last log lines, failing probes and other Warning events, a node that is not ready).
  returned: on failure, when the wait timed out
  type: list
  elements: str
  sample: ["pod load-abcde: phase Pending; Unschedulable: 0/3 nodes are available: 3 Insufficient memory."]
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils._common import (
    new_module,
    WAIT_ARGSPEC,
    kube_argspec,
    run_module,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._job import run_job
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import (
    check_kubernetes_library,
    kube_client,
)


def argument_spec():
    return kube_argspec(
        name={"type": "str"},
        namespace={"type": "str"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        definition={"type": "dict"},
        image={"type": "str"},
        command={"type": "list", "elements": "str"},
        args={"type": "list", "elements": "str"},
        script_configmap={"type": "dict", "options": {
            "name": {"type": "str", "required": True},
            "key": {"type": "str", "required": True, "no_log": False},
            "mount_path": {"type": "str", "default": "/opt/job"},
            "interpreter": {"type": "str", "default": "/bin/sh"},
        }},
        env={"type": "dict"},
        env_from_secrets={"type": "list", "elements": "str", "no_log": False},
        env_from_configmaps={"type": "list", "elements": "str"},
        resources={"type": "dict"},
        service_account={"type": "str"},
        restart_policy={"type": "str", "choices": ["Never", "OnFailure"], "default": "Never"},
        completions={"type": "int"},
        parallelism={"type": "int"},
        completion_mode={"type": "str", "choices": ["NonIndexed", "Indexed"]},
        backoff_limit={"type": "int"},
        active_deadline_seconds={"type": "int"},
        ttl_seconds_after_finished={"type": "int"},
        labels={"type": "dict"},
        pod_annotations={"type": "dict"},
        rerun={"type": "str", "choices": ["never", "on_change", "always"], "default": "on_change"},
        log_lines={"type": "int", "default": 20},
        **WAIT_ARGSPEC
    )


def work(module):
    client = kube_client(module.params)
    result = run_job(client, module.params, check_mode=module.check_mode, diff_mode=module._diff)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    return result


def main():
    module = new_module(argument_spec(), supports_check_mode=True,
                        mutually_exclusive=[("command", "script_configmap")])
    check_kubernetes_library(module)
    run_module(module, work)


if __name__ == "__main__":
    main()
