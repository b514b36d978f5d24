#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r"""
module: configmap
short_description: Build a ConfigMap from literals, files, env files, directories and templates
version_added: 0.1.0
description:
  - Creates, updates or deletes a ConfigMap with server-side apply, building its content the way
    C(kubectl create configmap --from-literal/--from-file/--from-env-file) does.
  - UTF-8 text goes into C(data); anything else (a keystore, a compressed file) goes into C(binaryData), base64 encoded.
  - Keys follow the API server's rules (letters, digits, C(-), C(_) and C(.), at most 253 characters).
    A key defined twice, in one source or across sources, is an error that names the key.
  - With O(hash_suffix=true) the name gets a suffix made of the content's hash, so every content has its own ConfigMap
    and Pods that mount it roll when the configuration changes; older generations are pruned.
    With O(hash_annotation=true) the hash is recorded in an annotation instead, for templates that copy it into a Pod annotation.
  - Files are read on the host that runs the module. Use C(delegate_to) or run against C(localhost) to read files
    from the controller, or pass rendered templates through O(data).
author:
  - Datastore Kubernetes maintainers (@datastore-kubernetes)
extends_documentation_fragment:
  - datastore.kubernetes.kube
  - datastore.kubernetes.kube.IN_PROCESS
  - datastore.kubernetes.kube.ATTRIBUTES
options:
  name:
    description:
      - Name of the ConfigMap. With O(hash_suffix=true), the base the generated name is made from.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the ConfigMap.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the ConfigMap, V(absent) deletes it.
      - With O(hash_suffix=true), V(absent) deletes every generation made from O(name).
    type: str
    choices: [present, absent]
    default: present
  from_literal:
    description:
      - Keys and values, like C(--from-literal=key=value). Values are stored as text; booleans become V(true) and V(false).
    type: dict
  from_file:
    description:
      - Files whose whole content becomes one key each, like C(--from-file).
      - An item is a path (the key is the file name) or a mapping with C(path) and C(key).
    type: list
    elements: raw
  from_env_file:
    description:
      - Files of C(KEY=VALUE) lines, like C(--from-env-file). Leading whitespace, blank lines and lines starting with C(#) are ignored;
        the value is everything after the first C(=), quotes included.
      - A line without C(=) is an error (kubectl would look the name up in its environment).
    type: list
    elements: path
  from_dir:
    description:
      - Directories whose regular files each become one key named after the file, like C(--from-file=<dir>).
        Subdirectories and symbolic links are skipped.
    type: list
    elements: path
  data:
    description:
      - Text values to store as they are, typically rendered templates (V("{{ lookup('ansible.builtin.template', 'app.conf.j2') }}")).
    type: dict
  binary_data:
    description:
      - Base64-encoded values to store in C(binaryData) as they are.
    type: dict
  labels:
    description:
      - Labels of the ConfigMap.
    type: dict
  annotations:
    description:
      - Annotations of the ConfigMap.
    type: dict
  immutable:
    description:
      - Whether the API server forbids changes to the content once the ConfigMap exists.
      - When unset, the field is not managed by this module.
      - Changing the content of an immutable ConfigMap fails unless O(hash_suffix=true) (a new ConfigMap each time)
        or O(on_immutable=recreate).
    type: bool
  on_immutable:
    description:
      - What to do when the content of an immutable ConfigMap has to change.
      - V(fail) stops with a message naming the field. V(recreate) deletes the ConfigMap and creates it again;
        Pods that already mount it keep the old content until they restart.
    type: str
    choices: [fail, recreate]
    default: fail
  hash_suffix:
    description:
      - Append C(-<hash>) to O(name), where the hash is 10 hexadecimal characters of the SHA-256 of the sorted content.
      - Every generation is labelled C(datastore.kubernetes/configmap=<name>); O(name) may then have at most 63 characters.
    type: bool
    default: false
  keep_generations:
    description:
      - With O(hash_suffix=true), how many generations to keep, counting the current one; older ones are deleted.
      - The current ConfigMap is never deleted. In check mode the generations that would be deleted are only listed.
    type: int
    default: 3
  hash_annotation:
    description:
      - Record the content hash in the annotation C(datastore.kubernetes/content-hash).
    type: bool
    default: false
  force_conflicts:
    description:
      - Take over fields another field manager owns instead of failing.
    type: bool
    default: false
notes:
  - The module is idempotent. A second run with the same content reports C(changed=false) and the API server writes nothing
    (the C(resourceVersion) stays the same).
seealso:
  - module: datastore.kubernetes.resource
"""

EXAMPLES = r"""
- name: Cassandra configuration from a template, a literal and an env file
  datastore.kubernetes.configmap:
    name: cassandra-config
    namespace: db
    data:
      cassandra.yaml: "{{ lookup('ansible.builtin.template', 'cassandra.yaml.j2') }}"
    from_literal:
      CLUSTER_NAME: prod
      NUM_TOKENS: 16
    from_env_file:
      - /etc/datastore/cassandra.env

- name: Scripts of a directory plus one renamed file, a new ConfigMap for every content
  datastore.kubernetes.configmap:
    name: dataload-scripts
    namespace: db
    from_dir:
      - /srv/dataload/scripts
    from_file:
      - key: truststore.jks
        path: /srv/certs/cassandra-truststore.jks
    hash_suffix: true
    keep_generations: 2
    immutable: true
  register: scripts

- name: Mount the current generation
  ansible.builtin.debug:
    msg: "Mount ConfigMap {{ scripts.name }}"

- name: Record the content hash so a Deployment template can roll on change
  datastore.kubernetes.configmap:
    name: exporter-config
    namespace: monitoring
    from_literal:
      scrape_interval: 30s
    hash_annotation: true

- name: Delete a ConfigMap and, with hash_suffix, all its generations
  datastore.kubernetes.configmap:
    name: dataload-scripts
    namespace: db
    hash_suffix: true
    state: absent
"""

RETURN = r"""
name:
  description: Name of the ConfigMap; with O(hash_suffix=true), the generated name including the hash.
  returned: always
  type: str
  sample: dataload-scripts-5d1c0e9a7b
namespace:
  description: Namespace of the ConfigMap.
  returned: always
  type: str
  sample: db
content_hash:
  description: The 10 hexadecimal characters of the SHA-256 of the sorted content.
  returned: when O(state=present)
  type: str
  sample: 5d1c0e9a7b
configmap:
  description:
    - The ConfigMap as the API server holds it (in check mode, as it would hold it), without C(managedFields).
  returned: when O(state=present)
  type: dict
  sample:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: exporter-config, namespace: monitoring, resourceVersion: "4711"}
    data: {scrape_interval: 30s}
