#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: helm_release
short_description: Install, upgrade and uninstall Helm releases, idempotently and without plugins
version_added: 0.1.0
description:
  - Installs or upgrades a Helm release with C(helm upgrade --install), or uninstalls it, using the helm CLI
    (version 4, or version 3).
  - The chart comes from a local directory, a packaged C(.tgz), a chart repository URL (O(chart_repo_url),
    no C(helm repo add) needed) or an C(oci://) registry.
  - Idempotent without the helm-diff plugin. The deployed release's chart name, chart version and values are
    compared with the request, and C(helm upgrade) runs only when one differs, so an unchanged run never
    creates a revision. A chart from a local directory or archive can change without a version bump, so a
    digest of its files is recorded in the revision's description (C(datastore.kubernetes chart-digest=...))
    and compared too.
  - An unchanged run calls helm once for a local chart, twice for a chart from a repository or registry, three
    times when O(chart_version) is a constraint or unset (see RV(helm_invocations)).
  - A release in status C(failed) (its last install or upgrade did not succeed, for example because its wait
    timed out) is upgraded like a deployed one, as C(helm upgrade) does (against the last deployed revision, or
    the failed one when none was ever deployed), whatever the request. Correcting the request and running again
    is how a failed release is fixed; RV(changes) then starts with V(failed release (revision N\)).
  - A release left in C(pending-install), C(pending-upgrade), C(pending-rollback) or C(uninstalling) by an
    interrupted helm operation is detected and handled as O(on_pending) says.
  - When helm's wait fails, the error names each pod of the release that is not ready and why (see
    RV(not_ready)). The release's workloads are read from its manifest (C(helm get manifest)), their pods through
    their selectors and owner references.
  - A run that changes nothing never renders the chart, so charts that draw random values on every render
    (C(randAlphaNum) passwords, C(genCA) certificates) keep them.
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.WAIT
  - datastore.kubernetes.kube.ATTRIBUTES
options:
  name:
    description: Release name.
    type: str
    required: true
    aliases: [release_name]
  namespace:
    description: Namespace of the release.
    type: str
    required: true
    aliases: [release_namespace]
  state:
    description: V(present) installs or upgrades the release, V(absent) uninstalls it.
    type: str
    choices: [present, absent]
    default: present
  chart_ref:
    description:
      - The chart. A path to a chart directory or a packaged chart (C(.tgz)); a chart name together with
        O(chart_repo_url); an C(oci://) reference; or C(repo/chart) for a repository added with C(helm repo add).
      - Required when O(state=present).
    type: str
  chart_repo_url:
    description: URL of the chart repository holding O(chart_ref) (passed as C(--repo)).
    type: str
  chart_version:
    description:
      - Chart version, or a version constraint such as V(^1.2.0). The latest version when unset.
      - An exact version is compared without asking the repository; a constraint or no version costs one
        C(helm show chart) call per run to learn which version it means.
      - For a local chart it must match the chart's own version.
    type: str
  values:
    description: Values for the chart, merged over O(values_files).
    type: dict
    default: {}
  values_files:
    description:
      - Values files (YAML), merged in order, for example one common file and one per environment.
      - Paths are on the machine that runs the module.
    type: list
    elements: path
    default: []
  set_values:
    description:
      - Single values set last, like C(--set), over O(values_files) and O(values).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Key path, such as V(image.tag), V(servers[0].port) or V(annotations.example\\.com/team).
        type: str
        required: true
      value:
        description: The value.
        type: raw
      value_type:
        description:
          - V(raw) keeps the value as given, V(string) turns it into a string, V(json) parses a JSON string,
            V(file) reads the file the value names.
        type: str
        choices: [raw, string, json, file]
        default: raw
  sensitive_values:
    description:
      - Key paths (as in O(set_values)) whose values are secret. They are masked in RV(chart_values), in the manifest
        diff and in error messages, and hidden from Ansible's output.
    type: list
    elements: str
    default: []
  create_namespace:
    description: Whether to create the release namespace when it does not exist.
    type: bool
    default: false
  atomic:
    description:
      - Whether to roll back a failed install or upgrade (C(--atomic) with helm 3, C(--rollback-on-failure) with
        helm 4). Implies waiting.
    type: bool
    default: false
  take_ownership:
    description:
      - Whether to adopt existing resources that no release owns yet (C(--take-ownership), helm 3.17 and later).
    type: bool
    default: false
  on_pending:
    description:
      - What to do when an interrupted helm operation left the release in C(pending-install), C(pending-upgrade),
        C(pending-rollback) or C(uninstalling). A release in C(failed) needs none of this; it is upgraded.
      - V(fail) stops with a message that says what is wrong and what to do.
      - V(rollback) rolls back to the previous revision, then upgrades if the request still differs.
      - V(reinstall) uninstalls the release and installs it again.
    type: str
    choices: [fail, rollback, reinstall]
    default: fail
  plain_http:
    description: Whether to fetch the chart over plain HTTP from an OCI registry.
    type: bool
    default: false
  repo_username:
    description: User name for the chart repository or registry.
    type: str
  repo_password:
    description: Password for the chart repository or registry.
    type: str
  binary_path:
    description: The helm binary. The first C(helm) on E(PATH) when unset.
    type: path
notes:
  - The values of all sources are merged by the module and passed to helm as one private temporary file,
    so values never appear on a command line.
  - In check mode the chart is rendered with C(--dry-run=server); nothing is installed and no revision is created.
  - Client certificates (O(client_cert)) are not supported by helm's flags; use a kubeconfig for them.
requirements:
  - helm 3.13 or later, or helm 4
"""

EXAMPLES = r"""
- name: Install the metrics stack from a chart repository, pinned
  datastore.kubernetes.helm_release:
    name: metrics
    namespace: monitoring
    create_namespace: true
    chart_ref: kube-state-metrics
    chart_repo_url: https://prometheus-community.github.io/helm-charts
    chart_version: 5.25.1
    values:
      replicas: 2

- name: Install a chart from a directory with common and per-environment values
  datastore.kubernetes.helm_release:
    name: search-ui
    namespace: search
    chart_ref: "{{ playbook_dir }}/charts/search-ui"
    values_files:
      - "{{ playbook_dir }}/values/common.yaml"
      - "{{ playbook_dir }}/values/{{ env_name | default('staging') }}.yaml"
    set_values:
      - path: image.tag
        value: "1.4.2"
        value_type: string
      - path: auth.password
        value: "{{ ui_password | default('change-me') }}"
    sensitive_values:
      - auth.password
    atomic: true
    wait_timeout: 600

- name: Install from an OCI registry
  datastore.kubernetes.helm_release:
    name: cache
    namespace: cache
    chart_ref: oci://registry-1.docker.io/bitnamicharts/valkey
    chart_version: 2.0.1

- name: Recover a release an interrupted upgrade left pending
  datastore.kubernetes.helm_release:
    name: search-ui
    namespace: search
    chart_ref: "{{ playbook_dir }}/charts/search-ui"
    on_pending: rollback

- name: Uninstall
  datastore.kubernetes.helm_release:
    name: metrics
    namespace: monitoring
    state: absent
"""

RETURN = r"""
name:
  description: Release name.
  returned: always
  type: str
  sample: search-ui
namespace:
  description: Release namespace.
  returned: always
  type: str
  sample: search
revision:
  description: Release revision. Unchanged when nothing changed.
  returned: when the release exists or was installed
  type: int
  sample: 3
status:
  description:
    - Release status, for example V(deployed); V(uninstalled) after an uninstall.
    - In check mode, the status of the dry run, for example V(pending-upgrade).
  returned: when the release exists or was installed
  type: str
  sample: deployed
chart:
  description: Chart name of the release.
  returned: when the release exists or was installed
  type: str
  sample: search-ui
chart_version:
  description: Chart version of the release.
  returned: when the release exists or was installed
  type: str
  sample: 0.3.0
app_version:
  description: The chart's C(appVersion).
  returned: when the release exists or was installed
  type: str
  sample: "1.4.2"
description:
  description: Helm's description of the revision (for a local chart, the digest this module recorded).
  returned: when the release exists or was installed
  type: str
  sample: Upgrade complete
chart_values:
  description:
    - The merged values asked for, with O(sensitive_values) masked.
    - Earlier versions returned it as C(values), a key that Jinja's dot notation cannot reach.
  returned: when O(state=present)
  type: dict
  sample: {"replicas": 2, "auth": {"password": "<masked>"}}
changes:
  description: Why helm upgrade ran, for example V(install), V(values), V(chart version 0.1.0 -> 0.2.0).
  returned: when changed and O(state=present)
  type: list
  elements: str
  sample: ["values"]
pending_action:
  description: V(rollback) or V(reinstall) when a pending release was recovered.
  returned: when a pending release was handled
  type: str
  sample: rollback
pending_status:
  description: The state the release was found in, when O(on_pending) acted.
  returned: when a pending release was handled
  type: str
  sample: pending-upgrade
helm_invocations:
  description: How many times helm ran.
  returned: always
  type: int
  sample: 1
helm_version:
  description: Version of the helm binary, when it had to be asked (only runs that change something with
    O(atomic) or O(take_ownership) do).
  returned: when helm was asked for its version
  type: str
  sample: 4.1.4
diff:
  description:
    - Rendered manifest before and after, with Secret values and O(sensitive_values) masked.
  returned: when changed and in diff mode
  type: dict
not_ready:
  description:
    - When helm's wait failed, one line per pod of the release that is not ready, saying why, as in the message.
    - The scheduler's reason for a pod without a node (affinity, anti-affinity, taints, insufficient CPU or memory,
      an unbound PersistentVolumeClaim); a container's waiting reason (image pull errors, C(CrashLoopBackOff) with
      its last exit code and the last lines of the crashed run's log); failing probes and other Warning events of
      the pod (C(Unhealthy), C(FailedMount)); a node that is not ready.
    - With O(atomic), helm has already rolled back when the module looks, so the pods of the failed revision are
      usually gone and the list is empty.
  returned: on failure, when helm's wait failed
  type: list
  elements: str
  sample: ["pod db-3: Unschedulable: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."]