created:
  description: Whether the ConfigMap did not exist before.
  returned: when O(state=present)
  type: bool
recreated:
  description: Whether an immutable ConfigMap was deleted and created again (O(on_immutable=recreate)).
  returned: when O(state=present)
  type: bool
pruned:
  description: Older generations deleted (in check mode, that would be deleted) because of O(keep_generations).
  returned: always
  type: list
  elements: str
  sample: [dataload-scripts-0b3f2c1d9e]
deleted:
  description: ConfigMaps deleted (in check mode, that would be deleted).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: [dataload-scripts-5d1c0e9a7b]
"""


from ansible_collections.datastore.kubernetes.plugins.module_utils import _configmap
from ansible_collections.datastore.kubernetes.plugins.module_utils._argspec import kube_argspec
from ansible_collections.datastore.kubernetes.plugins.module_utils._module import new_module, run_module
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import check_kubernetes_library, connect


def argument_spec():
    return kube_argspec(
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        from_literal={"type": "dict"},
        from_file={"type": "list", "elements": "raw"},
        from_env_file={"type": "list", "elements": "path"},
        from_dir={"type": "list", "elements": "path"},
        data={"type": "dict"},
        binary_data={"type": "dict"},
        labels={"type": "dict"},
        annotations={"type": "dict"},
        immutable={"type": "bool"},
        on_immutable={"type": "str", "choices": ["fail", "recreate"], "default": "fail"},
        hash_suffix={"type": "bool", "default": False},
        keep_generations={"type": "int", "default": 3},
        hash_annotation={"type": "bool", "default": False},
        force_conflicts={"type": "bool", "default": False},
    )


def main():
    module = new_module(argument_spec(), supports_check_mode=True)
    check_kubernetes_library(module)
    run_module(module, _configmap.run, connect)


if __name__ == "__main__":
    main()