release_status:
  description: The release's status after a failed install or upgrade, for example V(failed).
  returned: on failure, when helm's wait failed
  type: str
  sample: failed
"""

import shutil


from ansible_collections.datastore.kubernetes.plugins.module_utils._common import (
    new_module,
    WAIT_ARGSPEC,
    kube_argspec,
    run_module,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import HelmError
from ansible_collections.datastore.kubernetes.plugins.module_utils._helm import Helm, connection_args, run_release
from ansible_collections.datastore.kubernetes.plugins.module_utils._helm_values import merged_values, sensitive_leaves
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import kube_client
from ansible_collections.datastore.kubernetes.plugins.module_utils._status import diagnose_objects


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True, "aliases": ["release_name"]},
        namespace={"type": "str", "required": True, "aliases": ["release_namespace"]},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        chart_ref={"type": "str"},
        chart_repo_url={"type": "str"},
        chart_version={"type": "str"},
        values={"type": "dict", "default": {}},
        values_files={"type": "list", "elements": "path", "default": []},
        set_values={"type": "list", "elements": "dict", "default": [], "options": {
            "path": {"type": "str", "required": True},
            "value": {"type": "raw"},
            "value_type": {"type": "str", "choices": ["raw", "string", "json", "file"], "default": "raw"},
        }},
        sensitive_values={"type": "list", "elements": "str", "default": [], "no_log": False},
        create_namespace={"type": "bool", "default": False},
        atomic={"type": "bool", "default": False},
        take_ownership={"type": "bool", "default": False},
        on_pending={"type": "str", "choices": ["fail", "rollback", "reinstall"], "default": "fail"},
        plain_http={"type": "bool", "default": False},
        repo_username={"type": "str"},
        repo_password={"type": "str", "no_log": True},
        binary_path={"type": "path"},
        **WAIT_ARGSPEC
    )


def work(module):
    params = module.params
    if params["state"] == "present" and params["sensitive_values"]:
        # Ansible then masks these strings in everything it prints, module arguments included.
        module.no_log_values.update(sensitive_leaves(merged_values(params), params["sensitive_values"]))
    binary = params["binary_path"] or shutil.which("helm")
    if not binary:
        raise HelmError("helm was not found on PATH; install helm 3.13+ or 4, or set binary_path")
    conn, env, temps = connection_args(params)
    helm = Helm(binary, lambda argv, extra: module.run_command(argv, environ_update=extra), conn, env)

    def diagnose(objects, namespace):
        return diagnose_objects(kube_client(params), objects, namespace)

    try:
        return run_release(helm, params, check_mode=module.check_mode, diff_mode=module._diff, diagnose=diagnose)
    finally:
        for path in temps:
            module.cleanup(path)


def main():
    module = new_module(argument_spec(), supports_check_mode=True,
                        required_if=[("state", "present", ("chart_ref",))])
    run_module(module, work)


if __name__ == "__main__":
    main()
